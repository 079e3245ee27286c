//! The fleet scenario: four `igdisplay keeper` processes over 10,000 accounts on one
//! PostgreSQL database, against the mock, one of them killed with SIGKILL mid-batch.
//!
//! Every due token is refreshed exactly once (the mock's counts), except those the killed
//! instance held under its lease at the kill: a refresh it had sent but not written back is
//! sent again by whoever takes the lease over (at most twice, never more). None is lost:
//! nothing is due at the end. Revoked tokens are marked and never retried. Logins racing the
//! keepers keep their newer token.
//!
//! Runs on the cluster `cargo xtask ci` starts (`IGDISPLAY_TEST_POSTGRES`); skipped without
//! one unless `IGDISPLAY_REQUIRE_POSTGRES` is set.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use igdisplay::auth::{Platform, TokenKind, TokenRecord, TokenStore};
use igdisplay::model::{AccessToken, UserId};
use igdisplay::store::{AccountState, KeyRing, SqlStore};
use igdisplay_mock::{MockClock, MockPlatform, MockServer, Seed, TokenLifetime};
use sqlx::Row as _;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ACCOUNTS: usize = 10_000;
const REVOKED_EVERY: usize = 200;
const RACING_LOGINS: usize = 20;
const KILL_AFTER: u64 = 2_000;
const DAY: i64 = 86_400;

/// A database of its own on the test cluster, or `None` (skipped) without one.
async fn database() -> Option<String> {
    let Ok(admin) = std::env::var("IGDISPLAY_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("IGDISPLAY_REQUIRE_POSTGRES").is_none(),
            "IGDISPLAY_REQUIRE_POSTGRES is set but IGDISPLAY_TEST_POSTGRES is not"
        );
        eprintln!("skipped: no PostgreSQL (set IGDISPLAY_TEST_POSTGRES, as `cargo xtask ci` does)");
        return None;
    };
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(&admin).await.unwrap();
    let name = format!("igd_fleet_{}", std::process::id());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .unwrap();
    Some(format!("{}/{name}", admin.rsplit_once('/').unwrap().0))
}

#[allow(
    clippy::disallowed_methods,
    reason = "the keepers are separate processes on the system clock"
)]
fn unix_now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

fn keeper(url: &str, keys: &str, mock: &str, owner: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_igdisplay"))
        .args(["keeper", "--until-idle", "--owner", owner])
        .args(["--lease", "10", "--idle", "1", "--progress-every", "0"])
        .args(["--concurrency", "8", "--batch", "64"])
        .args(["--store", url, "--mock", mock])
        // The keeper needs no app secret; these keep it from asking the mock for its app.
        .args(["--app-id", "1", "--redirect-uri", "https://example.com/cb"])
        .env("IGDISPLAY_APP_SECRET", "unused")
        .env("IGDISPLAY_STORE_KEYS", keys)
        .env_remove("IGDISPLAY_STORE")
        .env_remove("IGDISPLAY_TOKEN_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_keepers_one_killed_refresh_every_due_token_once_and_lose_none() {
    let Some(url) = database().await else {
        return;
    };
    // The mock's clock starts 25 days back: the tokens it mints now are 25 days old once it
    // is moved to the present, past their day-20 refresh.
    let refreshes = Arc::new(AtomicU64::new(0));
    let (kill_now, kill_signal) = mpsc::channel::<()>();
    let kill_now = std::sync::Mutex::new(Some(kill_now));
    let counter = refreshes.clone();
    let mock = MockServer::builder()
        .platform(MockPlatform::InstagramLogin)
        .calls_per_hour(None)
        .workers(4)
        .clock(MockClock::System { offset: -25 * DAY })
        .seed(Seed::demo().with_fleet("acct", ACCOUNTS, 0))
        .on_request(move |entry| {
            if entry.path == "/refresh_access_token"
                && counter.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER
                && let Some(sender) = kill_now.lock().unwrap().take()
            {
                let _ = sender.send(());
            }
        })
        .start()
        .unwrap();
    let minted = mock.issue_tokens("acct", TokenLifetime::LongLived).unwrap();
    assert_eq!(minted.len(), ACCOUNTS);
    mock.advance(Duration::from_secs(25 * 86_400));

    let keys = KeyRing::generate_spec("fleet").unwrap();
    let store = SqlStore::connect(&url, KeyRing::parse(&keys).unwrap())
        .await
        .unwrap();
    let issued = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_now() - 25 * DAY).unwrap());
    let mut usernames = BTreeMap::new();
    for (n, token) in minted.iter().enumerate() {
        let record = TokenRecord::new(
            UserId::new(&token.user_id),
            AccessToken::new(&token.access_token),
            TokenKind::LongLived,
            Platform::InstagramLogin,
            issued,
            Duration::from_secs(60 * 86_400),
        );
        store.save(&record).await.unwrap();
        usernames.insert(token.user_id.clone(), format!("acct{:06}", n + 1));
    }
    let users: Vec<String> = minted.iter().map(|t| t.user_id.clone()).collect();
    let revoked: BTreeSet<String> = users.iter().step_by(REVOKED_EVERY).cloned().collect();
    for user in &revoked {
        assert_eq!(mock.revoke_tokens(&usernames[user]).unwrap(), 1);
    }

    let mut keepers: Vec<Child> = (1..=4)
        .map(|n| keeper(&url, &keys, mock.base_url(), &format!("keeper-{n}")))
        .collect();

    // Mid-run: kill keeper-1 without warning, and note what it held.
    tokio::task::spawn_blocking(move || kill_signal.recv().unwrap())
        .await
        .unwrap();
    keepers[0].kill().unwrap();
    keepers[0].wait().unwrap();
    let pool = store.pool().clone();
    let held: BTreeSet<String> = sqlx::query("SELECT user_id FROM accounts WHERE lease_owner = 'keeper-1'")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String, _>("user_id").unwrap())
        .collect();
    assert!(!held.is_empty(), "keeper-1 was killed holding leases (mid-batch)");

    // Logins race the keepers: fresh tokens for accounts still being kept.
    let racing: Vec<String> = users
        .iter()
        .rev()
        .filter(|u| !revoked.contains(*u))
        .take(RACING_LOGINS)
        .cloned()
        .collect();
    let mut logins = BTreeMap::new();
    for user in &racing {
        let token = mock
            .issue_token(&usernames[user], TokenLifetime::LongLived)
            .unwrap();
        let record = TokenRecord::new(
            UserId::new(user),
            AccessToken::new(&token.access_token),
            TokenKind::LongLived,
            Platform::InstagramLogin,
            UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_now()).unwrap()),
            Duration::from_secs(60 * 86_400),
        );
        match store.save(&record).await {
            Ok(()) => {}
            Err(error) => panic!("a login must win over any refresh: {error}"),
        }
        logins.insert(user.clone(), token.access_token);
    }

    for (n, keeper) in keepers.iter_mut().enumerate().skip(1) {
        let output = keeper.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(keeper.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(output.success(), "keeper-{} failed: {stderr}", n + 1);
    }

    // Exactly once, but for the killed instance's in-flight ones (at most twice).
    let counts = mock.refresh_counts();
    let mut twice = 0;
    for user in &users {
        let count = counts.get(user).copied().unwrap_or(0);
        if revoked.contains(user) {
            assert_eq!(count, 0, "{user} was revoked");
        } else if logins.contains_key(user) {
            assert!(count <= 1, "{user}: {count}");
        } else if held.contains(user) {
            assert!(
                (1..=2).contains(&count),
                "{user} (held by the killed one): {count}"
            );
            twice += usize::from(count == 2);
        } else {
            assert_eq!(count, 1, "{user} refreshed {count} times");
        }
    }
    eprintln!(
        "{} refresh requests for {ACCOUNTS} accounts; keeper-1 held {} at the kill, {twice} refreshed twice",
        refreshes.load(Ordering::SeqCst),
        held.len()
    );

    // None lost, revoked ones marked (and tried once: every other request is a success).
    let states = store.counts().await.unwrap();
    assert_eq!(states[&AccountState::Revoked], revoked.len() as u64);
    assert_eq!(states[&AccountState::Active], (ACCOUNTS - revoked.len()) as u64);
    assert_eq!(states[&AccountState::Failing], 0);
    let succeeded: u64 = counts.values().sum();
    let failed_requests = refreshes.load(Ordering::SeqCst) - succeeded;
    let revoked_held = revoked.intersection(&held).count() as u64;
    assert!(
        (revoked.len() as u64..=revoked.len() as u64 + revoked_held).contains(&failed_requests),
        "{failed_requests} failed refresh requests for {} revoked tokens",
        revoked.len()
    );
    let due: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM accounts WHERE state IN ('active', 'failing') AND next_refresh_at <= $1",
    )
    .bind(unix_now())
    .fetch_one(&pool)
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert_eq!(due, 0, "no account is forgotten");

    // The logins' newer tokens were kept.
    for (user, token) in &logins {
        let kept = store.load(&UserId::new(user)).await.unwrap().unwrap();
        assert_eq!(kept.access_token.expose_secret(), token, "{user}");
    }
}
