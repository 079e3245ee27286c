//! Comparison 9: the media mirror. `igdisplay sync` of a generated library of 1,000 and of
//! 10,000 posts from igdisplay-mock (requests, seconds, peak RSS), and `igdisplay serve`
//! answering a mirrored file, beside bare hyper answering as many bytes, and a 16 MiB file to
//! 32 clients at once (the server's peak memory).

use crate::Plan;
use crate::procs::{self, Server};
use crate::report::{self, Report, Sample};
use std::process::{Command, Stdio};

/// Runs `command` to completion: (seconds, peak RSS in KiB, standard output).
fn run_with_output(command: &mut Command) -> Result<(f64, u64, String), String> {
    let out = std::env::temp_dir().join(format!("igdisplay-bench-out-{}", std::process::id()));
    let file = std::fs::File::create(&out).map_err(|e| e.to_string())?;
    command.stdout(Stdio::from(file));
    let (seconds, peak) = procs::run_measured_keeping_stdout(command)?;
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&out);
    Ok((seconds, peak, text))
}

/// `igdisplay sync --json` of the accounts in `token_file` from `mock` into `dir`.
fn sync_command(cli: &str, mock: &Server, token_file: &std::path::Path, dir: &std::path::Path) -> Command {
    let mut sync = Command::new(cli);
    sync.args(["sync", "--json", "--mock", &mock.base, "--token-file"])
        .arg(token_file)
        .arg("--out")
        .arg(dir);
    sync
}

/// A mirror of a generated library of `items` posts, synced once into `work/mirror`: that
/// folder and the account's id.
pub(crate) fn mirrored_library(
    cli: &str,
    items: usize,
    work: &std::path::Path,
) -> Result<(std::path::PathBuf, String), String> {
    let mock = Server::start(&["serve-mock", "--generate", &items.to_string()])?;
    let token = mock.info("bulk-token")?;
    let token_file = crate::export::import_token(cli, &mock, &token, work)?;
    let dir = work.join("mirror");
    let (_, _, output) = run_with_output(&mut sync_command(cli, &mock, &token_file, &dir))?;
    let reports: serde_json::Value =
        serde_json::from_str(&output).map_err(|e| format!("sync output: {e}"))?;
    let user = reports[0]["user_id"]
        .as_str()
        .ok_or("no account synced")?
        .to_owned();
    Ok((dir, user))
}

/// 9. Sync and serve.
pub(crate) async fn mirror(plan: &Plan, cli: &str, report: &mut Report) -> Result<(), String> {
    let (small, large) = plan.mirror_items;
    let mut rows = Vec::new();
    let mut peaks = Vec::new();
    let mut calls_match = true;
    let mut served = None;
    let mut user = String::new();
    for items in [small, large] {
        let mock = Server::start(&["serve-mock", "--generate", &items.to_string()])?;
        let token = mock.info("bulk-token")?;
        let work =
            std::env::temp_dir().join(format!("igdisplay-bench-mirror-{}-{items}", std::process::id()));
        let token_file = crate::export::import_token(cli, &mock, &token, &work)?;
        let dir = work.join("mirror");
        // A first sync (everything downloaded), then another (nothing new: the previous feed
        // read beside the listing, every file reused).
        for pass in ["first", "again"] {
            let (seconds, peak, output) = run_with_output(&mut sync_command(cli, &mock, &token_file, &dir))?;
            let reports: serde_json::Value =
                serde_json::from_str(&output).map_err(|e| format!("sync output: {e}"))?;
            // The bulk account is the one imported: its report.
            let report_of = &reports[0]["report"];
            let calls = report_of["graph_calls"].as_u64().unwrap_or(0);
            let pages = u64::try_from(items.div_ceil(100)).unwrap_or(0);
            calls_match &= calls == pages;
            peaks.push(peak as f64);
            rows.push(vec![
                format!("{items} posts, {pass}"),
                format!("{calls} (pages: {pages})"),
                report_of["downloaded"].to_string(),
                report_of["reused"].to_string(),
                format!("{seconds:.1}"),
                report::mib(peak),
            ]);
            user = reports[0]["user_id"].as_str().unwrap_or_default().to_owned();
        }
        if items == small {
            served = Some((dir.clone(), user.clone(), work.clone()));
        } else {
            let _ = std::fs::remove_dir_all(&work);
        }
    }
    // Peaks: [small first, small again, large first, large again].
    let ratio = (peaks[2] / peaks[0].max(1.0)).max(peaks[3] / peaks[1].max(1.0));
    report.verdict(
        "9. a mirror sync costs one request per page of 100",
        calls_match,
        format!("{} and {} posts", small, large),
    );
    report.verdict(
        "9b. mirror sync memory at 10× the library ≤ 1.25 ×",
        ratio <= 1.25,
        format!("{ratio:.2}"),
    );
    report.section(
        "9. Media mirror: sync",
        "`igdisplay sync` of a generated library (every 10th post an album of 3) from igdisplay-mock, into a folder, \
         a new process and a new mock each, synced twice (first: everything downloaded; again: nothing new, every file \
         reused); requests are the listing requests the sync reports; 9b compares peak RSS at the two sizes, pass for pass. The sync writes the \
         feed a page of 100 posts at a time beside the previous feed's page of the same dates, one image at a time.",
        &["library, sync", "listing requests", "files downloaded", "files reused", "seconds", "peak RSS"],
        rows,
    );

    // Serving: one mirrored file, `igdisplay serve` vs bare hyper answering as many bytes.
    let Some((dir, user, work)) = served else {
        return Ok(());
    };
    let read = |key: &str| -> Result<serde_json::Value, String> {
        serde_json::from_slice(&std::fs::read(dir.join(key)).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())
    };
    let index = read(&format!("feeds/{user}.json"))?;
    let first = index["pages"][0]["key"].as_str().ok_or("no page")?.to_owned();
    let key = read(&first)?
        .as_array()
        .and_then(|items| items.iter().find_map(|i| i["image"]["original"].as_str()))
        .ok_or("no mirrored image")?
        .to_owned();
    let size = std::fs::metadata(dir.join(&key))
        .map_err(|e| e.to_string())?
        .len();
    let serve = ServeProcess::start(cli, &dir)?;
    let bare = Server::start(&[
        "serve-bare",
        "--body",
        &"x".repeat(usize::try_from(size).unwrap_or(0)),
    ])?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..plan.rounds {
        let elapsed = crate::load::run(serve.addr, &format!("/{key}"), 32, plan.requests).await?;
        ours.push(plan.requests as f64 / elapsed.as_secs_f64());
        let elapsed = crate::load::run(bare.addr, "/me", 32, plan.requests).await?;
        theirs.push(plan.requests as f64 / elapsed.as_secs_f64());
    }
    // A large file to 32 clients at once: streamed, the server's memory stays far below
    // what reading it whole per request would take (32 × its size).
    const LARGE: usize = 16 * 1024 * 1024;
    let large = dir.join("media/bench-large/video.mp4");
    std::fs::create_dir_all(large.parent().ok_or("no folder")?).map_err(|e| e.to_string())?;
    std::fs::write(&large, vec![7u8; LARGE]).map_err(|e| e.to_string())?;
    let at_start = procs::status_kib(serve.child.id(), "VmRSS:");
    crate::load::run(serve.addr, "/media/bench-large/video.mp4", 32, 64).await?;
    let peak = procs::status_kib(serve.child.id(), "VmHWM:");
    let growth_mib = peak.saturating_sub(at_start) as f64 / 1024.0;
    let whole_mib = (32 * LARGE) as f64 / (1024.0 * 1024.0);
    drop(serve);
    let _ = std::fs::remove_dir_all(&work);
    let (ours, theirs) = (Sample::of(&ours), Sample::of(&theirs));
    report.section(
        "9c. Media mirror: serving",
        &format!(
            "A mirrored image ({size} bytes) from `igdisplay serve` (a small file: read from the folder, then answered \
             from memory for a second at a time), beside bare hyper answering {size} bytes from memory; 32 keep-alive \
             connections, {} requests a round, {} rounds alternating; requests/s.",
            plan.requests, plan.rounds
        ),
        &["server", "requests/s", "ratio to bare hyper"],
        vec![
            vec![
                "igdisplay serve".to_owned(),
                ours.show(0),
                format!("{:.2}", ours.median / theirs.median.max(f64::MIN_POSITIVE)),
            ],
            vec!["bare hyper (ceiling)".to_owned(), theirs.show(0), "1.00".to_owned()],
        ],
    );
    report.verdict(
        "9d. serving a 16 MiB file to 32 clients at once: peak RSS growth < 1/8 of 32 whole copies",
        growth_mib < whole_mib / 8.0,
        format!("{growth_mib:.1} MiB (32 whole copies: {whole_mib:.0} MiB)"),
    );
    report.section(
        "9d. Media mirror: a large file to many clients",
        "`igdisplay serve` answering a 16 MiB file to 32 keep-alive connections at once, 64 downloads in all; the \
         server's resident memory at start and its peak (VmHWM), beside what 32 copies read whole would take. The \
         file server streams 256 KiB chunks as each client takes them.",
        &["server", "RSS at start", "peak RSS", "growth", "32 whole copies"],
        vec![vec![
            "igdisplay serve".to_owned(),
            report::mib(at_start),
            report::mib(peak),
            format!("{growth_mib:+.1} MiB"),
            format!("{whole_mib:.0} MiB"),
        ]],
    );
    Ok(())
}

/// `igdisplay serve` as a child; killed when dropped.
pub(crate) struct ServeProcess {
    pub(crate) child: std::process::Child,
    pub(crate) addr: std::net::SocketAddr,
}

impl ServeProcess {
    /// `igdisplay serve` of `dir` on a free loopback port.
    pub(crate) fn start(cli: &str, dir: &std::path::Path) -> Result<Self, String> {
        use std::io::BufRead as _;
        let mut child = Command::new(cli)
            .args(["serve", "--addr", "127.0.0.1:0", "--dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("igdisplay serve said {line:?}"))?;
        Ok(Self { child, addr })
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
