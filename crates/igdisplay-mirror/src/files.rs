//! [`FileServer`] and [`serve`]: the one way mirrored files leave, fit for the internet.
//!
//! A file is streamed a chunk at a time (never read whole), answers `HEAD`, a single `Range`
//! (206 with `Content-Range`, 416 past the end), `If-None-Match` and `If-Modified-Since`
//! (304), and carries an `ETag` and `Last-Modified`. Only a checked key is served
//! ([`check_key`]: no `..`, no segment starting with a dot, so neither a dotfile nor the
//! temporary file of a write under way), and a key whose file lies outside the folder once
//! its links are resolved is not found. [`serve`] runs connections with a header-read timeout,
//! an idle timeout and a connection limit, and backs off when `accept` fails (out of file
//! descriptors) instead of spinning.

use crate::blob::check_key;
use bytes::{Bytes, BytesMut};
use igdisplay_http::http;
use igdisplay_http::http::header::{self, HeaderMap, HeaderValue};
use igdisplay_http::http::{Method, Response, StatusCode};
use igdisplay_http::{SharedClock, SystemClock};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A file this small is read whole with its lookup, and kept in memory a moment.
const CHUNK: usize = 64 * 1024;
/// A larger one is streamed, this much read at a time (on the connection's thread when the
/// bytes are in memory, else one trip to the blocking pool).
const STREAM_CHUNK: usize = 256 * 1024;
/// How long a small file read from the disk is answered from memory.
const HOT_FOR: Duration = Duration::from_secs(1);
/// How many bytes of small files are kept in memory at most, each counted with its key and
/// [`HOT_ENTRY`] (so even empty files cannot grow the map without bound).
const HOT_BYTES: usize = 16 * 1024 * 1024;
/// What an entry costs beside its body and key: the facts, the map's links.
const HOT_ENTRY: usize = 256;

/// Serves the files of one folder ([`respond`](Self::respond)). Cheap to clone.
///
/// ```
/// use igdisplay_mirror::FileServer;
/// use igdisplay_http::http::{HeaderMap, Method, StatusCode};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// std::fs::create_dir_all(dir.path().join("media/1"))?;
/// std::fs::write(dir.path().join("media/1/640.jpg"), b"\xFF\xD8 a jpeg")?;
/// std::fs::write(dir.path().join("media/1/.secret"), b"no")?;
/// let files = FileServer::new(dir.path())?;
/// let found = files.respond(&Method::GET, "media/1/640.jpg", &HeaderMap::new()).await;
/// assert_eq!(found.status(), StatusCode::OK);
/// assert_eq!(found.headers()["content-type"], "image/jpeg");
/// for refused in ["media/1/.secret", "media/1/../1/640.jpg", "media/1/%2e%2e/1/640.jpg"] {
///     let answer = files.respond(&Method::GET, refused, &HeaderMap::new()).await;
///     assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{refused}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileServer {
    /// The folder, its links resolved.
    root: Arc<PathBuf>,
    /// The folder, open: keys are opened beneath it in one call where the system can.
    #[cfg(target_os = "linux")]
    dir: Arc<std::fs::File>,
    /// Small files just read, answered from memory for [`HOT_FOR`].
    hot: Arc<Mutex<Hot>>,
    clock: SharedClock,
}

/// The small files kept in memory, least recently used first, and their bytes in all.
#[derive(Debug)]
struct Hot {
    files: hashlink::LruCache<String, Arc<HotFile>>,
    bytes: usize,
}

impl Hot {
    /// What keeping `key`'s file costs.
    fn weight(key: &str, file: &HotFile) -> usize {
        file.body
            .len()
            .saturating_add(key.len())
            .saturating_add(HOT_ENTRY)
    }

    fn forget(&mut self, key: &str) {
        if let Some(gone) = self.files.remove(key) {
            self.bytes = self.bytes.saturating_sub(Self::weight(key, &gone));
        }
    }

    /// Keeps `file` under `key`, the least recently used going first while over [`HOT_BYTES`].
    fn keep(&mut self, key: String, file: Arc<HotFile>) {
        self.forget(&key);
        self.bytes = self.bytes.saturating_add(Self::weight(&key, &file));
        self.files.insert(key, file);
        while self.bytes > HOT_BYTES {
            let Some((key, gone)) = self.files.remove_lru() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(Self::weight(&key, &gone));
        }
    }
}

/// A small file in memory: when it was read, what its answer says of it, its bytes.
#[derive(Debug)]
struct HotFile {
    loaded: SystemTime,
    facts: Facts,
    body: Bytes,
}

/// What an answer says of a file: its size, validators and type.
#[derive(Clone, Debug)]
struct Facts {
    length: u64,
    modified: Option<SystemTime>,
    /// Header values, made once: an answer from memory clones them (a count, no copy).
    etag: HeaderValue,
    last_modified: Option<HeaderValue>,
    content_type: &'static str,
}

impl Facts {
    fn of(meta: &std::fs::Metadata, content_type: &'static str) -> Self {
        let modified = meta.modified().ok();
        Self {
            length: meta.len(),
            modified,
            etag: etag(meta),
            last_modified: modified.and_then(|m| HeaderValue::try_from(httpdate::fmt_http_date(m)).ok()),
            content_type,
        }
    }
}

/// Where an answer's bytes come from.
enum Source {
    /// The whole file, read.
    Memory(Bytes),
    /// The file, to stream.
    File(Arc<std::fs::File>),
}

/// The answer to a `GET` or `HEAD` of a file described by `facts`: 304 when the client's copy
/// is current, 206 for one range (416 past the end), else 200; the body from `source`.
async fn answer(method: &Method, headers: &HeaderMap, facts: &Facts, source: Source) -> Response<FileBody> {
    let mut response = Response::builder()
        .header(header::ETAG, facts.etag.clone())
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if let Some(modified) = &facts.last_modified {
        response = response.header(header::LAST_MODIFIED, modified.clone());
    }
    if not_modified(headers, facts.etag.as_bytes(), facts.modified) {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(FileBody::empty())
            .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, &[]));
    }
    response = response.header(header::CONTENT_TYPE, facts.content_type);
    let length = facts.length;
    let range = match headers.get(header::IF_RANGE) {
        // A range of another version of the file is not what the client holds: the whole.
        Some(if_range) if if_range.as_bytes() != facts.etag.as_bytes() => Span::Whole,
        _ => span(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), length),
    };
    let (status_code, start, count) = match range {
        Span::Whole => (StatusCode::OK, 0, length),
        Span::Part(first, last) => {
            response = response.header(header::CONTENT_RANGE, format!("bytes {first}-{last}/{length}"));
            (StatusCode::PARTIAL_CONTENT, first, last - first + 1)
        }
        Span::Unsatisfiable => {
            return response
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{length}"))
                .body(FileBody::empty())
                .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, &[]));
        }
    };
    response = response.header(header::CONTENT_LENGTH, count);
    let body = if method == Method::HEAD {
        FileBody::empty()
    } else {
        match source {
            Source::Memory(bytes) => {
                // The part asked for, no other trip to the disk.
                let from = usize::try_from(start).ok();
                let to = from
                    .zip(usize::try_from(count).ok())
                    .and_then(|(from, n)| from.checked_add(n));
                match from.zip(to) {
                    Some((from, to)) if to <= bytes.len() => FileBody::bytes(bytes.slice(from..to)),
                    // The file changed between its metadata and its read.
                    _ => return status(StatusCode::INTERNAL_SERVER_ERROR, &[]),
                }
            }
            Source::File(file) => match FileBody::of(file, start, count).await {
                Ok(body) => body,
                Err(error) => {
                    tracing::warn!(%error, "a file could not be read");
                    return status(StatusCode::INTERNAL_SERVER_ERROR, &[]);
                }
            },
        }
    };
    response
        .status(status_code)
        .body(body)
        .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, &[]))
}

impl FileServer {
    /// Serves `root` (which must exist).
    ///
    /// # Errors
    ///
    /// The folder cannot be resolved (it does not exist, or cannot be read).
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<Self> {
        let root = std::fs::canonicalize(root)?;
        Ok(Self {
            #[cfg(target_os = "linux")]
            dir: Arc::new(std::fs::File::open(&root)?),
            root: Arc::new(root),
            hot: Arc::new(Mutex::new(Hot {
                files: hashlink::LruCache::new_unbounded(),
                bytes: 0,
            })),
            clock: Arc::new(SystemClock),
        })
    }

    /// The folder served, its links resolved.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The answer to `method` for `path` (relative to the folder, percent-encoded as in a
    /// URL, a leading `/` ignored) with the request's `headers`. Never fails: a refused or
    /// missing path is a 404, another method a 405, a read error a 500.
    ///
    /// A file of at most 64 KiB is kept in memory after it was read, for one second of the
    /// server's clock ([`with_clock`](Self::with_clock)) and within 16 MiB in all, keys and
    /// entries counted (the least recently used go first): a deleted or replaced file is
    /// answered as it is on disk a second later at most.
    pub async fn respond(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response<FileBody> {
        if method != Method::GET && method != Method::HEAD {
            return status(StatusCode::METHOD_NOT_ALLOWED, &[(header::ALLOW, "GET, HEAD")]);
        }
        let Some(key) = decode(path.trim_start_matches('/')) else {
            return status(StatusCode::NOT_FOUND, &[]);
        };
        if let Some(hot) = self.hot_file(&key) {
            return answer(method, headers, &hot.facts, Source::Memory(hot.body.clone())).await;
        }
        let Opened { file, meta, small } = match self.open(&key).await {
            Ok(Some(opened)) => opened,
            Ok(None) => return status(StatusCode::NOT_FOUND, &[]),
            Err(error) => {
                tracing::warn!(%error, "a file could not be read");
                return status(StatusCode::INTERNAL_SERVER_ERROR, &[]);
            }
        };
        let content_type = match content_type(&key, &file, small.as_ref()).await {
            Ok(content_type) => content_type,
            Err(error) => {
                tracing::warn!(%error, "a file could not be read");
                return status(StatusCode::INTERNAL_SERVER_ERROR, &[]);
            }
        };
        let facts = Facts::of(&meta, content_type);
        match small {
            Some(body) => {
                self.keep_hot(key, &facts, &body);
                answer(method, headers, &facts, Source::Memory(body)).await
            }
            None => answer(method, headers, &facts, Source::File(file)).await,
        }
    }

    /// Serves the folder on `clock` (the files kept in memory are read again after a second
    /// of it). Default: the system's clock.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The file of `key` kept in memory, while it is fresh.
    fn hot_file(&self, key: &str) -> Option<Arc<HotFile>> {
        let now = self.clock.now();
        let mut hot = self.hot.lock().unwrap_or_else(PoisonError::into_inner);
        let file = hot.files.get(key)?.clone();
        let fresh = now.duration_since(file.loaded).is_ok_and(|age| age < HOT_FOR);
        if fresh {
            return Some(file);
        }
        hot.forget(key);
        None
    }

    /// Keeps a small file just read in memory for [`HOT_FOR`].
    fn keep_hot(&self, key: String, facts: &Facts, body: &Bytes) {
        let file = Arc::new(HotFile {
            loaded: self.clock.now(),
            facts: facts.clone(),
            body: body.clone(),
        });
        self.hot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keep(key, file);
    }

    /// The file of `key` and its metadata (and its bytes, when it fits in one chunk):
    /// `None` when the key is refused, the file is missing or not a regular file, or its path
    /// leaves the folder (or names a dotfile) once its links are resolved.
    ///
    /// Where the system can say so, a lookup and read that need no disk (the path in the
    /// kernel's cache, the bytes in its page cache) run right here; only one that would wait
    /// for the disk takes the hop to the blocking pool.
    async fn open(&self, key: &str) -> std::io::Result<Option<Opened>> {
        if check_key(key).is_err() {
            return Ok(None);
        }
        #[cfg(target_os = "linux")]
        if let Beneath::Opened(file) = open_beneath(&self.dir, key, rustix::fs::ResolveFlags::CACHED)? {
            let Some(file) = file else {
                return Ok(None);
            };
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Ok(None);
            }
            let file = Arc::new(file);
            let small = match small_length(&meta) {
                Some(length) => Some(read_exactly(&file, 0, length).await?),
                None => None,
            };
            return Ok(Some(Opened { file, meta, small }));
        }
        let (server, key) = (self.clone(), key.to_owned());
        // One hop to the blocking pool for the whole lookup, as for any file system call.
        let opened = tokio::task::spawn_blocking(move || server.open_blocking(&key))
            .await
            .map_err(std::io::Error::other)??;
        Ok(opened.map(|(file, meta, small)| Opened {
            file: Arc::new(file),
            meta,
            small,
        }))
    }

    /// [`open`](Self::open)'s work, on a blocking thread: beneath the folder in one call
    /// where the system can (Linux 5.6 and later), else by resolving the path.
    fn open_blocking(&self, key: &str) -> std::io::Result<Option<Found>> {
        #[cfg(target_os = "linux")]
        if let Beneath::Opened(file) = open_beneath(&self.dir, key, rustix::fs::ResolveFlags::empty())? {
            return file.map_or(Ok(None), found);
        }
        open_inside(&self.root, key)
    }
}

/// What [`open_beneath`] found.
#[cfg(target_os = "linux")]
enum Beneath {
    /// The answer: the file, or nothing there.
    Opened(Option<std::fs::File>),
    /// A link on the way, or a system without `openat2`: resolve the path instead.
    Resolve,
}

/// Opens `key` beneath `dir` with `openat2`: `RESOLVE_BENEATH` (the kernel refuses any step
/// out of the folder) and `RESOLVE_NO_SYMLINKS` (a link anywhere on the way is left to
/// [`open_inside`], which follows it only if it stays inside and names no dotfile). The key
/// was checked ([`check_key`]: no dot segment), so a file opened here is one to serve.
/// `extra` adds flags: `RESOLVE_CACHED` answers [`Beneath::Resolve`] where the lookup would
/// need the disk.
#[cfg(target_os = "linux")]
fn open_beneath(dir: &std::fs::File, key: &str, extra: rustix::fs::ResolveFlags) -> std::io::Result<Beneath> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    let opened = rustix::fs::openat2(
        dir,
        key,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | extra,
    );
    match opened {
        Ok(fd) => Ok(Beneath::Opened(Some(std::fs::File::from(fd)))),
        Err(Errno::NOENT | Errno::NOTDIR | Errno::XDEV) => Ok(Beneath::Opened(None)),
        // A link on the way (ELOOP); no openat2 (ENOSYS, or EPERM under a seccomp filter);
        // flags an old kernel does not know (EINVAL); a retry asked, or a lookup that would
        // need the disk under RESOLVE_CACHED (EAGAIN).
        Err(Errno::LOOP | Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::AGAIN) => Ok(Beneath::Resolve),
        Err(errno) => Err(errno.into()),
    }
}

/// A file opened for serving: its metadata, and its content when it fits in one chunk;
/// `None` when it is not a regular file. On a blocking thread.
fn found(file: std::fs::File) -> std::io::Result<Option<Found>> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    let small = match small_length(&meta) {
        Some(length) => Some(fill_exactly(&file, 0, length, Wait::Yes)?),
        None => None,
    };
    Ok(Some((file, meta, small)))
}

/// The length of a file read whole with its lookup (at most [`CHUNK`]).
fn small_length(meta: &std::fs::Metadata) -> Option<usize> {
    usize::try_from(meta.len()).ok().filter(|&n| n <= CHUNK)
}

/// Whether a read may wait for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// It may (on a blocking thread).
    Yes,
    /// It may not (on the connection's thread): the bytes must be in memory already, else
    /// the read fails with [`WouldBlock`](std::io::ErrorKind::WouldBlock).
    No,
}

/// Reads into `buf` from `offset` of `file`, waiting for the disk or not.
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64, wait: Wait) -> std::io::Result<usize> {
    loop {
        let read = match wait {
            Wait::Yes => positional_read(file, buf, offset),
            Wait::No => read_cached(file, buf, offset),
        };
        match read {
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            read => return read,
        }
    }
}

#[cfg(unix)]
fn positional_read(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn positional_read(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Reads only bytes already in memory: Linux's `preadv2` with `RWF_NOWAIT` (4.14 and later).
#[cfg(target_os = "linux")]
fn read_cached(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use rustix::io::{Errno, ReadWriteFlags};
    let bufs = &mut [std::io::IoSliceMut::new(buf)];
    match rustix::io::preadv2(file, bufs, offset, ReadWriteFlags::NOWAIT) {
        Ok(n) => Ok(n),
        // Not in memory (EAGAIN); a file system or kernel without the flag (EOPNOTSUPP,
        // EINVAL, ENOSYS): the caller reads the waiting way.
        Err(Errno::AGAIN | Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS) => {
            Err(std::io::ErrorKind::WouldBlock.into())
        }
        Err(errno) => Err(errno.into()),
    }
}

/// Elsewhere every read may need the disk.
#[cfg(not(target_os = "linux"))]
fn read_cached(_: &std::fs::File, _: &mut [u8], _: u64) -> std::io::Result<usize> {
    Err(std::io::ErrorKind::WouldBlock.into())
}

/// Fills `buf` from `offset` of `file`, short only where the file ends: the count read.
fn fill_at(file: &std::fs::File, buf: &mut [u8], offset: u64, wait: Wait) -> std::io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        let at = offset.saturating_add(filled as u64);
        match read_at(file, rest, at, wait)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// `length` bytes of `file` from `offset`: an error if it ends before (it shrank meanwhile).
fn fill_exactly(file: &std::fs::File, offset: u64, length: usize, wait: Wait) -> std::io::Result<Bytes> {
    let mut bytes = vec![0u8; length];
    if fill_at(file, &mut bytes, offset, wait)? < length {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Bytes::from(bytes))
}

/// `length` bytes of `file` from `offset`, read here when they are in memory, else on the
/// blocking pool.
async fn read_exactly(file: &Arc<std::fs::File>, offset: u64, length: usize) -> std::io::Result<Bytes> {
    match fill_exactly(file, offset, length, Wait::No) {
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        read => return read,
    }
    let file = file.clone();
    tokio::task::spawn_blocking(move || fill_exactly(&file, offset, length, Wait::Yes))
        .await
        .map_err(std::io::Error::other)?
}

/// A file found by [`FileServer::open`].
struct Opened {
    file: Arc<std::fs::File>,
    meta: std::fs::Metadata,
    /// The whole content, when it fits in one chunk (read in the same trip as the lookup).
    small: Option<Bytes>,
}

/// A file found under the root: the file, its metadata, its content when it fits in a chunk.
type Found = (std::fs::File, std::fs::Metadata, Option<Bytes>);

/// The file of `key` under `root` (resolved), with the checks of [`FileServer::open`], and
/// its content when it fits in one chunk.
fn open_inside(root: &Path, key: &str) -> std::io::Result<Option<Found>> {
    let resolved = match std::fs::canonicalize(root.join(key)) {
        Ok(resolved) => resolved,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Ok(inside) = resolved.strip_prefix(root) else {
        return Ok(None);
    };
    if inside
        .components()
        .any(|part| part.as_os_str().to_string_lossy().starts_with('.'))
    {
        return Ok(None);
    }
    let file = match std::fs::File::open(&resolved) {
        Ok(file) => file,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !same_file(&file.metadata()?, &resolved) {
        return Ok(None);
    }
    found(file)
}

/// Whether an error means "nothing there" (a missing file, or a path through a file).
fn is_absent(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

/// Whether the opened file is still the one at `resolved` (no link swapped in between the
/// resolution and the opening).
#[cfg(unix)]
fn same_file(opened: &std::fs::Metadata, resolved: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match std::fs::symlink_metadata(resolved) {
        Ok(now) => now.is_file() && now.dev() == opened.dev() && now.ino() == opened.ino(),
        Err(_) => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, resolved: &Path) -> bool {
    std::fs::symlink_metadata(resolved).is_ok_and(|meta| meta.is_file())
}

/// `path` with its percent escapes decoded (`%2e%2e` is `..`, then refused by the key check);
/// `None` for a malformed escape or a result that is not UTF-8.
fn decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'%' {
            let hex = bytes.get(at + 1..at + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            out.push(byte);
            at += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A strong validator: the size and the modification time to the nanosecond.
fn etag(meta: &std::fs::Metadata) -> HeaderValue {
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
        .unwrap_or_default();
    let tag = format!("\"{:x}-{:x}\"", meta.len(), modified.as_nanos());
    // Quotes, hex digits and a dash are always a valid header value.
    HeaderValue::try_from(tag).unwrap_or_else(|_| HeaderValue::from_static("\"-\""))
}

/// Whether the client's copy is current: `If-None-Match` naming the tag (or `*`), else
/// `If-Modified-Since` at or after the modification (to the second).
fn not_modified(headers: &HeaderMap, etag: &[u8], modified: Option<SystemTime>) -> bool {
    if let Some(tags) = headers.get(header::IF_NONE_MATCH) {
        let tags = tags.to_str().unwrap_or_default();
        return tags
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == etag);
    }
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match (since, modified) {
        (Some(since), Some(modified)) => {
            let seconds = |t: SystemTime| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            };
            seconds(modified) <= seconds(since)
        }
        _ => false,
    }
}

/// The part of a file a `Range` header asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Span {
    /// No range, several, or one that does not parse: the whole file.
    Whole,
    /// From the first byte to the last, both included.
    Part(u64, u64),
    /// A range that starts past the end.
    Unsatisfiable,
}

/// The span `range` asks of a file of `length` bytes. One range only: a client asking for
/// several gets the whole file, which HTTP allows.
fn span(range: Option<&str>, length: u64) -> Span {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Span::Whole;
    };
    if spec.contains(',') {
        return Span::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Span::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |text: &str| text.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // `bytes=-n`: the last n bytes.
        (true, false) => match number(last) {
            Some(0) => Span::Unsatisfiable,
            Some(_) if length == 0 => Span::Unsatisfiable,
            Some(n) => Span::Part(length.saturating_sub(n), length - 1),
            None => Span::Whole,
        },
        // `bytes=a-`: from a to the end.
        (false, true) => match number(first) {
            Some(a) if a >= length => Span::Unsatisfiable,
            Some(a) => Span::Part(a, length - 1),
            None => Span::Whole,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a > b => Span::Whole,
            (Some(a), Some(_)) if a >= length => Span::Unsatisfiable,
            (Some(a), Some(b)) => Span::Part(a, b.min(length - 1)),
            _ => Span::Whole,
        },
        (true, true) => Span::Whole,
    }
}

/// The content type: by the name's extension, else by the file's first bytes (a mirrored
/// original has no extension).
async fn content_type(
    key: &str,
    file: &Arc<std::fs::File>,
    small: Option<&Bytes>,
) -> std::io::Result<&'static str> {
    let extension = key.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    let by_name = match extension.as_deref() {
        Some("json") => Some("application/json"),
        Some("jpg" | "jpeg") => Some("image/jpeg"),
        Some("png") => Some("image/png"),
        Some("webp") => Some("image/webp"),
        Some("mp4") => Some("video/mp4"),
        Some("mov") => Some("video/quicktime"),
        _ => None,
    };
    if let Some(content_type) = by_name {
        return Ok(content_type);
    }
    if let Some(small) = small {
        return Ok(crate::blob::content_type(small));
    }
    // Larger than a chunk: the twelve bytes sniffing needs are there.
    let head = read_exactly(file, 0, 12).await?;
    Ok(crate::blob::content_type(&head))
}

/// A response with `code`, `headers` and no body.
fn status(code: StatusCode, headers: &[(header::HeaderName, &'static str)]) -> Response<FileBody> {
    let mut response = Response::new(FileBody::empty());
    *response.status_mut() = code;
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}

/// A file's body, read a chunk at a time as the client takes it: memory per download is one
/// chunk (256 KiB), whatever the file's size.
#[derive(Debug)]
pub struct FileBody {
    /// The file, positioned at the next byte to send, while no read is under way.
    file: Option<Reader>,
    /// Bytes still to send, the read under way included.
    remaining: u64,
    /// The read under way, on the blocking pool: the file back, and the chunk.
    reading: Option<tokio::task::JoinHandle<(Reader, std::io::Result<Bytes>)>>,
    /// A body of at most one chunk, read at once.
    whole: Option<Bytes>,
}

impl FileBody {
    /// No body (`HEAD`, 304, 404).
    pub fn empty() -> Self {
        Self {
            file: None,
            remaining: 0,
            reading: None,
            whole: None,
        }
    }

    /// A body already in memory (a rendered page beside the files).
    pub fn bytes(bytes: Bytes) -> Self {
        Self {
            whole: (!bytes.is_empty()).then_some(bytes),
            ..Self::empty()
        }
    }

    /// `count` bytes of `file` from `start`: read at once when they fit in one small chunk,
    /// else streamed a chunk at a time.
    async fn of(file: Arc<std::fs::File>, start: u64, count: u64) -> std::io::Result<Self> {
        if let Some(small) = usize::try_from(count).ok().filter(|&n| n <= CHUNK) {
            return read_exactly(&file, start, small).await.map(Self::bytes);
        }
        Ok(Self {
            file: Some(Reader {
                file,
                offset: start,
                buffer: BytesMut::new(),
            }),
            remaining: count,
            ..Self::empty()
        })
    }
}

/// A file being streamed, where its next chunk starts, and the buffer its chunks are read
/// into. A chunk is split off the buffer and handed to the connection; once the connection
/// has written and dropped it, the next read takes the same memory back
/// (`BytesMut::reserve` reclaims it), so a download does not map fresh pages for every chunk.
#[derive(Debug)]
struct Reader {
    file: Arc<std::fs::File>,
    offset: u64,
    buffer: BytesMut,
}

/// Reads up to `want` bytes from where the reader stands (fewer only at the file's end),
/// waiting for the disk or not; the reader comes back either way.
fn read_chunk(mut reader: Reader, want: usize, wait: Wait) -> (Reader, std::io::Result<Bytes>) {
    reader.buffer.clear();
    reader.buffer.resize(want, 0);
    match fill_at(&reader.file, &mut reader.buffer, reader.offset, wait) {
        Ok(filled) => {
            reader.buffer.truncate(filled);
            reader.offset = reader.offset.saturating_add(filled as u64);
            let chunk = reader.buffer.split().freeze();
            (reader, Ok(chunk))
        }
        Err(error) => (reader, Err(error)),
    }
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        use std::future::Future as _;
        let this = &mut *self;
        if let Some(whole) = this.whole.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(whole))));
        }
        let read = if let Some(reading) = this.reading.as_mut() {
            let read = match Pin::new(reading).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(read) => read,
            };
            this.reading = None;
            match read {
                Ok(read) => read,
                Err(error) => return Poll::Ready(Some(Err(std::io::Error::other(error)))),
            }
        } else {
            let Some(reader) = this.file.take() else {
                return Poll::Ready(None);
            };
            if this.remaining == 0 {
                return Poll::Ready(None);
            }
            let want = usize::try_from(this.remaining).map_or(STREAM_CHUNK, |left| left.min(STREAM_CHUNK));
            // Here when the bytes are in memory; else on the blocking pool, polled again at
            // once so that the read registers the waker.
            match read_chunk(reader, want, Wait::No) {
                (reader, Err(error)) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    this.reading = Some(tokio::task::spawn_blocking(move || {
                        read_chunk(reader, want, Wait::Yes)
                    }));
                    return self.poll_frame(cx);
                }
                read => read,
            }
        };
        Poll::Ready(Some(match read {
            (_, Err(error)) => Err(error),
            // The file shrank while it was sent.
            (_, Ok(chunk)) if chunk.is_empty() => Err(std::io::ErrorKind::UnexpectedEof.into()),
            (reader, Ok(chunk)) => {
                this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
                if this.remaining > 0 {
                    this.file = Some(reader);
                }
                Ok(http_body::Frame::data(chunk))
            }
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.whole.is_none() && self.reading.is_none() && (self.file.is_none() || self.remaining == 0)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let whole = self.whole.as_ref().map_or(0, |b| b.len() as u64);
        let file = if self.file.is_some() || self.reading.is_some() {
            self.remaining
        } else {
            0
        };
        http_body::SizeHint::with_exact(whole.saturating_add(file))
    }
}

/// How [`serve`] treats connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeLimits {
    /// The time a client has to send a request's headers. Default 10 s.
    pub header_read_timeout: Duration,
    /// A connection that moves no byte for this long is closed. Default 60 s.
    pub idle_timeout: Duration,
    /// Connections served at once; past it, new ones wait in the listen queue. Default 1024.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

impl ServeLimits {
    /// Sets the header-read timeout.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Sets the idle timeout.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets the connection limit (at least one).
    #[must_use]
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }
}

/// Serves HTTP/1.1 connections from `listener` with `service` until `shutdown` completes:
/// at most [`ServeLimits::max_connections`] at once, each closed when its headers take longer
/// than the header-read timeout or it moves no byte for the idle timeout. When `accept`
/// fails (out of file descriptors), it waits (10 ms, doubling to 1 s) instead of spinning.
/// Once `shutdown` completes it accepts nothing more, and returns when every open connection
/// has finished the request under way (idle ones close at once), or after one idle timeout.
///
/// ```
/// use igdisplay_mirror::{FileServer, ServeLimits, serve};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let files = FileServer::new(dir.path())?;
/// let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
///     let files = files.clone();
///     async move {
///         let (method, path) = (request.method(), request.uri().path());
///         Ok::<_, std::convert::Infallible>(files.respond(method, path, request.headers()).await)
///     }
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let limits = ServeLimits::default().max_connections(256);
/// // Until the shutdown future completes (here at once; in a program, Ctrl-C).
/// serve(listener, limits, service, std::future::ready(())).await;
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[expect(
    clippy::disallowed_methods,
    reason = "a socket's timers run in real time on tokio's timer, as hyper's header timer does: not the application's clock"
)]
pub async fn serve<S, B>(
    listener: tokio::net::TcpListener,
    limits: ServeLimits,
    service: S,
    shutdown: impl std::future::Future<Output = ()>,
) where
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let max = limits.max_connections.max(1);
    let permits = Arc::new(tokio::sync::Semaphore::new(max));
    let (draining, drain) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::ZERO;
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                // A response's head and its streamed body go out as separate writes: without
                // this, Nagle's algorithm holds the body back for the client's delayed ACK.
                let _ = stream.set_nodelay(true);
                stream
            }
            Err(error) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                tracing::warn!(%error, ?backoff, "accepting a connection failed");
                drop(permit);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let (service, drain) = (service.clone(), drain.clone());
        tokio::spawn(async move {
            connection(stream, service, limits, drain).await;
            drop(permit);
        });
    }
    // Drain: no new connection; each open one finishes the request under way (an idle one
    // closes at once), for at most one idle period.
    drop(listener);
    let _ = draining.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.idle_timeout, permits.acquire_many(all)).await;
}

/// One connection, until it ends, its headers come too late, or it idles too long.
#[expect(
    clippy::disallowed_methods,
    reason = "a socket's timers run in real time on tokio's timer, as hyper's header timer does: not the application's clock"
)]
async fn connection<S, B>(
    stream: tokio::net::TcpStream,
    service: S,
    limits: ServeLimits,
    mut drain: tokio::sync::watch::Receiver<bool>,
) where
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = tokio::time::Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = Watched {
        inner: stream,
        started,
        activity: activity.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    loop {
        let idle_for = started
            .elapsed()
            .saturating_sub(Duration::from_millis(activity.load(Ordering::Relaxed)));
        let wait = limits.idle_timeout.saturating_sub(idle_for);
        if wait.is_zero() || *drain.borrow() {
            break;
        }
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep(wait) => {}
            _ = drain.changed() => {}
        }
    }
    // Idle or draining: ended at once between requests; a request under way is answered
    // (hyper's graceful shutdown waits for the service) within one more idle period.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(limits.idle_timeout, conn).await;
}

/// A connection's stream that notes when a byte last moved (milliseconds since it began).
struct Watched {
    inner: tokio::net::TcpStream,
    started: tokio::time::Instant,
    activity: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(elapsed, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    /// Headers and body go out in one vectored write, as the socket takes them: without
    /// this, hyper copies every body chunk into its own buffer first.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files kept in memory stay within their budget however many there are, even empty
    /// ones: each counts its key and its entry besides its bytes.
    #[test]
    fn the_files_kept_in_memory_stay_within_their_budget_even_when_empty() {
        let mut hot = Hot {
            files: hashlink::LruCache::new_unbounded(),
            bytes: 0,
        };
        let empty = Arc::new(HotFile {
            loaded: SystemTime::UNIX_EPOCH,
            facts: Facts {
                length: 0,
                modified: None,
                etag: HeaderValue::from_static("\"0-0\""),
                last_modified: None,
                content_type: "application/octet-stream",
            },
            body: Bytes::new(),
        });
        for n in 0..200_000 {
            hot.keep(format!("media/{n}/original"), empty.clone());
        }
        assert!(hot.bytes <= HOT_BYTES, "{}", hot.bytes);
        assert!(hot.files.len() <= HOT_BYTES / HOT_ENTRY, "{}", hot.files.len());
        assert!(
            hot.files.contains_key("media/199999/original"),
            "the newest stays"
        );
        assert!(
            !hot.files.contains_key("media/0/original"),
            "the oldest went first"
        );
        hot.forget("media/199999/original");
        let kept: usize = hot.files.iter().map(|(key, file)| Hot::weight(key, file)).sum();
        assert_eq!(hot.bytes, kept, "the count follows every removal");
    }

    /// The one-call open takes a plain file at once, says when nothing is there, and leaves
    /// any link on the way to the resolving path (which the integration tests check).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_key_is_opened_beneath_the_folder_in_one_call_and_links_are_left_to_resolution() {
        #![allow(clippy::unwrap_used)]
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("media/1")).unwrap();
        std::fs::write(dir.path().join("media/1/original"), b"jpeg").unwrap();
        std::os::unix::fs::symlink(dir.path().join("media/1"), dir.path().join("media/2")).unwrap();
        let folder = std::fs::File::open(dir.path()).unwrap();
        match open_beneath(&folder, "media/1/original", rustix::fs::ResolveFlags::empty()).unwrap() {
            Beneath::Opened(Some(file)) => assert_eq!(file.metadata().unwrap().len(), 4),
            Beneath::Opened(None) => panic!("the file is there"),
            // A kernel before 5.6, or a sandbox refusing openat2: the resolving path serves.
            Beneath::Resolve => return,
        }
        assert!(matches!(
            open_beneath(&folder, "media/1/missing", rustix::fs::ResolveFlags::empty()).unwrap(),
            Beneath::Opened(None)
        ));
        assert!(matches!(
            open_beneath(&folder, "media/2/original", rustix::fs::ResolveFlags::empty()).unwrap(),
            Beneath::Resolve
        ));
    }

    /// A chunk read without waiting is the same bytes as a waiting read, from the same
    /// offset, or says it would block (the pages dropped from memory, where the file system
    /// drops them on request); the reader moves on by what it read either way.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_chunk_read_without_waiting_matches_the_disk_or_says_it_would_block() {
        #![allow(clippy::unwrap_used)]
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("video");
        let content: Vec<u8> = (0..3 * STREAM_CHUNK).map(|n| (n % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        let reader = |offset| Reader {
            file: file.clone(),
            offset,
            buffer: BytesMut::new(),
        };
        let offset = STREAM_CHUNK as u64 + 7;
        let without_waiting = || match read_chunk(reader(offset), 1000, Wait::No) {
            (_, Err(error)) => assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock),
            (moved, Ok(chunk)) => {
                assert_eq!(&chunk[..], &content[STREAM_CHUNK + 7..STREAM_CHUNK + 1007]);
                assert_eq!(moved.offset, offset + 1000);
            }
        };
        // Just written: in memory (where the file system can read without waiting at all).
        without_waiting();
        file.sync_all().unwrap();
        rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        without_waiting();
        let (moved, read) = read_chunk(reader(offset), STREAM_CHUNK * 3, Wait::Yes);
        assert_eq!(
            &read.unwrap()[..],
            &content[STREAM_CHUNK + 7..],
            "short only at the end"
        );
        assert_eq!(moved.offset, content.len() as u64);
    }

    #[test]
    fn ranges_are_read_as_http_says() {
        assert_eq!(span(None, 100), Span::Whole);
        assert_eq!(span(Some("bytes=0-9"), 100), Span::Part(0, 9));
        assert_eq!(span(Some("bytes=90-"), 100), Span::Part(90, 99));
        assert_eq!(span(Some("bytes=-10"), 100), Span::Part(90, 99));
        assert_eq!(span(Some("bytes=-1000"), 100), Span::Part(0, 99));
        assert_eq!(span(Some("bytes=50-1000"), 100), Span::Part(50, 99));
        assert_eq!(span(Some("bytes=100-"), 100), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=-0"), 100), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=0-"), 0), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=9-0"), 100), Span::Whole);
        assert_eq!(span(Some("bytes=0-1,5-6"), 100), Span::Whole);
        assert_eq!(span(Some("items=0-1"), 100), Span::Whole);
        assert_eq!(span(Some("bytes=x-1"), 100), Span::Whole);
        assert_eq!(
            span(Some("bytes=18446744073709551615-"), 100),
            Span::Unsatisfiable
        );
    }

    #[test]
    fn escapes_are_decoded_before_the_key_is_checked() {
        assert_eq!(decode("media/%2e%2e/x").as_deref(), Some("media/../x"));
        assert_eq!(decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(decode("a%2"), None);
        assert_eq!(decode("a%zz"), None);
        assert_eq!(decode("%ff"), None);
    }
}
