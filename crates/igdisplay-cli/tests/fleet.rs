//! The fleet scenario: four `igdisplay keeper` processes over 10,000 accounts on one
//! PostgreSQL database, against the mock, posting every event to a webhook that is down for
//! the first six hours of mock time; one keeper is killed with SIGKILL mid-batch, another
//! mid-delivery.
//!
//! Every due token is refreshed exactly once (the mock's counts), except those the first
//! killed instance held under its lease at the kill: a refresh it had sent but not written
//! back is sent again by whoever takes the lease over (at most twice, never more). None is
//! lost: nothing is due at the end. Revoked tokens are marked and never retried. Logins racing
//! the keepers keep their newer token. Every event of the outbox reaches the webhook, none more
//! than twice.
//!
//! Runs on the cluster `cargo xtask ci` starts (`IGDISPLAY_TEST_POSTGRES`); skipped without
//! one unless `IGDISPLAY_REQUIRE_POSTGRES` is set.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use igdisplay::auth::{Platform, TokenRecord, TokenStore};
use igdisplay::model::{AccessToken, UserId};
use igdisplay::store::{AccountState, KeyRing, SqlStore};
use igdisplay_mock::{MockClock, MockPlatform, MockServer, Seed, TokenLifetime};
use sqlx::Row as _;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ACCOUNTS: usize = 10_000;
const REVOKED_EVERY: usize = 200;
const RACING_LOGINS: usize = 20;
const KILL_AFTER: u64 = 2_000;
const DAY: i64 = 86_400;

/// A database of its own on the test cluster, or `None` (skipped) without one.
async fn database() -> Option<String> {
    let Some(admin) = igdisplay_store::test_util::test_cluster() else {
        eprintln!("skipped: no PostgreSQL (set IGDISPLAY_TEST_POSTGRES, as `cargo xtask ci` does)");
        return None;
    };
    let name = format!("igd_fleet_{}", std::process::id());
    Some(
        igdisplay_store::test_util::fresh_database(&admin, &name)
            .await
            .unwrap(),
    )
}

#[allow(
    clippy::disallowed_methods,
    reason = "the keepers are separate processes on the system clock"
)]
fn unix_now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

fn keeper(url: &str, keys: &str, mock: &str, owner: &str, hook: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_igdisplay"))
        .args(["keeper", "--until-idle", "--owner", owner])
        .args(["--lease", "10", "--idle", "1", "--progress-every", "0"])
        .args(["--concurrency", "8", "--batch", "64"])
        .args(["--store", url, "--mock", mock, "--webhook", hook])
        // Deliveries are retried within two seconds once the receiver is back, so the test
        // never moves the mock's clock while events arrive.
        .args(["--webhook-retry-max", "2"])
        // Only the store, its keys and the webhook's secret: a keeper needs no app secret.
        .env_clear()
        .env("IGDISPLAY_STORE_KEYS", keys)
        .env("IGDISPLAY_WEBHOOK_SECRETS", "whsec-fleet")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The keeper processes, killed if the test fails before they end.
struct KillOnDrop(Vec<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A webhook receiver on loopback: refuses with 503 while `down`, otherwise verifies each
/// delivery's signature and records its event id.
struct Hook {
    url: String,
    down: Arc<AtomicBool>,
    received: Arc<std::sync::Mutex<Vec<i64>>>,
    refused: Arc<AtomicU64>,
}

impl Hook {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/igdisplay", listener.local_addr().unwrap());
        let hook = Self {
            url,
            down: Arc::new(AtomicBool::new(true)),
            received: Arc::default(),
            refused: Arc::default(),
        };
        let (down, received, refused) = (hook.down.clone(), hook.received.clone(), hook.refused.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (down, received, refused) = (down.clone(), received.clone(), refused.clone());
                std::thread::spawn(move || serve(stream, &down, &received, &refused));
            }
        });
        hook
    }
}

/// One keep-alive connection: requests in turn until the client closes it.
fn serve(
    stream: std::net::TcpStream,
    down: &AtomicBool,
    received: &std::sync::Mutex<Vec<i64>>,
    refused: &AtomicU64,
) {
    use std::io::{BufRead as _, Read as _, Write as _};
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut headers = igdisplay::http::http::HeaderMap::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.insert(
                igdisplay::http::http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                value.trim().parse().unwrap(),
            );
        }
        let length: usize = headers
            .get("content-length")
            .map_or(0, |v| v.to_str().unwrap().parse().unwrap());
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let status = if down.load(Ordering::SeqCst) {
            refused.fetch_add(1, Ordering::SeqCst);
            "503 Service Unavailable"
        } else {
            let verified = igdisplay::store::verify_webhook(
                &["whsec-fleet"],
                &headers,
                &body,
                wall_clock(),
                Duration::from_secs(300),
            )
            .unwrap();
            received.lock().unwrap().push(verified.event_id);
            "200 OK"
        };
        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "a receiver checks signatures against its own clock"
)]
fn wall_clock() -> SystemTime {
    SystemTime::now()
}

/// A moment for the keeper processes, which run in real time, to move on; every wait of this
/// test is for a condition, checked again after each pause.
#[allow(
    clippy::disallowed_methods,
    reason = "the keepers are separate processes on the system clock"
)]
async fn pause() {
    tokio::time::sleep(Duration::from_millis(20)).await;
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
            // From the KILL_AFTER-th refresh on, each refresh is a moment to look at keeper-1.
            if entry.path == "/refresh_access_token"
                && counter.fetch_add(1, Ordering::SeqCst) + 1 >= KILL_AFTER
                && let Some(sender) = kill_now.lock().unwrap().as_ref()
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
        let record = TokenRecord::long_lived(
            UserId::new(&token.user_id),
            AccessToken::new(&token.access_token),
            Platform::InstagramLogin,
            issued,
        );
        store.save(&record).await.unwrap();
        usernames.insert(token.user_id.clone(), format!("acct{:06}", n + 1));
    }
    let users: Vec<String> = minted.iter().map(|t| t.user_id.clone()).collect();
    let revoked: BTreeSet<String> = users.iter().step_by(REVOKED_EVERY).cloned().collect();
    for user in &revoked {
        assert_eq!(mock.revoke_tokens(&usernames[user]).unwrap(), 1);
    }

    let hook = Hook::start();
    let mut keepers = KillOnDrop(
        (1..=4)
            .map(|n| keeper(&url, &keys, mock.base_url(), &format!("keeper-{n}"), &hook.url))
            .collect(),
    );

    // Mid-run: kill keeper-1 without warning while it holds leases. At each refresh from the
    // KILL_AFTER-th on, it is stopped (SIGSTOP: it can release nothing between the look and the
    // kill) and its leases read; holding some, it is killed; holding none (between two batches),
    // it goes on until the next refresh.
    let pool = store.pool().clone();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(keepers.0[0].id()).unwrap());
    let due = u64::try_from(ACCOUNTS - revoked.len()).unwrap();
    let mut kill_signal = Some(kill_signal);
    let held = loop {
        assert!(
            refreshes.load(Ordering::SeqCst) < due,
            "every refresh was sent and keeper-1 never held a lease at one of them"
        );
        let signal = kill_signal.take().unwrap();
        let signal = tokio::task::spawn_blocking(move || {
            signal.recv().unwrap();
            signal
        })
        .await
        .unwrap();
        kill_signal = Some(signal);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let held: BTreeSet<String> =
            sqlx::query("SELECT user_id FROM accounts WHERE lease_owner = 'keeper-1'")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get::<String, _>("user_id").unwrap())
                .collect();
        if !held.is_empty() {
            keepers.0[0].kill().unwrap();
            keepers.0[0].wait().unwrap();
            break held;
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    };

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
        let record = TokenRecord::long_lived(
            UserId::new(user),
            AccessToken::new(&token.access_token),
            Platform::InstagramLogin,
            UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_now()).unwrap()),
        );
        match store.save(&record).await {
            Ok(()) => {}
            Err(error) => panic!("a login must win over any refresh: {error}"),
        }
        logins.insert(user.clone(), token.access_token);
    }

    // Every account is kept; the webhook is still down. Six hours of mock time pass, in
    // half hours, the keepers trying their deliveries with backoff meanwhile.
    let pending = || async {
        sqlx::query("SELECT COUNT(*) AS n FROM events WHERE state = 'pending'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get::<i64, _>("n")
            .unwrap()
    };
    loop {
        let due: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM accounts WHERE state IN ('active', 'failing') AND next_refresh_at <= $1",
        )
        .bind(mock.now())
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        if due == 0 {
            break;
        }
        pause().await;
    }
    // Then a minute and a quarter in steps of 5 s: each keeper process follows the mock's
    // clock by polling it, and one that missed the last half-hour step would otherwise read
    // the others' delivery leases (a minute) as long run out once the receiver is back.
    let steps = std::iter::repeat_n(1800, 12).chain(std::iter::repeat_n(5, 15));
    for step in steps {
        let before = hook.refused.load(Ordering::SeqCst);
        mock.advance(Duration::from_secs(step));
        // The keepers see the new time within a fifth of a second and try again.
        while hook.refused.load(Ordering::SeqCst) == before {
            pause().await;
        }
    }
    assert!(
        hook.refused.load(Ordering::SeqCst) > 0,
        "deliveries were tried while it was down"
    );
    assert!(hook.received.lock().unwrap().is_empty());
    let produced: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events")
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(pending().await, produced, "nothing given up, nothing lost");
    // One per account, but for the racing logins whose refresh lost (a login is no event).
    assert!(
        produced >= i64::try_from(ACCOUNTS - RACING_LOGINS).unwrap(),
        "{produced} events"
    );

    // Back up: keeper-2 is killed in the middle of delivering.
    hook.down.store(false, Ordering::SeqCst);
    while hook.received.lock().unwrap().len() < 2_000 {
        pause().await;
    }
    keepers.0[1].kill().unwrap();
    keepers.0[1].wait().unwrap();
    // Its delivery leases run out (a minute) and the others take them over.
    mock.advance(Duration::from_secs(61));

    for (n, keeper) in keepers.0.iter_mut().enumerate().skip(2) {
        let output = keeper.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(keeper.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(output.success(), "keeper-{} failed: {stderr}", n + 1);
    }
    assert_eq!(pending().await, 0);
    let mut deliveries: BTreeMap<i64, u32> = BTreeMap::new();
    for id in hook.received.lock().unwrap().iter() {
        *deliveries.entry(*id).or_default() += 1;
    }
    let ids: Vec<i64> = sqlx::query("SELECT id FROM events ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get("id").unwrap())
        .collect();
    let missing: Vec<&i64> = ids.iter().filter(|id| !deliveries.contains_key(id)).collect();
    assert!(
        missing.is_empty(),
        "{} events never arrived: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let thrice: Vec<i64> = deliveries
        .iter()
        .filter(|(_, n)| **n > 2)
        .map(|(id, _)| *id)
        .collect();
    if !thrice.is_empty() {
        let mut details = Vec::new();
        for id in thrice.iter().take(5) {
            let row = sqlx::query("SELECT attempts, state, last_error FROM events WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
            details.push(format!(
                "{id}: {} arrivals, {} attempts, {}, {:?}",
                deliveries[id],
                row.try_get::<i64, _>("attempts").unwrap(),
                row.try_get::<String, _>("state").unwrap(),
                row.try_get::<Option<String>, _>("last_error").unwrap()
            ));
        }
        panic!("{} events arrived more than twice: {details:?}", thrice.len());
    }
    eprintln!(
        "{} events delivered; {} arrived twice (posted by keeper-2, not yet marked, at its kill)",
        ids.len(),
        deliveries.values().filter(|n| **n == 2).count()
    );

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
