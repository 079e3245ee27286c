//! Where tokens live between runs: the [`TokenStore`] trait, a [`MemoryStore`] and a
//! [`FileStore`].
//!
//! The file store keeps one JSON document keyed by user id. It is created with mode 0600 in a
//! 0700 directory (on Unix), replaced atomically (temporary file, fsync, rename, fsync of the
//! directory), and writers take an exclusive lock on a sidecar file, so two processes never
//! lose each other's updates. A failed write leaves the previous file intact and readable.
//! A second sidecar lock ([`TokenStore::refresh_lock`]) keeps two processes from refreshing
//! the same token at once.

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

    /// Writes `fresh`, the refresh of `previous`, only while `previous` is still the stored
    /// token: a refresh never brings back an account removed meanwhile (a logout, a
    /// deauthorization, a data deletion) and never replaces a token stored meanwhile (a new
    /// login, another process's refresh). Saving a new login's token is
    /// [`save`](Self::save); only that revives an account.
    ///
    /// The default reads and then writes, which is right for a store that one process uses;
    /// the stores of this crate and the SQL stores check and write in one step.
    ///
    /// # Errors
    ///
    /// [`StoreError::Superseded`] when `previous` is no longer the stored token (nothing is
    /// written); any other [`StoreError`] of the store.
    async fn save_refreshed(&self, previous: &TokenRecord, fresh: &TokenRecord) -> Result<(), StoreError> {
        match self.load(&previous.user_id).await? {
            Some(current) if current.same_token(previous) => self.save(fresh).await,
            _ => Err(StoreError::Superseded),
        }
    }

    /// Instagram refused `record`'s token for good (error 190 on a refresh): a store that
    /// keeps account states marks the account so that it is never sent again until its user
    /// logs in again ([`load`](Self::load) then answers [`StoreError::LoginRequired`]). The
    /// default keeps nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be written.
    async fn revoked(&self, record: &TokenRecord, reason: &str) -> Result<(), StoreError> {
        let _ = (record, reason);
        Ok(())
    }

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

    /// Holds the store's refresh lock for `user` until the returned guard drops, so that
    /// [`TokenManager`](crate::TokenManager)s in other processes sharing this store do not
    /// refresh the same token at once: the manager takes it after its in-process single
    /// flight and reads the record again under it.
    ///
    /// The default takes no lock, which is right for a store that one process uses.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the lock cannot be taken.
    async fn refresh_lock(&self, user: &UserId) -> Result<RefreshLock, StoreError> {
        let _ = user;
        Ok(RefreshLock::none())
    }
}

/// A held cross-process refresh lock ([`TokenStore::refresh_lock`]); released on drop.
///
/// A store whose lock is something to hold (a locked file, a database lease, a mutex guard)
/// wraps it in [`RefreshLock::holding`]:
///
/// ```
/// use igdisplay_auth::RefreshLock;
/// use std::sync::Arc;
///
/// let shared = Arc::new(tokio::sync::Mutex::new(()));
/// let held = RefreshLock::holding(shared.clone().try_lock_owned().unwrap());
/// assert!(shared.try_lock().is_err(), "held while the RefreshLock lives");
/// drop(held);
/// assert!(shared.try_lock().is_ok());
/// ```
#[must_use = "the lock is released when this is dropped"]
pub struct RefreshLock {
    _held: Option<Box<dyn Send + Sync>>,
    elsewhere: bool,
}

impl RefreshLock {
    /// No lock: for stores used by one process.
    pub fn none() -> Self {
        Self {
            _held: None,
            elsewhere: false,
        }
    }

    /// A lock held as long as `guard` lives (a locked file, a database lease, ...).
    pub fn holding(guard: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Some(Box::new(guard)),
            elsewhere: false,
        }
    }

    /// Another process holds the lock and is refreshing this token; it was not released
    /// within the store's wait. The [`TokenManager`](crate::TokenManager) then refreshes
    /// nothing and hands out the stored token, which is still valid.
    pub fn elsewhere() -> Self {
        Self {
            _held: None,
            elsewhere: true,
        }
    }

    /// Whether another process holds the lock ([`elsewhere`](Self::elsewhere)).
    pub fn is_held_elsewhere(&self) -> bool {
        self.elsewhere
    }
}

impl std::fmt::Debug for RefreshLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshLock")
            .field("held", &self._held.is_some())
            .field("elsewhere", &self.elsewhere)
            .finish()
    }
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

    async fn save_refreshed(&self, previous: &TokenRecord, fresh: &TokenRecord) -> Result<(), StoreError> {
        let mut records = self.records();
        match records.get_mut(&previous.user_id) {
            Some(current) if current.same_token(previous) => {
                *current = fresh.clone();
                Ok(())
            }
            _ => Err(StoreError::Superseded),
        }
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
/// write leaves the previous file intact. A missing directory is created 0700; an existing
/// one is left as it is (it may be yours), so keep the file in a directory of its own. Cheap to clone: clones
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
        self.update_if(|document| Ok(change(document)))
    }

    /// Read-modify-write under the lock; nothing is written when `change` refuses.
    fn update_if<T>(
        &self,
        change: impl FnOnce(&mut Document) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        create_private_dir(parent_dir(&self.inner.path)).map_err(io("create the token directory"))?;
        let lock = open_lock(&sidecar(&self.inner.path, ".lock")).map_err(io("open the lock file"))?;
        lock.lock().map_err(io("lock the token file"))?;
        let mut document = self.read()?;
        let result = change(&mut document)?;
        document.version = FORMAT_VERSION;
        self.write(&document)?;
        drop(lock);
        Ok(result)
    }

    fn write(&self, document: &Document) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(document).map_err(StoreError::Corrupt)?;
        let before_rename = || {
            #[cfg(test)]
            if self
                .inner
                .fail_before_rename
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                return Err(std::io::Error::other("injected failure"));
            }
            Ok(())
        };
        replace_private(&self.inner.path, &json, before_rename).map_err(io("replace the token file"))
    }
}

/// Writes `bytes` to `path` atomically, readable and writable only by its owner: a temporary
/// file with a random name beside it, created exclusively (so a file or symbolic link planted
/// in its place is never followed or reused), flushed, renamed over `path`, and the directory
/// flushed. A missing directory is created `0700`. On failure the old file is untouched and
/// the temporary one removed.
///
/// The token store writes through it, and so does anything else that holds a secret on disk
/// (the CLI's pending login and export index).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("igdisplay-doc-{}", std::process::id()));
/// let path = dir.join("pending.json");
/// igdisplay_auth::write_private(&path, b"{}")?;
/// assert_eq!(std::fs::read(&path)?, b"{}");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// Any I/O failure creating the directory, writing, flushing or renaming.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_private(path, bytes, || Ok(()))
}

fn replace_private(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce() -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut file = PrivateFile::create(path)?;
    file.write_all(bytes)?;
    file.commit_with(before_rename)
}

/// A private file written a piece at a time, then put in place at once: what
/// [`write_private`] does for bytes already in memory, for a document too large to hold (the
/// CLI's export index streams one item at a time through it).
///
/// The content goes to a temporary file beside `path`, with a random name, created
/// exclusively and `0600`; [`commit`](Self::commit) flushes it, renames it over `path` and
/// flushes the directory. Until then `path` keeps its previous content, and a `PrivateFile`
/// dropped without a commit removes its temporary file.
///
/// ```
/// use std::io::Write as _;
/// let dir = std::env::temp_dir().join(format!("igdisplay-doc-stream-{}", std::process::id()));
/// let path = dir.join("index.json");
/// let mut file = igdisplay_auth::PrivateFile::create(&path)?;
/// for line in ["[", "1,", "2", "]"] {
///     file.write_all(line.as_bytes())?;
/// }
/// assert!(!path.exists(), "nothing is in place before the commit");
/// file.commit()?;
/// assert_eq!(std::fs::read(&path)?, b"[1,2]");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PrivateFile {
    path: PathBuf,
    temp: PathBuf,
    file: Option<std::io::BufWriter<File>>,
}

impl PrivateFile {
    /// Starts writing `path`, creating its directory (`0700`) when missing.
    ///
    /// # Errors
    ///
    /// Any I/O failure creating the directory or the temporary file.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Self::create_with(path, Access::Owner)
    }

    /// Starts writing `path` as [`create`](Self::create) does, but readable by everyone
    /// (`0644`, a missing directory `0755`): media a web server running as another user
    /// serves. Everything else is the same: a random temporary name, created exclusively,
    /// flushed and renamed.
    ///
    /// # Errors
    ///
    /// Any I/O failure creating the directory or the temporary file.
    pub fn create_readable(path: &Path) -> std::io::Result<Self> {
        Self::create_with(path, Access::Everyone)
    }

    fn create_with(path: &Path, access: Access) -> std::io::Result<Self> {
        let dir = parent_dir(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        create_dir(dir, access)?;
        let (temp, file) = match create_temp(dir, &name, access) {
            // The directory went away since (a store removes a folder as it empties): again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_dir(dir, access)?;
                create_temp(dir, &name, access)?
            }
            created => created?,
        };
        Ok(Self {
            path: path.to_path_buf(),
            temp,
            file: Some(std::io::BufWriter::new(file)),
        })
    }

    /// Flushes what was written and puts it in place of `path`.
    ///
    /// # Errors
    ///
    /// Any I/O failure flushing or renaming; `path` then keeps its previous content and the
    /// temporary file is removed.
    pub fn commit(self) -> std::io::Result<()> {
        self.commit_with(|| Ok(()))
    }

    fn commit_with(mut self, before_rename: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
        let file = self.file.take().ok_or_else(closed)?;
        let file = file.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        before_rename()?;
        fs::rename(&self.temp, &self.path)?;
        if let Ok(dir) = File::open(parent_dir(&self.path)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

fn closed() -> std::io::Error {
    std::io::Error::other("the private file was already committed")
}

impl std::io::Write for PrivateFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().ok_or_else(closed)?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().ok_or_else(closed)?.flush()
    }
}

impl Drop for PrivateFile {
    /// Removes the temporary file unless it was committed (a failed commit included).
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.temp);
    }
}

/// The directory a file lives in (`.` for a bare name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Who may read a file [`PrivateFile`] writes.
#[derive(Clone, Copy, Debug)]
enum Access {
    /// Its owner: `0600`, a new directory `0700`.
    Owner,
    /// Everyone: `0644`, a new directory `0755`.
    Everyone,
}

impl Access {
    /// The file's mode and a new directory's.
    #[cfg_attr(not(unix), allow(dead_code))]
    fn modes(self) -> (u32, u32) {
        match self {
            Self::Owner => (0o600, 0o700),
            Self::Everyone => (0o644, 0o755),
        }
    }
}

/// Whether `name` is one of [`PrivateFile`]'s temporary files: `.{name}.{16 hex}.tmp`. What
/// a crash leaves behind; never a document of its own (a file server refuses it, a store
/// removes it when it starts).
///
/// ```
/// assert!(igdisplay_auth::is_temporary(".image.jpg.0123456789abcdef.tmp"));
/// assert!(!igdisplay_auth::is_temporary("image.jpg"));
/// ```
pub fn is_temporary(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|rest| rest.strip_suffix(".tmp")) else {
        return false;
    };
    rest.rsplit_once('.').is_some_and(|(stem, random)| {
        !stem.is_empty() && random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A new file `.{name}.{16 random hex}.tmp` in `dir`, created exclusively: it fails rather
/// than open anything already there, a symbolic link included.
fn create_temp(dir: &Path, name: &str, access: Access) -> std::io::Result<(PathBuf, File)> {
    let suffix = crate::random_hex(8).map_err(std::io::Error::other)?;
    let temp = dir.join(format!(".{name}.{suffix}.tmp"));
    let file = create_exclusive(&temp, access)?;
    Ok((temp, file))
}

/// Creates `path`, failing if anything exists there (O_CREAT|O_EXCL, which never follows a
/// symbolic link).
fn create_exclusive(path: &Path, access: Access) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, access.modes().0);
    #[cfg(not(unix))]
    let _ = access;
    options.open(path)
}

/// Opens the lock file, creating it `0600` if missing; refuses a symbolic link in its place.
/// Read-only is enough to lock.
fn open_lock(path: &Path) -> std::io::Result<File> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the lock file is a symbolic link; remove it",
            ));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match create_exclusive(path, Access::Owner) {
            Ok(file) => return Ok(file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        },
        Err(e) => return Err(e),
    }
    OpenOptions::new().read(true).open(path)
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

/// `path` with `suffix` appended to its file name.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

fn io(action: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |source| StoreError::Io { action, source }
}

/// Creates `dir` (and its parents) `0700` if it is missing.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    create_dir(dir, Access::Owner)
}

/// Creates `dir` and its parents when missing, with the mode `access` gives a directory.
fn create_dir(dir: &Path, access: Access) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, access.modes().1);
    #[cfg(not(unix))]
    let _ = access;
    builder.create(dir)
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

    /// Checked and written under the file's lock: another process's logout or login in
    /// between is seen.
    async fn save_refreshed(&self, previous: &TokenRecord, fresh: &TokenRecord) -> Result<(), StoreError> {
        let store = self.clone();
        let (previous, fresh) = (previous.clone(), fresh.clone());
        blocking(move || {
            store.update_if(|doc| match doc.tokens.get_mut(previous.user_id.as_str()) {
                Some(current) if current.same_token(&previous) => {
                    *current = fresh;
                    Ok(())
                }
                _ => Err(StoreError::Superseded),
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

    /// An exclusive lock on a second sidecar file (`<name>.refresh.lock`), for every user of
    /// the file: other processes' refreshes wait for it; the operating system releases it if
    /// the process dies.
    async fn refresh_lock(&self, _user: &UserId) -> Result<RefreshLock, StoreError> {
        let path = sidecar(&self.inner.path, ".refresh.lock");
        blocking(move || {
            create_private_dir(parent_dir(&path)).map_err(io("create the token directory"))?;
            let lock = open_lock(&path).map_err(io("open the refresh lock file"))?;
            lock.lock().map_err(io("lock the refresh lock file"))?;
            Ok(RefreshLock::holding(lock))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Platform;
    use igdisplay_model::AccessToken;
    use std::time::{Duration, UNIX_EPOCH};

    fn record(user: &str, token: &str) -> TokenRecord {
        TokenRecord::long_lived(
            UserId::new(user),
            AccessToken::new(token),
            Platform::BasicDisplay,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
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

#[cfg(test)]
#[cfg(unix)]
mod planted_link_tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("igdisplay-links-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn an_exclusive_create_never_follows_a_planted_link() {
        let dir = dir("exclusive");
        let target = dir.join("attacker.txt");
        let planted = dir.join(".tokens.json.0000000000000000.tmp");
        std::os::unix::fs::symlink(&target, &planted).unwrap();
        let error = create_exclusive(&planted, Access::Owner).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
        assert!(!target.exists(), "nothing was written through the link");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_written_file_is_private_and_replaces_a_link_instead_of_writing_through_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = dir("replace");
        let target = dir.join("attacker.txt");
        fs::write(&target, "theirs").unwrap();
        let path = dir.join("pending.json");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        write_private(&path, b"CANARY-SECRET").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "theirs");
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_private_file_dropped_before_its_commit_leaves_the_old_file_and_no_temporary() {
        use std::io::Write as _;
        let dir = dir("dropped");
        let path = dir.join("index.json");
        fs::write(&path, "old").unwrap();
        let mut file = PrivateFile::create(&path).unwrap();
        file.write_all(b"half a docu").unwrap();
        drop(file);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["index.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_file_that_is_a_link_is_refused() {
        let dir = dir("lock");
        let target = dir.join("elsewhere");
        std::os::unix::fs::symlink(&target, dir.join("tokens.json.lock")).unwrap();
        let store = FileStore::new(dir.join("tokens.json"));
        let error = store.update(|_| ()).unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Io {
                    action: "open the lock file",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(!target.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
