//! `igdisplay export DIR`: every media item, album items and video thumbnails included.
//!
//! Listing streams the library a page at a time (album items come with their album, one
//! request per page). Downloads run `concurrency` at a time, each streamed to a temporary file
//! that is flushed and renamed, so memory is bounded by the concurrency, not by file sizes,
//! and no partial file ever carries a final name. File names come from the media id alone,
//! so no id can escape DIR. `index.json` describes every item without tokens or signed URLs;
//! a second run skips files whose size matches the index. A media URL that expired during a
//! long export is fetched again from the Graph API.

use crate::fail::Failure;
use crate::files::write_private;
use futures_util::{StreamExt, TryStreamExt};
use igdisplay::graph::GraphClient;
use igdisplay::model::{Media, MediaId, MediaType, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The largest file downloaded.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// `index.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    version: u32,
    user_id: String,
    username: Option<String>,
    exported_at: String,
    items: Vec<Item>,
}

/// One media item in the index.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Item {
    id: String,
    media_type: Option<String>,
    caption: Option<String>,
    timestamp: Option<String>,
    permalink: Option<String>,
    files: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    children: Vec<Item>,
}

/// One downloaded file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FileEntry {
    name: String,
    role: String,
    bytes: u64,
    content_type: String,
}

/// A file to fetch.
#[derive(Clone, Debug)]
struct Job {
    /// Whose URL it is (an item or an album item).
    media: MediaId,
    /// The album, for items of one (to re-fetch an expired URL).
    album: Option<MediaId>,
    thumbnail: bool,
    url: String,
    stem: String,
}

/// What an export did.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Summary {
    pub(crate) items: usize,
    pub(crate) downloaded: usize,
    pub(crate) skipped: usize,
    pub(crate) bytes: u64,
    pub(crate) index: PathBuf,
}

/// Items listed and downloaded at a time: one page of the media edge.
const CHUNK: usize = 100;

/// Exports the graph user's media to `dir`, a page at a time: the items of a page are listed,
/// their files downloaded `concurrency` at a time, and `index.json` rewritten, before the next
/// page is read. Memory holds one page (and the small index), whatever the library's size, and
/// an export stopped midway resumes from the last page written. An id seen twice (a page
/// repeated by the API) is exported once. When a download fails, the others still finish and
/// the index records every complete file; then the first failure is returned.
pub(crate) async fn export(graph: &GraphClient, dir: &Path, concurrency: usize) -> Result<Summary, Failure> {
    tokio::fs::create_dir_all(dir).await?;
    let index_path = dir.join("index.json");
    let previous = previous_sizes(&index_path);
    let me = graph.me().send().await?;
    let mut index = Index {
        version: 1,
        user_id: me.id.to_string(),
        username: me.username,
        exported_at: String::new(),
        items: Vec::new(),
    };
    let client = download_client()?;
    let progress = Progress::new();
    let counts = Counts::default();
    let mut seen = std::collections::HashSet::new();
    let mut failures = Vec::new();
    let mut stream = graph
        .my_media()
        .all_fields()
        .with_children()
        .limit(100)
        .into_stream()
        .try_chunks(CHUNK);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.1)?;
        let mut items = Vec::new();
        let mut jobs = Vec::new();
        for media in chunk.iter().filter(|m| seen.insert(m.id.as_str().to_owned())) {
            let (item, item_jobs) = plan(media);
            items.push(item);
            jobs.extend(item_jobs);
        }
        progress.planned(jobs.len());
        let files = download(
            &client,
            graph,
            dir,
            jobs,
            &previous,
            concurrency,
            &progress,
            &counts,
            &mut failures,
        )
        .await;
        for item in &mut items {
            attach(item, &files);
        }
        index.items.extend(items);
        write_index(&index_path, &mut index)?;
    }
    progress.finish();
    write_index(&index_path, &mut index)?;
    let summary = Summary {
        items: index.items.len(),
        downloaded: counts.downloaded.load(Ordering::Relaxed),
        skipped: counts.skipped.load(Ordering::Relaxed),
        bytes: counts.bytes.load(Ordering::Relaxed),
        index: index_path,
    };
    match failures.into_iter().next() {
        Some(first) => Err(first.hint("run the same export again: complete files are kept and skipped")),
        None => Ok(summary),
    }
}

/// What the downloads did.
#[derive(Debug, Default)]
struct Counts {
    downloaded: AtomicUsize,
    skipped: AtomicUsize,
    bytes: AtomicU64,
}

/// Downloads `jobs`, `concurrency` at a time; the files fetched by stem, failures appended.
#[allow(clippy::too_many_arguments)]
async fn download(
    client: &reqwest::Client,
    graph: &GraphClient,
    dir: &Path,
    jobs: Vec<Job>,
    previous: &HashMap<String, FileEntry>,
    concurrency: usize,
    progress: &Progress,
    counts: &Counts,
    failures: &mut Vec<Failure>,
) -> HashMap<String, Vec<FileEntry>> {
    let results: Vec<Result<(String, FileEntry), Failure>> = futures_util::stream::iter(jobs)
        .map(|job| async move {
            let result = fetch(client, graph, dir, &job, previous).await;
            match &result {
                Ok((entry, true)) => {
                    counts.downloaded.fetch_add(1, Ordering::Relaxed);
                    counts.bytes.fetch_add(entry.bytes, Ordering::Relaxed);
                }
                Ok((_, false)) => {
                    counts.skipped.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {}
            }
            progress.step(&job.stem);
            result.map(|(entry, _)| (job.stem, entry))
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut files: HashMap<String, Vec<FileEntry>> = HashMap::new();
    for result in results {
        match result {
            Ok((stem, entry)) => files
                .entry(stem.trim_end_matches("_thumb").to_owned())
                .or_default()
                .push(entry),
            Err(failure) => failures.push(failure),
        }
    }
    files
}

/// Rewrites `index.json` with what is exported so far (no token, no signed URL in it).
fn write_index(path: &Path, index: &mut Index) -> Result<(), Failure> {
    index.exported_at = Timestamp::from_system_time(std::time::SystemTime::now()).to_rfc3339();
    let json = serde_json::to_vec_pretty(index).map_err(|e| Failure::runtime(e.to_string()))?;
    write_private(path, &json)?;
    Ok(())
}

fn attach(item: &mut Item, files: &HashMap<String, Vec<FileEntry>>) {
    if let Some(entries) = files.get(&stem_of(&item.id)) {
        item.files = entries.clone();
        item.files.sort_by(|a, b| a.role.cmp(&b.role));
    }
    for child in &mut item.children {
        attach(child, files);
    }
}

/// The index entry and the downloads of one media item.
fn plan(media: &Media) -> (Item, Vec<Job>) {
    let mut jobs = Vec::new();
    let mut children = Vec::new();
    let job = |m: &Media, album: Option<&MediaId>, jobs: &mut Vec<Job>| {
        if let Some(url) = &m.media_url {
            jobs.push(Job {
                media: m.id.clone(),
                album: album.cloned(),
                thumbnail: false,
                url: url.clone(),
                stem: stem_of(m.id.as_str()),
            });
        }
        if let Some(url) = &m.thumbnail_url {
            jobs.push(Job {
                media: m.id.clone(),
                album: album.cloned(),
                thumbnail: true,
                url: url.clone(),
                stem: format!("{}_thumb", stem_of(m.id.as_str())),
            });
        }
    };
    if media.media_type == Some(MediaType::CarouselAlbum) && !media.children().is_empty() {
        for child in media.children() {
            job(child, Some(&media.id), &mut jobs);
            children.push(entry(child));
        }
    } else {
        job(media, None, &mut jobs);
    }
    let mut item = entry(media);
    item.children = children;
    (item, jobs)
}

fn entry(media: &Media) -> Item {
    Item {
        id: media.id.to_string(),
        media_type: media.media_type.as_ref().map(ToString::to_string),
        caption: media.caption.clone(),
        timestamp: media.timestamp.map(Timestamp::to_rfc3339),
        permalink: media.permalink.clone(),
        files: Vec::new(),
        children: Vec::new(),
    }
}

/// A file-name stem from an id: only `[A-Za-z0-9_-]`, at most 64 characters, with a hash when
/// anything had to go, so hostile ids (`../x`, NUL, `CON`, very long) cannot escape or collide.
fn stem_of(id: &str) -> String {
    let clean: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect();
    if clean == id && !clean.is_empty() && clean.bytes().all(|b| b.is_ascii_digit()) {
        return clean;
    }
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("item-{}-{hash:016x}", clean.chars().take(32).collect::<String>())
}

/// The files a previous export recorded, by file-name stem.
fn previous_sizes(index: &Path) -> HashMap<String, FileEntry> {
    let Ok(bytes) = std::fs::read(index) else {
        return HashMap::new();
    };
    let Ok(index) = serde_json::from_slice::<Index>(&bytes) else {
        return HashMap::new();
    };
    let mut files = HashMap::new();
    let mut stack: Vec<Item> = index.items;
    while let Some(item) = stack.pop() {
        for file in item.files {
            if let Some((stem, _)) = file.name.rsplit_once('.') {
                files.insert(stem.to_owned(), file.clone());
            }
        }
        stack.extend(item.children);
    }
    files
}

/// How long one file's download may take in all (a large video over a slow line included).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

fn download_client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .redirect(download_redirects())
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
        .map_err(|e| {
            Failure::runtime(format!(
                "cannot build the download client: {}",
                crate::fail::chain(&e)
            ))
        })
}

/// Where a media download may be redirected: at most 5 times, to https anywhere but a
/// private, link-local or loopback address, and to plain http only from loopback to loopback
/// (a mock). A CDN link cannot send the exporter to a cloud metadata service, an intranet host,
/// or another scheme.
fn download_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error("too many redirects");
        }
        let from_loopback = attempt.previous().last().is_some_and(is_loopback);
        let to = attempt.url();
        let allowed = match to.scheme() {
            "https" => from_loopback || !is_internal(to),
            "http" => from_loopback && is_loopback(to),
            _ => false,
        };
        if allowed {
            attempt.follow()
        } else {
            attempt.error("a download was redirected to a scheme or address that is not allowed")
        }
    })
}

/// The address a URL names, when its host is an IP address.
fn host_ip(url: &reqwest::Url) -> Option<std::net::IpAddr> {
    url.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match host_ip(url) {
        Some(ip) => ip.is_loopback(),
        None => url
            .host_str()
            .is_some_and(|name| name.eq_ignore_ascii_case("localhost")),
    }
}

/// Whether `url` names a private, link-local, loopback or unspecified address.
fn is_internal(url: &reqwest::Url) -> bool {
    match host_ip(url) {
        Some(std::net::IpAddr::V4(ip)) => {
            ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified()
        }
        Some(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xfe00) == 0xfc00
        }
        None => url
            .host_str()
            .is_none_or(|name| name.eq_ignore_ascii_case("localhost")),
    }
}

/// Downloads one file (or finds it complete from a previous run). `true` when downloaded.
async fn fetch(
    client: &reqwest::Client,
    graph: &GraphClient,
    dir: &Path,
    job: &Job,
    previous: &HashMap<String, FileEntry>,
) -> Result<(FileEntry, bool), Failure> {
    if let Some(entry) = previous.get(&job.stem)
        && tokio::fs::metadata(dir.join(&entry.name))
            .await
            .is_ok_and(|m| m.len() == entry.bytes)
    {
        return Ok((entry.clone(), false));
    }
    let mut response = client.get(&job.url).send().await.map_err(download_error)?;
    if response.status() == reqwest::StatusCode::FORBIDDEN {
        // The signed URL expired during the export: ask the Graph API for a fresh one.
        let url = fresh_url(graph, job).await?;
        response = client.get(url).send().await.map_err(download_error)?;
    }
    if !response.status().is_success() {
        return Err(Failure::runtime(format!(
            "downloading media {} failed with status {}",
            job.media,
            response.status()
        )));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let extension = match content_type.as_str() {
        "image/jpeg" | "image/jpg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/heic" => "heic",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        other => {
            return Err(Failure::runtime(format!(
                "media {} is not an image or a video (content type `{other}`)",
                job.media
            )));
        }
    };
    let name = format!("{}.{extension}", job.stem);
    let temp = dir.join(format!(".{name}.part"));
    let written = async {
        let mut file = tokio::fs::File::create(&temp).await?;
        let mut total = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| std::io::Error::other(crate::fail::chain(&e)))?;
            total += chunk.len() as u64;
            if total > MAX_FILE_BYTES {
                return Err(std::io::Error::other("the file is larger than 4 GiB"));
            }
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        tokio::fs::rename(&temp, dir.join(&name)).await?;
        Ok::<u64, std::io::Error>(total)
    }
    .await;
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(Failure::runtime(format!(
                "saving media {} failed: {e}",
                job.media
            )));
        }
    };
    let role = if job.thumbnail { "thumbnail" } else { "media" };
    Ok((
        FileEntry {
            name,
            role: role.to_owned(),
            bytes,
            content_type,
        },
        true,
    ))
}

fn download_error(error: reqwest::Error) -> Failure {
    Failure::runtime(format!(
        "a download failed: {}",
        crate::fail::chain(&error.without_url())
    ))
}

async fn fresh_url(graph: &GraphClient, job: &Job) -> Result<String, Failure> {
    let owner = job.album.as_ref().unwrap_or(&job.media);
    let media = graph.media(owner).with_children().send().await?;
    let target = if job.album.is_some() {
        media.children().iter().find(|c| c.id == job.media).cloned()
    } else {
        Some(media)
    };
    let url = target.and_then(|m| {
        if job.thumbnail {
            m.thumbnail_url
        } else {
            m.media_url
        }
    });
    url.ok_or_else(|| Failure::runtime(format!("media {} no longer has a URL", job.media)))
}

/// A progress bar on a terminal, plain lines otherwise. The total grows as pages are listed.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: AtomicUsize,
    done: AtomicUsize,
}

impl Progress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {msg}") {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            total: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        }
    }

    /// `files` more files are planned.
    fn planned(&self, files: usize) {
        let total = self
            .total
            .fetch_add(files, Ordering::Relaxed)
            .saturating_add(files);
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    fn step(&self, name: &str) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => {
                bar.set_message(name.to_owned());
                bar.inc(1);
            }
            None if done.is_multiple_of(25) => {
                eprintln!("exported {done}/{} files", self.total.load(Ordering::Relaxed))
            }
            None => {}
        }
    }

    fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!(
                "exported {}/{} files",
                self.done.load(Ordering::Relaxed),
                self.total.load(Ordering::Relaxed)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ids_never_escape_or_collide() {
        assert_eq!(stem_of("17895695668004550"), "17895695668004550");
        for hostile in [
            "../../etc/passwd",
            "a/b",
            "CON",
            "x\0y",
            "",
            &"9".repeat(500),
            "..",
            "C:\\x",
        ] {
            let stem = stem_of(hostile);
            assert!(
                stem.starts_with("item-") && stem.len() <= 90,
                "{hostile:?} -> {stem}"
            );
            assert!(
                stem.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            );
        }
        assert_ne!(stem_of("a/b"), stem_of("ab"));
    }
}

#[cfg(test)]
mod redirect_tests {
    use super::*;

    fn url(text: &str) -> reqwest::Url {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_recognized() {
        for internal in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/x",
            "https://192.168.1.1/x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://localhost/x",
        ] {
            assert!(is_internal(&url(internal)), "{internal}");
        }
        assert!(!is_internal(&url("https://scontent.cdninstagram.com/v/x.jpg")));
        assert!(!is_internal(&url("https://93.184.216.34/x")));
    }
}
