//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask ci`: everything CI checks, in order, stopping at the first failure.
//! - `cargo xtask tidy`: the architecture invariants of `docs/architecture.md`.
//! - `cargo xtask bench [--quick]`: the benchmarks, into `docs/benchmarks.md`.
//! - `cargo xtask fuzz [--seconds N] [TARGET…]`: the cargo-fuzz targets of `fuzz/`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod ci;
mod fn_length;
mod fuzz;
mod named_tests;
mod postgres;
mod s3;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci      fmt check, clippy (warnings denied), docs (warnings denied), tidy, all tests,
          doc tests, and a check for stale insta snapshots
  tidy    check the architecture invariants (crate edges, module docs, READMEs, lints)
  bench   run every benchmark comparison in release and write docs/benchmarks.md
          (--quick: a tiny debug round into target/bench-quick.md, to prove it runs;
          --only N [--only M]: those comparisons alone, into target/bench-only.md)
  fuzz    run every cargo-fuzz target of fuzz/ for --seconds N each (default 60), or only
          the TARGETs named; needs a nightly toolchain and cargo-fuzz";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&root),
        Some("tidy") => tidy::run(&root).map(|()| println!("tidy: ok")),
        Some("bench") => {
            let only: Vec<String> = args
                .windows(2)
                .filter(|pair| pair[0] == "--only")
                .map(|pair| pair[1].clone())
                .collect();
            bench::run(&root, args.iter().any(|a| a == "--quick"), &only)
        }
        Some("fuzz") => fuzz::command(&root, &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's folder.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
