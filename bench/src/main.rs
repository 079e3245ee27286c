//! `igdisplay-bench`: the comparisons of `cargo xtask bench`, each pair side by side in one run,
//! alternating, several rounds, medians with min–max; written to docs/benchmarks.md.
//!
//! Every load stays on 127.0.0.1 and is bounded in requests. Subcommands starting with
//! `serve-` and `stream` are the child processes the driver starts.
// Benchmarks measure real time.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod load;
mod procs;
mod report;
mod servers;

use futures_util::{StreamExt, TryStreamExt};
use igdisplay::Instagram;
use igdisplay::auth::Endpoints;
use igdisplay::http::{HyperBackend, ReqwestBackend};
use igdisplay::model::{AccessToken, Platform, User};
use procs::Server;
use report::{Report, Sample};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// The fields of the `/me` body used for throughput (about 150 bytes).
const ME_FIELDS: &str = "id,user_id,username,name,account_type,media_count,followers_count";

struct Plan {
    quick: bool,
    rounds: usize,
    requests: usize,
    memory_small: usize,
    memory_large: usize,
    sync_items: usize,
    rss_small: usize,
    rss_large: usize,
    export_items: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                rounds: 1,
                requests: 400,
                memory_small: 200,
                memory_large: 2_000,
                sync_items: 500,
                rss_small: 200,
                rss_large: 2_000,
                export_items: 30,
            }
        } else {
            Self {
                quick,
                rounds: 5,
                requests: 20_000,
                memory_small: 10_000,
                memory_large: 1_000_000,
                sync_items: 10_000,
                rss_small: 1_000,
                rss_large: 100_000,
                export_items: 1_000,
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let result = match args.first().map(String::as_str) {
        Some("serve-mock") => servers::mock(arg("--generate").and_then(|g| g.parse().ok())),
        Some("serve-wiremock") => runtime().and_then(|rt| {
            rt.block_on(servers::wiremock(
                arg("--mounted").and_then(|m| m.parse().ok()).unwrap_or(1),
                arg("--body").unwrap_or_default(),
            ))
        }),
        Some("serve-bare") => {
            runtime().and_then(|rt| rt.block_on(servers::bare(arg("--body").unwrap_or_default())))
        }
        Some("stream") => runtime().and_then(|rt| {
            rt.block_on(stream_child(
                &arg("--base").unwrap_or_default(),
                &arg("--token").unwrap_or_default(),
            ))
        }),
        Some("client-loop") => runtime().and_then(|rt| {
            rt.block_on(client_loop(
                &arg("--base").unwrap_or_default(),
                arg("--requests").and_then(|n| n.parse().ok()).unwrap_or(10_000),
                arg("--backend").as_deref() == Some("hyper"),
            ))
        }),
        Some("run") => {
            let quick = args.iter().any(|a| a == "--quick");
            let out = arg("--out").unwrap_or_else(|| "docs/benchmarks.md".to_owned());
            let cli = arg("--cli").unwrap_or_else(|| "target/release/igdisplay".to_owned());
            let command = arg("--command").unwrap_or_else(|| "cargo xtask bench".to_owned());
            runtime().and_then(|rt| rt.block_on(run(Plan::new(quick), &cli, &out, &command)))
        }
        _ => Err("usage: igdisplay-bench run [--quick] [--out FILE] [--cli PATH]".to_owned()),
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

async fn run(plan: Plan, cli: &str, out: &str, command: &str) -> Result<(), String> {
    let mut report = Report::new(command, plan.quick);
    eprintln!("1/6 mock server throughput");
    throughput(&plan, &mut report).await?;
    eprintln!("2/6 mock server memory");
    memory(&plan, &mut report).await?;
    eprintln!("3/6 client overhead");
    client_overhead(&plan, &mut report).await?;
    eprintln!("4/6 whole-library sync");
    sync(&plan, &mut report).await?;
    eprintln!("5/6 export");
    export(&plan, cli, &mut report).await?;
    eprintln!("6/6 build footprint");
    footprint(&mut report)?;
    std::fs::write(out, report.render()).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("wrote {out}");
    Ok(())
}

async fn me_body(mock: &Server, token: &str) -> Result<String, String> {
    let url = format!("{}/me?fields={ME_FIELDS}&access_token={token}", mock.base);
    reqwest::get(url)
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())
}

/// 1. `GET /me`, 32 connections: igdisplay-mock, wiremock (1 and 50 mocks), bare hyper.
async fn throughput(plan: &Plan, report: &mut Report) -> Result<(), String> {
    let mock = Server::start(&["serve-mock"])?;
    let token = mock.info("token")?;
    let body = me_body(&mock, &token).await?;
    let wiremock_1 = Server::start(&["serve-wiremock", "--mounted", "1", "--body", &body])?;
    let wiremock_50 = Server::start(&["serve-wiremock", "--mounted", "50", "--body", &body])?;
    let bare = Server::start(&["serve-bare", "--body", &body])?;
    let mock_target = format!("/me?fields={ME_FIELDS}&access_token={token}");
    let sides: [(&str, &Server, &str); 4] = [
        ("igdisplay-mock", &mock, &mock_target),
        ("wiremock, 1 mock mounted", &wiremock_1, "/me"),
        ("wiremock, 50 mounted (match last)", &wiremock_50, "/me"),
        ("bare hyper (ceiling)", &bare, "/me"),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    for (_, server, target) in &sides {
        load::run(server.addr, target, 32, plan.requests / 10).await?;
    }
    for _ in 0..plan.rounds {
        for (i, (_, server, target)) in sides.iter().enumerate() {
            let elapsed = load::run(server.addr, target, 32, plan.requests).await?;
            samples[i].push(plan.requests as f64 / elapsed.as_secs_f64());
        }
    }
    let ceiling = Sample::of(&samples[3]).median;
    let ratio = Sample::of(&samples[0]).median / ceiling;
    report.verdict(
        "1. igdisplay-mock ≥ 0.80 of bare hyper",
        ratio >= 0.8,
        format!(
            "{ratio:.2} ({:.2}× wiremock)",
            Sample::of(&samples[0]).median / Sample::of(&samples[1]).median
        ),
    );
    let rows = sides
        .iter()
        .zip(&samples)
        .map(|((name, _, _), values)| {
            let sample = Sample::of(values);
            vec![
                (*name).to_owned(),
                sample.show(0),
                format!("{:.2}", sample.median / ceiling),
            ]
        })
        .collect();
    report.section(
        "1. Mock server throughput",
        &format!(
            "`GET /me` answering the same {}-byte body, 32 keep-alive connections, {} requests per round, {} rounds \
             alternating the servers; requests/s, median (min–max); ratio to bare hyper. Goal: igdisplay-mock ≥ 0.80 \
             of bare hyper.",
            body.len(),
            plan.requests,
            plan.rounds
        ),
        &["server", "requests/s", "ratio to bare hyper"],
        rows,
    );
    Ok(())
}

/// 2. Resident memory of igdisplay-mock and wiremock after many requests.
async fn memory(plan: &Plan, report: &mut Report) -> Result<(), String> {
    let mock = Server::start(&["serve-mock"])?;
    let token = mock.info("token")?;
    let body = me_body(&mock, &token).await?;
    let wiremock = Server::start(&["serve-wiremock", "--mounted", "1", "--body", &body])?;
    let mock_target = format!("/me?fields={ME_FIELDS}&access_token={token}");
    let mut rows = Vec::new();
    let mut growths = Vec::new();
    for (name, server, target) in [
        ("igdisplay-mock", &mock, mock_target.as_str()),
        ("wiremock", &wiremock, "/me"),
    ] {
        let start = server.rss_kib();
        load::run(server.addr, target, 32, plan.memory_small).await?;
        let small = server.rss_kib();
        load::run(server.addr, target, 32, plan.memory_large - plan.memory_small).await?;
        let large = server.rss_kib();
        growths.push((large as f64 - small as f64) / 1024.0);
        rows.push(vec![
            name.to_owned(),
            report::mib(start),
            report::mib(small),
            report::mib(large),
            format!("{:+.1} MiB", (large as f64 - small as f64) / 1024.0),
        ]);
    }
    report.verdict(
        "2. igdisplay-mock memory flat (< 10 MB growth)",
        growths[0] < 10.0,
        format!("{:+.1} MiB (wiremock {:+.1} MiB)", growths[0], growths[1]),
    );
    report.section(
        "2. Mock server memory under load",
        &format!(
            "Resident memory (VmRSS) of each server process at start, after {} and after {} requests of comparison 1. \
             Goal: igdisplay-mock flat (under 10 MB of growth).",
            plan.memory_small, plan.memory_large
        ),
        &["server", "at start", &format!("after {}", plan.memory_small), &format!("after {}", plan.memory_large), "growth"],
        rows,
    );
    Ok(())
}

fn instagram_for(base: &str, backend: igdisplay::http::SharedBackend) -> Result<Instagram, String> {
    // Read-only: queries with a given token need no app credentials. igdisplay's own
    // backends time out by themselves: no timeout wrapper around them.
    Instagram::read_only(Platform::InstagramLogin)
        .endpoints(Endpoints::single_origin(base))
        .backend_with_own_timeout(backend)
        .build()
        .map_err(|e| e.to_string())
}

/// 3. `me()` through the facade vs a hand-written loop, per backend, against bare hyper.
async fn client_overhead(plan: &Plan, report: &mut Report) -> Result<(), String> {
    let mock = Server::start(&["serve-mock"])?;
    let token = mock.info("token")?;
    let body = me_body(&mock, &token).await?;
    drop(mock);
    let bare = Server::start(&["serve-bare", "--body", &body])?;
    let reqwest_graph = instagram_for(
        &bare.base,
        Arc::new(ReqwestBackend::new().map_err(|e| e.to_string())?),
    )?
    .graph_with_token(AccessToken::new("token"));
    let hyper_graph = instagram_for(
        &bare.base,
        Arc::new(HyperBackend::new().map_err(|e| e.to_string())?),
    )?
    .graph_with_token(AccessToken::new("token"));
    let url = format!("{}/me?fields=id%2Cusername&access_token=token", bare.base);
    let reqwest_client = reqwest::Client::new();
    let hyper_client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let requests = plan.requests / 4;
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for concurrency in [1usize, 32] {
        let per_task = requests.div_ceil(concurrency);
        // (rps samples, cpu µs samples) for: facade reqwest, hand reqwest, facade hyper, hand hyper.
        let mut rps: Vec<Vec<f64>> = vec![Vec::new(); 4];
        let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); 4];
        for _ in 0..plan.rounds {
            for side in 0..4 {
                let started = Instant::now();
                let cpu_start = procs::cpu_seconds();
                let tasks: Vec<_> = (0..concurrency)
                    .map(|_| {
                        let (rg, hg) = (reqwest_graph.clone(), hyper_graph.clone());
                        let (rc, hc, url) = (reqwest_client.clone(), hyper_client.clone(), url.clone());
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                let user: User = match side {
                                    0 => rg.me().send().await.map_err(|e| e.to_string())?,
                                    1 => {
                                        let bytes = rc
                                            .get(&url)
                                            .send()
                                            .await
                                            .map_err(|e| e.to_string())?
                                            .bytes()
                                            .await
                                            .map_err(|e| e.to_string())?;
                                        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?
                                    }
                                    2 => hg.me().send().await.map_err(|e| e.to_string())?,
                                    _ => {
                                        use http_body_util::BodyExt;
                                        let uri: http::Uri =
                                            url.parse().map_err(|e: http::uri::InvalidUri| e.to_string())?;
                                        let response = hc.get(uri).await.map_err(|e| e.to_string())?;
                                        let bytes = response
                                            .into_body()
                                            .collect()
                                            .await
                                            .map_err(|e| e.to_string())?
                                            .to_bytes();
                                        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?
                                    }
                                };
                                std::hint::black_box(user);
                            }
                            Ok::<(), String>(())
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.map_err(|e| e.to_string())??;
                }
                let done = (per_task * concurrency) as f64;
                rps[side].push(done / started.elapsed().as_secs_f64());
                cpu[side].push((procs::cpu_seconds() - cpu_start) * 1e6 / done);
            }
        }
        for (side, name) in [
            "facade, reqwest backend",
            "hand-written reqwest + serde_json",
            "facade, hyper backend",
            "hand-written hyper-util + serde_json",
        ]
        .iter()
        .enumerate()
        {
            let pair = side - side % 2 + 1;
            let ratio = Sample::of(&rps[side]).median / Sample::of(&rps[pair]).median;
            if side % 2 == 0 {
                ratios.push(ratio);
            }
            rows.push(vec![
                format!("{concurrency}"),
                (*name).to_owned(),
                Sample::of(&rps[side]).show(0),
                format!("{:.0}", Sample::of(&cpu[side]).median),
                if side % 2 == 0 {
                    format!("{ratio:.2}")
                } else {
                    "1.00".to_owned()
                },
            ]);
        }
    }
    let worst = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    report.verdict(
        "3. facade ≥ 0.95 of the hand-written loop, each backend",
        worst >= 0.95,
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    report.section(
        "3. Client overhead",
        &format!(
            "`me()` decoding the same `User` through the facade vs a hand-written loop on the same HTTP stack, against \
             the bare hyper server; {requests} requests per round, {} rounds alternating; requests/s median (min–max), \
             process CPU time per request (µs, client side; it includes the load of every connection), ratio to the \
             hand-written loop. Goal: ≥ 0.95 for each backend.",
            plan.rounds
        ),
        &["concurrency", "client", "requests/s", "CPU µs/request", "ratio"],
        rows,
    );
    Ok(())
}

/// The query the facade sends for a page (token left out), so the hand-written loop sends the
/// same: rendered by the request value itself, with no encoding written here.
fn stream_query(graph: &igdisplay::graph::GraphClient) -> Result<String, String> {
    let request = graph
        .my_media()
        .with_children()
        .limit(100)
        .to_http(&AccessToken::new("-"))
        .map_err(|e| e.to_string())?;
    let query = request.uri().query().unwrap_or_default();
    Ok(query.trim_end_matches("&access_token=-").to_owned())
}

/// The hand-written page loop: GET each page of `/me/media` by its `after` cursor and hand it to
/// `on_page`, until a page has no `next`.
async fn hand_written_pages(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    mut on_page: impl FnMut(&serde_json::Value),
) -> Result<(), String> {
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{base}/me/media?{query}&access_token={token}");
        if let Some(cursor) = &after {
            url.push_str(&format!("&after={cursor}"));
        }
        let page: serde_json::Value = client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        on_page(&page);
        match (
            page["paging"]["next"].as_str(),
            page["paging"]["cursors"]["after"].as_str(),
        ) {
            (Some(_), Some(cursor)) => after = Some(cursor.to_owned()),
            _ => return Ok(()),
        }
    }
}

async fn hand_written_sync(base: &str, token: &str, query: &str) -> Result<usize, String> {
    let mut items = 0;
    hand_written_pages(&reqwest::Client::new(), base, token, query, |page| {
        items += page["data"].as_array().map_or(0, Vec::len);
    })
    .await?;
    Ok(items)
}

async fn requests_seen(server: &Server) -> Result<u64, String> {
    let health: serde_json::Value = reqwest::get(format!("{}/_mock/health", server.base))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    health["requests"]
        .as_u64()
        .ok_or_else(|| "no request count".to_owned())
}

/// 4. Stream a whole library: requests, time vs the ideal loop, and the client's peak memory.
async fn sync(plan: &Plan, report: &mut Report) -> Result<(), String> {
    let generate = plan.sync_items.to_string();
    let mock = Server::start(&["serve-mock", "--generate", &generate])?;
    let token = mock.info("bulk-token")?;
    let graph = instagram_for(
        &mock.base,
        Arc::new(ReqwestBackend::new().map_err(|e| e.to_string())?),
    )?
    .graph_with_token(AccessToken::new(token.clone()));
    let query = stream_query(&graph)?;
    let (mut ours, mut ideal) = (Vec::new(), Vec::new());
    let mut requests = 0;
    let mut items = 0;
    for _ in 0..plan.rounds {
        let before = requests_seen(&mock).await?;
        let started = Instant::now();
        items = graph
            .my_media()
            .with_children()
            .limit(100)
            .into_stream()
            .try_fold(0usize, |n, _| async move { Ok(n + 1) })
            .await
            .map_err(|e| e.to_string())?;
        ours.push(started.elapsed().as_secs_f64() * 1000.0);
        requests = requests_seen(&mock).await? - before;
        let started = Instant::now();
        let hand = hand_written_sync(&mock.base, &token, &query).await?;
        ideal.push(started.elapsed().as_secs_f64() * 1000.0);
        if hand != items {
            return Err(format!("the loops disagree: {items} vs {hand}"));
        }
    }
    drop(mock);
    let mut rss = Vec::new();
    for count in [plan.rss_small, plan.rss_large] {
        let mock = Server::start(&["serve-mock", "--generate", &count.to_string()])?;
        let token = mock.info("bulk-token")?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let (_, peak) =
            procs::run_measured(Command::new(exe).args(["stream", "--base", &mock.base, "--token", &token]))?;
        rss.push((count, peak));
    }
    let pages = items.div_ceil(100);
    report.verdict(
        "4. one request per page",
        requests as usize == pages,
        format!("{requests} requests for {pages} pages"),
    );
    let flat = rss[1].1 as f64 <= rss[0].1 as f64 * 1.25;
    report.verdict(
        "4. streaming memory flat",
        flat,
        format!(
            "{} for {} vs {} for {} media",
            report::mib(rss[0].1),
            rss[0].0,
            report::mib(rss[1].1),
            rss[1].0
        ),
    );
    let rows = vec![
        vec!["items streamed".to_owned(), items.to_string()],
        vec!["pages (100 items each)".to_owned(), pages.to_string()],
        vec![
            "requests made by the stream".to_owned(),
            format!("{requests} (goal: {pages}, one per page)"),
        ],
        vec![
            "wall time, facade stream (ms)".to_owned(),
            Sample::of(&ours).show(0),
        ],
        vec![
            "wall time, hand-written page loop (ms)".to_owned(),
            Sample::of(&ideal).show(0),
        ],
        vec![
            "ratio (ideal / ours)".to_owned(),
            format!("{:.2}", Sample::of(&ideal).median / Sample::of(&ours).median),
        ],
        vec![
            format!("peak RSS of a client streaming {} media", rss[0].0),
            report::mib(rss[0].1),
        ],
        vec![
            format!("peak RSS of a client streaming {} media", rss[1].0),
            report::mib(rss[1].1),
        ],
    ];
    report.section(
        "4. Whole-library sync",
        &format!(
            "Stream every item of a generated library ({} items, every 10th an album of 3, children by field expansion) \
             from igdisplay-mock, {} rounds alternating with a hand-written reqwest loop over the same pages. Peak RSS \
             is that of a separate client process streaming the whole library. Goals: one request per page; flat memory.",
            plan.sync_items, plan.rounds
        ),
        &["measure", "value"],
        rows,
    );
    Ok(())
}

/// For profiling comparison 3: the facade's `me()` in a loop against `base`.
async fn client_loop(base: &str, requests: usize, hyper: bool) -> Result<(), String> {
    let backend: igdisplay::http::SharedBackend = if hyper {
        Arc::new(HyperBackend::new().map_err(|e| e.to_string())?)
    } else {
        Arc::new(ReqwestBackend::new().map_err(|e| e.to_string())?)
    };
    let graph = instagram_for(base, backend)?.graph_with_token(AccessToken::new("token"));
    for _ in 0..requests {
        std::hint::black_box(graph.me().send().await.map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// The child of comparison 4: streams everything and prints its peak memory.
async fn stream_child(base: &str, token: &str) -> Result<(), String> {
    let graph = instagram_for(base, Arc::new(ReqwestBackend::new().map_err(|e| e.to_string())?))?
        .graph_with_token(AccessToken::new(token));
    let count = graph
        .my_media()
        .with_children()
        .limit(100)
        .into_stream()
        .try_fold(0usize, |n, _| async move { Ok(n + 1) })
        .await
        .map_err(|e| e.to_string())?;
    println!("{count} {}", procs::status_kib(std::process::id(), "VmHWM:"));
    Ok(())
}

/// The hand-written export: list with expansion, download 8 at a time, stream to files.
async fn hand_written_export(base: &str, token: &str, dir: &std::path::Path) -> Result<u64, String> {
    let client = reqwest::Client::new();
    let mut urls = Vec::new();
    let query = "fields=id%2Cmedia_type%2Cmedia_url%2Cthumbnail_url%2Cchildren%7Bid%2Cmedia_url%2Cthumbnail_url%7D&limit=100";
    hand_written_pages(&client, base, token, query, |page| {
        for item in page["data"].as_array().into_iter().flatten() {
            let children = item["children"]["data"].as_array().cloned().unwrap_or_default();
            let sources = if children.is_empty() {
                vec![item.clone()]
            } else {
                children
            };
            for source in sources {
                for key in ["media_url", "thumbnail_url"] {
                    if let Some(url) = source[key].as_str() {
                        urls.push((
                            format!("{}-{key}", source["id"].as_str().unwrap_or("x")),
                            url.to_owned(),
                        ));
                    }
                }
            }
        }
    })
    .await?;
    let total: u64 = futures_util::stream::iter(urls)
        .map(|(name, url)| {
            let client = client.clone();
            let path = dir.join(name);
            async move {
                use tokio::io::AsyncWriteExt;
                let response = client.get(url).send().await.map_err(|e| e.to_string())?;
                let mut file = tokio::fs::File::create(&path).await.map_err(|e| e.to_string())?;
                let mut body = response.bytes_stream();
                let mut bytes = 0u64;
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(|e| e.to_string())?;
                    bytes += chunk.len() as u64;
                    file.write_all(&chunk).await.map_err(|e| e.to_string())?;
                }
                file.sync_all().await.map_err(|e| e.to_string())?;
                Ok::<u64, String>(bytes)
            }
        })
        .buffer_unordered(8)
        .try_fold(0u64, |sum, bytes| async move { Ok(sum + bytes) })
        .await?;
    Ok(total)
}

/// 5. `igdisplay export` vs a hand-written reqwest export, both at concurrency 8.
async fn export(plan: &Plan, cli: &str, report: &mut Report) -> Result<(), String> {
    let mock = Server::start(&["serve-mock", "--generate", &plan.export_items.to_string()])?;
    let token = mock.info("bulk-token")?;
    let work = std::env::temp_dir().join(format!("igdisplay-bench-{}", std::process::id()));
    let token_file = work.join("tokens.json");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let mut import = Command::new(cli)
        .args(["token", "import", "--mock", &mock.base, "--token-file"])
        .arg(&token_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("{cli}: {e}"))?;
    if let Some(mut stdin) = import.stdin.take() {
        std::io::Write::write_all(&mut stdin, token.as_bytes()).map_err(|e| e.to_string())?;
    }
    if !import.wait().map_err(|e| e.to_string())?.success() {
        return Err("igdisplay token import failed".to_owned());
    }
    let (mut ours, mut hand, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0u64;
    for round in 0..plan.rounds {
        let dir = work.join(format!("ours-{round}"));
        let (seconds, peak) = procs::run_measured(
            Command::new(cli)
                .args([
                    "export",
                    "--concurrency",
                    "8",
                    "--mock",
                    &mock.base,
                    "--token-file",
                ])
                .arg(&token_file)
                .arg(&dir),
        )?;
        bytes = dir_bytes(&dir);
        ours.push(bytes as f64 / seconds / 1_048_576.0);
        peaks.push(peak as f64);
        let dir = work.join(format!("hand-{round}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let hand_bytes = hand_written_export(&mock.base, &token, &dir).await?;
        hand.push(hand_bytes as f64 / started.elapsed().as_secs_f64() / 1_048_576.0);
    }
    let _ = std::fs::remove_dir_all(&work);
    let ratio = Sample::of(&ours).median / Sample::of(&hand).median;
    report.verdict(
        "5. export ≥ 0.90 of the hand-written loop",
        ratio >= 0.9,
        format!("{ratio:.2}"),
    );
    report.section(
        "5. Export",
        &format!(
            "Every file of a generated library ({} items, albums' items and video thumbnails included, {:.1} MiB) from \
             igdisplay-mock: the `igdisplay export` binary at concurrency 8 (a new process each round, listing included) \
             vs a hand-written reqwest export in the bench process, same concurrency, {} rounds alternating. \
             Goal: ≥ 0.9 of the hand-written loop; memory bounded by concurrency.",
            plan.export_items,
            bytes as f64 / 1_048_576.0,
            plan.rounds
        ),
        &["exporter", "MiB/s", "peak RSS"],
        vec![
            vec!["igdisplay export".to_owned(), Sample::of(&ours).show(2), report::mib(Sample::of(&peaks).median as u64)],
            vec!["hand-written reqwest loop".to_owned(), Sample::of(&hand).show(2), "(in the bench process)".to_owned()],
            vec!["ratio".to_owned(), format!("{:.2}", Sample::of(&ours).median / Sample::of(&hand).median), String::new()],
        ],
    );
    Ok(())
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name() != "index.json")
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// 6. Crates in the dependency trees.
fn footprint(report: &mut Report) -> Result<(), String> {
    let count = |args: &[&str]| -> Result<(usize, String), String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = Command::new(cargo)
            .args(["tree", "-e", "normal", "--prefix", "none"])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&output.stdout);
        let mut names: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.trim_end_matches(" (*)")
                    .split(" (")
                    .next()
                    .unwrap_or(l)
                    .to_owned()
            })
            .collect();
        names.sort();
        names.dedup();
        let external: Vec<String> = names
            .iter()
            .filter(|n| !n.starts_with("igdisplay"))
            .map(|n| n.split(' ').next().unwrap_or(n).to_owned())
            .collect();
        Ok((names.len(), external.join(", ")))
    };
    let (model, model_crates) = count(&["-p", "igdisplay-model"])?;
    let (http, _) = count(&["-p", "igdisplay-http", "--no-default-features"])?;
    let (http_reqwest, _) = count(&["-p", "igdisplay-http"])?;
    let (facade, _) = count(&["-p", "igdisplay"])?;
    let serde_only = model_crates.split(", ").all(|c| {
        [
            "serde",
            "serde_core",
            "serde_derive",
            "serde_json",
            "itoa",
            "memchr",
            "zmij",
            "ryu",
            "proc-macro2",
            "quote",
            "syn",
            "unicode-ident",
        ]
        .contains(&c)
    });
    report.verdict(
        "6. the model crate pulls in only serde and its JSON",
        serde_only,
        format!("{model} crates"),
    );
    report.section(
        "6. Build footprint",
        "Crates in the normal dependency tree (`cargo tree -e normal`, each crate once, the crate itself included). \
         Goal: the model crate pulls in nothing beyond serde and its JSON.",
        &["crate", "crates in the tree"],
        vec![
            vec!["igdisplay-model".to_owned(), format!("{model} ({model_crates})")],
            vec!["igdisplay-http, no default features".to_owned(), http.to_string()],
            vec!["igdisplay-http, default (reqwest)".to_owned(), http_reqwest.to_string()],
            vec!["igdisplay (facade, default features)".to_owned(), facade.to_string()],
        ],
    );
    Ok(())
}
