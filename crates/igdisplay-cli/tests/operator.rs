//! What an operator of a fleet sees and types: help pages that show no secret, a key file
//! that others can read refused, a key id listed twice refused, a keeper that needs only the
//! store and its keys, eight processes starting on an empty database together, the outbox
//! listed and an event sent again, and `/metrics`, `/healthz`, `/readyz` checked against the
//! database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use igdisplay::auth::{Platform, TokenKind, TokenRecord, TokenStore};
use igdisplay::model::{AccessToken, UserId};
use igdisplay::store::{KeyRing, SqlStore};
use std::io::{BufRead as _, Read as _, Write as _};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const CANARY: &str = "CANARY-s3cr3t-7f3c";

fn igdisplay(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_igdisplay"));
    command.args(args).env_clear();
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn no_help_page_shows_a_secret_from_the_environment() {
    let secret_urls = [
        (
            "IGDISPLAY_STORE",
            format!("postgres://app:{CANARY}@db.internal/igd"),
        ),
        (
            "IGDISPLAY_WEBHOOK_URL",
            format!("https://hooks.example/in?token={CANARY}"),
        ),
        (
            "IGDISPLAY_S3_ENDPOINT",
            format!("https://key:{CANARY}@s3.example"),
        ),
        ("IGDISPLAY_MOCK", format!("http://user:{CANARY}@127.0.0.1:1")),
        (
            "IGDISPLAY_DEAUTHORIZE_URL",
            format!("https://app.example/deauth?k={CANARY}"),
        ),
        (
            "IGDISPLAY_DATA_DELETION_URL",
            format!("https://app.example/delete?k={CANARY}"),
        ),
    ];
    for page in [
        &["--help"][..],
        &["keeper", "--help"],
        &["sync", "--help"],
        &["doctor", "--help"],
        &["events", "--help"],
        &["accounts", "--help"],
        &["store", "rotate-key", "--help"],
        &["webhooks", "serve", "--help"],
        &["webhooks", "subscribe", "--help"],
        &["insights", "--help"],
        &["comments", "--help"],
    ] {
        let mut command = igdisplay(page);
        for (name, value) in &secret_urls {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{page:?}: {}", text(&output));
        let shown = text(&output);
        assert!(!shown.contains(CANARY), "{page:?} shows a secret:\n{shown}");
    }
}

/// A store in a temporary folder with its keys.
struct Store {
    dir: tempfile::TempDir,
    keys: String,
}

impl Store {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            keys: KeyRing::generate_spec("k1").unwrap(),
        }
    }

    fn url(&self) -> String {
        format!("sqlite:{}", self.dir.path().join("fleet.db").display())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = igdisplay(args);
        command
            .env("IGDISPLAY_STORE", self.url())
            .env("IGDISPLAY_STORE_KEYS", &self.keys);
        command
    }

    async fn open(&self) -> SqlStore {
        SqlStore::connect(&self.url(), KeyRing::parse(&self.keys).unwrap())
            .await
            .unwrap()
    }
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused_with_the_chmod_to_run() {
    use std::os::unix::fs::PermissionsExt as _;
    let store = Store::new();
    let file = store.dir.path().join("keys");
    std::fs::write(&file, &store.keys).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let output = igdisplay(&["accounts", "--store-keys-file", file.to_str().unwrap()])
        .env("IGDISPLAY_STORE", store.url())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let shown = text(&output);
    assert!(
        shown.contains(&format!("chmod 600 {}", file.display())),
        "{shown}"
    );
    assert!(!shown.contains(&store.keys[3..]), "the key is never shown");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = igdisplay(&["accounts", "--store-keys-file", file.to_str().unwrap()])
        .env("IGDISPLAY_STORE", store.url())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn a_key_id_listed_twice_is_refused_naming_it() {
    let store = Store::new();
    let other = KeyRing::generate_spec("k1").unwrap();
    let output = store
        .command(&["accounts"])
        .env("IGDISPLAY_STORE_KEYS", format!("{},{other}", store.keys))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let shown = text(&output);
    assert!(shown.contains("`k1` is in the list twice"), "{shown}");
}

#[test]
fn the_keeper_needs_only_the_store_and_its_keys() {
    let store = Store::new();
    // No app id, secret, redirect URI or mock: nothing the keeper does needs them.
    let output = store
        .command(&["keeper", "--until-idle", "--json", "--progress-every", "0"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let totals: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(totals["refreshed"], 0);
}

/// Eight processes opening one empty database at once all start (the migrations take turns),
/// on SQLite, and on PostgreSQL when the test cluster is there.
#[tokio::test]
async fn eight_processes_started_at_once_on_an_empty_database_all_start() {
    let sqlite = Store::new();
    let mut urls = vec![sqlite.url()];
    if let Some(admin) = igdisplay_store::test_util::test_cluster() {
        let name = format!("igd_eight_{}", std::process::id());
        urls.push(
            igdisplay_store::test_util::fresh_database(&admin, &name)
                .await
                .unwrap(),
        );
    }
    for url in urls {
        let children: Vec<_> = (0..8)
            .map(|_| {
                igdisplay(&["accounts", "--json"])
                    .env("IGDISPLAY_STORE", &url)
                    .env("IGDISPLAY_STORE_KEYS", &sqlite.keys)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{url}: {}", text(&output));
            assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "[]");
        }
    }
}

#[tokio::test]
async fn the_outbox_is_listed_and_a_dead_event_sent_again() {
    let store = Store::new();
    let opened = store.open().await;
    opened
        .delete_account(&UserId::new("1784"), "DEL-1")
        .await
        .unwrap();
    opened
        .delete_account(&UserId::new("1785"), "DEL-2")
        .await
        .unwrap();
    sqlx::query("UPDATE events SET state = 'dead', attempts = 40, last_error = 'the endpoint answered 500' WHERE id = 1")
        .execute(opened.pool())
        .await
        .unwrap();
    let output = store.command(&["events", "--json"]).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["event"]["type"], "deletion_requested");
    let output = store.command(&["events", "--state", "dead"]).output().unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.starts_with("ID") && table.contains("500"), "{table}");
    assert_eq!(table.lines().count(), 2, "{table}");

    let output = store.command(&["events", "resend", "1"]).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let pending = opened
        .list_events(Some(igdisplay::store::EventState::Pending), 0, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 2);
    let output = store.command(&["events", "resend", "99"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

/// Reads a plain HTTP/1.1 answer from a loopback address: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// The figure of `name` (with `labels`, as written) in a Prometheus text page.
fn figure(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keepers_metrics_match_the_database() {
    let store = Store::new();
    let opened = store.open().await;
    // Two accounts: one active, one revoked with its event pending.
    #[allow(clippy::disallowed_methods, reason = "the keeper runs on the system clock")]
    let now = std::time::SystemTime::now();
    for (user, token) in [("1784", "IGAAone"), ("1785", "IGAAtwo")] {
        let record = TokenRecord::long_lived(
            UserId::new(user),
            AccessToken::new(token),
            Platform::InstagramLogin,
            now - Duration::from_secs(3600),
        );
        opened.save(&record).await.unwrap();
    }
    opened
        .mark_revoked(&UserId::new("1785"), "error 190")
        .await
        .unwrap();
    let mut child = store
        .command(&[
            "keeper",
            "--idle",
            "3600",
            "--progress-every",
            "0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the keeper stopped");
        if let Some(rest) = line.split("metrics at http://").nth(1) {
            break rest.trim().trim_end_matches("/metrics").to_owned();
        }
    };
    let (status, body) = get(&addr, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(get(&addr, "/readyz").0, 200);
    let (status, page) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    let stats = opened.stats().await.unwrap();
    assert_eq!(figure(&page, "igdisplay_accounts{state=\"active\"}"), 1.0);
    assert_eq!(figure(&page, "igdisplay_accounts{state=\"revoked\"}"), 1.0);
    assert_eq!(figure(&page, "igdisplay_accounts_due"), stats.due as f64);
    assert_eq!(
        figure(&page, "igdisplay_outbox_pending"),
        stats.pending_events as f64
    );
    assert_eq!(figure(&page, "igdisplay_outbox_pending"), 1.0);
    assert_eq!(figure(&page, "igdisplay_outbox_dead"), 0.0);
    assert!(figure(&page, "igdisplay_outbox_oldest_pending_seconds") >= 0.0);
    assert_eq!(get(&addr, "/nothing").0, 404);
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{rest}");
}

#[test]
fn a_database_error_names_what_failed() {
    // Nothing listens on port 1 of loopback: the connection, not the URL's shape, failed.
    let output = igdisplay(&["accounts"])
        .env(
            "IGDISPLAY_STORE",
            format!("postgres://app:{CANARY}@127.0.0.1:1/igd"),
        )
        .env("IGDISPLAY_STORE_KEYS", KeyRing::generate_spec("k1").unwrap())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let shown = text(&output);
    assert!(shown.contains("could not be reached"), "{shown}");
    assert!(shown.contains("did not answer"), "{shown}");
    assert!(!shown.contains(CANARY), "{shown}");
    // A scheme no store speaks is a usage error of its own.
    let output = igdisplay(&["accounts"])
        .env("IGDISPLAY_STORE", "mysql://db/igd")
        .env("IGDISPLAY_STORE_KEYS", KeyRing::generate_spec("k1").unwrap())
        .output()
        .unwrap();
    assert!(text(&output).contains("sqlite:PATH"), "{}", text(&output));
}

/// Issue 31: `webhooks subscribe --all` subscribes every account of the store and reports
/// each; one whose token Instagram refuses is reported without stopping the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_subscribe_all_subscribes_every_account_of_the_store_and_reports_each() {
    let mock = igdisplay_mock::MockServer::builder()
        .platform(igdisplay_mock::MockPlatform::InstagramLogin)
        .start()
        .unwrap();
    let store = Store::new();
    let opened = store.open().await;
    #[allow(
        clippy::disallowed_methods,
        reason = "the mock's token counts from the real time here"
    )]
    let now = std::time::SystemTime::now();
    let mut tokens = Vec::new();
    for user in ["cafe_nova", "jayposiris"] {
        let issued = mock
            .issue_token(user, igdisplay_mock::TokenLifetime::LongLived)
            .unwrap();
        tokens.push((issued.user_id, issued.access_token));
    }
    tokens.push(("17841499999999999".to_owned(), "IGAAnotatoken".to_owned()));
    for (user, token) in &tokens {
        let record = TokenRecord::new(
            UserId::new(user.clone()),
            AccessToken::new(token.clone()),
            TokenKind::LongLived,
            Platform::InstagramLogin,
            now - Duration::from_secs(3600),
            Duration::from_secs(60 * 86_400),
        );
        opened.save(&record).await.unwrap();
    }
    let output = store
        .command(&["webhooks", "subscribe", "--all", "--field", "comments", "--json"])
        .env("IGDISPLAY_PLATFORM", "instagram-login")
        .env("IGDISPLAY_MOCK", mock.base_url())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "one account failed: {}",
        text(&output)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let subscribed: Vec<(&str, bool)> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["user_id"].as_str().unwrap(), r["subscribed"].as_bool().unwrap()))
        .collect();
    assert_eq!(subscribed.len(), 3, "{report}");
    assert_eq!(subscribed.iter().filter(|(_, ok)| *ok).count(), 2, "{report}");
    assert!(subscribed.contains(&("17841499999999999", false)));
    assert!(!text(&output).contains("IGAA"), "no token shown");
}
