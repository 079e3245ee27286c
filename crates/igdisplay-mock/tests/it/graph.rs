//! The mock's the Graph API: fields, versions, dates, media pages and albums.

use super::*;

#[tokio::test]
async fn graph_fields_defaults_and_errors() {
    let mock = mock(MockPlatform::BasicDisplay);
    let token = short_token(&mock, "jayposiris").await;
    let me = mock.users()[0].clone();
    let (_, headers, body) = get(&graph(&mock, "/me", &token)).await;
    assert_eq!(
        body,
        serde_json::json!({"id": me.id}),
        "without fields, only the id"
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let (_, _, body) = get(&graph(
        &mock,
        "/v21.0/me?fields=id,username,account_type,media_count",
        &token,
    ))
    .await;
    assert_eq!(body["username"], "jayposiris");
    assert_eq!(body["media_count"], 40);
    let (_, _, body) = get(&graph(&mock, &format!("/{}?fields=username", me.id), &token)).await;
    assert_eq!(body["username"], "jayposiris");
    let (status, _, body) = get(&graph(&mock, "/me?fields=id,followers_count", &token)).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "(#100) Tried accessing nonexisting field (followers_count) on node type (User)"
    );
    let other = mock.users()[1].id.clone();
    let (_, _, body) = get(&graph(&mock, &format!("/{other}"), &token)).await;
    assert_eq!(
        (
            body["error"]["code"].as_i64(),
            body["error"]["error_subcode"].as_i64()
        ),
        (Some(100), Some(33))
    );
    let (_, _, body) = get(&graph(&mock, "/me/stories", &token)).await;
    assert_eq!(body["error"]["code"], 2500);
    let (_, _, body) = get(&format!("{}/me", mock.base_url())).await;
    assert_eq!(body["error"]["code"], 104);
    // Without user_media, media is refused.
    let profile_only = profile_only_token(&mock).await;
    assert_eq!(
        get(&graph(&mock, "/me/media", &profile_only)).await.2["error"]["code"],
        10
    );
    assert_eq!(
        get(&graph(&mock, "/me?fields=media_count", &profile_only))
            .await
            .2["error"]["code"],
        10
    );

    let login = self::mock(MockPlatform::InstagramLogin);
    let token = short_token(&login, "cafe_nova").await;
    let all =
        "id,user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count";
    let (_, _, body) = get(&graph(&login, &format!("/me?fields={all}"), &token)).await;
    assert_eq!(body["account_type"], "BUSINESS");
    assert_eq!(body["name"], "Café Nova");
    assert!(body["user_id"].as_str().unwrap().parse::<u64>().unwrap() > (1u64 << 53));
    assert!(body["profile_picture_url"].as_str().unwrap().contains("/cdn/v/"));
}

/// Reference C.1b: Instagram Login serves `biography` and `website` (the defaults of two
/// clients written by others); a profile without one leaves it out; Basic Display refuses both.
#[tokio::test]
async fn biography_and_website_are_served_on_instagram_login_and_left_out_when_empty() {
    let login = mock(MockPlatform::InstagramLogin);
    let token = short_token(&login, "cafe_nova").await;
    let (status, _, body) = get(&graph(&login, "/me?fields=id,biography,website", &token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["biography"], "Bakery & café · open 7–19");
    assert_eq!(body["website"], "https://cafe-nova.example/");
    let jay = short_token(&login, "jayposiris").await;
    let (_, _, body) = get(&graph(&login, "/me?fields=id,biography,website", &jay)).await;
    assert!(body["biography"].is_string());
    assert!(
        body.get("website").is_none(),
        "no website: left out, not null: {body}"
    );

    let basic = mock(MockPlatform::BasicDisplay);
    let token = short_token(&basic, "jayposiris").await;
    let (status, _, body) = get(&graph(&basic, "/me?fields=id,biography", &token)).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "(#100) Tried accessing nonexisting field (biography) on node type (User)"
    );
}

/// A request in `/v24.0/` or `/v26.0/` is answered in that version: its
/// `Instagram-Api-Version` header and its paging links name it, not the default `v21.0`.
#[tokio::test]
async fn a_graph_call_is_answered_in_the_version_it_was_asked_in() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    for version in ["v24.0", "v26.0"] {
        let (status, headers, body) =
            get(&graph(&mock, &format!("/{version}/me/media?fields=id"), &token)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["instagram-api-version"], version);
        let next = body["paging"]["next"].as_str().unwrap();
        assert!(
            next.starts_with(&format!("{}/{version}/", mock.base_url())),
            "{next}"
        );
        let (_, headers, body) = get(&graph(
            &mock,
            &format!("/{version}/me?fields=id,media{{id}}"),
            &token,
        ))
        .await;
        assert_eq!(headers["instagram-api-version"], version);
        let next = body["media"]["paging"]["next"].as_str().unwrap();
        assert!(
            next.contains(&format!("/{version}/")),
            "an expanded page too: {next}"
        );
    }
    let (_, headers, _) = get(&graph(&mock, "/me?fields=id", &token)).await;
    assert_eq!(
        headers["instagram-api-version"], "v21.0",
        "no version asked: the default"
    );
}

/// One clock for every answer: the Graph API, the token endpoints, the code exchange, a
/// preflight and the window are all dated on the mock's clock, never the machine's.
#[tokio::test]
async fn every_answer_is_dated_on_the_mocks_clock() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let expected =
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(u64::try_from(mock.now()).unwrap()));
    let date = |headers: &reqwest::header::HeaderMap| headers["date"].to_str().unwrap().to_owned();
    let (_, graph_headers, _) = get(&graph(&mock, "/me", &token)).await;
    let (_, token_headers, _) = get(&format!(
        "{}/access_token?grant_type=ig_exchange_token&client_secret={}&access_token={token}",
        mock.base_url(),
        mock.app().secret
    ))
    .await;
    let exchange = http()
        .post(format!("{}/oauth/access_token", mock.base_url()))
        .form(&[("code", "not-a-code")])
        .send()
        .await
        .unwrap();
    let preflight = http()
        .request(reqwest::Method::OPTIONS, format!("{}/me", mock.base_url()))
        .send()
        .await
        .unwrap();
    let window = http()
        .get(authorize_url(&mock, REDIRECT, "instagram_business_basic", ""))
        .send()
        .await
        .unwrap();
    for (what, headers) in [
        ("graph", &graph_headers),
        ("token endpoint", &token_headers),
        ("code exchange", exchange.headers()),
        ("preflight", preflight.headers()),
        ("window", window.headers()),
    ] {
        assert_eq!(date(headers), expected, "{what}");
        assert_eq!(headers.get_all("date").iter().count(), 1, "{what}: one Date");
    }
}

#[tokio::test]
async fn media_pages_by_cursor_with_absolute_links_newest_first() {
    let mock = mock(MockPlatform::BasicDisplay);
    let token = short_token(&mock, "jayposiris").await;
    let (_, _, first) = get(&graph(&mock, "/me/media?fields=id,timestamp", &token)).await;
    let items = first["data"].as_array().unwrap();
    assert_eq!(items.len(), 25, "the default page size");
    assert!(first["paging"]["previous"].is_null());
    let next = first["paging"]["next"].as_str().unwrap();
    let user_id = mock.users()[0].user_id.clone();
    assert!(
        next.starts_with(&format!(
            "{}/v21.0/{user_id}/media?access_token={token}&fields=id%2Ctimestamp&limit=25&after=",
            mock.base_url()
        )),
        "{next}"
    );
    let stamps: Vec<&str> = items.iter().map(|m| m["timestamp"].as_str().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(stamps[0].ends_with("+0000"));
    let (_, _, second) = get(next).await;
    assert_eq!(second["data"].as_array().unwrap().len(), 15);
    assert!(second["paging"]["next"].is_null(), "absent on the last page");
    assert!(second["paging"]["previous"].is_string());
    let before = second["paging"]["cursors"]["before"].as_str().unwrap();
    let (_, _, back) = get(&graph(
        &mock,
        &format!("/me/media?limit=5&before={before}"),
        &token,
    ))
    .await;
    assert_eq!(back["data"][4]["id"], items[24]["id"]);
    let (_, _, capped) = get(&graph(&mock, "/me/media?limit=1000", &token)).await;
    assert_eq!(capped["data"].as_array().unwrap().len(), 40);
    let newest = items[0]["timestamp"].as_str().unwrap().to_owned();
    let (_, _, since) = get(&graph(
        &mock,
        &format!("/me/media?since={}", mock.now() - 3600 - 7 * 3600),
        &token,
    ))
    .await;
    assert_eq!(since["data"].as_array().unwrap().len(), 2, "{newest}");
    let (_, _, bad) = get(&graph(&mock, "/me/media?after=garbage", &token)).await;
    assert_eq!(bad["error"]["code"], 100);
    for item in items {
        let id = item["id"].as_str().unwrap();
        assert!(id.parse::<u64>().unwrap() > (1u64 << 53));
    }
}

#[tokio::test]
async fn albums_expand_their_children_and_only_albums_have_them() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let fields = "id,caption,media_type,media_url,thumbnail_url,permalink,like_count,children{id,media_type,media_url,caption}";
    let (_, _, page) = get(&graph(
        &mock,
        &format!("/me/media?limit=100&fields={}", enc(fields)),
        &token,
    ))
    .await;
    let media = page["data"].as_array().unwrap();
    let albums: Vec<&Value> = media
        .iter()
        .filter(|m| m["media_type"] == "CAROUSEL_ALBUM")
        .collect();
    assert!(!albums.is_empty());
    for album in &albums {
        let children = album["children"]["data"].as_array().unwrap();
        assert!((2..=10).contains(&children.len()));
        assert!(
            children.iter().all(|c| c.get("caption").is_none()),
            "no caption on children"
        );
    }
    assert!(
        media
            .iter()
            .filter(|m| m["media_type"] != "CAROUSEL_ALBUM")
            .all(|m| m.get("children").is_none())
    );
    let video = media.iter().find(|m| m["media_type"] == "VIDEO").unwrap();
    assert!(video["thumbnail_url"].is_string());
    assert!(
        media.iter().any(|m| m.get("caption").is_none()),
        "some posts have no caption"
    );
    assert!(
        media
            .iter()
            .any(|m| m["caption"].as_str().is_some_and(|c| c.contains('🌅')))
    );
    assert!(
        media.iter().any(|m| m.get("media_url").is_none()),
        "the copyright-flagged item"
    );
    let album_id = albums[0]["id"].as_str().unwrap();
    let (_, _, children) = get(&graph(
        &mock,
        &format!("/{album_id}/children?fields=id,media_type,timestamp"),
        &token,
    ))
    .await;
    assert_eq!(
        children["data"].as_array().unwrap().len(),
        albums[0]["children"]["data"].as_array().unwrap().len()
    );
    let child_id = children["data"][0]["id"].as_str().unwrap();
    assert_eq!(
        get(&graph(
            &mock,
            &format!("/{child_id}?fields=id,media_type"),
            &token
        ))
        .await
        .2["id"],
        child_id
    );
    let image = media.iter().find(|m| m["media_type"] == "IMAGE").unwrap()["id"]
        .as_str()
        .unwrap();
    assert_eq!(
        get(&graph(&mock, &format!("/{image}/children"), &token)).await.0,
        400
    );
}
