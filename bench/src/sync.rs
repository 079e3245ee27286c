//! Comparison 4: streaming a whole library (requests per page, time against the hand-written
//! page loop, the client's peak memory), and the child process that streams it.

use crate::Plan;
use crate::common::{hand_written_pages, instagram_for, requests_seen, stream_query};
use crate::procs::{self, Server};
use crate::report::{self, Report, Sample};
use futures_util::TryStreamExt;
use igdisplay::http::ReqwestBackend;
use igdisplay::model::AccessToken;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

async fn hand_written_sync(base: &str, token: &str, query: &str) -> Result<usize, String> {
    let mut items = 0;
    hand_written_pages(&reqwest::Client::new(), base, token, query, |page| {
        items += page["data"].as_array().map_or(0, Vec::len);
    })
    .await?;
    Ok(items)
}

/// 4. Stream a whole library: requests, time vs the ideal loop, and the client's peak memory.
pub(crate) async fn sync(plan: &Plan, report: &mut Report) -> Result<(), String> {
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
        items = count_library(&graph).await?;
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

/// The child of comparison 4: streams everything and prints its peak memory.
pub(crate) async fn stream_child(base: &str, token: &str) -> Result<(), String> {
    let graph = instagram_for(base, Arc::new(ReqwestBackend::new().map_err(|e| e.to_string())?))?
        .graph_with_token(AccessToken::new(token));
    let count = count_library(&graph).await?;
    println!("{count} {}", procs::status_kib(std::process::id(), "VmHWM:"));
    Ok(())
}

/// Streams the whole library the way comparison 4 measures it (pages of 100, children by
/// expansion) and counts the items.
async fn count_library(graph: &igdisplay::graph::GraphClient) -> Result<usize, String> {
    graph
        .my_media()
        .with_children()
        .limit(100)
        .into_stream()
        .try_fold(0usize, |n, _| async move { Ok(n + 1) })
        .await
        .map_err(|e| e.to_string())
}
