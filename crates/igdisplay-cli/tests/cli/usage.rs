//! The CLI's usage: hints, exit codes, the token directory, rate limits.

use super::*;

/// Reliability case 62: a browser that cannot be opened (an `xdg-open` that fails noisily, as
/// it does without a display) leaves one line and the URL, and the login goes on waiting and
/// completes; then the listener is gone (case 61: one callback, then it stops).
#[cfg(unix)]
#[test]
fn a_browser_that_cannot_open_leaves_the_url_and_the_login_goes_on() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(MockPlatform::InstagramLogin);
    let bin = env.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let opener = bin.join("xdg-open");
    std::fs::write(
        &opener,
        "#!/bin/sh\necho 'xdg-open: no method available for opening' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (child, url, port) = listening_login_with(&env, &["login", "--timeout", "30"], Some(&bin));
    assert!(url.starts_with(&env.mock.authorize_url()), "{url}");
    let location = env.mock.approve(&url, "jayposiris").unwrap();
    assert_eq!(follow_callback(&location).0, 200);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Open this URL in a browser:"), "{stderr}");
    assert!(
        !stderr.contains("no method available"),
        "the opener's noise is not shown: {stderr}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the listener stopped after the login"
    );
}

/// Reliability case 61: with no redirect before `--timeout`, the login ends with a clear
/// message and a hint, exit 1.
#[test]
fn a_login_that_gets_no_redirect_times_out_with_a_hint() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let (child, _, _) = listening_login_with(&env, &["login", "--no-browser", "--timeout", "1"], None);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no redirect arrived within 1 s"), "{stderr}");
    assert!(
        stderr.contains("hint: run `igdisplay login` again, or pass --timeout"),
        "{stderr}"
    );
}

/// Issue 13, defect 2: igdisplay's own configuration directory, found open (`0755`, as an
/// older version left it), is made private when the default token file is used.
#[cfg(unix)]
#[test]
fn the_default_token_directory_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(MockPlatform::InstagramLogin);
    let config = env.dir.path().join("config");
    let own = config.join("igdisplay");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = env
        .command(&["token", "status"])
        .env_remove("IGDISPLAY_TOKEN_FILE")
        .env("XDG_CONFIG_HOME", &config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("no one is logged in"));
    let mode = std::fs::metadata(&own).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// Issue 15: a command's help shows its own options first and the global ones apart, under
/// "Global options" (the summary form, `-h`, as a user first sees it).
#[test]
fn help_shows_a_commands_own_options_before_the_global_ones() {
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_igdisplay"))
            .args(args)
            .env_clear()
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    insta::assert_snapshot!("mock_serve_help", help(&["mock", "serve", "-h"]));
    insta::assert_snapshot!("media_list_help", help(&["media", "list", "-h"]));
}

/// Issue 15: `media list --limit 0` is refused instead of silently showing one item, and
/// `media show` is `media get`.
#[test]
fn a_zero_limit_is_refused_and_show_is_get() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let zero = env.run(&["media", "list", "--limit", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&zero.stderr).contains("0 is not in 1.."));
    let id = env.first_image()["id"].as_str().unwrap().to_owned();
    assert_eq!(env.json(&["media", "show", &id])["id"], id.as_str());
}

/// Issue 15: a network failure names the host it could not reach and, with `--mock`, asks
/// whether the mock is running.
#[test]
fn an_unreachable_mock_is_named_with_a_hint() {
    let env = Env::with_mock(mock_on_system_clock(0));
    env.import("cafe_nova");
    let mut me = env.command(&["me"]);
    let Env { mock, dir: _dir } = env;
    let gone = mock.addr();
    drop(mock); // the mock stops: its port refuses connections
    let output = me.output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!("igdisplay: could not reach {gone}: ")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "hint: is the mock running at http://{gone}? Start one with `igdisplay mock serve`"
        )),
        "{stderr}"
    );
}

/// Issue 15: a token from a mock is never sent to Instagram (nor to another mock): the
/// record keeps where it came from, and the command says so instead of sending it.
#[test]
fn a_mock_token_is_never_sent_elsewhere() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("jayposiris");
    let other = MockServer::start().unwrap();
    for (target, named) in [
        (Some(other.base_url().to_owned()), other.base_url().to_owned()),
        (None, "https://graph.instagram.com".to_owned()),
    ] {
        let mut command = env.command(&["me"]);
        match &target {
            Some(base) => command.env("IGDISPLAY_MOCK", base),
            None => command.env_remove("IGDISPLAY_MOCK"),
        };
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "the stored token was issued by {}; it is not sent to {named}",
                env.mock.base_url()
            )),
            "{stderr}"
        );
    }
    assert_eq!(other.requests_total(), 0, "nothing reached the other mock");
}

/// Issue 15: a 5xx that outlasts the retries says how many attempts were made and what to do.
#[test]
fn a_server_error_says_how_often_it_was_tried() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    env.mock.add_fault(igdisplay_mock::Fault::new(
        "/me",
        igdisplay_mock::FaultKind::Status { status: 503 },
    ));
    let output = env.run(&["me"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unexpected response with status 503 after 3 attempt(s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: the server answered 503 to all 3 attempt(s): Instagram is having trouble"),
        "{stderr}"
    );
}

/// Issue 15: `token status` names the user by username and, like `gh auth status`, exits 1
/// when the token no longer works: expired, or revoked by Instagram.
#[test]
fn token_status_exits_1_for_an_expired_or_revoked_token() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("jayposiris");
    let good = env.run(&["token", "status"]);
    assert!(good.status.success());
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(stdout.contains("user          @jayposiris ("), "{stdout}");
    assert!(stdout.contains("accepted      yes"), "{stdout}");

    // Revoked: the user removed the app (the mock's deauthorize revokes the user's tokens).
    assert!(env.mock.revoke_tokens("jayposiris").unwrap() >= 1);
    let status = env.run(&["token", "status"]);
    assert_eq!(status.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&status.stdout).contains("accepted      no (revoked or invalid)"));
    assert!(String::from_utf8_lossy(&status.stderr).contains("hint: run `igdisplay login` again"));

    // Expired: sixty days later.
    env.login("cafe_nova");
    env.mock.advance(Duration::from_secs(61 * 86_400));
    let nova = env
        .mock
        .users()
        .into_iter()
        .find(|u| u.username == "cafe_nova")
        .unwrap();
    let expired = env.run(&["token", "status", "--user", &nova.id]);
    assert_eq!(expired.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&expired.stderr).contains("expired at"));
}

/// Issue 15: in the pasted-URL login, a bad paste (not a URL, another login's) asks again;
/// the right URL then completes the login.
#[test]
fn a_bad_paste_asks_again() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let mut child = env
        .command(&["login", "--no-browser"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = first_line(&mut child);
    let location = env.mock.approve(&url, "jayposiris").unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "not a url at all").unwrap();
    writeln!(stdin, "https://app.example/auth/?code=AQx&state=another-login#_").unwrap();
    writeln!(stdin, "{location}").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("That is not a redirect URL"), "{stderr}");
    assert!(stderr.contains("That URL is from another login"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("Logged in as @jayposiris"));
}

/// Issue 15: with `--mock`, a login takes the app id, secret and redirect URI the mock knows
/// when none is configured, and says so.
#[test]
fn with_a_mock_the_app_settings_come_from_the_mock() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let output = env
        .command(&["auth", "url", "--json"])
        .env_remove("IGDISPLAY_APP_ID")
        .env_remove("IGDISPLAY_APP_SECRET")
        .env_remove("IGDISPLAY_REDIRECT_URI")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("note: using the mock's app id, app secret, redirect URI"),
        "{stderr}"
    );
    let url: Value = serde_json::from_slice(&output.stdout).unwrap();
    let url = url["url"].as_str().unwrap();
    assert!(url.contains(&format!("client_id={}", env.mock.app().id)), "{url}");
    assert!(
        !stderr.contains(&env.mock.app().secret),
        "the note never shows the secret"
    );
}

/// Issue 15: a rate-limit pause is announced on stderr instead of a silent wait.
#[test]
fn a_rate_limit_pause_is_announced() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let limited = serde_json::json!({"error": {"message": "Application request limit reached", "type": "OAuthException", "code": 4}});
    env.mock.stub(
        igdisplay_mock::Stub::json("GET", "/me", 429, limited)
            .header("retry-after", "1")
            .times(1),
    );
    let output = env.run(&["me"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Instagram asks us to wait 1 s (rate limit); Ctrl-C to stop"),
        "{stderr}"
    );
}
