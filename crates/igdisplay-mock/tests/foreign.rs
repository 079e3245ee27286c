//! A client that is not ours runs its documented flow against the mock over HTTPS, with only
//! its base URLs changed: instagram-basic-display, a Python library from PyPI (`pip install
//! instagram-basic-display==1.2.0`), through `requests` with the mock's root as its CA bundle.
//!
//! The test command installs it in a virtual environment and names its interpreter in
//! `IGDISPLAY_FOREIGN_PYTHON`; without that variable (a plain `cargo test`) the test says so
//! and passes without running.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use igdisplay_mock::{MockPlatform, MockServer};
use std::process::Command;

/// A mock of `platform` over HTTPS without a call limit, a folder of this test's own, and the
/// mock's root certificate written in it (the clients' CA bundle).
fn https_mock(platform: MockPlatform) -> (MockServer, std::path::PathBuf, std::path::PathBuf) {
    let mock = MockServer::builder()
        .platform(platform)
        .https()
        .calls_per_hour(None)
        .start()
        .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "igdisplay-foreign-{}-{}",
        platform.as_str(),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("root.pem");
    std::fs::write(&root, mock.root_certificate_pem().unwrap()).unwrap();
    (mock, dir, root)
}

/// Runs `script` under `python` with `args`, trusting `root` (requests and httpx both read
/// it), and reads the one JSON object it prints; a failure shows what the client said.
fn run(python: &std::ffi::OsStr, script: &str, args: &[&str], root: &std::path::Path) -> serde_json::Value {
    let output = Command::new(python)
        .arg(script)
        .args(args)
        .env("REQUESTS_CA_BUNDLE", root)
        .env("SSL_CERT_FILE", root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

#[test]
fn a_python_client_from_pypi_logs_in_and_pages_through_the_media_over_https() {
    let Some(python) = std::env::var_os("IGDISPLAY_FOREIGN_PYTHON") else {
        eprintln!(
            "skipped: set IGDISPLAY_FOREIGN_PYTHON to a Python with instagram-basic-display (bash .ci/run does)"
        );
        return;
    };
    let (mock, dir, root) = https_mock(MockPlatform::BasicDisplay);
    let app = mock.app();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/foreign/instagram_basic_display_flow.py"
    );
    let result = run(
        &python,
        script,
        &[mock.base_url(), &app.id, &app.secret, "https://app.example/auth/"],
        &root,
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(result["username"], "jayposiris");
    assert_eq!(result["media_count"], 40);
    assert_eq!(result["items"], 40, "every page, by its paging.next links");
    assert!(
        result["album_children"].as_u64().unwrap() > 0,
        "children by field expansion"
    );
    assert_eq!(result["expires_in"], 5_184_000);
    assert_eq!(result["short_user_id"].to_string(), mock.users()[0].user_id);
    mock.expect_requests("POST", "/oauth/access_token", 1).unwrap();
}

/// Issue 31: two Instagram Login clients written by others (instagram-platform-sdk and
/// python-facebook-api's IGBusinessApi, from PyPI) run their default profile call, which asks
/// for `biography` and `website`, their comments call, a media insights call and the SDK's
/// tags call, against the mock over HTTPS in the API version each asks in.
#[test]
fn instagram_login_clients_from_pypi_read_profile_comments_tags_and_insights_over_https() {
    let Some(python) = std::env::var_os("IGDISPLAY_FOREIGN_PYTHON") else {
        eprintln!("skipped: set IGDISPLAY_FOREIGN_PYTHON to a Python with the clients (bash .ci/run does)");
        return;
    };
    let (mock, dir, root) = https_mock(MockPlatform::InstagramLogin);
    // A token from the App Dashboard carries every scope the app has.
    let token = mock
        .issue_token("cafe_nova", igdisplay_mock::TokenLifetime::LongLived)
        .unwrap();
    let account = mock.users()[1].user_id.clone();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/foreign/instagram_login_clients.py"
    );
    let result = run(
        &python,
        script,
        &[mock.base_url(), &token.access_token, &account],
        &root,
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(result["sdk_username"], "cafe_nova");
    assert_eq!(result["sdk_website"], "https://cafe-nova.example/");
    assert!(result["sdk_biography"].as_str().unwrap().contains("Bakery"));
    assert_eq!(result["pyfacebook_username"], "cafe_nova");
    assert!(
        result["pyfacebook_biography"]
            .as_str()
            .unwrap()
            .contains("Bakery")
    );
    assert!(result["sdk_tagged"].as_u64().unwrap() > 0);
    for client in ["sdk", "pyfacebook"] {
        assert!(
            result[format!("{client}_insights")]["views"].as_u64().unwrap() > 0,
            "{result}"
        );
    }
    assert_eq!(result["sdk_comments"], result["pyfacebook_comments"]);
}
