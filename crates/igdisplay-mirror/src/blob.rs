//! [`BlobStore`]: where the mirrored files and feeds live. [`FsBlobStore`] keeps them in a
//! folder; another store (object storage) implements the same four calls.

use crate::download::{Download, DownloadError};
use bytes::Bytes;
use igdisplay_auth::PrivateFile;
use std::path::{Path, PathBuf};

/// A blob store failed, or was given a key it refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// A key must be `/`-separated segments of `A-Z a-z 0-9 . _ -`, none empty or starting
    /// with a dot.
    #[error("`{0}` is not a valid blob key")]
    InvalidKey(String),
    /// The object store answered with an error (or could not be reached).
    #[error("the object store failed to {action} `{key}`")]
    Remote {
        /// What it was doing.
        action: &'static str,
        /// Which blob.
        key: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object store is not configured right (a bucket name, an endpoint).
    #[error("the object store is not configured right: {0}")]
    Config(String),
    /// Reading or writing failed.
    #[error("the blob store failed to {action} `{key}`")]
    Io {
        /// What it was doing.
        action: &'static str,
        /// Which blob.
        key: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Blobs by key. `put` is atomic: a reader sees the old blob or the new one, never a part.
#[async_trait::async_trait]
pub trait BlobStore: std::fmt::Debug + Send + Sync + 'static {
    /// Writes `bytes` under `key`, replacing what was there, atomically and durably.
    ///
    /// # Errors
    ///
    /// [`BlobError`].
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError>;

    /// The blob under `key`, if any.
    ///
    /// # Errors
    ///
    /// [`BlobError`].
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError>;

    /// Whether there is a blob under `key`.
    ///
    /// # Errors
    ///
    /// [`BlobError`].
    async fn exists(&self, key: &str) -> Result<bool, BlobError>;

    /// Removes the blob under `key` (nothing there is fine).
    ///
    /// # Errors
    ///
    /// [`BlobError`].
    async fn delete(&self, key: &str) -> Result<(), BlobError>;

    /// Writes a download's body under `key` as it arrives (a video), atomically like `put`:
    /// the size written, or the download's failure (nothing is left under `key` then). The
    /// default gathers the body (within the download's cap) and puts it; [`FsBlobStore`]
    /// streams it to its file.
    ///
    /// # Errors
    ///
    /// [`BlobError`] when the store failed.
    async fn put_download(
        &self,
        key: &str,
        download: &mut Download,
    ) -> Result<Result<u64, DownloadError>, BlobError> {
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = download.next_chunk().await {
            match chunk {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(error) => return Ok(Err(error)),
            }
        }
        let size = body.len() as u64;
        self.put(key, body.freeze()).await?;
        Ok(Ok(size))
    }
}

/// The content type of a mirrored file, from its first 12 bytes: `image/jpeg`, `image/png`,
/// `image/webp`, `video/mp4` (an ISO media file: `ftyp` at byte 4), or
/// `application/octet-stream` for anything else (a site serves it with `nosniff`).
///
/// ```
/// assert_eq!(igdisplay_mirror::content_type(&[0xFF, 0xD8, 0xFF]), "image/jpeg");
/// assert_eq!(igdisplay_mirror::content_type(b"RIFF\x10\0\0\0WEBPVP8 "), "image/webp");
/// assert_eq!(igdisplay_mirror::content_type(b"\0\0\0\x20ftypisom"), "video/mp4");
/// assert_eq!(igdisplay_mirror::content_type(b"<html>"), "application/octet-stream");
/// ```
pub fn content_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        "image/jpeg"
    } else if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        "image/webp"
    } else if bytes.get(4..8) == Some(b"ftyp") {
        "video/mp4"
    } else {
        "application/octet-stream"
    }
}

/// Checks `key`: `/`-separated segments of `A-Z a-z 0-9 . _ -`, none empty, `.` or `..`, at
/// most 512 bytes. Media ids come from the network: this is what keeps them inside the store.
///
/// ```
/// use igdisplay_mirror::check_key;
///
/// assert!(check_key("media/17895695668004550/640.jpg").is_ok());
/// for hostile in ["../etc/passwd", "/abs", "a//b", "a/./b", "a\\b", "", "a b"] {
///     assert!(check_key(hostile).is_err(), "{hostile}");
/// }
/// ```
///
/// # Errors
///
/// [`BlobError::InvalidKey`].
pub fn check_key(key: &str) -> Result<(), BlobError> {
    let valid = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|segment| {
            // No segment starts with a dot: `.` and `..` never name a folder out of the root,
            // and a temporary file (`.{name}.{random}.tmp`) is never a key.
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if valid {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(key.chars().take(80).collect()))
    }
}

/// Blobs as files under a folder: `put` writes a temporary file beside the target, syncs it
/// and renames it over the target, so a crash leaves the old file or the new one.
///
/// ```
/// use igdisplay_mirror::{BlobStore, FsBlobStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let blobs = FsBlobStore::new(dir.path());
/// blobs.put("feeds/1784.json", "{}".into()).await?;
/// assert_eq!(blobs.get("feeds/1784.json").await?.as_deref(), Some(&b"{}"[..]));
/// assert!(blobs.put("../escape", "x".into()).await.is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// A store under `root` (made on the first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes the temporary files writes interrupted by a crash left in the folder
    /// ([`igdisplay_auth::is_temporary`]), those older than ten minutes (a write under way
    /// in another process is younger); how many. Run it when a process starts; a temporary
    /// file is never a key either way.
    ///
    /// # Errors
    ///
    /// A folder that cannot be read.
    pub async fn remove_leftovers(&self) -> Result<usize, BlobError> {
        const UNDER_WAY: std::time::Duration = std::time::Duration::from_secs(600);
        let root = self.root.clone();
        blocking("clean", "", move || remove_leftovers(&root, UNDER_WAY)).await
    }

    /// The file of `key`, once the key is checked.
    pub fn path_of(&self, key: &str) -> Result<PathBuf, BlobError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

fn io<'a>(action: &'static str, key: &'a str) -> impl FnOnce(std::io::Error) -> BlobError + 'a {
    move |source| BlobError::Io {
        action,
        key: key.to_owned(),
        source,
    }
}

/// Runs `work` (file system calls) on the blocking pool; a failure is `action` on `key`.
async fn blocking<T: Send + 'static>(
    action: &'static str,
    key: &str,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io(action, key)(std::io::Error::other(e)))?
        .map_err(io(action, key))
}

#[async_trait::async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        blocking("write", key, move || write_atomic(&path, &bytes)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", key)(e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        let path = self.path_of(key)?;
        tokio::fs::try_exists(&path).await.map_err(io("look for", key))
    }

    /// Streams the body to a temporary file (through [`PrivateFile`], a megabyte per blocking
    /// write), renamed over the key's file once whole; a failed download leaves nothing.
    async fn put_download(
        &self,
        key: &str,
        download: &mut Download,
    ) -> Result<Result<u64, DownloadError>, BlobError> {
        use std::io::Write as _;
        let path = self.path_of(key)?;
        let mut file = blocking("write", key, move || PrivateFile::create_readable(&path)).await?;
        let mut size = 0u64;
        let mut batch = bytes::BytesMut::new();
        loop {
            let chunk = match download.next_chunk().await {
                Some(Ok(chunk)) => Some(chunk),
                // Dropped unfinished: the temporary file goes with it.
                Some(Err(error)) => return Ok(Err(error)),
                None => None,
            };
            if let Some(chunk) = &chunk {
                size = size.saturating_add(chunk.len() as u64);
                batch.extend_from_slice(chunk);
            }
            if batch.len() >= WRITE_BATCH || chunk.is_none() {
                let bytes = batch.split().freeze();
                file = blocking("write", key, move || {
                    let mut file = file;
                    file.write_all(&bytes).map(|()| file)
                })
                .await?;
            }
            if chunk.is_none() {
                break;
            }
        }
        blocking("write", key, move || file.commit()).await?;
        Ok(Ok(size))
    }

    /// Deletes the file, then its folder if that is left empty (a past sync's pages, a gone
    /// post's files), so folders do not pile up over months of syncs.
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("delete", key)(e)),
        }
        if let Some(folder) = path.parent().filter(|folder| *folder != self.root) {
            // Fails, as it should, while the folder holds anything.
            let _ = tokio::fs::remove_dir(folder).await;
        }
        Ok(())
    }
}

/// Bytes gathered before one blocking write of a streamed file.
const WRITE_BATCH: usize = 1024 * 1024;

/// Writes `bytes` through the one temporary-file writer ([`PrivateFile`]): a random name
/// beside `path`, created exclusively (a planted file or link is never written through),
/// flushed, renamed over `path`, the folder flushed; a crash leaves the old file or the new
/// one, and at worst a temporary file [`FsBlobStore::remove_leftovers`] removes.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = PrivateFile::create_readable(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Removes the temporary files under `root` older than `older_than`; how many.
fn remove_leftovers(root: &Path, older_than: std::time::Duration) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            // Not followed: a link is neither walked into nor removed through.
            let kind = entry.file_type()?;
            if kind.is_dir() {
                folders.push(entry.path());
                continue;
            }
            // The file system's time, not the injected clock: a file's age is the disk's.
            let old_enough = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age >= older_than);
            if igdisplay_auth::is_temporary(&entry.file_name().to_string_lossy()) && old_enough {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn a_write_never_goes_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let blobs = FsBlobStore::new(dir.path());
        let folder = dir.path().join("media/1");
        std::fs::create_dir_all(&folder).unwrap();
        // Links at every name the former writer would have picked, and at the target itself.
        for n in 0..64 {
            let temp = folder.join(format!(".original.{}.{n}.tmp", std::process::id()));
            std::os::unix::fs::symlink(&victim, temp).unwrap();
        }
        std::os::unix::fs::symlink(&victim, folder.join("original")).unwrap();

        blobs
            .put("media/1/original", Bytes::from_static(b"new"))
            .await
            .unwrap();

        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let target = folder.join("original");
        assert!(
            !std::fs::symlink_metadata(&target)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(target).unwrap(), b"new");
    }

    #[tokio::test]
    async fn a_crashs_temporary_files_are_removed_and_never_read_as_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobStore::new(dir.path());
        blobs
            .put("media/1/original", Bytes::from_static(b"kept"))
            .await
            .unwrap();
        let old = dir.path().join("media/1/.original.0123456789abcdef.tmp");
        let young = dir.path().join("media/1/.original.fedcba9876543210.tmp");
        for path in [&old, &young] {
            std::fs::write(path, b"half").unwrap();
        }
        // Written in 2001: a crash long ago.
        let long_ago = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();

        let removed = blobs.remove_leftovers().await.unwrap();

        assert_eq!(removed, 1);
        assert!(!old.exists());
        assert!(young.exists(), "a write under way elsewhere is left alone");
        assert!(matches!(
            blobs.get("media/1/.original.fedcba9876543210.tmp").await,
            Err(BlobError::InvalidKey(_))
        ));
        assert_eq!(
            blobs.get("media/1/original").await.unwrap().as_deref(),
            Some(&b"kept"[..])
        );
    }
}
