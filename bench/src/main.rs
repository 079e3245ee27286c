//! `igdisplay-bench`: the comparisons of `cargo xtask bench`, each pair side by side in one run,
//! alternating, several rounds, medians with min–max; written to docs/benchmarks.md.
//!
//! Every load stays on 127.0.0.1 and is bounded in requests. Subcommands starting with
//! `serve-` and `stream` are the child processes the driver starts. One module per comparison:
//! `throughput`, `memory`, `client`, `sync`, `export`, `footprint`, `fleet`, `mirror`,
//! `callgrind`, `nginx`.
// Benchmarks measure real time.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod callgrind;
mod client;
mod common;
mod export;
mod feeds;
mod fleet;
mod footprint;
mod load;
mod memory;
mod mirror;
mod nginx;
mod procs;
mod report;
mod servers;
mod sync;
mod throughput;

use clap::{Parser, Subcommand, ValueEnum};
use report::Report;

/// The benchmark driver and the processes it measures.
#[derive(Debug, Parser)]
#[command(name = "igdisplay-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs every comparison and writes the report.
    Run {
        /// Tiny rounds, to show the harness works (CI).
        #[arg(long)]
        quick: bool,
        /// Where the report goes.
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: String,
        /// The `igdisplay` binary to measure.
        #[arg(long, default_value = "target/release/igdisplay")]
        cli: String,
        /// The command the report names as the one that produced it.
        #[arg(long, default_value = "cargo xtask bench")]
        command: String,
        /// A PostgreSQL cluster's `postgres` database, for the fleet comparison (skipped
        /// without one).
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
        /// An S3-compatible server (`http://127.0.0.1:PORT`, accepting any key), for the feed
        /// comparison's bucket (a folder without one).
        #[arg(long, value_name = "URL")]
        s3: Option<String>,
        /// Only these comparisons (their numbers, 1 to 10); all without it.
        #[arg(long, value_name = "N")]
        only: Vec<u8>,
    },
    /// A child: igdisplay-mock, optionally with a generated library of N items.
    ServeMock {
        /// Items of the generated `bulk` user.
        #[arg(long)]
        generate: Option<usize>,
        /// Large CDN files: 1 MiB photos and 10 MiB clips.
        #[arg(long)]
        large: bool,
    },
    /// A child: wiremock with N mounted mocks answering `body`.
    ServeWiremock {
        /// How many mocks are mounted (the matching one last).
        #[arg(long, default_value_t = 1)]
        mounted: usize,
        /// The body answered.
        #[arg(long, default_value = "")]
        body: String,
    },
    /// A child: bare hyper answering `body`, the ceiling.
    ServeBare {
        /// The body answered.
        #[arg(long, default_value = "")]
        body: String,
        /// Instead, a body of this many bytes (larger than a command line may carry).
        #[arg(long)]
        size: Option<usize>,
    },
    /// A child of comparison 4: streams a whole library and prints its peak memory.
    Stream {
        /// The mock's base URL.
        #[arg(long)]
        base: String,
        /// The token to stream with.
        #[arg(long)]
        token: String,
    },
    /// A child of comparison 5: the hand-written exporter, as its own process like
    /// `igdisplay export` (a runtime of its own, listing included).
    HandExport {
        /// The mock's base URL.
        #[arg(long)]
        base: String,
        /// The token.
        #[arg(long)]
        token: String,
        /// The output folder.
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// For profiling comparison 3: the facade's `me()` in a loop.
    ClientLoop {
        /// The server's base URL.
        #[arg(long)]
        base: String,
        /// How many requests.
        #[arg(long, default_value_t = 10_000)]
        requests: usize,
        /// Which backend.
        #[arg(long, value_enum, default_value_t = Backend::Reqwest)]
        backend: Backend,
        /// The hand-written loop on that backend's HTTP stack instead of the facade.
        #[arg(long)]
        hand: bool,
        /// How many loops run at once, each on its own connection.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
}

/// igdisplay's two HTTP backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    /// `ReqwestBackend`.
    Reqwest,
    /// `HyperBackend`.
    Hyper,
}

/// How much work each comparison does: a full run, or `--quick`.
pub(crate) struct Plan {
    pub(crate) quick: bool,
    pub(crate) rounds: usize,
    /// Rounds of the comparisons whose goal is a ratio of two close figures on a noisy machine
    /// (3 and 5): the median of more round-by-round ratios moves less.
    pub(crate) ratio_rounds: usize,
    pub(crate) requests: usize,
    pub(crate) memory_small: usize,
    pub(crate) memory_large: usize,
    pub(crate) sync_items: usize,
    pub(crate) rss_small: usize,
    pub(crate) rss_large: usize,
    pub(crate) export_items: usize,
    /// The two library sizes, in pages of 100, whose export peak RSS is compared.
    pub(crate) export_pages: (usize, usize),
    /// Accounts due in each round of the fleet comparison.
    pub(crate) fleet_due: usize,
    /// Accounts in the fleet comparison's table.
    pub(crate) fleet_rows: usize,
    /// The two library sizes the mirror's sync is measured at.
    pub(crate) mirror_items: (usize, usize),
    /// The two runs, in requests, whose instruction counts are subtracted.
    pub(crate) callgrind_requests: (usize, usize),
    /// The two fleet sizes, in accounts, the feed service is measured at.
    pub(crate) feeds_accounts: (usize, usize),
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                rounds: 1,
                ratio_rounds: 1,
                requests: 400,
                memory_small: 200,
                memory_large: 2_000,
                sync_items: 500,
                rss_small: 200,
                rss_large: 2_000,
                export_items: 6,
                export_pages: (1, 3),
                fleet_due: 100,
                fleet_rows: 2_000,
                mirror_items: (30, 120),
                callgrind_requests: (3, 12),
                feeds_accounts: (3, 6),
            }
        } else {
            Self {
                quick,
                rounds: 5,
                ratio_rounds: 9,
                requests: 20_000,
                memory_small: 10_000,
                memory_large: 1_000_000,
                sync_items: 10_000,
                rss_small: 1_000,
                rss_large: 100_000,
                export_items: 100,
                export_pages: (10, 1_000),
                fleet_due: 10_000,
                fleet_rows: 1_000_000,
                mirror_items: (1_000, 10_000),
                callgrind_requests: (200, 2_200),
                feeds_accounts: (1_000, 10_000),
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = match Cli::parse().command {
        Command::ServeMock { generate, large } => servers::mock(generate, large),
        Command::ServeWiremock { mounted, body } => {
            runtime().and_then(|rt| rt.block_on(servers::wiremock(mounted, body)))
        }
        Command::ServeBare { body, size } => {
            let body = size.map_or(body.into_bytes(), |size| vec![b'x'; size]);
            runtime().and_then(|rt| rt.block_on(servers::bare(body)))
        }
        Command::HandExport { base, token, dir } => runtime().and_then(|rt| {
            rt.block_on(async {
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                export::hand_written_export(&base, &token, &dir).await.map(drop)
            })
        }),
        Command::Stream { base, token } => {
            runtime().and_then(|rt| rt.block_on(sync::stream_child(&base, &token)))
        }
        Command::ClientLoop {
            base,
            requests,
            backend,
            hand,
            concurrency,
        } => runtime()
            .and_then(|rt| rt.block_on(client::client_loop(&base, requests, backend, hand, concurrency))),
        Command::Run {
            quick,
            out,
            cli,
            command,
            postgres,
            s3,
            only,
        } => runtime().and_then(|rt| {
            rt.block_on(run(
                Plan::new(quick),
                &only,
                &cli,
                &out,
                &command,
                postgres.as_deref(),
                s3.as_deref(),
            ))
        }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("igdisplay-bench: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

async fn run(
    plan: Plan,
    only: &[u8],
    cli: &str,
    out: &str,
    command: &str,
    postgres: Option<&str>,
    s3: Option<&str>,
) -> Result<(), String> {
    let mut report = Report::new(command, plan.quick);
    let wanted = |n: u8, name: &str| {
        let run = only.is_empty() || only.contains(&n);
        eprintln!("{n}/12 {name}{}", if run { "" } else { ": skipped (--only)" });
        run
    };
    if wanted(1, "mock server throughput") {
        throughput::throughput(&plan, &mut report).await?;
    }
    if wanted(2, "mock server memory") {
        memory::memory(&plan, &mut report).await?;
    }
    if wanted(3, "client overhead") {
        client::client_overhead(&plan, &mut report).await?;
    }
    if wanted(4, "whole-library sync") {
        sync::sync(&plan, &mut report).await?;
    }
    if wanted(5, "export") {
        export::export(&plan, cli, &mut report).await?;
    }
    if wanted(6, "export memory by library size") {
        export::export_memory(&plan, cli, &mut report)?;
    }
    if wanted(7, "build footprint") {
        footprint::footprint(&mut report)?;
    }
    if wanted(8, "keeping a fleet alive") {
        match postgres {
            Some(postgres) => fleet::fleet(&plan, cli, postgres, &mut report).await?,
            None => eprintln!("8/12: skipped (no --postgres)"),
        }
    }
    if wanted(9, "media mirror") {
        mirror::mirror(&plan, cli, &mut report).await?;
    }
    if wanted(10, "instructions per request") {
        callgrind::instructions(&plan, &mut report).await?;
    }
    if wanted(11, "serving a mirror beside nginx") {
        nginx::versus_nginx(&plan, cli, &mut report).await?;
    }
    if wanted(12, "the feed service") {
        match postgres {
            Some(postgres) => feeds::feeds(&plan, cli, postgres, s3, &mut report).await?,
            None => eprintln!("12/12: skipped (no --postgres)"),
        }
    }
    std::fs::write(out, report.render()).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("wrote {out}");
    Ok(())
}
