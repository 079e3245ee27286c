//! What every scenario file shares: a database per test (SQLite or PostgreSQL), records,
//! key rings, and `on_both!`, which runs each scenario on both databases.

#![allow(dead_code)]

use igdisplay_auth::{Platform, StoreError, TokenRecord};
use igdisplay_model::{AccessToken, UserId};
use igdisplay_store::{Error, Key, KeyRing, SqlStore};
use std::time::{Duration, UNIX_EPOCH};

pub(crate) const CANARY: &str = "IGAA-STORE-CANARY-7f3c9d";

pub(crate) fn record(user: &str, token: &str, issued_unix: u64) -> TokenRecord {
    TokenRecord::long_lived(
        UserId::new(user),
        AccessToken::new(token),
        Platform::InstagramLogin,
        UNIX_EPOCH + Duration::from_secs(issued_unix),
    )
}

/// The token `store` holds for `user` (there must be one), in the clear.
pub(crate) async fn stored_token(store: &SqlStore, user: &UserId) -> String {
    use igdisplay_auth::TokenStore as _;
    let record = store.load(user).await.unwrap().unwrap();
    record.access_token.expose_secret().to_owned()
}

pub(crate) fn ring(id: &str, byte: u8) -> KeyRing {
    KeyRing::new(Key::new(id, &[byte; 32]).unwrap())
}

/// A database of one test: a SQLite file in a temporary folder, or a PostgreSQL database
/// made for it on the test cluster.
pub(crate) enum Db {
    Sqlite(tempfile::TempDir),
    Postgres { url: String },
}

impl Db {
    pub(crate) fn sqlite() -> Self {
        Db::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh database on the test cluster; `None` (the scenario is skipped, and says so)
    /// when no cluster is configured, unless `IGDISPLAY_REQUIRE_POSTGRES` says one must be.
    pub(crate) async fn postgres() -> Option<Self> {
        let Some(admin) = igdisplay_store::test_util::test_cluster() else {
            eprintln!("skipped: no PostgreSQL (set IGDISPLAY_TEST_POSTGRES, as `cargo xtask ci` does)");
            return None;
        };
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).unwrap();
        let name: String = std::iter::once("igd_".to_owned())
            .chain(random.iter().map(|b| format!("{b:02x}")))
            .collect();
        let url = igdisplay_store::test_util::fresh_database(&admin, &name)
            .await
            .unwrap();
        Some(Db::Postgres { url })
    }

    pub(crate) fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}?mode=rwc", dir.path().join("accounts.db").display()),
            Db::Postgres { url } => url.clone(),
        }
    }

    pub(crate) async fn open(&self, keys: KeyRing) -> SqlStore {
        SqlStore::connect(&self.url(), keys).await.unwrap()
    }

    /// Every byte the database keeps: the SQLite files, or a dump of the PostgreSQL one.
    pub(crate) fn contents(&self) -> Vec<u8> {
        match self {
            Db::Sqlite(dir) => std::fs::read_dir(dir.path())
                .unwrap()
                .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap())
                .collect(),
            Db::Postgres { url } => {
                let bin = std::env::var("IGDISPLAY_TEST_PG_BIN").unwrap_or_default();
                let output = std::process::Command::new(std::path::Path::new(&bin).join("pg_dump"))
                    .arg(url)
                    .output()
                    .unwrap();
                assert!(
                    output.status.success(),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                assert!(!output.stdout.is_empty());
                output.stdout
            }
        }
    }
}

/// The store's own error under a trait call's `StoreError::Backend`.
pub(crate) fn inner(error: &StoreError) -> &Error {
    match error {
        StoreError::Backend { source, .. } => source.downcast_ref::<Error>().unwrap(),
        other => panic!("{other:?}"),
    }
}

/// Each scenario twice: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::common::Db::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = super::common::Db::postgres().await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}
