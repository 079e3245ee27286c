//! Comparison 5: the `igdisplay export` binary against a hand-written reqwest export.

use crate::Plan;
use crate::common::hand_written_pages;
use crate::procs::{self, Server};
use crate::report::{self, Report, Sample};
use futures_util::{StreamExt, TryStreamExt};
use std::process::Command;

/// The hand-written export: list with expansion, download 8 at a time, stream to files.
pub(crate) async fn hand_written_export(
    base: &str,
    token: &str,
    dir: &std::path::Path,
) -> Result<u64, String> {
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
pub(crate) async fn export(plan: &Plan, cli: &str, report: &mut Report) -> Result<(), String> {
    let mock = Server::start(&[
        "serve-mock",
        "--large",
        "--generate",
        &plan.export_items.to_string(),
    ])?;
    let token = mock.info("bulk-token")?;
    let work = std::env::temp_dir().join(format!("igdisplay-bench-{}", std::process::id()));
    let token_file = import_token(cli, &mock, &token, &work)?;
    let (mut ours, mut hand, mut peaks, mut hand_peaks) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0u64;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    for round in 0..plan.ratio_rounds {
        // Who goes first alternates: the second of a pair starts on a disk still writing back
        // the first one's files.
        for hand_side in [round % 2 == 1, round % 2 == 0] {
            if hand_side {
                let dir = work.join(format!("hand-{round}"));
                let mut hand_export = Command::new(&exe);
                hand_export
                    .args(["hand-export", "--base", &mock.base, "--token", &token, "--dir"])
                    .arg(&dir);
                let (seconds, peak) = procs::run_measured(&mut hand_export)?;
                hand.push(dir_bytes(&dir) as f64 / seconds / 1_048_576.0);
                hand_peaks.push(peak as f64);
                let _ = std::fs::remove_dir_all(&dir);
            } else {
                let dir = work.join(format!("ours-{round}"));
                let (seconds, peak) =
                    procs::run_measured(&mut export_command(cli, &mock, &token_file, &dir))?;
                bytes = dir_bytes(&dir);
                ours.push(bytes as f64 / seconds / 1_048_576.0);
                peaks.push(peak as f64);
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    let ratio = Sample::paired_ratio(&ours, &hand);
    report.verdict(
        "5. export ≥ 0.90 of the hand-written loop",
        ratio >= 0.9,
        format!("{ratio:.2}"),
    );
    report.section(
        "5. Export",
        &format!(
            "Every file of a generated library ({} items, albums' items and video thumbnails included, {:.1} MiB: the \
             mock's photos padded to 1 MiB and its clips to 10 MiB) from igdisplay-mock: the `igdisplay export` binary at concurrency 8 vs a hand-written reqwest export, each a new \
             process each round (runtime start and listing included), same concurrency, {} rounds alternating which goes \
             first, each round's files deleted after it; the ratio is the median of the rounds' ratios. \
             Goal: ≥ 0.9 of the hand-written loop; memory bounded by concurrency (8 downloads in flight, each streamed \
             to its file: far below the 10 MiB of one clip).",
            plan.export_items,
            bytes as f64 / 1_048_576.0,
            plan.ratio_rounds
        ),
        &["exporter", "MiB/s", "peak RSS"],
        vec![
            vec!["igdisplay export".to_owned(), Sample::of(&ours).show(2), report::mib(Sample::of(&peaks).median as u64)],
            vec!["hand-written reqwest loop".to_owned(), Sample::of(&hand).show(2), report::mib(Sample::of(&hand_peaks).median as u64)],
            vec!["ratio".to_owned(), format!("{ratio:.2}"), String::new()],
        ],
    );
    Ok(())
}

/// `igdisplay export` of the mock's library into `dir` at concurrency 8.
fn export_command(cli: &str, mock: &Server, token_file: &std::path::Path, dir: &std::path::Path) -> Command {
    let mut command = Command::new(cli);
    command
        .args([
            "export",
            "--concurrency",
            "8",
            "--mock",
            &mock.base,
            "--token-file",
        ])
        .arg(token_file)
        .arg(dir);
    command
}

/// Imports the mock's bulk token into a token file under `work` with `igdisplay token import`.
pub(crate) fn import_token(
    cli: &str,
    mock: &Server,
    token: &str,
    work: &std::path::Path,
) -> Result<std::path::PathBuf, String> {
    let token_file = work.join("tokens.json");
    std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
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
    Ok(token_file)
}

/// 5b. The peak RSS of `igdisplay export` for a small and a large library: the export holds a
/// page at a time, so the two should match.
pub(crate) fn export_memory(plan: &Plan, cli: &str, report: &mut Report) -> Result<(), String> {
    let (small, large) = plan.export_pages;
    let mut rows = Vec::new();
    let mut peaks = Vec::new();
    for pages in [small, large] {
        let items = pages * 100;
        let mock = Server::start(&["serve-mock", "--generate", &items.to_string()])?;
        let token = mock.info("bulk-token")?;
        let work = std::env::temp_dir().join(format!("igdisplay-bench-rss-{}-{pages}", std::process::id()));
        let token_file = import_token(cli, &mock, &token, &work)?;
        let dir = work.join("export");
        let (seconds, peak) = procs::run_measured(&mut export_command(cli, &mock, &token_file, &dir))?;
        let files = std::fs::read_dir(&dir).map(Iterator::count).unwrap_or(0);
        let _ = std::fs::remove_dir_all(&work);
        peaks.push(peak as f64);
        rows.push(vec![
            format!("{pages} pages ({items} items)"),
            files.to_string(),
            format!("{seconds:.1}"),
            report::mib(peak),
        ]);
    }
    let ratio = peaks[1] / peaks[0];
    report.verdict(
        "5b. export peak RSS at the large library ≤ 1.25 × the small one",
        ratio <= 1.25,
        format!("{ratio:.2}"),
    );
    rows.push(vec![
        "ratio large / small".to_owned(),
        String::new(),
        String::new(),
        format!("{ratio:.2}"),
    ]);
    report.section(
        "5b. Export memory by library size",
        &format!(
            "`igdisplay export` at concurrency 8 of a generated library of {small} and of {large} pages of 100 items, \
             one run each, a new mock each; peak RSS of the export process. Goal: the same peak for both (the export \
             lists, downloads and indexes a page at a time)."
        ),
        &["library", "files written", "seconds", "peak RSS"],
        rows,
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
