//! The CLI's feed service: `feeds admin-token` and `feeds serve` against the mock, an
//! operator's whole first use (a feed created, its account connected through the link, the
//! link refused the second time) and a clean stop on SIGTERM.

use super::*;

/// Opens the connect link as `username`'s browser would: the link, the mock's window, the
/// callback with the link's cookie. The final page's status and text.
fn connect(env: &Env, link: &str, username: &str) -> (u16, String) {
    let (status, opened, _) = exchange_raw("GET", link, "", "");
    assert_eq!(status, 303, "{opened}");
    let cookie = header(&opened, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let callback = env
        .mock
        .approve(header(&opened, "location").unwrap(), username)
        .unwrap();
    let (status, _, page) = exchange_raw("GET", &callback, &format!("cookie: {cookie}\r\n"), "");
    (status, String::from_utf8_lossy(&page).into_owned())
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The header `name` of a raw response head (case as sent), if present.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[test]
fn feeds_serve_takes_a_feed_through_its_connect_link_once_and_stops_cleanly() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let keys = env.ok(&["store", "generate-key", "--id", "k1"]).trim().to_owned();
    let token = String::from_utf8(
        with_store(
            &env,
            &mut env.command(&["feeds", "admin-token", "--label", "ops"]),
            &keys,
        )
        .output()
        .unwrap()
        .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    assert!(token.starts_with("igfa_"), "{token}");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mirror = env.dir.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    let args = [
        "feeds",
        "serve",
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--public-url",
        &base,
        "--out",
        mirror.to_str().unwrap(),
        "--quota",
        "4800/h",
    ];
    let mut child = KillOnDrop(
        with_store(&env, &mut env.command(&args), &keys)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let listening = first_line(&mut child.0);
    assert_eq!(listening, format!("feeds: listening on {base}"));

    let auth = format!("authorization: Bearer {token}\r\ncontent-type: application/json\r\n");
    let body = r#"{"name": "Café Nova", "settings": {"max_posts": 6}}"#;
    let head = format!("{auth}content-length: {}\r\n", body.len());
    let (status, _, created) = exchange("POST", &format!("{base}/v1/admin/feeds"), &head, body);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&created));
    let created: Value = serde_json::from_slice(&created).unwrap();
    let link = created["connect_url"].as_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{base}/v1/connect/")), "{link}");

    let (status, page) = connect(&env, &link, "cafe_nova");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Connected"));
    // Twice: refused.
    assert_eq!(exchange_raw("GET", &link, "", "").0, 409);

    let id = created["feed"]["id"].as_str().unwrap();
    let (status, _, feed) = exchange("GET", &format!("{base}/v1/feeds/{id}"), "", "");
    assert_eq!(status, 200);
    let feed: Value = serde_json::from_slice(&feed).unwrap();
    assert!(
        matches!(feed["state"].as_str(), Some("pending" | "fresh")),
        "{feed}"
    );

    let (status, _, metrics) = exchange("GET", &format!("{base}/metrics"), "", "");
    let metrics = String::from_utf8_lossy(&metrics);
    assert_eq!(status, 200, "{metrics}");
    for figure in [
        "igdisplay_feeds_requests_total{route=\"feed\",status=\"200\"} 1",
        "igdisplay_feed_syncs_scheduled 1",
        "igdisplay_accounts{state=\"active\"} 1",
        "igdisplay_app_budget_held_seconds ",
    ] {
        assert!(metrics.contains(figure), "{figure} in {metrics}");
    }
    assert!(
        ["pending", "fresh"]
            .iter()
            .any(|state| metrics.contains(&format!("igdisplay_feeds{{state=\"{state}\"}} 1"))),
        "{metrics}"
    );
    assert!(!metrics.contains(id), "no feed id in the metrics");

    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = std::mem::replace(&mut child.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(!stderr.contains(&token), "no admin token in the log");
    assert!(!stderr.contains(&link), "no connect link in the log");
    // One JSON object a line; each admin answer with its request's id and route (a read's at
    // DEBUG).
    let answered: Vec<Value> = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "answered")
        .collect();
    assert!(
        answered
            .iter()
            .any(|line| line["fields"]["route"] == "admin" && line["fields"]["request_id"].is_string()),
        "{stderr}"
    );
}

/// A `feeds serve` of a deployment on the PostgreSQL database `store` and the bucket
/// `bucket` of the S3-compatible server `s3`, as `owner`: the process and its address.
fn instance(
    env: &Env,
    keys: &str,
    store: &str,
    (s3, bucket): (&str, &str),
    owner: &str,
    webhook: Option<&str>,
) -> (KillOnDrop, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let media = format!("{s3}/{bucket}");
    let mut args = vec![
        "feeds",
        "serve",
        "--owner",
        owner,
        "--idle",
        "1",
        "--sync-lease",
        "3",
        "--public-url",
        &base,
        "--bucket",
        bucket,
        "--s3-endpoint",
        s3,
        "--media-base",
        &media,
    ];
    let addr = format!("127.0.0.1:{port}");
    args.extend(["--addr", &addr]);
    if let Some(url) = webhook {
        args.extend(["--webhook", url]);
    }
    let mut command = env.command(&args);
    command
        .env("IGDISPLAY_STORE", store)
        .env("IGDISPLAY_STORE_KEYS", keys)
        .env("IGDISPLAY_WEBHOOK_SECRETS", "whsec-feeds")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = KillOnDrop(command.spawn().unwrap());
    assert_eq!(first_line(&mut child.0), format!("feeds: listening on {base}"));
    (child, base)
}

/// The feed `id` as `base` serves it.
fn feed_of(base: &str, id: &str) -> Value {
    let (status, _, body) = exchange("GET", &format!("{base}/v1/feeds/{id}"), "", "");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Waits (up to a minute, the instances running on their own) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} did not happen within a minute");
}

/// Two instances on one PostgreSQL database and one bucket: a feed created and connected on
/// one is served by the other; the first is SIGKILLed mid-sync and the second takes the sync
/// over and finishes it; the connect link is refused the second time; a revoked account's
/// feed stays served saying `needs_login`, and the webhook is delivered.
#[test]
fn two_instances_on_postgres_and_s3_share_feeds_survive_a_kill_and_report_needs_login() {
    let (Some(admin), Ok(s3)) = (
        igdisplay_store::test_util::test_cluster(),
        std::env::var("IGDISPLAY_TEST_S3"),
    ) else {
        assert!(
            std::env::var_os("IGDISPLAY_REQUIRE_S3").is_none(),
            "IGDISPLAY_REQUIRE_S3 is set but IGDISPLAY_TEST_S3 is not"
        );
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let name = format!("igd_feeds_{}", std::process::id());
    let store = runtime
        .block_on(igdisplay_store::test_util::fresh_database(&admin, &name))
        .unwrap();
    let bucket = format!("feeds-{}", std::process::id());
    let (status, _, _) = exchange("PUT", &format!("{s3}/{bucket}"), "content-length: 0\r\n", "");
    assert_eq!(status, 200);
    let env = Env::new(MockPlatform::InstagramLogin);
    let keys = env.ok(&["store", "generate-key", "--id", "k1"]).trim().to_owned();
    let mut admin_token = env.command(&["feeds", "admin-token"]);
    admin_token
        .env("IGDISPLAY_STORE", &store)
        .env("IGDISPLAY_STORE_KEYS", &keys);
    let token = String::from_utf8(admin_token.output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    // Every download of the CDN late: a sync of the account's fifty posts takes seconds.
    env.mock.add_fault(igdisplay_mock::Fault::new(
        "/cdn/",
        igdisplay_mock::FaultKind::Latency { ms: 150 },
    ));

    let (mut one, base_one) = instance(&env, &keys, &store, (&s3, &bucket), "one", None);
    let auth = format!("authorization: Bearer {token}\r\ncontent-type: application/json\r\n");
    let body = r#"{"name": "Jay"}"#;
    let head = format!("{auth}content-length: {}\r\n", body.len());
    let (status, _, created) = exchange("POST", &format!("{base_one}/v1/admin/feeds"), &head, body);
    assert_eq!(status, 201);
    let created: Value = serde_json::from_slice(&created).unwrap();
    let (id, link) = (
        created["feed"]["id"].as_str().unwrap(),
        created["connect_url"].as_str().unwrap(),
    );
    assert_eq!(connect(&env, link, "jayposiris").0, 200);

    // Instance one is killed in the middle of the sync, part of the files downloaded.
    eventually("instance one in the middle of the sync", || {
        let downloads = env
            .mock
            .journal()
            .iter()
            .filter(|e| e.path.starts_with("/cdn/"))
            .count();
        downloads >= 5 && feed_of(&base_one, id)["state"] == "pending"
    });
    one.0.kill().unwrap();
    one.0.wait().unwrap();
    // Its leases run out (the instances' time is the mock's).
    env.mock.advance(Duration::from_secs(10));
    env.mock.clear_faults();

    let (hook, received) = one_request();
    let (_two, base_two) = instance(&env, &keys, &store, (&s3, &bucket), "two", Some(&hook));
    assert_eq!(
        feed_of(&base_two, id)["state"],
        "pending",
        "served by the other instance before its sync"
    );
    eventually("instance two finishing the sync", || {
        feed_of(&base_two, id)["state"] == "fresh"
    });
    let served = feed_of(&base_two, id);
    assert!(served["items"].as_array().unwrap().len() >= 20);
    let image = served["items"][0]["image"]["url"].as_str().unwrap();
    assert!(image.starts_with(&format!("{s3}/{bucket}/media/")), "{image}");
    // The link again, at the other instance (behind one proxy both answer its address).
    let again = link.replace(&base_one, &base_two);
    assert_eq!(exchange_raw("GET", &again, "", "").0, 409, "a link works once");

    env.mock.revoke_tokens("jayposiris").unwrap();
    let (status, _, _) = exchange(
        "POST",
        &format!("{base_two}/v1/admin/feeds/{id}/sync"),
        &format!("{auth}content-length: 0\r\n"),
        "",
    );
    assert_eq!(status, 202);
    eventually("the feed saying needs_login", || {
        feed_of(&base_two, id)["state"] == "needs_login"
    });
    assert_eq!(
        feed_of(&base_two, id)["items"],
        served["items"],
        "the last good posts stay"
    );
    let (head, body) = received.join().unwrap();
    assert!(
        head.to_ascii_lowercase().contains("igdisplay-event: needs_login"),
        "{head}"
    );
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["feeds"], serde_json::json!([id]));
}
