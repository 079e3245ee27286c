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
//! reading any index. Every file comes through the one media downloader (Instagram's CDN, or
//! the mock's origin, nothing else); a link it refuses (another host, `file:`) marks its item
//! unavailable in the index and the run goes on. Links that expired during a long export are
//! renewed by listing their page again, one request for the page.

use crate::fail::Failure;
use futures_util::StreamExt;
use igdisplay::auth::PrivateFile;
use igdisplay::graph::{GraphClient, Pages};
use igdisplay::model::{Media, MediaId, MediaType, Timestamp};
use igdisplay_mirror::{DownloadError, Downloader};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The largest file downloaded (a long video): 4 GiB, less where memory addresses are smaller.
pub(crate) const MAX_FILE_BYTES: usize = match 4usize.checked_mul(1 << 30) {
    Some(bytes) => bytes,
    None => usize::MAX,
};

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
    /// The file that shows it (`Media::picture_url`): an image's own, a video's poster, an
    /// album's first item's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    picture: Option<String>,
    /// Why a video cannot be played (`Media::playback`): Meta sent no file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unplayable: Option<String>,
    /// Why its file was not downloaded: a link the downloader refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unavailable: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    children: Vec<Item>,
    /// Which of its files is the picture (a role), when it has one of its own.
    #[serde(skip)]
    picture_role: Option<&'static str>,
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
    pub(crate) unavailable: usize,
    pub(crate) bytes: u64,
    pub(crate) index: PathBuf,
}

/// Items listed a page.
const PAGE: u32 = 100;

/// Exports the graph user's media to `dir`, a page at a time: the items of a page are listed,
/// their files downloaded `concurrency` at a time through `downloader`, and their entries
/// appended to the index, before the next page is read. Memory holds one page and a set of
/// ids, whatever the library's size; an export stopped midway resumes with the files it
/// completed. An id seen twice (a page repeated by the API) is exported once. A link the
/// downloader refuses marks its item unavailable and fails nothing; when a download or a page
/// fails otherwise, the rest still finishes and the index records every complete file, then
/// the first failure is returned.
pub(crate) async fn export(
    graph: &GraphClient,
    downloader: &Downloader,
    dir: &Path,
    concurrency: usize,
) -> Result<Summary, Failure> {
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
            // On the client's clock: a mock's time under --mock, like every date it sends.
            exported_at: Timestamp::from_system_time(graph.clock().now()).to_rfc3339(),
        },
    )?;
    let run = Run {
        downloader,
        target: Target { dir, resumable },
        concurrency: concurrency.max(1),
        progress: Progress::new(),
        counts: Counts::default(),
    };
    let mut seen = Seen::default();
    let mut failure = None;
    let mut pages = graph.my_media().all_fields().with_children().limit(PAGE).pages();
    while let Some(page) = pages.next_page().await {
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                failure.get_or_insert(e.into());
                break;
            }
        };
        let mut items = Vec::new();
        let mut jobs = Vec::new();
        for media in page.items.iter().filter(|m| seen.insert(m.id.as_str())) {
            let (item, item_jobs) = plan(media);
            items.push(item);
            jobs.extend(item_jobs);
        }
        run.progress.planned(jobs.len());
        let mut done = run.download(jobs).await;
        if !done.expired.is_empty() {
            run.renew(&mut pages, &mut done, &mut failure).await;
        }
        if let Some(first) = done.failure.take() {
            failure.get_or_insert(first);
        }
        for item in &mut items {
            done.attach(item);
            index.push(item)?;
        }
    }
    run.progress.finish();
    let items = index.finish()?;
    let counts = &run.counts;
    let summary = Summary {
        items,
        downloaded: counts.downloaded.load(Ordering::Relaxed),
        skipped: counts.skipped.load(Ordering::Relaxed),
        unavailable: counts.unavailable.load(Ordering::Relaxed),
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
    unavailable: AtomicUsize,
    bytes: AtomicU64,
}

/// Where files go: the folder, and whether it held files before this run (complete files
/// of an earlier run are skipped; an empty folder needs no look before each download).
#[derive(Clone, Copy, Debug)]
struct Target<'a> {
    dir: &'a Path,
    resumable: bool,
}

/// What one export run downloads with.
struct Run<'a> {
    downloader: &'a Downloader,
    target: Target<'a>,
    concurrency: usize,
    progress: Progress,
    counts: Counts,
}

/// What the downloads of a page did.
#[derive(Debug, Default)]
struct Done {
    /// The files saved (or found complete), by item stem.
    files: HashMap<String, Vec<FileEntry>>,
    /// Why an item's file was refused, by item stem.
    unavailable: HashMap<String, String>,
    /// The jobs whose link had expired.
    expired: Vec<Job>,
    /// The first failure.
    failure: Option<Failure>,
}

impl Done {
    fn absorb(&mut self, other: Done) {
        for (stem, entries) in other.files {
            self.files.entry(stem).or_default().extend(entries);
        }
        for (stem, reason) in other.unavailable {
            self.unavailable.entry(stem).or_insert(reason);
        }
        self.expired.extend(other.expired);
        if let Some(failure) = other.failure {
            self.failure.get_or_insert(failure);
        }
    }

    fn attach(&self, item: &mut Item) {
        let stem = stem_of(&item.id);
        if let Some(entries) = self.files.get(&stem) {
            item.files = entries.clone();
            item.files.sort_by(|a, b| a.role.cmp(&b.role));
        }
        item.unavailable = self.unavailable.get(&stem).cloned();
        for child in &mut item.children {
            self.attach(child);
        }
        item.picture = match (item.picture_role, item.children.first()) {
            // An album: its first item's picture (its own files are its items').
            (_, Some(first)) => first.picture.clone(),
            (Some(role), None) => item.files.iter().find(|f| f.role == role).map(|f| f.name.clone()),
            (None, None) => None,
        };
    }
}

/// What became of one file.
enum Fetched {
    /// Saved (`true`) or found complete from an earlier run (`false`).
    Saved(FileEntry, bool),
    /// Its link expired.
    Expired,
    /// The downloader refused its link, for this reason.
    Refused(String),
}

impl Run<'_> {
    /// Downloads `jobs`, `concurrency` at a time.
    /// The page's files whose links expired, downloaded again from the page listed once more
    /// (links expire during a long export; one request for the page, never one per item).
    /// A file no longer listed, or whose fresh link expired too, is the run's failure.
    async fn renew(&self, pages: &mut Pages, done: &mut Done, failure: &mut Option<Failure>) {
        let expired: HashSet<String> = done.expired.drain(..).map(|job| job.stem).collect();
        let fresh = match pages.again().await {
            Ok(fresh) => fresh,
            Err(e) => {
                failure.get_or_insert(e.into());
                return;
            }
        };
        let jobs: Vec<Job> = fresh
            .items
            .iter()
            .flat_map(|media| plan(media).1)
            .filter(|job| expired.contains(&job.stem))
            .collect();
        let renewed: HashSet<&str> = jobs.iter().map(|job| job.stem.as_str()).collect();
        for stem in expired.iter().filter(|stem| !renewed.contains(stem.as_str())) {
            self.progress.step(stem);
            failure.get_or_insert_with(|| {
                Failure::runtime(format!("the file {stem} is no longer listed with a link"))
            });
        }
        let again = self.download(jobs).await;
        for job in &again.expired {
            self.progress.step(&job.stem);
            failure.get_or_insert_with(|| {
                Failure::runtime(format!("the link of media {} expired again", job.media))
            });
        }
        done.absorb(again);
    }

    async fn download(&self, jobs: Vec<Job>) -> Done {
        let results: Vec<(Job, Result<Fetched, Failure>)> = futures_util::stream::iter(jobs)
            .map(|job| async move {
                let result = fetch(self.downloader, self.target, &job).await;
                (job, result)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut done = Done::default();
        for (job, result) in results {
            let item = job.stem.trim_end_matches("_thumb").to_owned();
            match result {
                Ok(Fetched::Expired) => {
                    done.expired.push(job);
                    continue;
                }
                Ok(Fetched::Saved(entry, downloaded)) => {
                    let count = if downloaded {
                        self.counts.bytes.fetch_add(entry.bytes, Ordering::Relaxed);
                        &self.counts.downloaded
                    } else {
                        &self.counts.skipped
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                    done.files.entry(item).or_default().push(entry);
                }
                Ok(Fetched::Refused(reason)) => {
                    self.counts.unavailable.fetch_add(1, Ordering::Relaxed);
                    done.unavailable.entry(item).or_insert(reason);
                }
                Err(error) => {
                    done.failure.get_or_insert(error);
                }
            }
            self.progress.step(&job.stem);
        }
        done
    }
}

/// Removes what an interrupted run left behind: the temporary files of downloads and of the
/// index (`.{name}.{random}.tmp`), and the partial downloads of earlier versions
/// (`.{name}.part`). Nothing else in `dir` is touched. Whether anything else is there (a
/// folder that cannot be read counts as holding files).
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
        let ours = igdisplay::auth::is_temporary(&name) || (name.starts_with('.') && name.ends_with(".part"));
        if ours {
            let _ = tokio::fs::remove_file(entry.path()).await;
        } else {
            others = true;
        }
    }
}

/// The index entry and the downloads of one media item.
fn plan(media: &Media) -> (Item, Vec<Job>) {
    let mut jobs = Vec::new();
    let mut children = Vec::new();
    let job = |m: &Media, jobs: &mut Vec<Job>| {
        if let Some(url) = &m.media_url {
            jobs.push(Job {
                media: m.id.clone(),
                thumbnail: false,
                url: url.clone(),
                stem: stem_of(m.id.as_str()),
            });
        }
        if let Some(url) = &m.thumbnail_url {
            jobs.push(Job {
                media: m.id.clone(),
                thumbnail: true,
                url: url.clone(),
                stem: format!("{}_thumb", stem_of(m.id.as_str())),
            });
        }
    };
    if media.media_type == Some(MediaType::CarouselAlbum) && !media.children().is_empty() {
        for child in media.children() {
            job(child, &mut jobs);
            children.push(entry(child));
        }
    } else {
        job(media, &mut jobs);
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
        permalink: media.instagram_permalink().map(str::to_owned),
        files: Vec::new(),
        picture: None,
        unplayable: match media.playback() {
            igdisplay::model::Playback::Unplayable { reason } => Some(reason.to_owned()),
            _ => None,
        },
        unavailable: None,
        children: Vec::new(),
        // The one rule of which picture shows a post, told as the role of its file.
        picture_role: media.picture_url().and_then(|url| {
            if media.thumbnail_url.as_deref() == Some(url) {
                Some("thumbnail")
            } else if media.media_url.as_deref() == Some(url) {
                Some("media")
            } else {
                None
            }
        }),
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

/// Downloads one file (or finds it complete from a previous run), streamed through the one
/// temporary-file writer: nothing carries the final name before it is whole and flushed.
async fn fetch(downloader: &Downloader, target: Target<'_>, job: &Job) -> Result<Fetched, Failure> {
    let dir = target.dir;
    if target.resumable
        && let Some(entry) = existing(dir, job).await
    {
        return Ok(Fetched::Saved(entry, false));
    }
    let download = match downloader.open(&job.url).await {
        Ok(download) => download,
        Err(DownloadError::Expired) => return Ok(Fetched::Expired),
        Err(
            refused @ (DownloadError::InvalidUrl
            | DownloadError::Scheme
            | DownloadError::Host
            | DownloadError::Redirects),
        ) => return Ok(Fetched::Refused(refused.to_string())),
        Err(DownloadError::ContentType(content_type)) => {
            return Err(Failure::runtime(format!(
                "media {} is not an image or a video (content type `{content_type}`)",
                job.media
            )));
        }
        Err(error) => {
            return Err(Failure::runtime(format!(
                "downloading media {} failed: {}",
                job.media,
                crate::fail::chain(&error)
            )));
        }
    };
    let content_type = download.content_type.clone();
    let Some((_, extension)) = FILE_TYPES.iter().find(|(known, _)| *known == content_type) else {
        return Err(Failure::runtime(format!(
            "media {} is not a type the export keeps (content type `{content_type}`)",
            job.media
        )));
    };
    let name = format!("{}.{extension}", job.stem);
    let path = dir.join(&name);
    let written = async {
        let file = PrivateFile::create_readable(&path)?;
        let chunks = futures_util::stream::unfold(download, |mut download| async move {
            download.next_chunk().await.map(|chunk| (chunk, download))
        });
        let (file, total) = copy_chunks(chunks, file).await?;
        tokio::task::spawn_blocking(move || file.commit())
            .await
            .map_err(std::io::Error::other)??;
        Ok::<u64, std::io::Error>(total)
    }
    .await;
    let bytes = written.map_err(|e| Failure::runtime(format!("saving media {} failed: {e}", job.media)))?;
    Ok(Fetched::Saved(
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
/// buffer, as `tokio::fs::File` would), one batch written while the next is read. A failed
/// chunk (the downloader's size cap among them: a server that never stops sending cannot fill
/// the disk) ends it after the write under way has ended. The sink back, and the byte count.
async fn copy_chunks<W, E>(
    body: impl futures_util::Stream<Item = Result<bytes::Bytes, E>>,
    sink: W,
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
            batched = batched.saturating_add(chunk.len());
            batch.push(chunk);
            if batched >= WRITE_BATCH {
                writer.write(std::mem::take(&mut batch)).await?;
                batched = 0;
            }
        }
        writer.write(batch).await?;
        Ok::<u64, std::io::Error>(total)
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

/// `igdisplay export DIR`: the logged-in user's library, and a summary of what was done.
pub(crate) async fn command(
    settings: &crate::settings::Settings,
    dir: &std::path::Path,
    concurrency: usize,
) -> Result<(), Failure> {
    let instagram = settings.instagram(false).await?;
    let user = settings.user(&instagram).await?;
    let downloader = settings.downloader(Some(MAX_FILE_BYTES))?;
    let summary = export(&instagram.graph(&user), &downloader, dir, concurrency).await?;
    if settings.json {
        crate::out::json(&summary);
    } else {
        println!(
            "Exported {} items: {} files downloaded ({} bytes), {} already complete, {} unavailable. Index: {}",
            summary.items,
            summary.downloaded,
            summary.bytes,
            summary.skipped,
            summary.unavailable,
            summary.index.display()
        );
    }
    Ok(())
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

    fn copy(chunks: Vec<std::io::Result<Vec<u8>>>) -> (Shared, std::io::Result<u64>) {
        let chunks = chunks.into_iter().map(|c| c.map(bytes::Bytes::from));
        let sink = Shared::default();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let copied = runtime.block_on(copy_chunks(futures_util::stream::iter(chunks), sink.clone()));
        (sink, copied.map(|(_, total)| total))
    }

    #[test]
    fn a_failed_chunk_ends_the_copy_after_what_came_before() {
        let mut chunks: Vec<std::io::Result<Vec<u8>>> = (0..3).map(|_| Ok(vec![7u8; 1024 * 1024])).collect();
        chunks.push(Err(std::io::Error::other("the body is larger than the limit")));
        chunks.push(Ok(vec![7u8; 1024 * 1024]));
        let (written, copied) = copy(chunks);
        assert!(copied.unwrap_err().to_string().contains("larger than the limit"));
        let written = written.0.lock().unwrap().len();
        assert_eq!(written, 3 * 1024 * 1024, "nothing after the failure was written");
    }

    #[test]
    fn small_chunks_are_written_in_order_and_whole() {
        let chunks: Vec<Vec<u8>> = (0..2000u32).map(|i| i.to_be_bytes().repeat(50)).collect();
        let expected: Vec<u8> = chunks.concat();
        let (written, copied) = copy(chunks.into_iter().map(Ok).collect());
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
