//! The CLI's `doctor`: each check passing and failing.

use super::*;

/// `igdisplay doctor` with `args`: its exit code and its report.
fn doctor(command: &mut Command) -> (Option<i32>, String) {
    let output = command.output().unwrap();
    (output.status.code(), String::from_utf8(output.stdout).unwrap())
}

/// Runs `doctor` expecting a failure; the line of `check`.
fn doctor_failure(command: &mut Command, check: &str) -> String {
    let (code, report) = doctor(command);
    assert_eq!(code, Some(1), "{report}");
    doctor_line(&report, check).to_owned()
}

/// A mock on this machine's clock shifted by `offset` seconds.
pub(super) fn mock_on_system_clock(offset: i64) -> MockServer {
    MockServer::builder()
        .clock(igdisplay_mock::MockClock::System { offset })
        .start()
        .unwrap()
}

/// The report line of `check`.
fn doctor_line<'a>(report: &'a str, check: &str) -> &'a str {
    report
        .lines()
        .find(|l| {
            l.get(6..)
                .is_some_and(|rest| rest.starts_with(&format!("{check}:")))
        })
        .unwrap_or_else(|| panic!("no `{check}` line in:\n{report}"))
}

#[test]
fn doctor_passes_a_working_setup() {
    // A mock on this machine's time, as `igdisplay mock serve` runs by default.
    let env = Env::with_mock(mock_on_system_clock(0));
    env.login("cafe_nova");
    let callback = format!("{}/_mock/health", env.mock.base_url());
    let (code, report) = doctor(&mut env.command(&["doctor", "--deauthorize-url", &callback]));
    assert_eq!(code, Some(0), "{report}");
    for check in [
        "configuration",
        "redirect URI",
        "token",
        "scopes",
        "account",
        "clock",
        "rate limit",
        "deauthorize callback",
    ] {
        assert!(doctor_line(&report, check).starts_with("ok "), "{report}");
    }
    assert!(
        doctor_line(&report, "account").contains("@cafe_nova, BUSINESS"),
        "{report}"
    );
    assert!(
        doctor_line(&report, "data-deletion callback").starts_with("skip"),
        "{report}"
    );
}

#[test]
fn doctor_fails_a_missing_configuration() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let mut command = env.command(&["doctor"]);
    command
        .env_remove("IGDISPLAY_MOCK")
        .env_remove("IGDISPLAY_APP_ID")
        .env("IGDISPLAY_REDIRECT_URI", "app.example/auth");
    let line = doctor_failure(&mut command, "configuration");
    assert!(
        line.starts_with("FAIL  configuration: no app id") && line.contains("not an absolute http(s) URL"),
        "{line}"
    );
}

#[test]
fn doctor_fails_an_unregistered_redirect_uri() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let mut command = env.command(&["doctor"]);
    command.env("IGDISPLAY_REDIRECT_URI", "https://elsewhere.example/cb");
    let line = doctor_failure(&mut command, "redirect URI");
    assert!(
        line.starts_with("FAIL  redirect URI: the authorize window refuses it"),
        "{line}"
    );
    assert!(line.contains("fix: add it, byte for byte"), "{line}");
}

#[test]
fn doctor_fails_an_expired_token() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    env.mock.advance(Duration::from_secs(61 * 86_400));
    let line = doctor_failure(&mut env.command(&["doctor"]), "token");
    assert!(line.starts_with("FAIL  token: expired at"), "{line}");
}

#[test]
fn doctor_fails_a_personal_account() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.import("sam_personal");
    let line = doctor_failure(&mut env.command(&["doctor"]), "account");
    assert!(
        line.starts_with("FAIL  account: @sam_personal is a personal account"),
        "{line}"
    );
}

#[test]
fn doctor_fails_missing_scopes() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    // A token from a login that approved less (as an older app's did).
    let path = env.dir.path().join("tokens.json");
    let mut file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for record in file["tokens"].as_object_mut().unwrap().values_mut() {
        record["permissions"] = serde_json::json!(["instagram_business_content_publish"]);
    }
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    let line = doctor_failure(&mut env.command(&["doctor"]), "scopes");
    assert!(
        line.starts_with("FAIL  scopes: not granted: instagram_business_basic"),
        "{line}"
    );
}

#[test]
fn doctor_fails_a_clock_an_hour_off() {
    let env = Env::with_mock(mock_on_system_clock(3600));
    env.login("cafe_nova");
    let line = doctor_failure(&mut env.command(&["doctor"]), "clock");
    assert!(
        line.starts_with("FAIL  clock: this machine is 3") && line.contains("s behind the server"),
        "{line}"
    );
}

#[test]
fn doctor_fails_a_nearly_spent_rate_budget() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let me = serde_json::json!({"id": "1", "username": "cafe_nova"});
    let usage = r#"{"call_count":95,"total_time":10,"total_cputime":10}"#;
    env.mock
        .stub(igdisplay_mock::Stub::json("GET", "/me", 200, me).header("x-app-usage", usage));
    let line = doctor_failure(&mut env.command(&["doctor"]), "rate limit");
    assert!(
        line.starts_with("FAIL  rate limit: 95 % of the budget used"),
        "{line}"
    );
}

#[test]
fn doctor_fails_an_unreachable_callback() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/deletion");
    let line = doctor_failure(
        &mut env.command(&["doctor", "--data-deletion-url", &url]),
        "data-deletion callback",
    );
    assert!(
        line.starts_with("FAIL  data-deletion callback: unreachable"),
        "{line}"
    );
}
