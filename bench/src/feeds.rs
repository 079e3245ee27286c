//! Comparison 12: the feed service at fleet size. Accounts of 24 posts each on the mock, a
//! feed each, two `igdisplay feeds serve` instances on one PostgreSQL database and one bucket of
//! the S3-compatible server (a mirror folder when the bench has no such server);
//! the time until every feed is mirrored once, the Graph calls a sync costs and the pace the
//! scheduler then keeps (calls per account per day), each instance's peak resident memory at
//! two fleet sizes, and `GET /v1/feeds/{id}` against nginx serving the same JSON from files
//! (32 connections, side by side).

use crate::Plan;
use crate::load::{self, Target};
use crate::procs;
use crate::report::{self, Report, Sample};
use futures_util::StreamExt as _;
use igdisplay::auth::{Platform, TokenRecord};
use igdisplay::mock::{MockClock, MockServer, Seed, TokenLifetime};
use igdisplay::model::{AccessToken, UserId};
use igdisplay::store::{KeyRing, SqlStore};
use sqlx::Row as _;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Posts per account.
const POSTS: usize = 24;

/// One deployment of the service, measured.
struct Run {
    accounts: usize,
    /// Seconds from the instances' start until every account was synced once.
    first_mirror: f64,
    /// Graph calls one steady-state sync sent (nothing new to list), on average.
    calls_per_sync: f64,
    /// Steady-state syncs both instances finished a second (every account due at once).
    resyncs_per_second: f64,
    /// The mean time the scheduler set between two syncs of an account, in seconds.
    interval: f64,
    /// Each instance's peak resident memory, KiB.
    peaks: [u64; 2],
}

/// 12. The feed service: time to mirror every feed, Graph calls, memory, and reads beside nginx.
pub(crate) async fn feeds(
    plan: &Plan,
    cli: &str,
    postgres: &str,
    s3: Option<&str>,
    report: &mut Report,
) -> Result<(), String> {
    let work = std::env::temp_dir().join(format!("igdisplay-bench-feeds-{}", std::process::id()));
    let result = measure(plan, cli, (postgres, s3), &work, report).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Where the instances keep the mirror: a bucket of the S3-compatible server, or a folder.
enum Media {
    Bucket { s3: String, bucket: String },
    Folder(PathBuf),
}

impl Media {
    /// A new bucket on `s3` for the deployment named `name`, or a folder under `dir`.
    async fn new(s3: Option<&str>, name: &str, dir: &Path) -> Result<Self, String> {
        let Some(s3) = s3 else {
            return Ok(Self::Folder(dir.join("mirror")));
        };
        let bucket = format!("{}-{}", name.replace('_', "-"), std::process::id());
        let addr = s3
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("{s3}: {e}"))?;
        send(addr, http::Method::PUT, &format!("/{bucket}")).await?;
        Ok(Self::Bucket {
            s3: s3.to_owned(),
            bucket,
        })
    }

    /// What the report calls it.
    fn label(&self) -> &'static str {
        match self {
            Self::Bucket { .. } => "one bucket of the S3-compatible server (moto's)",
            Self::Folder(_) => "one mirror folder (no S3-compatible server was given)",
        }
    }

    /// An instance's arguments and environment for it.
    fn args(&self, command: &mut Command) {
        match self {
            Self::Bucket { s3, bucket } => {
                command
                    .args(["--bucket", bucket, "--s3-endpoint", s3])
                    .args(["--media-base", &format!("{s3}/{bucket}")])
                    .env("AWS_ACCESS_KEY_ID", "bench")
                    .env("AWS_SECRET_ACCESS_KEY", "bench-secret");
            }
            Self::Folder(folder) => {
                command.arg("--out").arg(folder);
            }
        }
    }
}

async fn measure(
    plan: &Plan,
    cli: &str,
    (postgres, s3): (&str, Option<&str>),
    work: &Path,
    report: &mut Report,
) -> Result<(), String> {
    let mut runs = Vec::new();
    let mut reads = None;
    let mut label = "";
    for (n, accounts) in [plan.feeds_accounts.0, plan.feeds_accounts.1]
        .into_iter()
        .enumerate()
    {
        let deployment = Deployment::start(cli, (postgres, s3), accounts, &work.join(n.to_string())).await?;
        label = deployment.media.label();
        let run = deployment.wait_mirrored().await?;
        if n == 1 {
            reads = Some(deployment.versus_nginx(plan, &work.join("nginx")).await?);
        }
        runs.push(run);
    }
    let Some((rows, ratio, p99)) = reads else {
        return Err("no read comparison ran".to_owned());
    };
    write(report, &runs, label, (rows, ratio, p99));
    Ok(())
}

fn write(report: &mut Report, runs: &[Run], media: &str, reads: (Vec<Vec<String>>, f64, (f64, f64))) {
    let (reads, ratio, p99) = reads;
    let day = |run: &Run| run.calls_per_sync * 86_400.0 / run.interval.max(1.0);
    let rows = runs
        .iter()
        .map(|run| {
            vec![
                run.accounts.to_string(),
                format!("{:.1}", run.first_mirror),
                format!("{:.0}", run.resyncs_per_second),
                format!("{:.2}", run.calls_per_sync),
                format!("{:.0}", run.interval),
                format!("{:.1}", day(run)),
                report::mib(run.peaks[0]),
                report::mib(run.peaks[1]),
            ]
        })
        .collect();
    report.section(
        "12. The feed service: a fleet of feeds on two instances",
        &format!(
            "Accounts of {POSTS} posts on the mock, a feed each, two `igdisplay feeds serve` instances \
             on one PostgreSQL database and {media}. Time from their start until every \
             account is synced once; then every account made due at once: the syncs both instances finish \
             a second when nothing is new, and the Graph calls such a sync sends (counted by the \
             instances); the mean \
             interval the scheduler then set (the account's pace within the feeds' bounds) and \
             what it makes a day; each instance's peak resident memory (VmHWM)."
        ),
        &[
            "accounts",
            "first mirror of every feed (s)",
            "steady syncs a second",
            "Graph calls a sync",
            "interval (s)",
            "Graph calls an account a day",
            "peak RSS, instance 1",
            "peak RSS, instance 2",
        ],
        rows,
    );
    report.section(
        "12b. GET /v1/feeds/{id} beside nginx",
        "The same feed pages (as the service answers them) served by one instance and by nginx \
         from files, 32 keep-alive connections, rounds alternating; requests/s and the round-by-round \
         ratio's median, and the 99th percentile of a request's time.",
        &["server", "requests/s", "p99 (ms)"],
        reads,
    );
    let flat =
        runs.len() == 2 && runs[1].peaks.iter().max() <= runs[0].peaks.iter().max().map(|p| p * 2).as_ref();
    report.verdict(
        "feeds: GET /v1/feeds/{id} ≥ 0.9 of nginx",
        ratio >= 0.9,
        format!("{ratio:.2} (p99 {:.2} ms against {:.2} ms)", p99.0, p99.1),
    );
    report.verdict(
        "feeds: peak RSS per instance flat in the number of accounts",
        flat,
        format!(
            "{} and {} at {} and {} accounts",
            report::mib(runs.first().map_or(0, |r| r.peaks.into_iter().max().unwrap_or(0))),
            report::mib(runs.last().map_or(0, |r| r.peaks.into_iter().max().unwrap_or(0))),
            runs.first().map_or(0, |r| r.accounts),
            runs.last().map_or(0, |r| r.accounts)
        ),
    );
}

/// A mock of `accounts` accounts, a store with their tokens and a feed each, and two instances.
struct Deployment {
    /// Kept running for the instances (dropped last).
    _mock: MockServer,
    media: Media,
    store: SqlStore,
    instances: Vec<(Child, String)>,
    feeds: Vec<String>,
    started: Instant,
    accounts: usize,
}

impl Deployment {
    async fn start(
        cli: &str,
        (postgres, s3): (&str, Option<&str>),
        accounts: usize,
        dir: &Path,
    ) -> Result<Self, String> {
        let name = format!("igd_bench_feeds_{accounts}");
        let media = Media::new(s3, &name, dir).await?;
        let url = igdisplay_store::test_util::fresh_database(postgres, &name).await?;
        let mock = MockServer::builder()
            .calls_per_hour(None)
            .workers(4)
            .clock(MockClock::System { offset: 0 })
            .seed(Seed::demo().with_fleet("feed", accounts, POSTS))
            .start()
            .map_err(|e| e.to_string())?;
        let keys = KeyRing::generate_spec("bench").map_err(|e| e.to_string())?;
        let store = SqlStore::connect(&url, KeyRing::parse(&keys).map_err(|e| e.to_string())?)
            .await
            .map_err(|e| e.to_string())?;
        let feeds = bind_feeds(&mock, &store).await?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let instances = (0..2)
            .map(|n| instance(cli, &url, &keys, mock.base_url(), &media, n))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            _mock: mock,
            media,
            store,
            instances,
            feeds,
            started,
            accounts,
        })
    }

    /// Waits until every account is synced once, then reads the figures.
    async fn wait_mirrored(&self) -> Result<Run, String> {
        self.wait_synced(1).await?;
        let first_mirror = self.started.elapsed().as_secs_f64();
        let interval: f64 =
            sqlx::query("SELECT AVG(next_sync_at - last_sync_at)::float8 AS mean FROM account_syncs")
                .fetch_one(self.store.pool())
                .await
                .and_then(|row| row.try_get("mean"))
                .map_err(|e| e.to_string())?;
        let first_calls = self.graph_calls().await?;
        // The steady state: every account due again at once; its sync finds nothing new.
        sqlx::query("UPDATE account_syncs SET next_sync_at = 0")
            .execute(self.store.pool())
            .await
            .map_err(|e| e.to_string())?;
        let again = Instant::now();
        self.wait_synced(2).await?;
        let resync = again.elapsed().as_secs_f64();
        let steady_calls = self.graph_calls().await? - first_calls;
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^53")]
        let accounts = self.accounts as f64;
        let peaks = [0, 1].map(|n| procs::status_kib(self.instances[n].0.id(), "VmHWM:"));
        Ok(Run {
            accounts: self.accounts,
            first_mirror,
            calls_per_sync: steady_calls / accounts,
            resyncs_per_second: accounts / resync.max(0.001),
            interval,
            peaks,
        })
    }

    /// Waits until every account has been synced `times` times.
    async fn wait_synced(&self, times: i64) -> Result<(), String> {
        let total = i64::try_from(self.accounts).unwrap_or(i64::MAX);
        loop {
            let synced: i64 = sqlx::query("SELECT COUNT(*) AS n FROM account_syncs WHERE syncs >= $1")
                .bind(times)
                .fetch_one(self.store.pool())
                .await
                .and_then(|row| row.try_get("n"))
                .map_err(|e| e.to_string())?;
            if synced >= total {
                return Ok(());
            }
            if self.started.elapsed() > Duration::from_secs(3600) {
                return Err(format!(
                    "{synced} of {total} feeds synced {times} times after an hour"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The Graph calls the instances' syncs sent so far, as they count them.
    async fn graph_calls(&self) -> Result<f64, String> {
        let mut calls = 0.0;
        for (_, base) in &self.instances {
            let addr: std::net::SocketAddr = base
                .trim_start_matches("http://")
                .parse()
                .map_err(|e| format!("{e}"))?;
            let metrics = String::from_utf8_lossy(&reqwest_free_get(addr, "/metrics").await?).into_owned();
            calls += metrics
                .lines()
                .find_map(|line| line.strip_prefix("igdisplay_feed_graph_calls_total "))
                .and_then(|value| value.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
        }
        Ok(calls)
    }

    /// `GET /v1/feeds/{id}` of up to 32 feeds from instance 1 and from nginx serving the same
    /// bytes from files: the table's rows, the median ratio, and both p99s.
    async fn versus_nginx(
        &self,
        plan: &Plan,
        work: &Path,
    ) -> Result<(Vec<Vec<String>>, f64, (f64, f64)), String> {
        let root = work.join("root");
        let targets: Vec<Target> = self
            .feeds
            .iter()
            .take(32)
            .map(|id| Target::whole(&format!("/v1/feeds/{id}")))
            .collect();
        let ours: std::net::SocketAddr = self.instances[0]
            .1
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("{e}"))?;
        for target in &targets {
            let body = reqwest_free_get(ours, &target.path).await?;
            let file = root.join(target.path.trim_start_matches('/'));
            std::fs::create_dir_all(file.parent().unwrap_or(&root)).map_err(|e| e.to_string())?;
            std::fs::write(&file, body).map_err(|e| e.to_string())?;
        }
        let nginx = crate::nginx::Nginx::start(
            crate::nginx::binary().ok_or("nginx is not installed")?,
            &root,
            &work.join("nginx"),
        )?;
        let (mut mine, mut theirs, mut mine_lat, mut theirs_lat) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..plan.ratio_rounds {
            let (elapsed, latencies) = load::run_timed(ours, &targets, 32, plan.requests).await?;
            mine.push(plan.requests as f64 / elapsed.as_secs_f64());
            mine_lat.extend(latencies);
            let (elapsed, latencies) = load::run_timed(nginx.addr, &targets, 32, plan.requests).await?;
            theirs.push(plan.requests as f64 / elapsed.as_secs_f64());
            theirs_lat.extend(latencies);
        }
        let ratio = Sample::paired_ratio(&mine, &theirs);
        let p99 = (
            load::percentile_ms(&mut mine_lat, 99.0),
            load::percentile_ms(&mut theirs_lat, 99.0),
        );
        let rows = vec![
            vec![
                "igdisplay feeds serve".to_owned(),
                Sample::of(&mine).show(0),
                format!("{:.2}", p99.0),
            ],
            vec![
                "nginx, the same JSON from files".to_owned(),
                Sample::of(&theirs).show(0),
                format!("{:.2}", p99.1),
            ],
            vec!["ratio".to_owned(), format!("{ratio:.2}"), String::new()],
        ];
        Ok((rows, ratio, p99))
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for (child, _) in &mut self.instances {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The fleet's tokens in the store, and a feed bound to each account (as its connect link
/// would): the feeds' ids.
async fn bind_feeds(mock: &MockServer, store: &SqlStore) -> Result<Vec<String>, String> {
    let minted = mock
        .issue_tokens("feed", TokenLifetime::LongLived)
        .map_err(|e| e.to_string())?;
    let bound: Vec<Result<String, String>> = futures_util::stream::iter(minted.iter())
        .map(|token| async move {
            let record = TokenRecord::long_lived(
                UserId::new(&token.user_id),
                AccessToken::new(&token.access_token),
                Platform::InstagramLogin,
                SystemTime::now(),
            );
            let feed = store
                .create_feed(&token.user_id, "{}")
                .await
                .map_err(|e| e.to_string())?;
            let link = store
                .add_connect_link(&feed.id, Duration::from_secs(3600))
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the feed went")?;
            store
                .redeem_connect_link(&link, &record)
                .await
                .map_err(|e| e.to_string())?;
            Ok(feed.id)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    bound.into_iter().collect()
}

/// One `igdisplay feeds serve` on the database `url`, its first line read: the process and
/// its address.
fn instance(
    cli: &str,
    url: &str,
    keys: &str,
    mock: &str,
    media: &Media,
    n: usize,
) -> Result<(Child, String), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(cli);
    command
        .args([
            "--mock",
            mock,
            "feeds",
            "serve",
            "--idle",
            "1",
            "--owner",
            &format!("bench-{n}"),
        ])
        .args(["--addr", &format!("127.0.0.1:{port}"), "--public-url", &base]);
    media.args(&mut command);
    let mut child = command
        .env("IGDISPLAY_STORE", url)
        .env("IGDISPLAY_STORE_KEYS", keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{cli}: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if !line.starts_with("feeds: listening on ") {
        let _ = child.kill();
        return Err(format!("the instance said {line:?}"));
    }
    Ok((child, base))
}

/// One GET's body over a plain connection (the load generator's client).
async fn reqwest_free_get(addr: std::net::SocketAddr, path: &str) -> Result<Vec<u8>, String> {
    send(addr, http::Method::GET, path).await
}

/// One bodiless request over a plain connection; its answer's body, when it is a success.
async fn send(addr: std::net::SocketAddr, method: http::Method, path: &str) -> Result<Vec<u8>, String> {
    use http_body_util::BodyExt as _;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{path}: {}", response.status()));
    }
    Ok(response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec())
}
