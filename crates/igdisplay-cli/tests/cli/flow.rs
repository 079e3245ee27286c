//! The CLI's whole flows: the demo, a login, reads and exports, imports and failures.

use super::*;

#[test]
fn the_demo_runs_the_whole_flow_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let output = Command::new(env!("CARGO_BIN_EXE_igdisplay"))
        .args(["demo", "--out", out.to_str().unwrap()])
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "Started a mock Instagram (instagram-login)",
        "state=[redacted]",
        "#_",
        "short-lived token",
        "long-lived token",
        "refreshed the token",
        "@jayposiris (MEDIA_CREATOR), 40 media",
        "40 items in 4 requests",
        "The items of album",
        "40 items, 89 files downloaded",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("IGAA"), "a token was printed");
    assert!(out.join("index.json").exists());
    let basic = Command::new(env!("CARGO_BIN_EXE_igdisplay"))
        .args([
            "demo",
            "--platform",
            "basic-display",
            "--out",
            dir.path().join("b").to_str().unwrap(),
        ])
        .env_clear()
        .output()
        .unwrap();
    assert!(basic.status.success());
    assert!(String::from_utf8_lossy(&basic.stdout).contains("(basic-display)"));
}

#[test]
fn login_read_and_export_against_a_running_mock() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let login = env.login("jayposiris");
    let user_id = env.mock.users()[0].id.clone();
    assert_eq!(login["user_id"], user_id);
    let stored = std::fs::read_to_string(env.dir.path().join("tokens.json")).unwrap();
    assert!(stored.contains(&user_id));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.dir.path().join("tokens.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        !env.dir.path().join("pending-authorization.json").exists(),
        "the state is single use"
    );

    let me = env.json(&["me"]);
    assert_eq!(
        (me["username"].as_str(), me["id"].as_str()),
        (Some("jayposiris"), Some(user_id.as_str()))
    );
    let human = env.ok(&["me"]);
    assert!(human.contains("@jayposiris") && human.contains("MEDIA_CREATOR"));

    let all = env.json(&["media", "list", "--all"]);
    let items = all.as_array().unwrap();
    assert_eq!(items.len(), 40);
    assert!(items.iter().all(|m| m["id"].is_string()), "ids are strings");
    let page = env.json(&["media", "list", "--limit", "5"]);
    assert_eq!(page.as_array().unwrap().len(), 5);
    let table = env.ok(&["media", "list", "--limit", "3"]);
    assert!(table.starts_with("ID") && table.lines().count() == 4, "{table}");
    let album = items
        .iter()
        .find(|m| m["media_type"] == "CAROUSEL_ALBUM")
        .unwrap()["id"]
        .as_str()
        .unwrap();
    let children = env.json(&["media", "children", album]);
    assert!(children.as_array().unwrap().len() >= 2);
    let one = env.json(&["media", "get", album]);
    assert_eq!(one["id"], album);
    let newest = items[0]["timestamp"].as_str().unwrap();
    let since = env.json(&["media", "list", "--all", "--since", newest]);
    assert_eq!(since.as_array().unwrap().len(), 1);

    let out = env.dir.path().join("export");
    let first = env.json(&["export", out.to_str().unwrap(), "--concurrency", "4"]);
    assert_eq!(
        (first["items"].as_u64(), first["downloaded"].as_u64()),
        (Some(40), Some(89))
    );
    let second = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(
        (second["downloaded"].as_u64(), second["skipped"].as_u64()),
        (Some(0), Some(89)),
        "a second run resumes"
    );
    check_export(&out);

    let status = env.json(&["token", "status"]);
    assert_eq!(
        (status["kind"].as_str(), status["refresh_due"].as_bool()),
        (Some("long_lived"), Some(false))
    );
    let early = env.run(&["token", "refresh"]);
    assert_eq!(early.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&early.stderr).contains("24 hours"));
    env.mock.advance(Duration::from_secs(25 * 3600));
    let refreshed = env.json(&["token", "refresh"]);
    assert!(refreshed["expires_at"].as_str().unwrap().starts_with("2026-03-1"));
    let logout = env.json(&["token", "logout"]);
    assert_eq!(logout["removed"], true);
    let none = env.run(&["me"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no one is logged in"));
}

fn check_export(out: &Path) {
    let index = read_index(out);
    assert!(
        index["exported_at"].as_str().unwrap().starts_with("2026-01-15T"),
        "dated on the mock's clock, not this machine's: {}",
        index["exported_at"]
    );
    let text = index.to_string();
    assert!(!text.contains("access_token") && !text.contains("_nc_sig") && !text.contains("IGAA"));
    let items = index["items"].as_array().unwrap();
    assert_eq!(items.len(), 40);
    let video = items.iter().find(|i| i["media_type"] == "VIDEO").unwrap();
    let roles: Vec<&str> = video["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["media", "thumbnail"]);
    for file in video["files"].as_array().unwrap() {
        let path = out.join(file["name"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(path).unwrap().len(),
            file["bytes"].as_u64().unwrap()
        );
    }
    // Every post names the file that shows it: a video its poster, an album its first
    // item's, a photo itself; only the flagged photo has none, and the videos Meta sent
    // without their file say why.
    let thumbnail = video["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["role"] == "thumbnail")
        .unwrap();
    assert_eq!(video["picture"], thumbnail["name"]);
    let album = items
        .iter()
        .find(|i| i["media_type"] == "CAROUSEL_ALBUM")
        .unwrap();
    assert_eq!(album["picture"], album["children"][0]["picture"]);
    let without: Vec<&Value> = items.iter().filter(|i| i.get("picture").is_none()).collect();
    assert_eq!(without.len(), 1, "{without:?}");
    assert_eq!(without[0]["media_type"], "IMAGE");
    let unplayable = items.iter().filter(|i| i.get("unplayable").is_some()).count();
    assert_eq!(unplayable, 2, "licensed audio and copyright");
    let leftovers: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part") || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn login_listens_on_a_loopback_redirect_uri() {
    let env = Env::new(MockPlatform::BasicDisplay);
    let (child, url, port) = listening_login(&env);
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let location = env.mock.approve(&url, "jayposiris").unwrap();
    assert!(location.starts_with(&redirect) && location.ends_with("#_"));
    // A stray request first (a favicon): it must not consume the login.
    assert_eq!(get(&format!("http://127.0.0.1:{port}/favicon.ico")).0, 404);
    let (status, page) = follow_callback(&location);
    assert_eq!(status, 200);
    let page = page.to_ascii_lowercase();
    assert!(page.contains("cache-control: no-store") && page.contains("referrer-policy: no-referrer"));
    assert!(!page.contains("code=") && !page.contains("<script"));
    let output = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(output.status.success(), "{all}");
    assert!(all.contains("Logged in as @jayposiris ("), "{all}");
    assert!(env.dir.path().join("tokens.json").exists());
}

#[test]
fn a_dashboard_token_is_imported_from_stdin() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let imported = env.import("cafe_nova");
    assert_eq!(imported["username"], "cafe_nova");
    assert_eq!(env.json(&["me"])["username"], "cafe_nova");
}

#[test]
fn failures_are_one_sentence_with_a_fix_and_the_right_exit_code() {
    let env = Env::new(MockPlatform::InstagramLogin);
    // A usage error: no app id, no secret, no redirect URI, and no mock to take them from:
    // every missing setting in one message.
    let output = env
        .command(&["auth", "url"])
        .env_remove("IGDISPLAY_APP_ID")
        .env_remove("IGDISPLAY_APP_SECRET")
        .env_remove("IGDISPLAY_REDIRECT_URI")
        .env_remove("IGDISPLAY_MOCK")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "a login needs settings that are missing: the app id (--app-id or IGDISPLAY_APP_ID); the app secret"
        ) && stderr.contains("; the redirect URI (--redirect-uri or IGDISPLAY_REDIRECT_URI")
            && stderr.contains("hint: set them"),
        "{stderr}"
    );
    // A callback whose state does not match is refused, and the pending login stays.
    env.ok(&["auth", "url"]);
    let forged = env.run(&[
        "auth",
        "callback",
        "https://app.example/auth/?code=AQxyz&state=forged#_",
    ]);
    assert_eq!(forged.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&forged.stderr).contains("not for the login in progress"));
    assert!(env.dir.path().join("pending-authorization.json").exists());
    // A cancelled login.
    let url = env.json(&["auth", "url"])["url"].as_str().unwrap().to_owned();
    let location = env.mock.deny(&url).unwrap();
    let denied = env.run(&["auth", "callback", &location]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("cancelled"));
    // Unknown platform and bad arguments are usage errors.
    assert_eq!(env.run(&["--platform", "myspace", "me"]).status.code(), Some(2));
    assert_eq!(
        env.run(&["media", "list", "--limit", "many"]).status.code(),
        Some(2)
    );
    // No secret in help or errors.
    for args in [
        &["--help"][..],
        &["auth", "url", "--redirect-uri", "nope"][..],
        &["me"][..],
    ] {
        let output = env.run(args);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!all.contains(SECRET_CANARY_PREFIX), "{args:?}: {all}");
    }
}

#[test]
fn signed_requests_are_verified_with_the_app_secret() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let value = env.mock.signed_request("jayposiris").unwrap();
    let payload = env.json(&["signed-request", "verify", &value]);
    assert_eq!(payload["user_id"], env.mock.users()[0].id);
    let tampered = format!("{}x", value);
    let output = env.run(&["signed-request", "verify", &tampered]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn basic_display_against_the_real_hosts_says_it_is_shut_down() {
    let env = Env::new(MockPlatform::BasicDisplay);
    let output = env
        .command(&["auth", "url"])
        .env_remove("IGDISPLAY_MOCK")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("switched off the Instagram Basic Display API on 2024-12-04")
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("https://api.instagram.com/oauth/authorize?")
    );
}

#[test]
fn an_expired_media_url_is_renewed_by_listing_its_page_again() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let items = env.json(&["media", "list", "--all"]);
    let image = items
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["media_type"] == "IMAGE")
        .unwrap();
    let id = image["id"].as_str().unwrap();
    // The CDN refuses the first fetch of this file as an expired link would.
    env.mock.stub(
        igdisplay_mock::Stub::json("GET", &format!("/cdn/v/{id}.jpg"), 403, serde_json::json!(null)).times(1),
    );
    let out = env.dir.path().join("export");
    let listings = || {
        env.mock
            .journal()
            .iter()
            .filter(|e| e.method == "GET" && e.path.ends_with("/media"))
            .count()
    };
    let before = listings();
    let summary = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(summary["items"], 3);
    assert_eq!(
        listings() - before,
        2,
        "the page listed once more for fresh links"
    );
    env.mock.expect_requests("GET", &format!("/{id}"), 0).unwrap();
    assert_eq!(
        std::fs::read(out.join(format!("{id}.jpg"))).unwrap()[..2],
        [0xFF, 0xD8]
    );
}
