//! Comparison 10: instructions per request, counted by callgrind. Unlike the timings these
//! repeat whatever else the machine does, so a regression shows even when the wall-clock
//! ratios are noise. Each figure is the difference between a run of many requests and a run
//! of few, divided by the difference in requests: start-up and shutdown cancel out.

use crate::common::{ME_FIELDS, me_body};
use crate::procs::Server;
use crate::report::Report;
use crate::{Plan, load};
use std::path::Path;
use std::process::{Command, Stdio};

/// Comparison 10, instructions per `GET /me`: the mock vs bare hyper (server side), and the
/// facade's `me()` vs the hand-written loops (client side).
pub(crate) async fn instructions(plan: &Plan, report: &mut Report) -> Result<(), String> {
    let title = "10. Instructions per request (callgrind)";
    if Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        report.section(
            title,
            "Skipped: valgrind is not installed.",
            &["side"],
            Vec::new(),
        );
        return Ok(());
    }
    let (few, many) = plan.callgrind_requests;
    let work = std::env::temp_dir().join(format!("igdisplay-bench-callgrind-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let result = measure(few, many, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    let (servers, clients) = result?;
    let mut rows = Vec::new();
    for (name, per) in &servers {
        rows.push(vec![
            "server".to_owned(),
            (*name).to_owned(),
            format!("{per:.0}"),
            format!("{:.2}", per / servers[1].1.max(1.0)),
        ]);
    }
    let mut client_ratios = Vec::new();
    for pair in clients.chunks(2) {
        let [(facade, ours), (hand, theirs)] = pair else {
            continue;
        };
        let ratio = ours / theirs.max(1.0);
        client_ratios.push(ratio);
        rows.push(vec![
            "client".to_owned(),
            (*hand).to_owned(),
            format!("{theirs:.0}"),
            "1.00".to_owned(),
        ]);
        rows.push(vec![
            "client".to_owned(),
            (*facade).to_owned(),
            format!("{ours:.0}"),
            format!("{ratio:.2}"),
        ]);
    }
    report.section(
        title,
        &format!(
            "Instructions executed per request (valgrind --tool=callgrind), from a run of {many} sequential requests \
             minus a run of {few}, divided by {}. Server side: the whole server process answering `GET /me` (the same \
             body), with igdisplay-bench's load generator as client; ratio to bare hyper (lower is better; the \
             throughput goal of comparison 1 is ≥ 0.85 of bare hyper's rate). Client side: the whole client process \
             (`igdisplay-bench client-loop`) against bare hyper; ratio to the hand-written loop on the same stack. \
             Nearly deterministic: two runs of the same code have differed by up to 1.1 % (the async runtimes' \
             scheduling), so read a change smaller than that as noise.",
            many - few
        ),
        &["side", "process", "instructions/request", "ratio"],
        rows,
    );
    Ok(())
}

type Figures = (Vec<(&'static str, f64)>, Vec<(&'static str, f64)>);

async fn measure(few: usize, many: usize, work: &Path) -> Result<Figures, String> {
    let mock = Server::start(&["serve-mock"])?;
    let token = mock.info("token")?;
    let body = me_body(&mock, &token).await?;
    drop(mock);
    let mock_target = format!("/me?fields={ME_FIELDS}&access_token={token}");
    let mut servers = Vec::new();
    for (name, args, target) in [
        ("igdisplay-mock", vec!["serve-mock"], mock_target.as_str()),
        // The same request line to both: the server parses what the client sends.
        (
            "bare hyper",
            vec!["serve-bare", "--body", &body],
            mock_target.as_str(),
        ),
    ] {
        let count = |n: usize| {
            let out = work.join(format!("server-{}-{n}.out", name.replace(' ', "-")));
            let args = args.clone();
            async move {
                let server = Server::start_under(&callgrind(&out), &args)?;
                load::run(server.addr, target, 1, n).await?;
                server.terminate()?;
                total(&out)
            }
        };
        servers.push((
            name,
            per_request(count(few).await?, count(many).await?, few, many),
        ));
    }
    let bare = Server::start(&["serve-bare", "--body", &body])?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut clients = Vec::new();
    for (name, backend, hand) in [
        ("facade, hyper backend", "hyper", false),
        ("hand-written hyper-util + serde_json", "hyper", true),
        ("facade, reqwest backend", "reqwest", false),
        ("hand-written reqwest + serde_json", "reqwest", true),
    ] {
        let mut counts = Vec::new();
        for n in [few, many] {
            let out = work.join(format!("client-{backend}-{hand}-{n}.out"));
            let mut command = Command::new("valgrind");
            command
                .args(callgrind(&out))
                .arg(&exe)
                .args(["client-loop", "--base", &bare.base, "--backend", backend])
                .args(["--requests", &n.to_string()]);
            if hand {
                command.arg("--hand");
            }
            let status = command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("client-loop under callgrind failed: {status}"));
            }
            counts.push(total(&out)?);
        }
        clients.push((name, per_request(counts[0], counts[1], few, many)));
    }
    Ok((servers, clients))
}

/// The valgrind arguments that count instructions into `out`.
fn callgrind(out: &Path) -> Vec<String> {
    vec![
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", out.display()),
        "--quiet".to_owned(),
    ]
}

fn per_request(few_total: u64, many_total: u64, few: usize, many: usize) -> f64 {
    many_total.saturating_sub(few_total) as f64 / (many - few).max(1) as f64
}

/// The instructions a callgrind output file counted (its `totals:` or `summary:` line).
fn total(out: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(out).map_err(|e| format!("{}: {e}", out.display()))?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .ok_or_else(|| format!("{}: no instruction total", out.display()))
}
