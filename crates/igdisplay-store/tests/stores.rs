//! The SQL store against real databases, each scenario on SQLite (a file) and on PostgreSQL
//! (a database of its own on the cluster `cargo xtask ci` starts, `IGDISPLAY_TEST_POSTGRES`):
//! round trips, compare-and-swap, a stale refresh that loses to a newer login, refreshes that
//! never revive an account, tombstones, keys (rotation, wrong and missing ones), a too-new
//! schema, instances migrating together, the file's mode, and no token in the clear anywhere in
//! the database files or a dump.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use igdisplay_auth::{Platform, TokenRecord, TokenStore};
use igdisplay_model::{AccessToken, UserId};
use igdisplay_store::{Error, Key, KeyError, KeyRing, SqlStore};
use std::time::{Duration, SystemTime};

mod common;
use common::{CANARY, Db, inner, record, ring, stored_token};

on_both!(
    records_round_trip_and_survive_a_reopen,
    no_token_is_in_the_database_in_the_clear,
    compare_and_swap_writes_only_over_the_version_read,
    a_refresh_that_raced_a_new_login_loses,
    a_wrong_or_missing_key_is_a_typed_error_and_rotation_keeps_old_rows_readable,
    a_database_from_a_newer_version_is_refused,
    the_token_manager_works_over_the_store,
    a_row_that_is_not_a_record_is_reported_corrupt,
    a_refreshs_write_never_brings_back_a_removed_or_unusable_account,
    a_login_begun_before_a_deletion_is_refused_and_one_after_it_revives_the_account,
    eight_instances_starting_together_on_an_empty_database_all_start,
    a_task_lease_has_one_holder_across_instances_until_released_or_run_out,
    a_held_task_lease_is_renewed_while_its_work_runs,
);

async fn records_round_trip_and_survive_a_reopen(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    let mut saved = record("17841400000000001", CANARY, 1_700_000_000);
    saved.permissions = Some(vec!["instagram_business_basic".into()]);
    saved.issued_by = Some("http://127.0.0.1:8787".into());
    store.save(&saved).await.unwrap();
    store
        .save(&record("17841400000000002", "IGAAother", 1_700_000_000))
        .await
        .unwrap();
    drop(store);
    let store = db.open(ring("k1", 1)).await;
    let loaded = store.load(&saved.user_id).await.unwrap().unwrap();
    assert_eq!(loaded.access_token.expose_secret(), CANARY);
    assert_eq!(
        (loaded.expires_at, loaded.permissions, loaded.issued_by),
        (saved.expires_at, saved.permissions, saved.issued_by)
    );
    assert_eq!(store.users().await.unwrap().len(), 2);
    assert!(store.remove(&saved.user_id).await.unwrap());
    assert!(!store.remove(&saved.user_id).await.unwrap());
    assert!(store.load(&saved.user_id).await.unwrap().is_none());
}

async fn no_token_is_in_the_database_in_the_clear(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    for n in 0..50 {
        store
            .save(&record(
                &format!("178414000000{n:05}"),
                &format!("{CANARY}-{n}"),
                1_700_000_000,
            ))
            .await
            .unwrap();
    }
    drop(store);
    let bytes = db.contents();
    assert!(
        !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
        "a token in the clear"
    );
}

async fn compare_and_swap_writes_only_over_the_version_read(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    let user = UserId::new("17841400000000001");
    let first = store
        .save_if_version(&record(user.as_str(), "IGAAone", 1_700_000_000), None)
        .await
        .unwrap();
    assert_eq!(first, 1);
    let read = store.account(&user).await.unwrap().unwrap();
    // Someone else writes in between.
    store
        .save_if_version(
            &record(user.as_str(), "IGAAtwo", 1_700_000_100),
            Some(read.version),
        )
        .await
        .unwrap();
    let late = store
        .save_if_version(
            &record(user.as_str(), "IGAAthree", 1_700_000_200),
            Some(read.version),
        )
        .await
        .unwrap_err();
    assert!(matches!(late, Error::Conflict { .. }), "{late:?}");
    let again = store
        .save_if_version(&record(user.as_str(), "IGAAagain", 1_700_000_200), None)
        .await
        .unwrap_err();
    assert!(
        matches!(again, Error::Conflict { .. }),
        "an insert over a row conflicts"
    );
    let now = store.account(&user).await.unwrap().unwrap();
    assert_eq!(
        (now.record.access_token.expose_secret(), now.version),
        ("IGAAtwo", 2)
    );
}

async fn a_refresh_that_raced_a_new_login_loses(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    let user = "17841400000000001";
    store.save(&record(user, "IGAAold", 1_700_000_000)).await.unwrap();
    // The login completes at t+200; a refresh sent at t+100 answers after it.
    store
        .save(&record(user, "IGAAlogin", 1_700_000_200))
        .await
        .unwrap();
    let stale = store
        .save(&record(user, "IGAArefresh", 1_700_000_100))
        .await
        .unwrap_err();
    assert!(matches!(inner(&stale), Error::Conflict { .. }), "{stale:?}");
    let kept = store.load(&UserId::new(user)).await.unwrap().unwrap();
    assert_eq!(kept.access_token.expose_secret(), "IGAAlogin");
}

async fn a_wrong_or_missing_key_is_a_typed_error_and_rotation_keeps_old_rows_readable(db: Db) {
    let user = UserId::new("17841400000000001");
    db.open(ring("k1", 1))
        .await
        .save(&record(user.as_str(), CANARY, 1_700_000_000))
        .await
        .unwrap();

    let wrong = db.open(ring("k1", 2)).await.load(&user).await.unwrap_err();
    assert!(
        matches!(inner(&wrong), Error::Key(KeyError::Open { .. })),
        "{wrong:?}"
    );
    let missing = db.open(ring("k2", 1)).await.load(&user).await.unwrap_err();
    assert!(
        matches!(inner(&missing), Error::Key(KeyError::MissingKey { .. })),
        "{missing:?}"
    );
    for error in [&wrong, &missing] {
        let shown = format!("{error} {error:?} {}", inner(error));
        assert!(!shown.contains(CANARY), "{shown}");
    }

    // A new current key with the old one kept: old rows open, new writes use the new key.
    let rotated =
        KeyRing::new(Key::new("k2", &[2u8; 32]).unwrap()).with_previous(Key::new("k1", &[1u8; 32]).unwrap());
    let store = db.open(rotated).await;
    let account = store.account(&user).await.unwrap().unwrap();
    assert_eq!(
        (
            account.record.access_token.expose_secret(),
            account.key_id.as_str()
        ),
        (CANARY, "k1")
    );
    store
        .save(&record(user.as_str(), CANARY, 1_700_000_100))
        .await
        .unwrap();
    assert_eq!(store.account(&user).await.unwrap().unwrap().key_id, "k2");
}

async fn a_database_from_a_newer_version_is_refused(db: Db) {
    drop(db.open(ring("k1", 1)).await);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url()).await.unwrap();
    sqlx::query("INSERT INTO igdisplay_schema (version) VALUES (99)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let error = SqlStore::connect(&db.url(), ring("k1", 1)).await.unwrap_err();
    assert!(
        matches!(error, Error::SchemaTooNew { found: 99, .. }),
        "{error:?}"
    );
}

async fn the_token_manager_works_over_the_store(db: Db) {
    use igdisplay_auth::{AppConfig, AuthClient, TokenManager};
    use igdisplay_http::test_util::ReplayBackend;
    let store = std::sync::Arc::new(db.open(ring("k1", 1)).await);
    let client = AuthClient::new(
        AppConfig::read_only(Platform::InstagramLogin),
        std::sync::Arc::new(ReplayBackend::default()),
    );
    let tokens = TokenManager::new(client, store);
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now();
    let fresh = TokenRecord::long_lived(
        UserId::new("17841400000000001"),
        AccessToken::new(CANARY),
        Platform::InstagramLogin,
        now,
    );
    tokens.import(fresh.clone()).await.unwrap();
    assert_eq!(
        tokens.access_token(&fresh.user_id).await.unwrap().expose_secret(),
        CANARY
    );
}

async fn a_row_that_is_not_a_record_is_reported_corrupt(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    let user = UserId::new("17841400000000001");
    store
        .save(&record(user.as_str(), CANARY, 1_700_000_000))
        .await
        .unwrap();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url()).await.unwrap();
    for broken in ["[1, 2]", "\"text\"", "{\"user_id\": 5}", "not json"] {
        sqlx::query("UPDATE accounts SET record = $1")
            .bind(broken)
            .execute(&pool)
            .await
            .unwrap();
        let error = store.load(&user).await.unwrap_err();
        assert!(
            matches!(inner(&error), Error::Corrupt { .. }),
            "{broken}: {error:?}"
        );
        assert!(!format!("{error:?} {}", inner(&error)).contains(CANARY));
    }
}

async fn a_refreshs_write_never_brings_back_a_removed_or_unusable_account(db: Db) {
    use igdisplay_auth::StoreError;
    let store = db.open(ring("k1", 1)).await;
    let user = UserId::new("17841400000000001");
    let old = record(user.as_str(), "IGAAold", 1_700_000_000);
    let fresh = record(user.as_str(), "IGAAfresh", 1_700_100_000);
    // Logged out (no tombstone) while the refresh was in flight: nothing comes back.
    store.save(&old).await.unwrap();
    store.remove(&user).await.unwrap();
    assert!(matches!(
        store.save_refreshed(&old, &fresh).await,
        Err(StoreError::Superseded)
    ));
    assert!(store.account(&user).await.unwrap().is_none());
    // Revoked, then deauthorized meanwhile: the state stays.
    for mark in ["revoked", "deauthorized"] {
        store.save(&old).await.unwrap();
        match mark {
            "revoked" => drop(store.mark_revoked(&user, "error 190").await.unwrap()),
            _ => drop(store.deauthorize(&user).await.unwrap()),
        }
        assert!(matches!(
            store.save_refreshed(&old, &fresh).await,
            Err(StoreError::Superseded)
        ));
        assert!(matches!(
            store.load(&user).await,
            Err(StoreError::LoginRequired { state }) if state == mark
        ));
    }
    // A token stored meanwhile (a login) is not replaced either; over the one refreshed, it is.
    let login = record(user.as_str(), "IGAAlogin", 1_700_050_000);
    store.save(&login).await.unwrap();
    assert!(matches!(
        store.save_refreshed(&old, &fresh).await,
        Err(StoreError::Superseded)
    ));
    store.save_refreshed(&login, &fresh).await.unwrap();
    assert_eq!(stored_token(&store, &user).await, "IGAAfresh");
}

async fn a_login_begun_before_a_deletion_is_refused_and_one_after_it_revives_the_account(db: Db) {
    use igdisplay_auth::StoreError;
    let clock = igdisplay_http::ManualClock::at_unix(1_700_000_000);
    let store = db
        .open(ring("k1", 1))
        .await
        .with_pinned_time(std::sync::Arc::new(clock.clone()));
    let user = UserId::new("17841400000000001");
    // The deletion request lands at t; a login whose token was issued a second before
    // finishes after it.
    store.delete_account(&user, "DEL-1").await.unwrap();
    let stale = store
        .save(&record(user.as_str(), "IGAAbefore", 1_699_999_999))
        .await
        .unwrap_err();
    assert!(matches!(stale, StoreError::Superseded), "{stale:?}");
    assert!(store.account(&user).await.unwrap().is_none());
    // The tombstone holds the id and the time, nothing else.
    let columns: Vec<String> = store
        .list(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.user_id.to_string())
        .collect();
    assert!(columns.is_empty());
    // A login after the deletion is a new grant: the account is back.
    clock.advance(Duration::from_secs(60));
    store
        .save(&record(user.as_str(), "IGAAafter", 1_700_000_060))
        .await
        .unwrap();
    assert_eq!(stored_token(&store, &user).await, "IGAAafter");
}

/// Eight instances (pools of their own, as processes have) open an empty database at the
/// same moment: every one starts, and the schema is migrated once.
async fn eight_instances_starting_together_on_an_empty_database_all_start(db: Db) {
    let url = db.url();
    let opened = futures_util::future::join_all((0..8).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { SqlStore::connect(&url, ring("k1", 1)).await })
    }))
    .await;
    for store in opened {
        let store = store.unwrap().unwrap_or_else(|e| panic!("{e:?}"));
        assert!(store.is_ready().await.unwrap());
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM igdisplay_schema ORDER BY version")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7], "each migration once");
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts.db");
    let store = SqlStore::sqlite(&path, ring("k1", 1)).await.unwrap();
    store
        .save(&record("17841400000000001", CANARY, 1_700_000_000))
        .await
        .unwrap();
    for name in ["accounts.db", "accounts.db-wal", "accounts.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
    // A file left open by another tool is made private when opened.
    drop(store);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(SqlStore::sqlite(&path, ring("k1", 1)).await.unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Two instances on one database: one holds a task (a mirror's sync); the other is refused
/// until it is released, and a holder that died (its lease dropped, no longer renewed) loses
/// it once it runs out, on the database's time.
async fn a_task_lease_has_one_holder_across_instances_until_released_or_run_out(db: Db) {
    let clock = igdisplay_http::ManualClock::at_unix(1_700_000_000);
    let shared: igdisplay_http::SharedClock = std::sync::Arc::new(clock.clone());
    let one = db.open(ring("k1", 1)).await.with_pinned_time(shared.clone());
    let two = db.open(ring("k1", 1)).await.with_pinned_time(shared);
    let lease = Duration::from_secs(600);
    let held = one.try_task("mirror-sync:1", lease).await.unwrap().unwrap();
    assert!(
        two.try_task("mirror-sync:1", lease).await.unwrap().is_none(),
        "held elsewhere"
    );
    assert!(
        two.try_task("mirror-sync:2", lease).await.unwrap().is_some(),
        "another task is free"
    );
    held.release().await.unwrap();
    let crashed = two.try_task("mirror-sync:1", lease).await.unwrap().unwrap();
    drop(crashed); // its holder died: no release, no renewal
    assert!(
        one.try_task("mirror-sync:1", lease).await.unwrap().is_none(),
        "not run out yet"
    );
    clock.advance(Duration::from_secs(601));
    assert!(
        one.try_task("mirror-sync:1", lease).await.unwrap().is_some(),
        "run out: taken over"
    );
    // The accounts deleted at their request are listed for the mirrors to purge.
    one.delete_account(&UserId::new("17841400000000009"), "DEL-9")
        .await
        .unwrap();
    assert_eq!(
        one.deleted_users().await.unwrap(),
        [UserId::new("17841400000000009")]
    );
}

/// The holder's lease is renewed every third of its length while held: past its first end,
/// another instance is still refused.
async fn a_held_task_lease_is_renewed_while_its_work_runs(db: Db) {
    let clock = igdisplay_http::ManualClock::at_unix(1_700_000_000);
    let shared: igdisplay_http::SharedClock = std::sync::Arc::new(clock.clone());
    let one = db.open(ring("k1", 1)).await.with_pinned_time(shared.clone());
    let two = db.open(ring("k1", 1)).await.with_pinned_time(shared);
    let lease = Duration::from_secs(60);
    let _held = one.try_task("mirror-sync:1", lease).await.unwrap().unwrap();
    let until = || async {
        sqlx::query_scalar::<_, i64>("SELECT until_at FROM task_leases WHERE name = 'mirror-sync:1'")
            .fetch_one(one.pool())
            .await
            .unwrap()
    };
    let first = until().await;
    clock.advance(Duration::from_secs(30)); // the renewal is due at 20 s
    let mut renewed = first;
    for _ in 0..100_000 {
        renewed = until().await;
        if renewed > first {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(renewed, first + 30, "renewed for a lease from now");
    clock.advance(Duration::from_secs(40)); // past the first end, within the renewed one
    assert!(two.try_task("mirror-sync:1", lease).await.unwrap().is_none());
}
