//! Where tokens live between runs: the [`TokenStore`] trait, a [`MemoryStore`] and a
//! [`FileStore`].
//!
//! The file store keeps one JSON document keyed by user id. It is created with mode 0600 in a
//! 0700 directory (on Unix), replaced atomically (temporary file, fsync, rename, fsync of the
//! directory), and writers take an exclusive lock on a sidecar file, so two processes never
//! lose each other's updates. A failed write leaves the previous file intact and readable.

use crate::{StoreError, TokenRecord};
use igdisplay_model::UserId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Keeps token records by user id.
#[async_trait::async_trait]
pub trait TokenStore: std::fmt::Debug + Send + Sync + 'static {
    /// The record of `user`, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read.
    async fn load(&self, user: &UserId) -> Result<Option<TokenRecord>, StoreError>;

    /// Saves `record`, replacing the user's previous one. When this returns `Ok`, the record
    /// is durable.
    ///
    /// # Errors
    ///
    /// [`StoreError`]; the previous record is then still there.
    async fn save(&self, record: &TokenRecord) -> Result<(), StoreError>;

    /// Forgets `user`'s record (logout, deauthorization, data deletion).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be written.
    async fn remove(&self, user: &UserId) -> Result<bool, StoreError>;

    /// Every user with a stored record.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read.
    async fn users(&self) -> Result<Vec<UserId>, StoreError>;
}

/// Tokens in memory, for tests and for servers that persist elsewhere.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<UserId, TokenRecord>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<UserId, TokenRecord>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, user: &UserId) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.records().get(user).cloned())
    }

    async fn save(&self, record: &TokenRecord) -> Result<(), StoreError> {
        self.records().insert(record.user_id.clone(), record.clone());
        Ok(())
    }

    async fn remove(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.records().remove(user).is_some())
    }

    async fn users(&self) -> Result<Vec<UserId>, StoreError> {
        Ok(self.records().keys().cloned().collect())
    }
}

/// The on-disk document.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    version: u64,
    #[serde(default)]
    tokens: BTreeMap<String, TokenRecord>,
}

const FORMAT_VERSION: u64 = 1;

/// Tokens in one JSON file, 0600, replaced atomically under an exclusive lock; a failed
/// write leaves the previous file intact. Cheap to clone: clones
/// share the file.
#[derive(Clone, Debug)]
pub struct FileStore {
    inner: std::sync::Arc<FileInner>,
}

#[derive(Debug)]
struct FileInner {
    path: PathBuf,
    #[cfg(test)]
    fail_before_rename: std::sync::atomic::AtomicBool,
}

impl FileStore {
    /// A store at `path` (created on first save, with its directory).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            inner: std::sync::Arc::new(FileInner {
                path: path.into(),
                #[cfg(test)]
                fail_before_rename: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn read(&self) -> Result<Document, StoreError> {
        read_document(&self.inner.path)
    }

    /// Read-modify-write under the lock; `change` returns what to report.
    fn update<T>(&self, change: impl FnOnce(&mut Document) -> T) -> Result<T, StoreError> {
        let dir = self
            .inner
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let lock = open_private(&lock_path(&self.inner.path), false).map_err(io("open the lock file"))?;
        lock.lock().map_err(io("lock the token file"))?;
        let mut document = self.read()?;
        let result = change(&mut document);
        document.version = FORMAT_VERSION;
        self.write(dir, &document)?;
        drop(lock);
        Ok(result)
    }

    fn write(&self, dir: &Path, document: &Document) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(document).map_err(StoreError::Corrupt)?;
        let name = self
            .inner
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = open_private(&temp, true).map_err(io("create a temporary file"))?;
            file.write_all(&json).map_err(io("write the temporary file"))?;
            file.sync_all().map_err(io("flush the temporary file"))?;
            #[cfg(test)]
            if self
                .inner
                .fail_before_rename
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                return Err(io("replace the token file")(std::io::Error::other(
                    "injected failure",
                )));
            }
            fs::rename(&temp, &self.inner.path).map_err(io("replace the token file"))?;
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written
    }
}

fn read_document(path: &Path) -> Result<Document, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Document::default()),
        Err(e) => return Err(io("read the token file")(e)),
    };
    let document: Document = serde_json::from_slice(&bytes).map_err(StoreError::Corrupt)?;
    if document.version > FORMAT_VERSION {
        return Err(StoreError::UnsupportedVersion(document.version));
    }
    Ok(document)
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

fn io(action: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |source| StoreError::Io { action, source }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io("create the token directory"))
}

/// Opens (creating if needed) a file only its owner can read.
fn open_private(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io("run the store task")(std::io::Error::other(e.to_string())))?
}

#[async_trait::async_trait]
impl TokenStore for FileStore {
    async fn load(&self, user: &UserId) -> Result<Option<TokenRecord>, StoreError> {
        let store = self.clone();
        let user = user.as_str().to_owned();
        blocking(move || Ok(store.read()?.tokens.remove(&user))).await
    }

    async fn save(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let store = self.clone();
        let record = record.clone();
        blocking(move || {
            store.update(|doc| {
                doc.tokens.insert(record.user_id.as_str().to_owned(), record);
            })
        })
        .await
    }

    async fn remove(&self, user: &UserId) -> Result<bool, StoreError> {
        let store = self.clone();
        let user = user.as_str().to_owned();
        blocking(move || store.update(|doc| doc.tokens.remove(&user).is_some())).await
    }

    async fn users(&self) -> Result<Vec<UserId>, StoreError> {
        let store = self.clone();
        blocking(move || Ok(store.read()?.tokens.into_keys().map(UserId::new).collect())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Platform, TokenKind};
    use igdisplay_model::AccessToken;
    use std::time::{Duration, UNIX_EPOCH};

    fn record(user: &str, token: &str) -> TokenRecord {
        TokenRecord::new(
            UserId::new(user),
            AccessToken::new(token),
            TokenKind::LongLived,
            Platform::BasicDisplay,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            crate::token::LONG_LIVED,
        )
    }

    #[tokio::test]
    async fn file_store_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/igdisplay/tokens.json");
        let store = FileStore::new(&path);
        assert!(store.load(&UserId::new("1")).await.unwrap().is_none());
        store.save(&record("1", "TOKEN-ONE")).await.unwrap();
        store.save(&record("2", "TOKEN-TWO")).await.unwrap();
        store.save(&record("1", "TOKEN-ONE-B")).await.unwrap();
        let loaded = store.load(&UserId::new("1")).await.unwrap().unwrap();
        assert_eq!(loaded.access_token.expose_secret(), "TOKEN-ONE-B");
        assert_eq!(store.users().await.unwrap(), [UserId::new("1"), UserId::new("2")]);
        assert!(store.remove(&UserId::new("2")).await.unwrap());
        assert!(!store.remove(&UserId::new("2")).await.unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[tokio::test]
    async fn a_failed_write_leaves_the_previous_tokens_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let store = FileStore::new(&path);
        store.save(&record("1", "OLD-TOKEN")).await.unwrap();
        let before = fs::read(&path).unwrap();
        store
            .inner
            .fail_before_rename
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let error = store.save(&record("1", "NEW-TOKEN")).await.unwrap_err();
        assert!(matches!(
            error,
            StoreError::Io {
                action: "replace the token file",
                ..
            }
        ));
        assert!(!format!("{error} {error:?}").contains("NEW-TOKEN"));
        assert_eq!(fs::read(&path).unwrap(), before);
        let loaded = store.load(&UserId::new("1")).await.unwrap().unwrap();
        assert_eq!(loaded.access_token.expose_secret(), "OLD-TOKEN");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "tokens.json and its lock only"
        );
    }

    #[tokio::test]
    async fn a_corrupt_or_newer_file_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let corrupt = b"{\"version\":1,\"tokens\":{\"1\":{\"user_";
        fs::write(&path, corrupt).unwrap();
        let store = FileStore::new(&path);
        assert!(matches!(
            store.load(&UserId::new("1")).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.save(&record("1", "T")).await,
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(fs::read(&path).unwrap(), corrupt);
        fs::write(&path, b"{\"version\":9,\"tokens\":{}}").unwrap();
        assert!(matches!(
            store.users().await,
            Err(StoreError::UnsupportedVersion(9))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        // Separate store values on one path behave like separate processes: only the file lock
        // serializes them.
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = FileStore::new(&path);
            tasks.push(tokio::spawn(async move {
                store.save(&record(&i.to_string(), "T")).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(FileStore::new(&path).users().await.unwrap().len(), 20);
    }

    #[tokio::test]
    async fn memory_store_works_like_the_file_store() {
        let store = MemoryStore::new();
        store.save(&record("1", "T")).await.unwrap();
        assert!(store.load(&UserId::new("1")).await.unwrap().is_some());
        assert_eq!(store.users().await.unwrap().len(), 1);
        assert!(store.remove(&UserId::new("1")).await.unwrap());
    }
}
