//! What responses recorded from the real API show, one fact a test (issue 14; the facts and
//! their sources are in docs/fidelity.md).

use super::*;
use igdisplay_mock::{SeedKind, SeedMedia};

/// A mock whose first user's newest post is an album that starts with a video.
fn with_video_first_album() -> MockServer {
    let mut seed = Seed::demo();
    seed.users[0].media.insert(
        0,
        SeedMedia::album(Some("video first"), &[SeedKind::Video, SeedKind::Image]),
    );
    MockServer::builder().seed(seed).start().unwrap()
}

#[tokio::test]
async fn album_children_have_permalinks_of_their_own() {
    let mock = with_video_first_album();
    let token = long_token(&mock, "jayposiris").await;
    let url = graph(
        &mock,
        "/me/media?limit=1&fields=permalink,children{permalink}",
        &token,
    );
    let (_, _, body) = get(&url).await;
    let album = &body["data"][0];
    let children: Vec<&str> = album["children"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["permalink"].as_str().unwrap())
        .collect();
    assert_eq!(children.len(), 2);
    assert!(children.iter().all(|p| *p != album["permalink"]), "{body}");
    assert_ne!(children[0], children[1]);
}

#[tokio::test]
async fn an_album_that_starts_with_a_video_shows_its_cover_image() {
    let mock = with_video_first_album();
    let token = long_token(&mock, "jayposiris").await;
    let (_, _, body) = get(&graph(
        &mock,
        "/me/media?limit=1&fields=media_type,media_url",
        &token,
    ))
    .await;
    let url = body["data"][0]["media_url"].as_str().unwrap();
    assert!(url.contains(".jpg?"), "the cover JPEG, never the video: {url}");
}

#[tokio::test]
async fn the_user_node_expands_its_media_with_a_limit_and_nested_paging() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = long_token(&mock, "jayposiris").await;
    for fields in [
        "id,username,media.limit(2){id,caption}",
        "id,media.fields(id,caption).limit(2)",
    ] {
        let (status, _, body) = get(&graph(&mock, &format!("/me?fields={}", enc(fields)), &token)).await;
        assert_eq!(status, 200, "{fields}: {body}");
        assert_eq!(body["media"]["data"].as_array().unwrap().len(), 2, "{fields}");
        let next = body["media"]["paging"]["next"].as_str().unwrap();
        assert!(next.contains("limit=2") && next.contains("/media?"), "{next}");
    }
}

#[tokio::test]
async fn children_expand_in_the_dotted_syntax_too() {
    let mock = with_video_first_album();
    let token = long_token(&mock, "jayposiris").await;
    let fields = enc("id,children.fields(id,media_type)");
    let (_, _, body) = get(&graph(
        &mock,
        &format!("/me/media?limit=1&fields={fields}"),
        &token,
    ))
    .await;
    assert_eq!(
        body["data"][0]["children"]["data"][0]["media_type"], "VIDEO",
        "{body}"
    );
}

#[tokio::test]
async fn several_media_are_read_in_one_request_by_ids() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = long_token(&mock, "jayposiris").await;
    let (_, _, page) = get(&graph(&mock, "/me/media?limit=2", &token)).await;
    let ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let url = graph(
        &mock,
        &format!("/?ids={}&fields=id,caption", enc(&ids.join(","))),
        &token,
    );
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 200, "{body}");
    for id in &ids {
        assert_eq!(body[*id]["id"], *id);
    }
    let (status, _, body) = get(&graph(&mock, "/?ids=1234", &token)).await;
    assert_eq!((status, body["error"]["error_subcode"].as_i64()), (400, Some(33)));
}

#[tokio::test]
async fn since_and_until_read_strtotime_words_and_dates() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = long_token(&mock, "jayposiris").await;
    // The clock stands at 2026-01-15T12:00Z; posts are 7 hours apart going back.
    let (_, _, today) = get(&graph(&mock, "/me/media?since=today&limit=100", &token)).await;
    let (_, _, dated) = get(&graph(&mock, "/me/media?since=2026-01-15&limit=100", &token)).await;
    let (_, _, yesterday) = get(&graph(&mock, "/me/media?since=yesterday&limit=100", &token)).await;
    let count = |body: &Value| body["data"].as_array().unwrap().len();
    assert_eq!(count(&today), count(&dated));
    assert!(count(&yesterday) > count(&today), "{today}");
    let (status, _, body) = get(&graph(&mock, "/me/media?since=someday", &token)).await;
    assert_refused(status, &body, 400, 100);
}

#[tokio::test]
async fn graph_answers_allow_any_origin_and_preflights_succeed() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = long_token(&mock, "jayposiris").await;
    let (_, headers, _) = get(&graph(&mock, "/me", &token)).await;
    assert_eq!(headers["access-control-allow-origin"], "*");
    let preflight = http()
        .request(reqwest::Method::OPTIONS, format!("{}/me", mock.base_url()))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn token_endpoints_and_instagram_login_errors_name_the_api_version() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = long_token(&mock, "jayposiris").await;
    mock.advance(Duration::from_secs(2 * 24 * 3600));
    let refresh = format!(
        "{}/refresh_access_token?grant_type=ig_refresh_token&access_token={token}",
        mock.base_url()
    );
    let (status, headers, _) = get(&refresh).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("instagram-api-version"));
    let (status, headers, _) = get(&graph(&mock, "/me?fields=unread_count", &token)).await;
    assert_eq!(status, 400);
    assert!(headers.contains_key("instagram-api-version"));
}

#[tokio::test]
async fn errors_are_not_cached_and_their_request_id_is_the_trace_id() {
    let mock = mock(MockPlatform::BasicDisplay);
    let (status, headers, body) = get(&graph(&mock, "/me", "not-a-token")).await;
    assert_eq!(status, 400);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(
        headers["x-fb-request-id"],
        body["error"]["fbtrace_id"].as_str().unwrap()
    );
    assert!(headers.contains_key("x-fb-trace-id"));
}

#[tokio::test]
async fn a_permission_error_is_a_403_with_an_oauth_challenge() {
    let mock = mock(MockPlatform::BasicDisplay);
    // A token with user_profile only: media is a permission error (code 10).
    let token = profile_only_token(&mock).await;
    let (status, headers, body) = get(&graph(&mock, "/me/media", &token)).await;
    assert_refused(status, &body, 403, 10);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with(r#"OAuth "Facebook Platform" "invalid_request""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn an_unknown_field_on_instagram_login_is_worded_as_recorded() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = long_token(&mock, "jayposiris").await;
    let (_, _, body) = get(&graph(&mock, "/me?fields=unread_count", &token)).await;
    assert_eq!(
        body,
        serde_json::json!({"error": {
            "message": "Tried accessing nonexisting field (unread_count)",
            "type": "IGApiException",
            "code": 100,
        }})
    );
}

#[tokio::test]
async fn the_usage_header_can_use_the_documented_keys() {
    let options = igdisplay_mock::MockOptions {
        platform: MockPlatform::BasicDisplay,
        usage_keys: igdisplay_mock::UsageKeys::Facebook,
        ..Default::default()
    };
    let mock = MockServer::builder().options(options).start().unwrap();
    let token = long_token(&mock, "jayposiris").await;
    let (_, headers, _) = get(&graph(&mock, "/me", &token)).await;
    let usage: Value = serde_json::from_str(headers["x-app-usage"].to_str().unwrap()).unwrap();
    assert!(
        usage.get("call_count").is_some() && usage.get("call_volume").is_none(),
        "{usage}"
    );
}

#[tokio::test]
async fn an_https_mock_is_reachable_by_a_client_that_trusts_its_root_only() {
    let mock = MockServer::builder().https().start().unwrap();
    let root = mock.root_certificate_pem().unwrap().to_owned();
    let _ = http(); // installs the crypto provider
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .build()
        .unwrap();
    let served = trusting
        .get(format!("{}/_mock/ca.pem", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.text().await.unwrap(), root);
    let untrusting = reqwest::Client::builder().build().unwrap();
    let refused = untrusting
        .get(format!("{}/_mock/health", mock.base_url()))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a client that does not trust the root must not connect"
    );
}

#[tokio::test]
async fn an_http_mock_has_no_root_to_serve() {
    let mock = mock(MockPlatform::InstagramLogin);
    let (status, _, _) = get(&format!("{}/_mock/ca.pem", mock.base_url())).await;
    assert_eq!(status, 404);
}
