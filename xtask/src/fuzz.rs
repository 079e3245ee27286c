//! `cargo xtask fuzz [--seconds N] [TARGET…]`: every cargo-fuzz target of `fuzz/`, each for N
//! seconds (default 60), with its checked-in seeds and dictionary, overflow checks on; a crash
//! fails the run and leaves its input in `fuzz/artifacts/`. The figures (executions, rate,
//! corpus) are printed and written to `target/fuzz-report.md`.
//!
//! `cargo xtask ci` runs it for a few seconds per target where a nightly toolchain and
//! cargo-fuzz are present, and says plainly when they are not.

use std::path::Path;
use std::process::Command;

/// The targets, each with its dictionary in `fuzz/dicts/`.
const TARGETS: [(&str, &str); 8] = [
    ("callback", "json.dict"),
    ("signed_request", "json.dict"),
    ("model_decode", "json.dict"),
    ("usage_headers", "json.dict"),
    ("response_pipeline", "response_pipeline.dict"),
    ("mock_requests", "mock_requests.dict"),
    ("webhook_receiver", "json.dict"),
    ("insights_response", "json.dict"),
];

/// What one target's run did.
struct Figures {
    target: String,
    seconds: u64,
    executions: u64,
    per_second: u64,
    peak_rss_mb: u64,
    corpus: usize,
}

/// `cargo xtask fuzz` with its arguments.
pub(crate) fn command(root: &Path, args: &[String]) -> Result<(), String> {
    let mut seconds = 60;
    let mut only = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            seconds = args
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("--seconds takes a whole number of seconds")?;
        } else if TARGETS.iter().any(|(t, _)| t == arg) {
            only.push(arg.clone());
        } else {
            return Err(format!(
                "unknown fuzz argument `{arg}` (targets: {})",
                TARGETS.map(|(t, _)| t).join(", ")
            ));
        }
    }
    if let Some(missing) = missing_tools() {
        return Err(missing);
    }
    run(root, seconds, &only)
}

/// The smoke run of `cargo xtask ci`: a few seconds per target, or a plain note when the
/// tools are missing.
pub(crate) fn smoke(root: &Path) -> Result<(), String> {
    println!("\n==> fuzz smoke: cargo xtask fuzz --seconds 10");
    if let Some(missing) = missing_tools() {
        println!("fuzz smoke: SKIPPED, {missing}");
        return Ok(());
    }
    run(root, 10, &[])
}

/// Why fuzzing cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    let works = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if !works(&["+nightly", "--version"]) {
        return Some("no nightly toolchain (`rustup toolchain install nightly`)".to_owned());
    }
    if !works(&["fuzz", "--version"]) {
        return Some("cargo-fuzz is not installed (`cargo install cargo-fuzz`)".to_owned());
    }
    None
}

fn run(root: &Path, seconds: u64, only: &[String]) -> Result<(), String> {
    let fuzz = |args: &[&str]| {
        let mut command = Command::new("cargo");
        command.args(["+nightly", "fuzz"]).args(args).current_dir(root);
        command
    };
    let status = fuzz(&["build", "--fuzz-dir", "fuzz", "--debug-assertions"])
        .status()
        .map_err(|e| format!("could not run cargo fuzz: {e}"))?;
    if !status.success() {
        return Err("building the fuzz targets failed".to_owned());
    }
    let mut figures = Vec::new();
    for (target, dict) in TARGETS {
        if !only.is_empty() && !only.iter().any(|o| o == target) {
            continue;
        }
        let corpus = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        let seeds = format!("fuzz/seeds/{target}");
        let dict = format!("-dict=fuzz/dicts/{dict}");
        let time = format!("-max_total_time={seconds}");
        let corpus_arg = corpus.to_string_lossy().into_owned();
        println!("fuzz: {target} for {seconds} s");
        let output = fuzz(&[
            "run",
            "--fuzz-dir",
            "fuzz",
            "--debug-assertions",
            target,
            &corpus_arg,
            &seeds,
            "--",
            &time,
            &dict,
            "-print_final_stats=1",
            "-timeout=30",
            "-rss_limit_mb=2048",
        ])
        .output()
        .map_err(|e| format!("could not run cargo fuzz: {e}"))?;
        let log = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "fuzz target {target} failed (its input is in fuzz/artifacts/{target}/):\n{}",
                tail.join("\n")
            ));
        }
        let stat = |name: &str| {
            log.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let corpus_size = std::fs::read_dir(&corpus).map(Iterator::count).unwrap_or(0);
        let found = Figures {
            target: target.to_owned(),
            seconds,
            executions: stat("stat::number_of_executed_units:"),
            per_second: stat("stat::average_exec_per_sec:"),
            peak_rss_mb: stat("stat::peak_rss_mb:"),
            corpus: corpus_size,
        };
        println!(
            "fuzz: {target}: {} executions in {} s, no crash, corpus {}",
            found.executions, found.seconds, found.corpus
        );
        figures.push(found);
    }
    let mut report = String::from(
        "| target | seconds | executions | executions/s | peak RSS MB | corpus | crashes |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for f in &figures {
        report.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | 0 |\n",
            f.target, f.seconds, f.executions, f.per_second, f.peak_rss_mb, f.corpus
        ));
    }
    let path = root.join("target/fuzz-report.md");
    std::fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{report}fuzz: wrote {}", path.display());
    Ok(())
}
