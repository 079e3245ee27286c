//! `--token-store keyring`: tokens in the operating system's credential store (the Secret
//! Service of GNOME Keyring or KWallet on Linux, the Keychain on macOS, the Credential Manager
//! on Windows), through the keyring ecosystem's crates, instead of the token file.
//!
//! Each user's record is one credential, `igdisplay` / `user:{id}`, holding the record's
//! JSON; a credential `igdisplay` / `users` lists the ids, since not every store can be
//! searched. A machine without such a store (a server, a container, a session without D-Bus)
//! falls back to the token file, with a warning saying so (reliability case 63).
//!
//! Unlike the token file, the keyring holds no cross-process refresh lock: two processes
//! may both refresh one token, which Instagram allows (the older token stays valid until it
//! expires); the in-process single flight still holds.

use igdisplay::auth::{StoreError, TokenRecord, TokenStore};
use igdisplay::model::UserId;
use keyring_core::{CredentialStore, Entry};
use std::sync::Arc;

/// The service name every credential is filed under.
const SERVICE: &str = "igdisplay";
/// The credential listing the stored user ids.
const INDEX: &str = "users";

/// Token records in a credential store.
#[derive(Clone)]
pub(crate) struct KeyringStore {
    store: Arc<CredentialStore>,
    /// Serializes this process's updates of the id list.
    index: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore")
            .field("vendor", &self.store.vendor())
            .finish()
    }
}

impl KeyringStore {
    /// A store over `store` (the system's, or keyring-core's mock in tests).
    pub(crate) fn new(store: Arc<CredentialStore>) -> Self {
        Self {
            store,
            index: Arc::default(),
        }
    }

    /// The system's credential store, or why there is none here.
    pub(crate) fn system() -> Result<Self, String> {
        system_store().map(Self::new).map_err(|e| e.to_string())
    }

    /// Runs `work` on the credential named `name`, on a blocking thread (the stores' calls
    /// block, some on D-Bus).
    async fn with_entry<T: Send + 'static>(
        &self,
        name: String,
        action: &'static str,
        work: impl FnOnce(&Entry) -> keyring_core::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let entry = store.build(SERVICE, &name, None)?;
            work(&entry)
        })
        .await;
        match joined {
            Ok(result) => result.map_err(|e| failed(action, e)),
            Err(e) => Err(StoreError::Io {
                action,
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    /// The text of credential `name`; `None` when there is none.
    async fn read(&self, name: String, action: &'static str) -> Result<Option<String>, StoreError> {
        self.with_entry(name, action, |entry| match entry.get_password() {
            Ok(text) => Ok(Some(text)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn ids(&self) -> Result<Vec<String>, StoreError> {
        match self
            .read(INDEX.to_owned(), "read the keyring's user list")
            .await?
        {
            Some(text) => serde_json::from_str(&text).map_err(StoreError::Corrupt),
            None => Ok(Vec::new()),
        }
    }

    async fn write_ids(&self, ids: Vec<String>) -> Result<(), StoreError> {
        let text = serde_json::to_string(&ids).map_err(StoreError::Corrupt)?;
        self.with_entry(INDEX.to_owned(), "write the keyring's user list", move |entry| {
            entry.set_password(&text)
        })
        .await
    }
}

/// A keyring failure as a store error: the platform's message, never a secret (the stores
/// report what failed, not what was being written).
fn failed(action: &'static str, error: keyring_core::Error) -> StoreError {
    StoreError::Io {
        action,
        source: std::io::Error::other(error.to_string()),
    }
}

fn entry_name(user: &UserId) -> String {
    format!("user:{}", user.as_str())
}

#[async_trait::async_trait]
impl TokenStore for KeyringStore {
    async fn load(&self, user: &UserId) -> Result<Option<TokenRecord>, StoreError> {
        match self
            .read(entry_name(user), "read a token from the keyring")
            .await?
        {
            Some(text) => serde_json::from_str(&text).map(Some).map_err(StoreError::Corrupt),
            None => Ok(None),
        }
    }

    async fn save(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let text = serde_json::to_string(record).map_err(StoreError::Corrupt)?;
        let _index = self.index.lock().await;
        self.with_entry(
            entry_name(&record.user_id),
            "write a token to the keyring",
            move |entry| entry.set_password(&text),
        )
        .await?;
        let mut ids = self.ids().await?;
        if !ids.iter().any(|id| id == record.user_id.as_str()) {
            ids.push(record.user_id.as_str().to_owned());
            self.write_ids(ids).await?;
        }
        Ok(())
    }

    async fn remove(&self, user: &UserId) -> Result<bool, StoreError> {
        let _index = self.index.lock().await;
        let existed = self
            .with_entry(
                entry_name(user),
                "remove a token from the keyring",
                |entry| match entry.delete_credential() {
                    Ok(()) => Ok(true),
                    Err(keyring_core::Error::NoEntry) => Ok(false),
                    Err(e) => Err(e),
                },
            )
            .await?;
        let mut ids = self.ids().await?;
        let before = ids.len();
        ids.retain(|id| id != user.as_str());
        if ids.len() != before {
            self.write_ids(ids).await?;
        }
        Ok(existed)
    }

    async fn users(&self) -> Result<Vec<UserId>, StoreError> {
        Ok(self.ids().await?.into_iter().map(UserId::new).collect())
    }
}

#[cfg(target_os = "linux")]
fn system_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

#[cfg(target_os = "macos")]
fn system_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

#[cfg(windows)]
fn system_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new()?)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn system_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Err(keyring_core::Error::NotSupportedByStore(
        "no credential store is supported on this platform".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use igdisplay::auth::TokenKind;
    use igdisplay::model::{AccessToken, Platform};
    use keyring_core::api::CredentialStoreApi as _;
    use keyring_core::mock;
    use std::time::{Duration, UNIX_EPOCH};

    const TOKEN: &str = "IGAAkeyringcanary0123456789";

    fn store() -> (KeyringStore, Arc<mock::Store>) {
        let mock = mock::Store::new().unwrap();
        (KeyringStore::new(mock.clone()), mock)
    }

    fn record(user: &str) -> TokenRecord {
        TokenRecord::new(
            UserId::new(user),
            AccessToken::new(TOKEN),
            TokenKind::LongLived,
            Platform::InstagramLogin,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            Duration::from_secs(5_184_000),
        )
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().unwrap()
    }

    #[test]
    fn records_round_trip_and_the_user_list_follows_saves_and_removals() {
        let (store, _) = store();
        runtime().block_on(async {
            assert!(store.load(&UserId::new("1")).await.unwrap().is_none());
            store.save(&record("1")).await.unwrap();
            store.save(&record("2")).await.unwrap();
            store.save(&record("1")).await.unwrap();
            let loaded = store.load(&UserId::new("1")).await.unwrap().unwrap();
            assert_eq!(loaded.access_token.expose_secret(), TOKEN);
            assert_eq!(store.users().await.unwrap(), [UserId::new("1"), UserId::new("2")]);
            assert!(store.remove(&UserId::new("1")).await.unwrap());
            assert!(!store.remove(&UserId::new("1")).await.unwrap());
            assert_eq!(store.users().await.unwrap(), [UserId::new("2")]);
            assert!(store.load(&UserId::new("1")).await.unwrap().is_none());
        });
    }

    #[test]
    fn a_failing_keyring_is_a_typed_error_without_the_token() {
        let (store, mock) = store();
        runtime().block_on(async {
            store.save(&record("1")).await.unwrap();
            let entry = mock.build(SERVICE, "user:1", None).unwrap();
            let credential: &mock::Cred = entry.as_any().downcast_ref().unwrap();
            credential.set_error(keyring_core::Error::PlatformFailure(
                "the keyring is locked".into(),
            ));
            let error = store.load(&UserId::new("1")).await.unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(matches!(error, StoreError::Io { .. }), "{shown}");
            assert!(
                shown.contains("the keyring is locked") && !shown.contains(TOKEN),
                "{shown}"
            );
            // The error was one call's: the record is still there.
            assert!(store.load(&UserId::new("1")).await.unwrap().is_some());
        });
    }

    #[test]
    fn a_credential_that_is_not_a_record_is_reported_corrupt() {
        let (store, mock) = store();
        mock.build(SERVICE, "user:1", None)
            .unwrap()
            .set_password("not json")
            .unwrap();
        let error = runtime().block_on(store.load(&UserId::new("1"))).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    }
}
