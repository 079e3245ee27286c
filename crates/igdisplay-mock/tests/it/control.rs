//! The mock's rate limits, faults, stubs, the journal, seeds and the control API.

use super::*;

#[tokio::test]
async fn rate_limits_count_per_user_per_rolling_hour() {
    let mock = MockServer::builder()
        .platform(MockPlatform::BasicDisplay)
        .calls_per_hour(Some(4))
        .start()
        .unwrap();
    // Long-lived: a short-lived token would expire within the hour this test waits.
    let token = long_token(&mock, "jayposiris").await;
    let mut usage = Vec::new();
    for _ in 0..4 {
        let (status, headers, _) = get(&graph(&mock, "/me", &token)).await;
        assert_eq!(status, 200);
        usage.push(headers.get("x-app-usage").map(|v| v.to_str().unwrap().to_owned()));
    }
    let first: Value = serde_json::from_str(usage[0].as_deref().unwrap()).unwrap();
    assert_eq!(
        first,
        serde_json::json!({"call_volume": 25, "cpu_time": 6}),
        "the recorded keys, from 0 %"
    );
    let last: Value = serde_json::from_str(usage[3].as_deref().unwrap()).unwrap();
    assert_eq!(last["call_volume"], 100);
    let (status, headers, body) = get(&graph(&mock, "/me", &token)).await;
    assert_refused(status, &body, 400, 17);
    assert!(headers.contains_key("x-app-usage"));
    mock.advance(Duration::from_secs(3600));
    assert_eq!(
        get(&graph(&mock, "/me", &token)).await.0,
        200,
        "recovered after the hour"
    );

    let login = MockServer::builder().calls_per_hour(Some(2)).start().unwrap();
    let token = short_token(&login, "jayposiris").await;
    get(&graph(&login, "/me", &token)).await;
    get(&graph(&login, "/me", &token)).await;
    let (_, headers, _) = get(&graph(&login, "/me", &token)).await;
    let buc: Value = serde_json::from_str(headers["x-business-use-case-usage"].to_str().unwrap()).unwrap();
    let entry = &buc[login.app().id][0];
    assert_eq!(entry["call_count"], 100);
    assert_eq!(entry["estimated_time_to_regain_access"], 60);
}

#[tokio::test]
async fn faults_misbehave_on_purpose() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let me = graph(&mock, "/me", &token);
    mock.add_fault(Fault::new("/me", FaultKind::Status { status: 503 }).times(1));
    assert_eq!(get(&me).await.0, 503);
    assert_eq!(get(&me).await.0, 200, "the fault was spent");
    mock.add_fault(Fault::new("/me", FaultKind::GraphTransient).times(1));
    let (status, _, body) = get(&me).await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_i64(),
            body["error"]["is_transient"].as_bool()
        ),
        (500, Some(2), Some(true))
    );
    mock.add_fault(Fault::new("/me", FaultKind::DropConnection).times(1));
    assert!(http().get(&me).send().await.is_err());
    mock.add_fault(Fault::new("/me/media", FaultKind::ResetMidBody).times(1));
    let media = graph(&mock, "/me/media?fields=id,caption", &token);
    let response = http().get(&media).send().await.unwrap();
    assert!(response.bytes().await.is_err(), "the body was cut");
    mock.add_fault(Fault::new("/me/media", FaultKind::TruncatedJson).times(1));
    let text = http().get(&media).send().await.unwrap().text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err() && text.starts_with("{\"data\""));
    mock.add_fault(Fault::new("/me", FaultKind::MalformedJson).times(1));
    assert!(
        http()
            .get(&me)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .is_err()
    );
    mock.add_fault(Fault::new("/me", FaultKind::WrongContentType).times(1));
    let response = http().get(&me).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    mock.add_fault(
        Fault::new(
            "/me",
            FaultKind::SlowDrip {
                chunk: 3,
                delay_ms: 1,
            },
        )
        .times(1),
    );
    assert_eq!(get(&me).await.2["id"], mock.users()[0].id);
    mock.add_fault(Fault::new("/me", FaultKind::Latency { ms: 5 }).times(1));
    assert_eq!(get(&me).await.0, 200);
    // A seeded probability hits the same requests for the same seed.
    let hits = |mock: MockServer| async move {
        let token = short_token(&mock, "jayposiris").await;
        mock.add_fault(Fault::new("/me", FaultKind::Status { status: 502 }).probability(0.5));
        let mut pattern = Vec::new();
        for _ in 0..20 {
            pattern.push(get(&graph(&mock, "/me", &token)).await.0 == 502);
        }
        pattern
    };
    let a = hits(self::mock(MockPlatform::InstagramLogin)).await;
    let b = hits(self::mock(MockPlatform::InstagramLogin)).await;
    assert_eq!(a, b);
    assert!(a.iter().any(|h| *h) && a.iter().any(|h| !*h));
}

#[tokio::test]
async fn stubs_answer_first_then_the_fake_takes_over() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    mock.stub(
        Stub::json(
            "GET",
            "/me",
            429,
            serde_json::json!({"error": {"message": "slow down", "code": 4}}),
        )
        .times(2)
        .header("retry-after", "7"),
    );
    let (status, headers, _) = get(&graph(&mock, "/me", &token)).await;
    assert_eq!((status, headers["retry-after"].to_str().unwrap()), (429, "7"));
    assert_eq!(get(&graph(&mock, "/me", &token)).await.0, 429);
    assert_eq!(get(&graph(&mock, "/me", &token)).await.0, 200);
}

#[tokio::test]
async fn the_journal_is_bounded_masked_and_explains_misses() {
    let mock = MockServer::builder()
        .journal_capacity(10)
        .calls_per_hour(None)
        .start()
        .unwrap();
    let token = short_token(&mock, "jayposiris").await;
    for _ in 0..50 {
        get(&graph(&mock, "/me?fields=id", &token)).await;
    }
    let journal = mock.journal();
    assert_eq!(journal.len(), 10);
    assert_eq!(mock.requests_total(), 52);
    assert_eq!(journal[9].query, "fields=id&access_token=[redacted]");
    mock.expect_requests("GET", "/me", 10).unwrap();
    let miss = mock.expect_requests("GET", "/me/media", 1).unwrap_err();
    assert!(miss.to_string().contains("closest: `GET /me`"), "{miss}");
    let all = format!("{:?}", mock.journal());
    assert!(!all.contains(&token));
}

#[tokio::test]
async fn the_same_seed_and_calls_give_the_same_bytes() {
    let run = || async {
        let mock = mock(MockPlatform::InstagramLogin);
        let code = approve(&mock, "jayposiris").await;
        let (_, body) = exchange(&mock, &code).await;
        let token = serde_json::from_str::<Value>(&body).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, _, media) = get(&graph(&mock, "/me/media?fields=id,media_url&limit=3", &token)).await;
        (code, body, media.to_string().replace(mock.base_url(), ""))
    };
    assert_eq!(run().await, run().await);
    let other = MockServer::builder()
        .seed(Seed {
            seed: 2,
            ..Seed::demo()
        })
        .start()
        .unwrap();
    assert_ne!(
        other.users()[0].id,
        mock(MockPlatform::InstagramLogin).users()[0].id
    );
}

#[tokio::test]
async fn the_control_api_drives_the_same_state() {
    let mock = mock(MockPlatform::BasicDisplay);
    let base = mock.base_url().to_owned();
    let (_, _, state) = get(&format!("{base}/_mock/state")).await;
    assert_eq!(state["platform"], "basic-display");
    assert_eq!(
        state["testers"],
        serde_json::json!(["jayposiris", "cafe_nova", "sam_personal"])
    );
    let start = mock.now();
    let (_, advanced) = post(&format!("{base}/_mock/clock/advance?seconds=90"), None).await;
    assert_eq!(advanced["unix"], start + 90);
    let fault =
        serde_json::json!({"path_prefix": "/me", "kind": {"type": "status", "status": 418}, "times": 1});
    post(&format!("{base}/_mock/faults"), Some(fault)).await;
    let token = short_token(&mock, "jayposiris").await;
    assert_eq!(get(&graph(&mock, "/me", &token)).await.0, 418);
    let uri = serde_json::json!({"uri": "http://127.0.0.1:9/cb"});
    post(&format!("{base}/_mock/redirect_uris"), Some(uri)).await;
    assert!(
        mock.app()
            .redirect_uris
            .contains(&"http://127.0.0.1:9/cb".to_owned())
    );
    let who = serde_json::json!({"username": "cafe_nova"});
    let (_, issued) = post(&format!("{base}/_mock/tokens"), Some(who)).await;
    assert_eq!(issued["expires_in"], 5_184_000);
    let (_, _, journal) = get(&format!("{base}/_mock/journal")).await;
    assert!(journal["total"].as_u64().unwrap() >= 3);
    post(&format!("{base}/_mock/reset"), None).await;
    assert_eq!(mock.now(), start);
    assert_eq!(get(&graph(&mock, "/me", &token)).await.2["error"]["code"], 190);
}

#[tokio::test]
async fn callbacks_are_posted_correctly_signed() {
    use base64::Engine as _;
    use hmac::{Hmac, KeyInit, Mac};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/deletion", listener.local_addr().unwrap());
    let received = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let mut text = String::new();
        while !text.contains("signed_request=")
            || !text.ends_with(|c: char| c.is_ascii_alphanumeric() || c == 'D')
        {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.contains("\r\n\r\nsigned_request=")
                && text.split("\r\n\r\n").nth(1).is_some_and(|b| b.len() > 50)
            {
                break;
            }
        }
        let reply = r#"{"url":"https://app.example/deletion?code=abc","confirmation_code":"abc"}"#;
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\r\n{reply}",
                    reply.len()
                )
                .as_bytes(),
            )
            .await;
        text
    });
    let mock = mock(MockPlatform::InstagramLogin);
    mock.set_callbacks(None, Some(&url));
    let (status, body) = mock
        .send_callback("jayposiris", CallbackKind::DataDeletion)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("confirmation_code"));
    let request = received.await.unwrap();
    let value = request.split("signed_request=").nth(1).unwrap().trim();
    let value = value.replace("%2E", ".").replace("%2D", "-").replace("%5F", "_");
    let (signature, payload) = value.split_once('.').unwrap();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(mock.app().secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    mac.verify_slice(&engine.decode(signature).unwrap()).unwrap();
    let payload: Value = serde_json::from_slice(&engine.decode(payload).unwrap()).unwrap();
    assert_eq!(payload["user_id"], mock.users()[0].id);
    assert_eq!(payload["algorithm"], "HMAC-SHA256");
    assert_eq!(payload["issued_at"], mock.now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_flows_get_unique_tokens_and_a_code_is_accepted_once() {
    let mock = std::sync::Arc::new(mock(MockPlatform::InstagramLogin));
    let flows = (0..200).map(|_| {
        let mock = mock.clone();
        tokio::spawn(async move { short_token(&mock, "jayposiris").await })
    });
    let mut tokens = std::collections::HashSet::new();
    for flow in flows.collect::<Vec<_>>() {
        assert!(tokens.insert(flow.await.unwrap()));
    }
    assert_eq!(tokens.len(), 200);
    let code = approve(&mock, "cafe_nova").await;
    let races = (0..20).map(|_| {
        let (mock, code) = (mock.clone(), code.clone());
        tokio::spawn(async move { exchange(&mock, &code).await.0 })
    });
    let mut accepted = 0;
    for race in races.collect::<Vec<_>>() {
        accepted += usize::from(race.await.unwrap() == 200);
    }
    assert_eq!(accepted, 1);
}

#[tokio::test]
async fn seed_files_and_generated_libraries_drive_the_data() {
    use igdisplay_mock::{SeedKind, SeedMedia};
    let mut seed = Seed::demo();
    seed.seed = 99;
    seed.app.name = "From a file".to_owned();
    seed.users.truncate(1);
    seed.users[0].media = vec![SeedMedia::album(
        Some("only one"),
        &[SeedKind::Image, SeedKind::Video],
    )];
    let dir = std::env::temp_dir().join(format!("igdisplay-mock-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("seed.json");
    std::fs::write(&file, serde_json::to_string_pretty(&seed).unwrap()).unwrap();
    use clap::Parser;
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        serve: igdisplay_mock::cli::ServeArgs,
    }
    let args = Args::parse_from([
        "m",
        "--addr",
        "127.0.0.1:0",
        "--seed",
        file.to_str().unwrap(),
        "--generate",
        "10000",
    ]);
    let server = igdisplay_mock::cli::start(&args.serve, &mut Vec::new()).unwrap();
    assert_eq!(server.app().name, "From a file");
    let users = server.users();
    assert_eq!(
        (users.len(), users[0].media_count, users[1].media_count),
        (2, 1, 10_000)
    );
    let token = server
        .issue_token("bulk", TokenLifetime::LongLived)
        .unwrap()
        .access_token;
    let mut next = Some(graph(
        &server,
        "/me/media?limit=100&fields=id,media_type,children{id}",
        &token,
    ));
    let (mut items, mut albums, mut pages) = (0, 0, 0);
    while let Some(url) = next.take() {
        let (status, _, page) = get(&url).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        items += data.len();
        albums += data
            .iter()
            .filter(|m| m["media_type"] == "CAROUSEL_ALBUM")
            .count();
        pages += 1;
        next = page["paging"]["next"].as_str().map(str::to_owned);
    }
    assert_eq!((items, albums, pages), (10_000, 1_000, 100));
    let broken = igdisplay_mock::cli::start(
        &Args::parse_from(["m", "--addr", "127.0.0.1:0", "--seed", "/nonexistent.json"]).serve,
        &mut Vec::new(),
    );
    assert!(matches!(broken, Err(igdisplay_mock::MockError::SeedRead { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn published_deleted_and_edited_posts_show_in_the_next_listing() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = long_token(&mock, "jayposiris").await;
    let first_id = |listing: &Value| listing["data"][0]["id"].as_str().unwrap().to_owned();
    let listing = |mock: &MockServer, token: &str| {
        let url = graph(mock, "/me/media?fields=id,caption&limit=5", token);
        async move { get(&url).await.2 }
    };
    let before = first_id(&listing(&mock, &token).await);

    let created = http()
        .post(format!("{}/_mock/media", mock.base_url()))
        .body(r#"{"username": "jayposiris", "kind": "IMAGE", "caption": "Brand new"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let after = listing(&mock, &token).await;
    assert_eq!(first_id(&after), id, "the new post comes first");
    assert_eq!(after["data"][0]["caption"], "Brand new");

    mock.edit_caption(&id, Some("Edited")).unwrap();
    assert_eq!(listing(&mock, &token).await["data"][0]["caption"], "Edited");

    let deleted = http()
        .delete(format!("{}/_mock/media/{id}", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(first_id(&listing(&mock, &token).await), before, "gone again");
    let (status, _, _) = get(&graph(&mock, &format!("/{id}?fields=id"), &token)).await;
    assert_eq!(status, 400, "its node is gone too");
    assert!(matches!(
        mock.delete_media(&id),
        Err(igdisplay_mock::MockError::UnknownMedia(_))
    ));
}

#[tokio::test]
async fn the_user_node_is_one_object_keys_sorted_and_each_once() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = mock.issue_token("jayposiris", TokenLifetime::LongLived).unwrap();
    let url = graph(
        &mock,
        "/me?fields=username,id,media_count,id,followers_count",
        &token.access_token,
    );
    let body = http().get(url).send().await.unwrap().text().await.unwrap();
    let value: Value = serde_json::from_str(&body).unwrap();
    let expected = format!(
        r#"{{"followers_count":{},"id":"{}","media_count":{},"username":"jayposiris"}}"#,
        value["followers_count"], token.user_id, value["media_count"]
    );
    assert_eq!(body, expected, "the bytes a serde_json::Map renders");
    assert!(value["media_count"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_refused_user_field_is_the_first_refused_in_the_order_asked() {
    let mock = mock(MockPlatform::BasicDisplay);
    let token = mock.issue_token("jayposiris", TokenLifetime::LongLived).unwrap();
    // Sorted, `followers_count` would come first; asked, `zodiac` does.
    let url = graph(
        &mock,
        "/me?fields=username,zodiac,followers_count",
        &token.access_token,
    );
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "(#100) Tried accessing nonexisting field (zodiac) on node type (User)"
    );
}

/// A seed file missing a required field is refused by the binary with the field, the line and
/// the column, not only "not valid seed JSON".
#[test]
fn a_seed_missing_a_field_is_refused_naming_the_field_and_the_line() {
    let seed = std::env::temp_dir().join(format!("igdisplay-mock-bad-seed-{}.json", std::process::id()));
    let mut text = serde_json::to_string_pretty(&igdisplay_mock::Seed::demo()).unwrap();
    let field = "\"account_type\": \"MEDIA_CREATOR\",";
    let at = text.find(field).unwrap();
    let line = text[..at].lines().count();
    text.replace_range(at..at + field.len(), "");
    std::fs::write(&seed, text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_igdisplay-mock"))
        .args(["--addr", "127.0.0.1:0", "--quiet", "--seed"])
        .arg(&seed)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not valid seed JSON: missing field `account_type` at line"),
        "{stderr}"
    );
    // serde reports where the object that lacks the field closes: after the field's place.
    let reported: usize = stderr
        .split(" at line ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let lines = std::fs::read_to_string(&seed).map_or(0, |text| text.lines().count());
    std::fs::remove_file(&seed).unwrap();
    assert!(
        reported > line && reported <= lines,
        "{reported} for a field on line {line} of {lines}: {stderr}"
    );
}
