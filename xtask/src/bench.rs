//! `cargo xtask bench`: builds the bench driver and the `igdisplay` binary, then runs every
//! comparison (see `bench/src/main.rs`) and writes `docs/benchmarks.md`.

use std::path::Path;
use std::process::Command;

/// Full runs are release builds into docs/benchmarks.md; `--quick` is a debug build and a tiny
/// round into target/bench-quick.md, only to prove the harness still works; `only` (numbers
/// of comparisons) runs those alone into target/bench-only.md, while working on one.
pub(crate) fn run(root: &Path, quick: bool, only: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = vec![
        "build",
        "--quiet",
        "--package",
        "igdisplay-bench",
        "--package",
        "igdisplay-cli",
    ];
    if !quick {
        build.push("--release");
    }
    println!("\n==> bench: cargo {}", build.join(" "));
    let status = Command::new(&cargo)
        .args(&build)
        .current_dir(root)
        .status()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if !status.success() {
        return Err("building the benchmarks failed".to_owned());
    }
    let profile = if quick { "debug" } else { "release" };
    let out = if quick {
        "target/bench-quick.md"
    } else if !only.is_empty() {
        "target/bench-only.md"
    } else {
        "docs/benchmarks.md"
    };
    let command = if quick {
        "cargo xtask bench --quick"
    } else {
        "cargo xtask bench"
    };
    // The fleet comparison's PostgreSQL: a cluster of its own, stopped after.
    let cluster = if only.is_empty() || only.iter().any(|n| n == "8" || n == "12") {
        println!("\n==> bench: PostgreSQL for the fleet and feed comparisons");
        Some(crate::postgres::Cluster::start_counting_statements(root)?)
    } else {
        None
    };
    // The feed comparison's S3-compatible server, where one is installed (a folder without).
    let s3 = match crate::s3::S3Server::program(root) {
        Some(_) if only.is_empty() || only.iter().any(|n| n == "12") => {
            println!("\n==> bench: an S3-compatible server for the feed comparison");
            Some(crate::s3::S3Server::start(root)?)
        }
        _ => None,
    };
    let mut args = vec!["run", "--out", out, "--cli"];
    let cli = format!("target/{profile}/igdisplay");
    args.push(&cli);
    args.extend(["--command", command]);
    if let Some(cluster) = &cluster {
        args.extend(["--postgres", &cluster.url]);
    }
    if let Some(s3) = &s3 {
        args.extend(["--s3", &s3.url]);
    }
    if quick {
        args.push("--quick");
    }
    for n in only {
        args.extend(["--only", n.as_str()]);
    }
    let status = Command::new(root.join(format!("target/{profile}/igdisplay-bench")))
        .args(&args)
        .current_dir(root)
        .status()
        .map_err(|e| format!("could not run the bench driver: {e}"))?;
    drop(s3);
    drop(cluster);
    if status.success() {
        println!("bench: wrote {out}");
        Ok(())
    } else {
        Err("the benchmarks failed".to_owned())
    }
}
