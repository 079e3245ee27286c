//! The mock's comments, tags, insights and webhook subscriptions (Instagram Login).

use super::*;

/// An Instagram Login token of `user` granted the comments scope.
async fn comments_token(mock: &MockServer, user: &str) -> String {
    granted_token(
        mock,
        user,
        "instagram_business_basic,instagram_business_manage_comments",
    )
    .await
}

/// `POST` or `DELETE` `path_and_query` with `token`: status and body.
async fn write(
    method: reqwest::Method,
    mock: &MockServer,
    path_and_query: &str,
    token: &str,
) -> (u16, Value) {
    let response = http()
        .request(method, graph(mock, path_and_query, token))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Replies `message` to `comment` and asserts the mock refuses it with code 100, saying `why`.
async fn assert_reply_refused(mock: &MockServer, token: &str, comment: &str, why: &str) {
    let path = format!("/{comment}/replies?message=hi");
    let (status, refused) = write(reqwest::Method::POST, mock, &path, token).await;
    assert_eq!(
        (status, refused["error"]["code"].as_i64()),
        (400, Some(100)),
        "{refused}"
    );
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains(why), "{message}");
}

/// The id of a media item of `user` with at least `min` comments, and its count.
async fn commented_media(mock: &MockServer, token: &str, min: u64) -> (String, u64) {
    let (_, _, page) = get(&graph(
        mock,
        "/me/media?fields=id,comments_count&limit=100",
        token,
    ))
    .await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["comments_count"].as_u64().unwrap(),
            )
        })
        .find(|(_, count)| *count >= min)
        .unwrap()
}

/// Reference C.2: a media item's top-level comments, newest first and paged by cursor, each
/// with its first replies by expansion; `comments_count` counts replies too.
#[tokio::test]
async fn a_media_items_comments_page_newest_first_with_their_replies() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = comments_token(&mock, "jayposiris").await;
    let (media, count) = commented_media(&mock, &token, 30).await;
    let fields = "id,text,timestamp,username,hidden,parent_id,replies{id,text,parent_id}";
    let (status, _, first) = get(&graph(
        &mock,
        &format!("/v24.0/{media}/comments?fields={fields}&limit=10"),
        &token,
    ))
    .await;
    assert_eq!(status, 200, "{first}");
    let items = first["data"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    let stamps: Vec<&str> = items.iter().map(|c| c["timestamp"].as_str().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(
        items.iter().all(|c| c.get("parent_id").is_none()),
        "top-level only"
    );
    let mut seen = items.len();
    let mut replies = items
        .iter()
        .map(|c| c["replies"]["data"].as_array().unwrap().len())
        .sum::<usize>();
    assert!(replies > 0, "some came with replies");
    let mut next = first["paging"]["next"].as_str().map(str::to_owned);
    while let Some(url) = next {
        assert!(url.contains("/v24.0/"), "{url}");
        let (_, _, page) = get(&url).await;
        let data = page["data"].as_array().unwrap();
        seen += data.len();
        replies += data
            .iter()
            .map(|c| c["replies"]["data"].as_array().unwrap().len())
            .sum::<usize>();
        next = page["paging"]["next"].as_str().map(str::to_owned);
    }
    assert_eq!((seen + replies) as u64, count, "comments_count counts replies");
}

/// Reference C.2: hide and unhide, reply (only to a top-level comment that is not hidden,
/// only while comments are on), delete (with its replies), comments off and on.
#[tokio::test]
async fn comments_are_hidden_replied_to_deleted_and_turned_off() {
    use reqwest::Method;
    let mock = mock(MockPlatform::InstagramLogin);
    let token = comments_token(&mock, "jayposiris").await;
    let (media, count) = commented_media(&mock, &token, 8).await;
    let (_, _, page) = get(&graph(
        &mock,
        &format!("/{media}/comments?fields=id,hidden"),
        &token,
    ))
    .await;
    let top = page["data"][0]["id"].as_str().unwrap().to_owned();

    assert_eq!(
        write(Method::POST, &mock, &format!("/{top}?hide=true"), &token).await,
        (200, serde_json::json!({"success": true}))
    );
    let (_, _, node) = get(&graph(&mock, &format!("/{top}?fields=id,hidden"), &token)).await;
    assert_eq!(node["hidden"], true);
    assert_reply_refused(&mock, &token, &top, "hidden").await;
    write(Method::POST, &mock, &format!("/{top}?hide=false"), &token).await;

    let (status, created) = write(
        Method::POST,
        &mock,
        &format!("/{top}/replies?message=Thank%20you%21"),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let reply = created["id"].as_str().unwrap().to_owned();
    let (_, _, replies) = get(&graph(
        &mock,
        &format!("/{top}/replies?fields=id,text,username,parent_id"),
        &token,
    ))
    .await;
    let ours = &replies["data"][0];
    assert_eq!(
        (ours["id"].as_str(), ours["text"].as_str()),
        (Some(reply.as_str()), Some("Thank you!"))
    );
    assert_eq!(ours["username"], "jayposiris");
    assert_eq!(ours["parent_id"], top.as_str());
    assert_reply_refused(&mock, &token, &reply, "top-level").await;
    let (_, _, media_node) = get(&graph(&mock, &format!("/{media}?fields=comments_count"), &token)).await;
    assert_eq!(media_node["comments_count"].as_u64(), Some(count + 1));

    assert_eq!(
        write(Method::DELETE, &mock, &format!("/{top}"), &token).await.0,
        200
    );
    let (status, _, gone) = get(&graph(&mock, &format!("/{reply}"), &token)).await;
    assert_eq!(
        (status, gone["error"]["code"].as_i64()),
        (400, Some(100)),
        "its replies went with it"
    );

    assert_eq!(
        write(
            Method::POST,
            &mock,
            &format!("/{media}?comment_enabled=false"),
            &token
        )
        .await
        .0,
        200
    );
    let (_, _, media_node) = get(&graph(
        &mock,
        &format!("/{media}?fields=is_comment_enabled"),
        &token,
    ))
    .await;
    assert_eq!(media_node["is_comment_enabled"], false);
    let (_, _, page) = get(&graph(
        &mock,
        &format!("/{media}/comments?fields=id,hidden"),
        &token,
    ))
    .await;
    let open = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["hidden"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_reply_refused(&mock, &token, &open, "turned off").await;
}

/// Without the comments scope the comment calls are code 10; Basic Display has no comments
/// (2500, an unknown path) and serves no writes.
#[tokio::test]
async fn comments_need_their_scope_and_instagram_login() {
    let login = mock(MockPlatform::InstagramLogin);
    let basic_scope = short_token(&login, "jayposiris").await;
    let full = comments_token(&login, "jayposiris").await;
    let (media, _) = commented_media(&login, &full, 1).await;
    let (status, _, body) = get(&graph(&login, &format!("/{media}/comments"), &basic_scope)).await;
    assert_refused(status, &body, 403, 10);

    let basic = mock(MockPlatform::BasicDisplay);
    let token = short_token(&basic, "jayposiris").await;
    let (_, _, page) = get(&graph(&basic, "/me/media?fields=id", &token)).await;
    let media = page["data"][0]["id"].as_str().unwrap().to_owned();
    let (_, _, body) = get(&graph(&basic, &format!("/{media}/comments"), &token)).await;
    assert_eq!(body["error"]["code"], 2500, "{body}");
    let (status, body) = write(
        reqwest::Method::POST,
        &basic,
        &format!("/{media}?comment_enabled=false"),
        &token,
    )
    .await;
    assert_refused(status, &body, 400, 100);
}

/// Reference C.3: the media the account is tagged in, others' posts newest first, paged like
/// media; code 10 without the comments scope.
#[tokio::test]
async fn the_media_an_account_is_tagged_in_are_listed_newest_first() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = comments_token(&mock, "cafe_nova").await;
    let (status, _, first) = get(&graph(
        &mock,
        "/me/tags?fields=id,username,timestamp&limit=4",
        &token,
    ))
    .await;
    assert_eq!(status, 200, "{first}");
    let items = first["data"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert!(
        items.iter().all(|m| m["username"] != "cafe_nova"),
        "others' posts only"
    );
    let stamps: Vec<&str> = items.iter().map(|m| m["timestamp"].as_str().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let next = first["paging"]["next"].as_str().unwrap();
    assert!(next.contains("/tags?"), "{next}");
    let (_, _, second) = get(next).await;
    assert_ne!(second["data"][0]["id"], items[0]["id"]);
    let basic_scope = short_token(&mock, "cafe_nova").await;
    let (status, _, body) = get(&graph(&mock, "/me/tags", &basic_scope)).await;
    assert_refused(status, &body, 403, 10);
}

/// An Instagram Login token of `user` granted the insights scope.
async fn insights_token(mock: &MockServer, user: &str) -> String {
    granted_token(
        mock,
        user,
        "instagram_business_basic,instagram_business_manage_insights",
    )
    .await
}

/// Reference C.4: a media item's insights; one metric Instagram does not serve for it
/// (removed, or not for its product type) fails the whole request naming it; too few viewers
/// is #10; album items have none.
#[tokio::test]
async fn media_insights_follow_the_metric_rules_whole_request_or_nothing() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = insights_token(&mock, "jayposiris").await;
    let fields = "id,like_count,media_product_type,media_type,children{id}";
    let (_, _, page) = get(&graph(
        &mock,
        &format!("/me/media?fields={fields}&limit=100"),
        &token,
    ))
    .await;
    let items = page["data"].as_array().unwrap();
    let feed = items
        .iter()
        .find(|m| m["media_product_type"] == "FEED" && m["like_count"].as_u64() > Some(0))
        .unwrap()["id"]
        .as_str()
        .unwrap();
    let (status, _, body) = get(&graph(
        &mock,
        &format!("/{feed}/insights?metric=views,reach,likes"),
        &token,
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert!(
        data.iter()
            .all(|m| m["values"][0]["value"].as_u64().is_some() && m["period"] == "lifetime")
    );
    for (metric, says) in [
        ("impressions", "no longer supported"),
        ("navigation", "does not support the navigation"),
    ] {
        let (status, _, body) = get(&graph(
            &mock,
            &format!("/{feed}/insights?metric=views,{metric}"),
            &token,
        ))
        .await;
        assert_refused(status, &body, 400, 100);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(metric) && message.contains(says), "{message}");
    }
    let unseen = items
        .iter()
        .find(|m| m["like_count"].as_u64() == Some(0))
        .unwrap()["id"]
        .as_str()
        .unwrap();
    let (_, _, body) = get(&graph(&mock, &format!("/{unseen}/insights?metric=views"), &token)).await;
    assert_eq!(body["error"]["code"], 10, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Not enough viewers")
    );
    let child = items
        .iter()
        .find_map(|m| m["children"]["data"][0]["id"].as_str())
        .unwrap();
    let (_, _, body) = get(&graph(&mock, &format!("/{child}/insights?metric=views"), &token)).await;
    assert_eq!(body["error"]["code"], 100, "{body}");
    let plain = short_token(&mock, "jayposiris").await;
    let (_, _, body) = get(&graph(&mock, &format!("/{feed}/insights?metric=views"), &plain)).await;
    assert_eq!(body["error"]["code"], 10, "without the scope: {body}");
}

/// Reference C.4: the account's totals over a period, broken down when asked; the period is
/// required and a removed metric fails the request.
#[tokio::test]
async fn account_insights_are_totals_over_a_period_with_breakdowns() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = insights_token(&mock, "jayposiris").await;
    let path =
        "/me/insights?metric=views,reach&period=day&metric_type=total_value&breakdown=media_product_type";
    let (status, _, body) = get(&graph(&mock, path, &token)).await;
    assert_eq!(status, 200, "{body}");
    let views = &body["data"][0];
    assert_eq!(views["name"], "views");
    assert!(views["total_value"]["value"].as_u64().unwrap() > 0);
    assert_eq!(
        views["total_value"]["breakdowns"][0]["dimension_keys"][0],
        "media_product_type"
    );
    let (_, _, body) = get(&graph(&mock, "/me/insights?metric=views", &token)).await;
    assert_eq!(body["error"]["code"], 100, "no period: {body}");
    let (_, _, body) = get(&graph(
        &mock,
        "/me/insights?metric=impressions&period=day",
        &token,
    ))
    .await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("impressions"),
        "{body}"
    );
}

/// Reference C.5: a subscription names Instagram Login's webhook fields; another is refused.
#[tokio::test]
async fn a_subscription_to_an_unknown_webhook_field_is_refused() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "cafe_nova").await;
    let (status, body) = write(
        reqwest::Method::POST,
        &mock,
        "/me/subscribed_apps?subscribed_fields=comments,feed",
        &token,
    )
    .await;
    assert_refused(status, &body, 400, 100);
    assert!(body["error"]["message"].as_str().unwrap().contains("[feed]"));
    let (_, _, listed) = get(&graph(&mock, "/me/subscribed_apps", &token)).await;
    assert_eq!(listed["data"], serde_json::json!([]), "nothing half-subscribed");
}

/// Counts from a seed file are bounded where they become work: a post seeded with
/// `u64::MAX` comments gets a thread of at most 10,000, and `u64::MAX` likes are summed into
/// the account's insights without overflowing.
#[tokio::test]
async fn seeded_counts_at_their_limits_neither_overflow_nor_exhaust_memory() {
    let mut seed = igdisplay_mock::Seed::demo();
    for media in &mut seed.users[1].media {
        media.comments = u64::MAX;
        media.likes = u64::MAX;
    }
    let mock = MockServer::builder()
        .platform(MockPlatform::InstagramLogin)
        .seed(seed)
        .start()
        .unwrap();
    let token = granted_token(
        &mock,
        "cafe_nova",
        "instagram_business_basic,instagram_business_manage_comments,instagram_business_manage_insights",
    )
    .await;
    let (_, _, page) = get(&graph(&mock, "/me/media?fields=id", &token)).await;
    let media = page["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, comments) = get(&graph(&mock, &format!("/{media}/comments?limit=100000"), &token)).await;
    assert_eq!(status, 200, "{comments}");
    assert_eq!(
        comments["data"].as_array().unwrap().len(),
        100,
        "a page holds at most 100"
    );
    let (_, _, node) = get(&graph(&mock, &format!("/{media}?fields=comments_count"), &token)).await;
    assert_eq!(
        node["comments_count"], 10_000,
        "the thread made, not the seed's count"
    );
    let path = "/me/insights?metric=views,reach&period=day&breakdown=media_product_type";
    let (status, _, insights) = get(&graph(&mock, path, &token)).await;
    assert_eq!(status, 200, "{insights}");
    assert_eq!(insights["data"][0]["total_value"]["value"], u64::MAX);
    let (status, _, refused) = get(&graph(&mock, &format!("/{media}/comments?limit=many"), &token)).await;
    assert_eq!(
        (status, refused["error"]["code"].as_i64()),
        (400, Some(100)),
        "as the media edge refuses it"
    );
}
