//! Comparison 8: keeping a fleet's tokens alive. A table of a million accounts in PostgreSQL
//! (`--postgres`, the cluster `cargo xtask bench` starts), of which a set is due; the keeper
//! (two `igdisplay keeper` processes sharing the work) against the naive design (one leader
//! selects the due rows, then loads, refreshes and saves them one at a time), alternating
//! rounds, each on a fresh due set, both against the same mock. Measured: accounts refreshed
//! per second, transactions per refresh (from `pg_stat_database`), and the keeper's peak RSS
//! with a small table and with the full one. Then, on the same million rows, what the keeper
//! costs the database: statements (`pg_stat_statements`) and transactions per refresh, its CPU
//! per refresh, the statements an idle keeper sends a minute, and outbox deliveries per second
//! to a local receiver.

use crate::Plan;
use crate::procs;
use crate::report::{self, Report, Sample};
use futures_util::StreamExt as _;
use igdisplay::auth::{AppConfig, AuthClient, Endpoints, Platform, TokenRecord, TokenStore};
use igdisplay::mock::{MockClock, MockServer, Seed, TokenLifetime};
use igdisplay::model::{AccessToken, UserId};
use igdisplay::store::{KeyRing, SqlStore};
use sqlx::Row as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;
const KEEPERS: usize = 2;

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
    .unwrap_or(i64::MAX)
}

/// Transactions committed in `database` so far (a fresh connection, so a fresh snapshot).
async fn commits(url: &str, database: &str) -> Result<i64, String> {
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let n: i64 = sqlx::query("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
        .bind(database)
        .fetch_one(&mut connection)
        .await
        .map_err(|e| e.to_string())?
        .try_get("xact_commit")
        .map_err(|e| e.to_string())?;
    let _ = connection.close().await;
    Ok(n)
}

/// Makes the accounts of `users` due now (ids are digits: checked, then inlined).
async fn make_due(store: &SqlStore, users: &[String]) -> Result<(), String> {
    for chunk in users.chunks(1000) {
        if chunk.iter().any(|u| !u.bytes().all(|b| b.is_ascii_digit())) {
            return Err("a mock user id is not digits".to_owned());
        }
        let list = chunk
            .iter()
            .map(|u| format!("'{u}'"))
            .collect::<Vec<_>>()
            .join(",");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "UPDATE accounts SET next_refresh_at = {} WHERE user_id IN ({list})",
            unix_now() - 1
        )))
        .execute(store.pool())
        .await
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs the keeper processes to completion: (seconds, the largest peak RSS in KiB).
fn keepers(cli: &str, url: &str, keys: &str, mock: &str, count: usize) -> Result<(f64, u64), String> {
    let started = Instant::now();
    let runs: Vec<_> = (0..count)
        .map(|n| {
            let mut command = Command::new(cli);
            command
                .args(["keeper", "--until-idle", "--owner", &format!("bench-{n}")])
                .args(["--lease", "120", "--idle", "1", "--progress-every", "0"])
                .args(["--store", url, "--mock", mock])
                .env("IGDISPLAY_STORE_KEYS", keys);
            std::thread::spawn(move || procs::run_measured(&mut command))
        })
        .collect();
    let mut peak = 0;
    for run in runs {
        let (_, kib) = run.join().map_err(|_| "a keeper thread panicked")??;
        peak = peak.max(kib);
    }
    Ok((started.elapsed().as_secs_f64(), peak))
}

/// The naive design: one leader selects the due rows, then loads, refreshes and saves each in
/// turn. Returns how many it refreshed.
async fn naive(url: &str, keys: &KeyRing, mock: &str) -> Result<usize, String> {
    let store = SqlStore::connect(url, keys.clone())
        .await
        .map_err(|e| e.to_string())?;
    let app = AppConfig::read_only(Platform::InstagramLogin)
        .with_endpoints(Endpoints::single_origin(mock))
        .map_err(|e| e.to_string())?;
    let backend = igdisplay::http::default_backend(Default::default()).map_err(|e| e.to_string())?;
    let client = AuthClient::new(app, backend);
    let due = sqlx::query("SELECT user_id FROM accounts WHERE state = 'active' AND next_refresh_at <= $1")
        .bind(unix_now())
        .fetch_all(store.pool())
        .await
        .map_err(|e| e.to_string())?;
    let mut refreshed = 0;
    for row in &due {
        let user = UserId::new(row.try_get::<String, _>("user_id").map_err(|e| e.to_string())?);
        let Some(record) = store.load(&user).await.map_err(|e| e.to_string())? else {
            continue;
        };
        let fresh = client.refresh(&record).await.map_err(|e| e.to_string())?;
        store.save(&fresh).await.map_err(|e| e.to_string())?;
        refreshed += 1;
    }
    store.pool().close().await;
    Ok(refreshed)
}

/// 8. The keeper against the naive leader.
pub(crate) async fn fleet(plan: &Plan, cli: &str, postgres: &str, report: &mut Report) -> Result<(), String> {
    let (due, rows, rounds) = (plan.fleet_due, plan.fleet_rows, plan.rounds.min(3));
    let name = "igd_bench_fleet";
    let url = igdisplay_store::test_util::fresh_database(postgres, name).await?;
    // One due set for the small-table round, one per side per round, one for the costs.
    let sets = 2 + 2 * rounds;
    let mock = MockServer::builder()
        .calls_per_hour(None)
        .workers(4)
        .clock(MockClock::System { offset: -25 * DAY })
        .seed(Seed::demo().with_fleet("acct", due * sets, 0))
        .start()
        .map_err(|e| e.to_string())?;
    let minted = mock
        .issue_tokens("acct", TokenLifetime::LongLived)
        .map_err(|e| e.to_string())?;
    mock.advance(Duration::from_secs(25 * 86_400));
    let keys = KeyRing::generate_spec("bench").map_err(|e| e.to_string())?;
    let ring = KeyRing::parse(&keys).map_err(|e| e.to_string())?;
    let store = Arc::new(
        SqlStore::connect(&url, ring.clone())
            .await
            .map_err(|e| e.to_string())?,
    );
    let issued = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_now() - 25 * DAY).unwrap_or(0));
    eprintln!("  storing {} accounts with tokens", minted.len());
    let saved: Vec<Result<(), String>> = futures_util::stream::iter(minted.iter())
        .map(|token| {
            let store = store.clone();
            async move {
                let record = TokenRecord::long_lived(
                    UserId::new(&token.user_id),
                    AccessToken::new(&token.access_token),
                    Platform::InstagramLogin,
                    issued,
                );
                store.save(&record).await.map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    saved.into_iter().collect::<Result<Vec<()>, String>>()?;
    sqlx::query("UPDATE accounts SET next_refresh_at = $1")
        .bind(unix_now() + 30 * DAY)
        .execute(store.pool())
        .await
        .map_err(|e| e.to_string())?;
    let users: Vec<String> = minted.iter().map(|t| t.user_id.clone()).collect();
    let set = |n: usize| &users[n * due..(n + 1) * due];

    // The keeper with a small table.
    make_due(&store, set(0)).await?;
    let (_, small_peak) = keepers(cli, &url, &keys, mock.base_url(), KEEPERS)?;
    let small_rows = minted.len();

    // A million accounts: the rest are not due (their tokens are never opened).
    eprintln!("  adding {} accounts", rows.saturating_sub(small_rows));
    let sealed: Vec<u8> = sqlx::query("SELECT token FROM accounts LIMIT 1")
        .fetch_one(store.pool())
        .await
        .and_then(|row| row.try_get("token"))
        .map_err(|e| e.to_string())?;
    sqlx::query(
        "INSERT INTO accounts (user_id, record, token, key_id, issued_at, expires_at, updated_at, next_refresh_at)
         SELECT 'filler-' || g, '{}', $1, 'bench', $2, $3, $2, $4 FROM generate_series(1, $5) AS g",
    )
    .bind(sealed)
    .bind(unix_now())
    .bind(unix_now() + 60 * DAY)
    .bind(unix_now() + 20 * DAY)
    .bind(i64::try_from(rows.saturating_sub(small_rows)).unwrap_or(0))
    .execute(store.pool())
    .await
    .map_err(|e| e.to_string())?;
    sqlx::raw_sql("ANALYZE accounts")
        .execute(store.pool())
        .await
        .map_err(|e| e.to_string())?;

    let (mut kept, mut naive_rates, mut kept_statements, mut naive_statements, mut large_peaks) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        eprintln!("  round {}/{rounds}", round + 1);
        make_due(&store, set(1 + 2 * round)).await?;
        let before = commits(&url, name).await?;
        let (seconds, peak) = keepers(cli, &url, &keys, mock.base_url(), KEEPERS)?;
        let after = commits(&url, name).await?;
        kept.push(due as f64 / seconds);
        kept_statements.push((after - before - 1) as f64 / due as f64);
        large_peaks.push(peak as f64);

        make_due(&store, set(2 + 2 * round)).await?;
        let before = commits(&url, name).await?;
        let started = Instant::now();
        let refreshed = naive(&url, &ring, mock.base_url()).await?;
        let seconds = started.elapsed().as_secs_f64();
        let after = commits(&url, name).await?;
        if refreshed != due {
            return Err(format!("the naive leader refreshed {refreshed} of {due}"));
        }
        naive_rates.push(due as f64 / seconds);
        naive_statements.push((after - before - 1) as f64 / due as f64);
    }
    let costs = costs(
        plan,
        cli,
        &url,
        name,
        &store,
        &keys,
        mock.base_url(),
        set(1 + 2 * rounds),
    )
    .await?;
    let counts = mock.refresh_counts();
    let twice = counts.values().filter(|n| **n > 1).count();
    if twice > 0 {
        return Err(format!("{twice} accounts were refreshed more than once"));
    }
    let (kept, naive_rates) = (Sample::of(&kept), Sample::of(&naive_rates));
    let ratio = kept.median / naive_rates.median.max(f64::MIN_POSITIVE);
    let large_peak = Sample::of(&large_peaks).median as u64;
    let flat = large_peak as f64 <= small_peak as f64 * 1.25;
    report.verdict(
        "8. the keeper refreshes a fleet faster than the naive leader",
        ratio > 1.0,
        format!(
            "{:.0} vs {:.0} refreshes/s ({ratio:.1}×) with {} of {rows} accounts due",
            kept.median, naive_rates.median, due
        ),
    );
    report.verdict(
        "8b. the keeper's memory is flat in the number of accounts",
        flat,
        format!(
            "peak RSS {} with {small_rows} accounts, {} with {rows}",
            report::mib(small_peak),
            report::mib(large_peak)
        ),
    );
    report.section(
        "8. Keeping a fleet alive",
        &format!(
            "{rows} accounts in PostgreSQL, {due} of them due per round; {KEEPERS} `igdisplay keeper` processes \
             (claims under leases, 16 refreshes in flight each) against one leader that selects the due rows and \
             loads, refreshes and saves each in turn, both against the same mock, alternating, {rounds} rounds. \
             Transactions are those the database committed during the run (`pg_stat_database`), per refreshed account \
             (the keeper's include its claims, its expiry pass and its idle checks; the server flushes these counters up to a second late, so a figure may read a little under 1). Every account was refreshed \
             exactly once."
        ),
        &["design", "refreshes/s", "transactions per refresh", "peak RSS"],
        vec![
            vec![
                format!("keeper ×{KEEPERS}"),
                kept.show(0),
                Sample::of(&kept_statements).show(2),
                report::mib(large_peak),
            ],
            vec![
                "naive leader".to_owned(),
                naive_rates.show(0),
                Sample::of(&naive_statements).show(2),
                "-".to_owned(),
            ],
        ],
    );
    costs.report(rows, report);
    Ok(())
}

/// What the keeper costs the database and the machine (comparison 8, second part).
struct Costs {
    refreshed: usize,
    statements_per_refresh: Option<f64>,
    transactions_per_refresh: f64,
    cpu_ms_per_refresh: f64,
    idle_statements_per_minute: Option<f64>,
    idle_window: f64,
    idle_seconds: u64,
    events: usize,
    deliveries_per_second: f64,
}

impl Costs {
    fn report(&self, rows: usize, report: &mut Report) {
        let shown = |figure: Option<f64>, digits: usize| {
            figure.map_or_else(
                || "n/a (no pg_stat_statements)".to_owned(),
                |f| format!("{f:.digits$}"),
            )
        };
        report.verdict(
            "8c. a refresh's token write, its event and its lease release are one transaction",
            self.transactions_per_refresh <= 2.2,
            format!(
                "{:.2} transactions and {} statements per refresh ({} refreshed): the lease re-taken before the \
                 refresh is sent, then one transaction writing the token, its event and the lease's release",
                self.transactions_per_refresh,
                shown(self.statements_per_refresh, 2),
                self.refreshed
            ),
        );
        report.verdict(
            "8d. an idle keeper costs the database at most 2 statements a minute",
            self.idle_statements_per_minute.is_some_and(|n| n <= 2.0),
            format!(
                "{} statements a minute with nothing due ({:.0} s watched, --idle {})",
                shown(self.idle_statements_per_minute, 2),
                self.idle_window,
                self.idle_seconds
            ),
        );
        report.section(
            "8c–8f. What the keeper costs",
            &format!(
                "On the same {rows} accounts: one `igdisplay keeper` refreshing {} due accounts (statements counted by \
                 `pg_stat_statements`, transactions by `pg_stat_database`, both per refresh and including the \
                 claims, the expiry pass and the idle checks; its CPU from `/proc`), then one keeper with nothing \
                 due, then one delivering {} outbox events to a local receiver (bare hyper answering 200).",
                self.refreshed, self.events
            ),
            &["figure", "value"],
            vec![
                vec!["statements per refresh".to_owned(), shown(self.statements_per_refresh, 2)],
                vec![
                    "transactions per refresh".to_owned(),
                    format!("{:.2}", self.transactions_per_refresh),
                ],
                vec!["keeper CPU per refresh".to_owned(), format!("{:.3} ms", self.cpu_ms_per_refresh)],
                vec![
                    "statements a minute, idle".to_owned(),
                    shown(self.idle_statements_per_minute, 2),
                ],
                vec![
                    "outbox deliveries per second".to_owned(),
                    format!("{:.0}", self.deliveries_per_second),
                ],
            ],
        );
    }
}

/// The statements the database counted in `database` since the last reset, if
/// `pg_stat_statements` is there.
async fn statements(store: &SqlStore, database: &str) -> Option<f64> {
    sqlx::query(
        "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS n FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)",
    )
    .bind(database)
    .fetch_one(store.pool())
    .await
    .and_then(|row| row.try_get::<i64, _>("n"))
    .ok()
    .map(|n| n as f64)
}

async fn reset_statements(store: &SqlStore) -> bool {
    sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(store.pool())
        .await
        .is_ok()
        && sqlx::raw_sql("SELECT pg_stat_statements_reset()")
            .execute(store.pool())
            .await
            .is_ok()
}

/// Measures [`Costs`] on the million rows: `due` accounts refreshed by one keeper, an idle
/// keeper, and a keeper delivering events.
#[allow(clippy::too_many_arguments)]
async fn costs(
    plan: &Plan,
    cli: &str,
    url: &str,
    name: &str,
    store: &SqlStore,
    keys: &str,
    mock: &str,
    due: &[String],
) -> Result<Costs, String> {
    let keeper = |extra: &[&str]| {
        let mut command = Command::new(cli);
        command
            .args(["keeper", "--owner", "bench-costs", "--progress-every", "0"])
            .args(["--store", url, "--mock", mock])
            .args(extra)
            .env("IGDISPLAY_STORE_KEYS", keys)
            .env("IGDISPLAY_WEBHOOK_SECRETS", "whsec-bench");
        command
    };
    // Refreshes: statements, transactions and CPU per refresh.
    make_due(store, due).await?;
    let counting = reset_statements(store).await;
    let before = commits(url, name).await?;
    let (_, _, cpu) = procs::run_measured_cpu(&mut keeper(&["--until-idle", "--idle", "1"]))?;
    let after = commits(url, name).await?;
    let statements_per_refresh = if counting {
        statements(store, name).await.map(|n| n / due.len() as f64)
    } else {
        None
    };
    let transactions_per_refresh = (after - before - 1) as f64 / due.len() as f64;
    let cpu_ms_per_refresh = cpu * 1000.0 / due.len() as f64;

    // Idle: nothing due; after its first cycle, the statements of a watched window.
    let idle_seconds: u64 = if plan.quick { 3 } else { 60 };
    let window = if plan.quick { 6.5 } else { 125.0 };
    // The default --idle, given explicitly so the report names it.
    let mut idle = keeper(&["--idle", &idle_seconds.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counting = reset_statements(store).await;
    tokio::time::sleep(Duration::from_secs_f64(window)).await;
    let idle_statements = if counting {
        statements(store, name).await
    } else {
        None
    };
    let _ = idle.kill();
    let _ = idle.wait();
    // The reset and the count itself are the bench's, not the keeper's.
    let idle_statements_per_minute = idle_statements.map(|n| (n - 1.0).max(0.0) * 60.0 / window);

    // Deliveries: events written straight into the outbox, delivered to a local receiver.
    let events = if plan.quick { 500 } else { 20_000 };
    // The rounds' own events (no webhook was configured for them) make way.
    sqlx::raw_sql("DELETE FROM events")
        .execute(store.pool())
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query(
        "INSERT INTO events (user_id, kind, body, created_at, next_attempt_at)
         SELECT 'filler-' || g, 'deauthorized',
                '{\"type\":\"deauthorized\",\"user_id\":\"filler-' || g || '\",\"at\":\"2026-12-04T00:00:00+0000\"}',
                $1, $1
         FROM generate_series(1, $2) AS g",
    )
    .bind(unix_now())
    .bind(i64::try_from(events).unwrap_or(0))
    .execute(store.pool())
    .await
    .map_err(|e| e.to_string())?;
    let receiver = procs::Server::start(&["serve-bare", "--body", "{}"])?;
    let hook = format!("{}/hooks", receiver.base);
    let (seconds, _) =
        procs::run_measured(&mut keeper(&["--until-idle", "--idle", "1", "--webhook", &hook]))?;
    drop(receiver);
    let left: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events WHERE state <> 'delivered'")
        .fetch_one(store.pool())
        .await
        .and_then(|row| row.try_get("n"))
        .map_err(|e| e.to_string())?;
    if left > 0 {
        return Err(format!("{left} events were not delivered"));
    }
    Ok(Costs {
        refreshed: due.len(),
        statements_per_refresh,
        transactions_per_refresh,
        cpu_ms_per_refresh,
        idle_statements_per_minute,
        idle_window: window,
        idle_seconds,
        events,
        deliveries_per_second: events as f64 / seconds,
    })
}
