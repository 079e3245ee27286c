//! `igdisplay export DIR`: every media item, album items and video thumbnails included.
//!
//! Listing streams the library a page at a time (album items come with their album, one
//! request per page). Downloads run `concurrency` at a time, each streamed to a temporary file
//! that is flushed and renamed, so memory is bounded by the concurrency, not by file sizes,
//! and no partial file ever carries a final name. File names come from the media id alone,
//! so no id can escape DIR. `index.json` describes every item without tokens or signed URLs;
//! it is streamed to a private temporary file an item at a time and put in place at the end,
//! so memory does not grow with the library. A file with its final name is complete (it was
//! renamed only after a flush), so a second run, or a run after a Ctrl-C, skips it without
//! reading any index. A media URL that expired during a long export is fetched again from the
//! Graph API.

use crate::fail::Failure;
use futures_util::{StreamExt, TryStreamExt};
use igdisplay::auth::PrivateFile;
use igdisplay::graph::GraphClient;
use igdisplay::model::{Media, MediaId, MediaType, Timestamp};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The largest file downloaded.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// The media types exported, with the extension their files get.
const FILE_TYPES: [(&str, &str); 6] = [
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/webp", "webp"),
    ("image/heic", "heic"),
    ("video/mp4", "mp4"),
    ("video/quicktime", "mov"),
];

/// The head of `index.json`, written before its items.
#[derive(Debug, Serialize)]
struct Header {
    version: u32,
    user_id: String,
    username: Option<String>,
    exported_at: String,
}

/// `index.json`, written an item at a time: `{header fields, "items": [` then one item per
/// line, then `]}`. Nothing is in place until [`IndexWriter::finish`].
struct IndexWriter {
    file: PrivateFile,
    items: usize,
}

impl IndexWriter {
    fn create(path: &Path, header: &Header) -> Result<Self, Failure> {
        let head = serde_json::to_string(header).map_err(|e| Failure::runtime(e.to_string()))?;
        // `{"version":1,…}` without its closing brace, continued by the items array.
        let head = head.strip_suffix('}').unwrap_or(&head);
        let mut file = PrivateFile::create(path)?;
        write!(file, "{head},\"items\":[")?;
        Ok(Self { file, items: 0 })
    }

    fn push(&mut self, item: &Item) -> Result<(), Failure> {
        let separator = if self.items == 0 { "\n" } else { ",\n" };
        self.file.write_all(separator.as_bytes())?;
        serde_json::to_writer(&mut self.file, item).map_err(|e| Failure::runtime(e.to_string()))?;
        self.items += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<usize, Failure> {
        self.file.write_all(b"\n]}\n")?;
        self.file.commit()?;
        Ok(self.items)
    }
}

/// The ids already exported in this run, for dropping an item a page repeats: numeric ids
/// (all of Instagram's) as a number, 8 bytes each, so the set stays small for any library.
#[derive(Debug, Default)]
struct Seen {
    numeric: HashSet<u64>,
    other: HashSet<Box<str>>,
}

impl Seen {
    /// `true` the first time `id` is seen.
    fn insert(&mut self, id: &str) -> bool {
        match id.parse::<u64>() {
            Ok(n) if n.to_string() == id => self.numeric.insert(n),
            _ => self.other.insert(id.into()),
        }
    }
}

/// One media item in the index.
#[derive(Clone, Debug, Serialize)]
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
#[derive(Clone, Debug, Serialize)]
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
/// their files downloaded `concurrency` at a time, and their entries appended to the index,
/// before the next page is read. Memory holds one page and a set of ids, whatever the
/// library's size; an export stopped midway resumes with the files it completed. An id seen
/// twice (a page repeated by the API) is exported once. When a download or a page fails, the
/// rest still finishes and the index records every complete file; then the first failure is
/// returned.
pub(crate) async fn export(graph: &GraphClient, dir: &Path, concurrency: usize) -> Result<Summary, Failure> {
    tokio::fs::create_dir_all(dir).await?;
    // Into an empty folder nothing can be resumed: no file is looked for before its download.
    let resumable = remove_leftovers(dir).await;
    let index_path = dir.join("index.json");
    let me = graph.me().send().await?;
    let mut index = IndexWriter::create(
        &index_path,
        &Header {
            version: 1,
            user_id: me.id.to_string(),
            username: me.username,
            exported_at: Timestamp::from_system_time(std::time::SystemTime::now()).to_rfc3339(),
        },
    )?;
    let client = download_client()?;
    let progress = Progress::new();
    let counts = Counts::default();
    let mut seen = Seen::default();
    let mut failure = None;
    let mut stream = graph
        .my_media()
        .all_fields()
        .with_children()
        .limit(100)
        .into_stream()
        .try_chunks(CHUNK);
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                failure.get_or_insert(e.1.into());
                break;
            }
        };
        let mut items = Vec::new();
        let mut jobs = Vec::new();
        for media in chunk.iter().filter(|m| seen.insert(m.id.as_str())) {
            let (item, item_jobs) = plan(media);
            items.push(item);
            jobs.extend(item_jobs);
        }
        progress.planned(jobs.len());
        let files = download(
            &client,
            graph,
            Target { dir, resumable },
            jobs,
            concurrency,
            &progress,
            &counts,
            &mut failure,
        )
        .await;
        for item in &mut items {
            attach(item, &files);
            index.push(item)?;
        }
    }
    progress.finish();
    let items = index.finish()?;
    let summary = Summary {
        items,
        downloaded: counts.downloaded.load(Ordering::Relaxed),
        skipped: counts.skipped.load(Ordering::Relaxed),
        bytes: counts.bytes.load(Ordering::Relaxed),
        index: index_path,
    };
    match failure {
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

/// Where files go: the folder, and whether it held files before this run (complete files
/// of an earlier run are skipped; an empty folder needs no look before each download).
#[derive(Clone, Copy, Debug)]
struct Target<'a> {
    dir: &'a Path,
    resumable: bool,
}

/// Downloads `jobs`, `concurrency` at a time; the files fetched by stem. The first failure
/// (of the whole export) is kept in `failure`.
#[allow(clippy::too_many_arguments)]
async fn download(
    client: &reqwest::Client,
    graph: &GraphClient,
    target: Target<'_>,
    jobs: Vec<Job>,
    concurrency: usize,
    progress: &Progress,
    counts: &Counts,
    failure: &mut Option<Failure>,
) -> HashMap<String, Vec<FileEntry>> {
    let results: Vec<Result<(String, FileEntry), Failure>> = futures_util::stream::iter(jobs)
        .map(|job| async move {
            let result = fetch(client, graph, target, &job).await;
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
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    files
}

/// Removes what an interrupted run left behind: partial downloads (`.{name}.part`) and
/// unfinished indexes (`.index.json.{random}.tmp`). Nothing else in `dir` is touched. Whether
/// anything else is there (a folder that cannot be read counts as holding files).
async fn remove_leftovers(dir: &Path) -> bool {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return true;
    };
    let mut others = false;
    loop {
        let entry = match entries.next_entry().await {
            Ok(Some(entry)) => entry,
            Ok(None) => return others,
            Err(_) => return true,
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with('.')
            && (name.ends_with(".part") || (name.starts_with(".index.json.") && name.ends_with(".tmp")));
        if ours {
            let _ = tokio::fs::remove_file(entry.path()).await;
        } else {
            others = true;
        }
    }
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

/// The complete file a previous run saved for `job`, if any: a file carries its final name
/// only once it is whole.
async fn existing(dir: &Path, job: &Job) -> Option<FileEntry> {
    for (content_type, extension) in FILE_TYPES {
        let name = format!("{}.{extension}", job.stem);
        if let Ok(meta) = tokio::fs::symlink_metadata(dir.join(&name)).await
            && meta.is_file()
        {
            return Some(FileEntry {
                name,
                role: role(job).to_owned(),
                bytes: meta.len(),
                content_type: content_type.to_owned(),
            });
        }
    }
    None
}

fn role(job: &Job) -> &'static str {
    if job.thumbnail { "thumbnail" } else { "media" }
}

/// How long one file's download may take in all (a large video over a slow line included).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

fn download_client() -> Result<reqwest::Client, Failure> {
    // The backends' TLS configuration: the system's trust store is read once per process.
    let tls = igdisplay::http::rustls_client_config(&[]).map_err(|e| {
        Failure::runtime(format!(
            "cannot set up TLS for downloads: {}",
            crate::fail::chain(&e)
        ))
    })?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
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
    target: Target<'_>,
    job: &Job,
) -> Result<(FileEntry, bool), Failure> {
    let dir = target.dir;
    if target.resumable
        && let Some(entry) = existing(dir, job).await
    {
        return Ok((entry, false));
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
    let content_type = if content_type == "image/jpg" {
        "image/jpeg".to_owned()
    } else {
        content_type
    };
    let Some((_, extension)) = FILE_TYPES.iter().find(|(known, _)| *known == content_type) else {
        return Err(Failure::runtime(format!(
            "media {} is not an image or a video (content type `{content_type}`)",
            job.media
        )));
    };
    let name = format!("{}.{extension}", job.stem);
    let temp = dir.join(format!(".{name}.part"));
    let written = async {
        // A leftover (or a link planted under this name) is removed, never written through.
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        let file = match options.open(&temp).await {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                tokio::fs::remove_file(&temp).await?;
                options.open(&temp).await?
            }
            opened => opened?,
        };
        let (file, total) =
            copy_capped(response.bytes_stream(), file.into_std().await, MAX_FILE_BYTES).await?;
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(std::io::Error::other)??;
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
    Ok((
        FileEntry {
            name,
            role: role(job).to_owned(),
            bytes,
            content_type,
        },
        true,
    ))
}

/// Bytes gathered before they go to the disk in one blocking write: few hand-offs to the
/// blocking pool, and memory bounded by the concurrency (per download, a batch being written
/// and one being gathered).
const WRITE_BATCH: usize = 256 * 1024;

/// Writes `body` to `sink` on the blocking pool, the chunks as they came (never copied into a
/// buffer, as `tokio::fs::File` would), one batch written while the next is read. Fails once
/// more than `cap` bytes have come (a server that never stops sending cannot fill the disk),
/// after the write under way has ended. The sink back, and the byte count.
async fn copy_capped<W, E>(
    body: impl futures_util::Stream<Item = Result<bytes::Bytes, E>>,
    sink: W,
    cap: u64,
) -> std::io::Result<(W, u64)>
where
    W: std::io::Write + Send + 'static,
    E: std::error::Error + 'static,
{
    let mut writer = BlockingWriter {
        idle: Some(sink),
        busy: None,
    };
    let copied = async {
        let mut body = std::pin::pin!(body);
        let (mut total, mut batch, mut batched) = (0u64, Vec::new(), 0usize);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| std::io::Error::other(crate::fail::chain(&e)))?;
            total = total.saturating_add(chunk.len() as u64);
            if total > cap {
                return Err(std::io::Error::other(format!(
                    "the file is larger than {} MiB",
                    cap / (1024 * 1024)
                )));
            }
            batched = batched.saturating_add(chunk.len());
            batch.push(chunk);
            if batched >= WRITE_BATCH {
                writer.write(std::mem::take(&mut batch)).await?;
                batched = 0;
            }
        }
        writer.write(batch).await?;
        Ok(total)
    }
    .await;
    // The last write ends before anything else happens to the file, failure or not.
    let sink = writer.ready().await;
    let total = copied?;
    Ok((sink?, total))
}

/// A sink written on the blocking pool, one batch at a time.
struct BlockingWriter<W> {
    idle: Option<W>,
    busy: Option<tokio::task::JoinHandle<std::io::Result<W>>>,
}

impl<W: std::io::Write + Send + 'static> BlockingWriter<W> {
    /// The sink, once the write under way (if any) has ended.
    async fn ready(&mut self) -> std::io::Result<W> {
        if let Some(sink) = self.idle.take() {
            return Ok(sink);
        }
        match self.busy.take() {
            Some(job) => job.await.map_err(std::io::Error::other)?,
            None => Err(std::io::Error::other("an earlier write failed")),
        }
    }

    /// Starts writing `chunks` once the previous batch is written.
    async fn write(&mut self, chunks: Vec<bytes::Bytes>) -> std::io::Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let mut sink = self.ready().await?;
        self.busy = Some(tokio::task::spawn_blocking(move || {
            for chunk in &chunks {
                sink.write_all(chunk)?;
            }
            Ok(sink)
        }));
        Ok(())
    }
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

    /// A sink whose bytes the test still sees after the copy took it.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn copy(chunks: Vec<Vec<u8>>, cap: u64) -> (Shared, std::io::Result<u64>) {
        let chunks = chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c)));
        let sink = Shared::default();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let copied = runtime.block_on(copy_capped(futures_util::stream::iter(chunks), sink.clone(), cap));
        (sink, copied.map(|(_, total)| total))
    }

    #[test]
    fn a_body_past_the_cap_is_refused_before_it_is_written_whole() {
        let (written, copied) = copy(vec![vec![7u8; 1024 * 1024]; 4], 3 * 1024 * 1024);
        assert_eq!(copied.unwrap_err().to_string(), "the file is larger than 3 MiB");
        let written = written.0.lock().unwrap().len();
        assert_eq!(written, 3 * 1024 * 1024, "the fourth chunk was not written");
    }

    #[test]
    fn small_chunks_are_written_in_order_and_whole() {
        let chunks: Vec<Vec<u8>> = (0..2000u32).map(|i| i.to_be_bytes().repeat(50)).collect();
        let expected: Vec<u8> = chunks.concat();
        let (written, copied) = copy(chunks, u64::MAX);
        assert_eq!(copied.unwrap(), expected.len() as u64);
        assert!(*written.0.lock().unwrap() == expected, "the bytes differ");
    }

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
