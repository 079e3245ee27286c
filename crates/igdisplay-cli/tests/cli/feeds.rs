//! The CLI's feed service: `feeds admin-token` and `feeds serve` against the mock, an
//! operator's whole first use (a feed created, its account connected through the link, the
//! link refused the second time) and a clean stop on SIGTERM.

use super::*;

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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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

    // The owner opens the link, logs in at the mock, comes back with the link's cookie.
    let (status, opened, _) = exchange_raw("GET", &link, "", "");
    assert_eq!(status, 303, "{opened}");
    let cookie = header(&opened, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let authorize = header(&opened, "location").unwrap();
    let callback = env.mock.approve(authorize, "cafe_nova").unwrap();
    let (status, _, page) = exchange_raw("GET", &callback, &format!("cookie: {cookie}\r\n"), "");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&page));
    assert!(String::from_utf8_lossy(&page).contains("Connected"));
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
        "igdisplay_feeds{bound=\"true\"} 1",
        "igdisplay_feeds_requests_total{route=\"feed\",status=\"200\"} 1",
        "igdisplay_feed_syncs_scheduled 1",
        "igdisplay_accounts{state=\"active\"} 1",
    ] {
        assert!(metrics.contains(figure), "{figure} in {metrics}");
    }
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
}
