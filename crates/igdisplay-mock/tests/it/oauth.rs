//! The mock's window, codes and tokens: the OAuth side of both platforms, and the control API's listing.

use super::*;

#[tokio::test]
async fn the_cli_prints_where_it_listens_first() {
    use clap::Parser;
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        serve: igdisplay_mock::cli::ServeArgs,
    }
    let args = Args::parse_from(["igdisplay-mock", "--addr", "127.0.0.1:0", "--clock", "frozen"]);
    let mut out = Vec::new();
    let server = igdisplay_mock::cli::start(&args.serve, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(first, format!("listening on {}", server.base_url()));
    assert!(text.contains("app secret:    mock-app-secret-"), "{text}");
    assert!(text.contains("@not_a_tester") && text.contains("NOT a tester"));
    let (status, _, body) = get(&format!("{}/_mock/health", server.base_url())).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}

#[tokio::test]
async fn the_control_api_lists_its_endpoints() {
    let mock = mock(MockPlatform::InstagramLogin);
    let (status, _, body) = get(&format!("{}/_mock/", mock.base_url())).await;
    assert_eq!(status, 200);
    let listed: Vec<String> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        listed.contains(&"POST /_mock/clock/advance".to_owned()),
        "{listed:?}"
    );
    assert_eq!(listed.len(), 28);
}

#[tokio::test]
async fn a_hostile_clock_request_is_clamped_and_the_mock_keeps_issuing_tokens() {
    let mock = mock(MockPlatform::InstagramLogin);
    let advance = format!(
        "{}/_mock/clock/advance?seconds=9223372036854775807",
        mock.base_url()
    );
    let answer = http().post(advance).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(mock.now(), igdisplay_mock::LATEST);
    let token = mock.issue_token("jayposiris", TokenLifetime::LongLived).unwrap();
    assert!(token.expires_in > 0);
}

#[tokio::test]
async fn the_authorize_window_validates_every_parameter() {
    let mock = mock(MockPlatform::BasicDisplay);
    let cases = [
        (
            authorize_url(&mock, REDIRECT, "user_profile", "").replace(&mock.app().id, "1"),
            "Invalid platform app",
        ),
        (
            authorize_url(&mock, "https://app.example/auth", "user_profile", ""),
            "Invalid redirect_uri",
        ),
        (
            authorize_url(&mock, "https://APP.example/auth/", "user_profile", ""),
            "Invalid redirect_uri",
        ),
        (
            authorize_url(&mock, "https://app.example/auth/?x=1", "user_profile", ""),
            "Invalid redirect_uri",
        ),
        (
            authorize_url(&mock, "http://app.example/auth/", "user_profile", ""),
            "Invalid redirect_uri",
        ),
        (
            authorize_url(&mock, REDIRECT, "user_media", ""),
            "Invalid scope: [user_media]",
        ),
        (authorize_url(&mock, REDIRECT, "", ""), "Invalid scope: []"),
        (
            authorize_url(&mock, REDIRECT, "instagram_business_basic", ""),
            "Invalid scope: instagram_business_basic",
        ),
        (
            authorize_url(&mock, REDIRECT, "user_profile", "")
                .replace("response_type=code", "response_type=token"),
            "Invalid response type: token",
        ),
    ];
    for (url, message) in cases {
        let (status, _, body) = get(&url).await;
        assert_eq!(status, 400, "{url}");
        assert_eq!(body["error_type"], "OAuthException");
        assert_eq!(body["code"], 400);
        assert!(
            body["error_message"].as_str().unwrap().contains(message),
            "{url}: {body}"
        );
    }
    let login = self::mock(MockPlatform::InstagramLogin);
    let (_, _, body) = get(&authorize_url(&login, REDIRECT, "user_profile", "")).await;
    assert!(
        body["error_message"]
            .as_str()
            .unwrap()
            .contains("Invalid scope: user_profile")
    );
}

#[tokio::test]
async fn the_window_is_a_real_page_whose_buttons_approve_or_cancel() {
    let mock = mock(MockPlatform::InstagramLogin);
    let url = authorize_url(
        &mock,
        REDIRECT,
        "instagram_business_basic,instagram_business_manage_comments",
        "",
    );
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("igdisplay demo would like to access your Instagram account"));
    assert!(page.contains("<li>instagram_business_manage_comments</li>"));
    for user in ["jayposiris", "cafe_nova", "not_a_tester"] {
        assert!(page.contains(&format!("Continue as @{user}")), "{user}");
    }
    assert!(page.contains(r#"id="cancel""#) && !page.contains("<script"));
    let form = |extra: (&'static str, &'static str)| {
        let app = mock.app();
        vec![
            ("client_id", app.id),
            ("redirect_uri", REDIRECT.to_owned()),
            ("response_type", "code".to_owned()),
            ("scope", "instagram_business_basic".to_owned()),
            ("state", "S1".to_owned()),
            (extra.0, extra.1.to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| http().post(mock.authorize_url()).form(&fields).send();
    let approved = post(form(("user", "jayposiris"))).await.unwrap();
    assert_eq!(approved.status(), 302);
    code_of(approved.headers()["location"].to_str().unwrap());
    let cancelled = post(form(("cancel", "1"))).await.unwrap();
    assert_eq!(
        cancelled.headers()["location"],
        "https://app.example/auth/?error=access_denied&error_reason=user_denied&error_description=The+user+denied+your+request&state=S1"
    );
    let outsider = post(form(("user", "not_a_tester"))).await.unwrap();
    assert_eq!(outsider.status(), 400);
    assert_eq!(
        outsider.json::<Value>().await.unwrap()["error_message"],
        "Insufficient developer role"
    );
    let personal = post(form(("user", "sam_personal"))).await.unwrap();
    assert!(personal.text().await.unwrap().contains("professional account"));
}

#[tokio::test]
async fn codes_exchange_once_in_each_platform_shape() {
    let basic = mock(MockPlatform::BasicDisplay);
    let code = approve(&basic, "jayposiris").await;
    let (status, body) = exchange(&basic, &code).await;
    assert_eq!(status, 200);
    // A bare JSON number above 2^53, as Basic Display sends it, naming the id that paging
    // links carry, not the app-scoped id of `/me` (as recorded).
    let id = basic.users()[0].user_id.clone();
    assert_ne!(id, basic.users()[0].id);
    assert!(body.contains(&format!("\"user_id\":{id}")), "{body}");
    assert!(id.parse::<u64>().unwrap() > (1u64 << 53));

    let login = mock(MockPlatform::InstagramLogin);
    let code = approve(&login, "cafe_nova").await;
    let body: Value = serde_json::from_str(&exchange(&login, &code).await.1).unwrap();
    assert_eq!(
        body["permissions"],
        serde_json::json!(["instagram_business_basic"])
    );
    assert!(body["user_id"].is_u64());

    let wrapped = MockServer::builder()
        .token_shape(TokenShape::Wrapped)
        .start()
        .unwrap();
    let code = approve(&wrapped, "cafe_nova").await;
    let body: Value = serde_json::from_str(&exchange(&wrapped, &code).await.1).unwrap();
    assert!(body["data"][0]["user_id"].is_string());
    assert_eq!(body["data"][0]["permissions"], "instagram_business_basic");
}

#[tokio::test]
async fn a_reused_code_fails_and_revokes_what_it_gave() {
    for (platform, message) in [
        (
            MockPlatform::BasicDisplay,
            "This authorization code has been used",
        ),
        (
            MockPlatform::InstagramLogin,
            "Matching code was not found or was already used",
        ),
    ] {
        let mock = mock(platform);
        let code = approve(&mock, "jayposiris").await;
        let (_, first) = exchange(&mock, &code).await;
        let token = serde_json::from_str::<Value>(&first).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(get(&graph(&mock, "/me", &token)).await.0, 200);
        let (status, second) = exchange(&mock, &code).await;
        assert_eq!(status, 400);
        assert_eq!(
            serde_json::from_str::<Value>(&second).unwrap()["error_message"],
            message
        );
        let (status, headers, body) = get(&graph(&mock, "/me", &token)).await;
        assert_eq!(
            (
                status,
                body["error"]["code"].as_i64(),
                body["error"]["error_subcode"].as_i64()
            ),
            (400, Some(190), Some(460))
        );
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
}

#[tokio::test]
async fn codes_are_bound_to_their_redirect_uri_client_and_hour() {
    let mock = mock(MockPlatform::BasicDisplay);
    let app = mock.app();
    let code = approve(&mock, "jayposiris").await;
    let send = |fields: Vec<(&'static str, String)>| {
        http()
            .post(format!("{}/oauth/access_token", mock.base_url()))
            .form(&fields)
            .send()
    };
    let base = |redirect: &str, secret: &str, code: &str| {
        vec![
            ("client_id", app.id.clone()),
            ("client_secret", secret.to_owned()),
            ("grant_type", "authorization_code".to_owned()),
            ("redirect_uri", redirect.to_owned()),
            ("code", code.to_owned()),
        ]
    };
    let message = |r: reqwest::Response| async move {
        r.json::<Value>().await.unwrap()["error_message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let wrong_uri = send(base("https://app.example/auth", &app.secret, &code))
        .await
        .unwrap();
    assert!(message(wrong_uri).await.contains("redirect_uri is identical"));
    let wrong_secret = send(base(REDIRECT, "nope", &code)).await.unwrap();
    assert_eq!(message(wrong_secret).await, "Error validating client secret.");
    let unknown = send(base(REDIRECT, &app.secret, "AQnope")).await.unwrap();
    assert_eq!(message(unknown).await, "Invalid authorization code");
    mock.advance(Duration::from_secs(3600));
    let late = send(base(REDIRECT, &app.secret, &code)).await.unwrap();
    assert_eq!(message(late).await, "This authorization code has expired");

    // curl -F sends multipart; that works too.
    let code = approve(&mock, "jayposiris").await;
    let form = reqwest::multipart::Form::new()
        .text("client_id", app.id.clone())
        .text("client_secret", app.secret.clone())
        .text("grant_type", "authorization_code")
        .text("redirect_uri", REDIRECT)
        .text("code", code);
    let response = http()
        .post(format!("{}/oauth/access_token", mock.base_url()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn token_lifetimes_follow_the_reference() {
    let mock = mock(MockPlatform::InstagramLogin);
    let secret = mock.app().secret;
    let short = short_token(&mock, "jayposiris").await;
    let exchange_url = |token: &str, secret: &str| {
        format!(
            "{}/access_token?grant_type=ig_exchange_token&client_secret={secret}&access_token={token}",
            mock.base_url()
        )
    };
    assert_eq!(
        get(&exchange_url(&short, "wrong")).await.2["error"]["message"],
        "Error validating client secret."
    );
    let long = long_token(&mock, "jayposiris").await;
    assert_eq!(
        get(&exchange_url(&long, &secret)).await.0,
        400,
        "a long-lived token is not exchanged again"
    );
    let refresh = |token: &str| {
        format!(
            "{}/refresh_access_token?grant_type=ig_refresh_token&access_token={token}",
            mock.base_url()
        )
    };
    let (status, _, body) = get(&refresh(&long)).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("24 hours"));
    assert_eq!(
        get(&refresh(&short)).await.0,
        400,
        "short-lived tokens are not refreshed"
    );
    let post = http().post(refresh(&long)).send().await.unwrap();
    assert!(
        post.text()
            .await
            .unwrap()
            .contains("Unsupported request - method type: post")
    );
    mock.advance(Duration::from_secs(24 * 3600));
    // The short-lived token expired after an hour: 190 with the mock's dates and, as
    // graph.instagram.com sends it, no subcode.
    let (status, headers, body) = get(&exchange_url(&short, &secret)).await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_i64(),
            body["error"]["error_subcode"].as_i64()
        ),
        (400, Some(190), None)
    );
    assert_eq!(
        body["error"]["message"],
        "Error validating access token: Session has expired on Thursday, 15-Jan-26 13:00:00 UTC. The current time is Friday, 16-Jan-26 12:00:00 UTC."
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("OAuth \"Facebook Platform\" \"invalid_token\"")
    );
    let (status, _, body) = get(&refresh(&long)).await;
    assert_eq!(status, 200);
    let refreshed = body["access_token"].as_str().unwrap();
    assert_ne!(refreshed, long);
    mock.advance(Duration::from_secs(60 * 24 * 3600));
    let expired = get(&refresh(refreshed)).await.2;
    assert_eq!(expired["error"]["code"], 190);
    assert!(expired["error"].get("error_subcode").is_none(), "{expired}");
}

#[tokio::test]
async fn the_documented_expiry_subcode_is_available_on_request() {
    let options = igdisplay_mock::MockOptions {
        expired_token: igdisplay_mock::ExpiredTokenForm::Facebook,
        ..Default::default()
    };
    let mock = MockServer::builder().options(options).start().unwrap();
    let token = long_token(&mock, "jayposiris").await;
    mock.advance(Duration::from_secs(61 * 24 * 3600));
    let (status, _, body) = get(&graph(&mock, "/me", &token)).await;
    assert_eq!(
        (status, body["error"]["error_subcode"].as_i64()),
        (400, Some(463))
    );
}
