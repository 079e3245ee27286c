//! The CLI's comments, tags, insights and webhooks.

use super::*;

/// Issue 31: comments, tags, insights and webhook subscriptions from the command line, after
/// a login that asked for their scopes; a renamed scope is refused with its successor.
#[test]
fn comments_tags_insights_and_subscriptions_from_the_command_line() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let refused = env.run(&["auth", "url", "--scope", "business_manage_comments"]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("ask for `instagram_business_manage_comments`"),
        "{stderr}"
    );

    let scopes = [
        "--scope",
        "instagram_business_manage_comments",
        "--scope",
        "instagram_business_manage_insights",
    ];
    let url = env.json(&[&["auth", "url"][..], &scopes[..]].concat())["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.contains("instagram_business_manage_insights"), "{url}");
    let location = env.mock.approve(&url, "jayposiris").unwrap();
    env.json(&["auth", "callback", &location]);

    let media = env.json(&["media", "list", "--all"]);
    let post = media
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["comments_count"].as_u64() >= Some(8)
                && m["like_count"].as_u64() > Some(0)
                && m["media_product_type"] == "FEED"
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let comments = env.json(&["comments", &post]);
    let first = comments[0]["id"].as_str().unwrap().to_owned();
    assert!(comments.as_array().unwrap().len() >= 2);
    let table = env.ok(&["comments", &post]);
    assert!(
        table.contains(&first) && table.contains("↳"),
        "replies under their comment: {table}"
    );
    env.ok(&["comments", "hide", &first]);
    let after = env.json(&["comments", &post]);
    assert_eq!(after[0]["hidden"], true);

    let tags = env.json(&["tags"]);
    assert!(!tags.as_array().unwrap().is_empty());

    let output = env.run(&[
        "insights",
        &post,
        "--metric",
        "impressions",
        "--metric",
        "navigation",
    ]);
    assert_success(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("impressions was removed by Instagram; asked as views"),
        "{stderr}"
    );
    assert!(stderr.contains("navigation left out"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("views"));
    let account = env.json(&["insights", "me", "--metric", "reach"]);
    assert_eq!(account["availability"], "Values");

    env.ok(&[
        "webhooks",
        "subscribe",
        "--field",
        "comments",
        "--field",
        "mentions",
    ]);
    assert_eq!(env.ok(&["webhooks", "subscriptions"]).trim(), "comments,mentions");
    let bad = env.run(&["webhooks", "subscribe", "--field", "feed"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// Issue 31: `webhooks serve` answers Meta's handshake for the verify token only, refuses an
/// unsigned delivery, and writes a signed one to standard output before acknowledging it.
#[test]
fn webhooks_serve_answers_the_handshake_and_keeps_signed_deliveries() {
    use igdisplay::auth::webhooks::sign_webhook;
    use igdisplay::model::AppSecret;
    use std::io::BufRead as _;
    let env = Env::new(MockPlatform::InstagramLogin);
    let token_file = env.dir.path().join("verify-token");
    std::fs::write(&token_file, "the-verify-token\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut child = env
        .command(&[
            "webhooks",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--verify-token-file",
            token_file.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let base = line
        .split("on ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let handshake = |token: &str| {
        get(&format!(
            "{base}/?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
        ))
    };
    let (status, _, response) = handshake("the-verify-token");
    assert_eq!(status, 200);
    assert!(response.ends_with("1158201444"), "{response}");
    assert_eq!(handshake("wrong").0, 403);

    let body = r#"{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"changes":[{"field":"mentions","value":{"media_id":"17900000000000001"}}]}]}"#;
    let (status, _, _) = exchange(
        "POST",
        &format!("{base}/"),
        &format!("content-length: {}\r\n", body.len()),
        body,
    );
    assert_eq!(status, 401, "unsigned");
    let signature = sign_webhook(&AppSecret::new(env.mock.app().secret), body.as_bytes());
    let head = format!(
        "x-hub-signature-256: {signature}\r\ncontent-length: {}\r\n",
        body.len()
    );
    let (status, _, _) = exchange("POST", &format!("{base}/"), &head, body);
    assert_eq!(status, 200);
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let kept: Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(
        kept["entry"][0]["changes"][0]["field"], "mentions",
        "written before the 200"
    );
}
