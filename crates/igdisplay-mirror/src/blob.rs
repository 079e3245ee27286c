//! [`BlobStore`]: where the mirrored files and feeds live. [`FsBlobStore`] keeps them in a
//! folder; another store (object storage) implements the same four calls.

use bytes::Bytes;
use std::path::{Path, PathBuf};

/// A blob store failed, or was given a key it refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// A key must be `/`-separated segments of `A-Z a-z 0-9 . _ -`, none empty, `.` or `..`.
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
}

/// The content type of a mirrored file, from its first bytes: `image/jpeg`, `image/png`, or
/// `application/octet-stream` for anything else (a site serves it with `nosniff`).
///
/// ```
/// assert_eq!(igdisplay_mirror::content_type(&[0xFF, 0xD8, 0xFF]), "image/jpeg");
/// assert_eq!(igdisplay_mirror::content_type(b"<html>"), "application/octet-stream");
/// ```
pub fn content_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        "image/jpeg"
    } else if bytes.starts_with(b"\x89PNG") {
        "image/png"
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
            !segment.is_empty()
                && segment != "."
                && segment != ".."
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

#[async_trait::async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        let owned = key.to_owned();
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(|e| BlobError::Io {
                action: "write",
                key: owned.clone(),
                source: std::io::Error::other(e),
            })?
            .map_err(io("write", key))
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

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and syncs
/// the folder.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("a blob needs a folder"))?;
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("a blob needs a name"))?
        .to_string_lossy();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let written = (|| {
        let mut file = match std::fs::File::create(&temporary) {
            // The folder was deleted as it emptied, between making it and now: make it again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                std::fs::File::create(&temporary)?
            }
            file => file?,
        };
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(())
}
