//! The feed service's rows on both databases: feeds, one-time connect links (used once,
//! expiring, their parked login sealed), admin tokens kept as hashes, deleting a feed (its
//! account released only when no other feed shows it), the sync schedule shared by instances
//! (claims, a dead instance's claim taken over, a late finish refused), and `needs_login`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use igdisplay_auth::TokenStore as _;
use igdisplay_model::{Timestamp, UserId};
use igdisplay_store::{Event, LinkState, SqlStore};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{Db, record, ring};

on_both!(
    feeds_are_created_read_listed_updated_and_deleted,
    a_connect_link_binds_its_feed_once_and_then_is_used,
    a_connect_link_expires_and_a_deleted_feeds_link_is_unknown,
    a_link_is_used_only_with_its_token_kept_in_the_same_write,
    a_parked_login_is_sealed_to_its_link,
    deleting_the_last_feed_of_an_account_releases_its_token_and_queues_its_purge,
    admin_tokens_and_link_secrets_are_never_in_the_database,
    an_account_is_synced_by_one_instance_and_a_dead_ones_claim_is_taken_over,
    a_sync_that_outlives_its_claim_is_recorded_once_nobody_holds_the_account,
    a_revoked_account_writes_needs_login_naming_its_feeds_once,
    a_deleted_accounts_feeds_are_unbound_and_keep_no_row_with_its_id,
    feeds_are_counted_by_state,
    a_feeds_state_follows_its_syncs_and_its_account_for_a_page_and_the_metrics_alike,
);

const USER: &str = "17841400000000001";

/// A new connect link of the feed `id`, valid `seconds`.
async fn link_of(store: &SqlStore, id: &str, seconds: u64) -> String {
    store
        .add_connect_link(id, Duration::from_secs(seconds))
        .await
        .unwrap()
        .unwrap()
}

/// A feed named `name` bound to `user` through its connect link.
async fn bound_feed(store: &SqlStore, name: &str, user: &UserId) -> igdisplay_store::FeedRow {
    let feed = store.create_feed(name, "{}").await.unwrap();
    let link = link_of(store, &feed.id, 60).await;
    store
        .redeem_connect_link(&link, &login(user.as_str()))
        .await
        .unwrap();
    feed
}

/// A login's token of `user`, as a connect link's callback has it.
fn login(user: &str) -> igdisplay_auth::TokenRecord {
    record(user, "IGAAlogin", 1_700_000_000)
}

/// [`USER`] with a token in `store`.
async fn with_token(store: &SqlStore) -> UserId {
    store
        .save(&record(USER, "IGAAtoken", 1_700_000_000))
        .await
        .unwrap();
    UserId::new(USER)
}

/// The accounts of a claim.
fn users(claimed: Vec<igdisplay_store::ClaimedSync>) -> Vec<UserId> {
    claimed.into_iter().map(|c| c.user_id).collect()
}

/// A store whose time is pinned to `clock` (so leases and expiries move with the test).
async fn pinned(db: &Db, clock: &igdisplay_http::ManualClock) -> SqlStore {
    db.open(ring("k1", 1))
        .await
        .with_pinned_time(Arc::new(clock.clone()))
}

async fn feeds_are_created_read_listed_updated_and_deleted(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    let a = store
        .create_feed("Café Nova", r#"{"max_posts":12}"#)
        .await
        .unwrap();
    let b = store.create_feed("Jay", "{}").await.unwrap();
    assert_ne!(a.id, b.id);
    assert!(a.id.bytes().all(|c| c.is_ascii_hexdigit()) && a.id.len() == 32);
    assert_eq!((a.user_id.clone(), a.version), (None, 1));
    let listed = store.list_feeds(None, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    let first = store.list_feeds(None, 1).await.unwrap();
    let rest = store.list_feeds(Some(&first[0].id), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_ne!(first[0].id, rest[0].id);
    let updated = store
        .update_feed(&a.id, "Café Nova (new)", r#"{"max_posts":6}"#)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((updated.version, updated.name.as_str()), (2, "Café Nova (new)"));
    assert_eq!(store.feed(&a.id).await.unwrap(), Some(updated));
    assert_eq!(store.update_feed("0000", "x", "{}").await.unwrap(), None);
    let deleted = store.delete_feed(&a.id).await.unwrap().unwrap();
    assert_eq!((deleted.user_id, deleted.account_released), (None, false));
    assert_eq!(store.feed(&a.id).await.unwrap(), None);
    assert_eq!(store.delete_feed(&a.id).await.unwrap(), None);
}

async fn a_connect_link_binds_its_feed_once_and_then_is_used(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    let feed = store.create_feed("Café Nova", "{}").await.unwrap();
    let link = link_of(&store, &feed.id, 7 * 86_400).await;
    assert_eq!(
        store.connect_link(&link).await.unwrap(),
        LinkState::Valid {
            feed_id: feed.id.clone()
        }
    );
    let user = UserId::new(USER);
    let (state, released) = store.redeem_connect_link(&link, &login(USER)).await.unwrap();
    assert_eq!(
        (state, released),
        (
            LinkState::Valid {
                feed_id: feed.id.clone()
            },
            None
        )
    );
    let bound = store.feed(&feed.id).await.unwrap().unwrap();
    assert_eq!((bound.user_id, bound.version), (Some(user.clone()), 2));
    // The login's token is kept with the binding.
    assert_eq!(common::stored_token(&store, &user).await, "IGAAlogin");
    // Its sync is due at once.
    let schedules = store.sync_schedules(None, 10).await.unwrap();
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].user_id, user);
    // Twice: refused, and nothing changes.
    let other = UserId::new("17841400000000002");
    let (again, _) = store
        .redeem_connect_link(&link, &login(other.as_str()))
        .await
        .unwrap();
    assert_eq!(again, LinkState::Used);
    assert!(store.load(&other).await.unwrap().is_none(), "no token kept");
    assert_eq!(store.feed(&feed.id).await.unwrap().unwrap().user_id, Some(user));
    assert!(!store.park_connect_login(&link, b"{}").await.unwrap());
    assert_eq!(store.parked_login(&link).await.unwrap(), None);
    // A link of a feed that does not exist is never made.
    assert_eq!(
        store
            .add_connect_link("nope", Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
}

async fn a_connect_link_expires_and_a_deleted_feeds_link_is_unknown(db: Db) {
    let clock = igdisplay_http::ManualClock::at_unix(1_800_000_000);
    let store = pinned(&db, &clock).await;
    let feed = store.create_feed("Café Nova", "{}").await.unwrap();
    let link = link_of(&store, &feed.id, 3600).await;
    clock.advance(Duration::from_secs(3600));
    assert_eq!(store.connect_link(&link).await.unwrap(), LinkState::Expired);
    let (state, _) = store.redeem_connect_link(&link, &login(USER)).await.unwrap();
    assert_eq!(state, LinkState::Expired);
    assert_eq!(store.feed(&feed.id).await.unwrap().unwrap().user_id, None);
    let fresh = link_of(&store, &feed.id, 3600).await;
    store.delete_feed(&feed.id).await.unwrap();
    assert_eq!(store.connect_link(&fresh).await.unwrap(), LinkState::Unknown);
    assert_eq!(
        store.connect_link("never-made").await.unwrap(),
        LinkState::Unknown
    );
}

/// The token of a link's login cannot be kept (the account was deleted after it was
/// issued): the link is not used either, the feed stays unbound and nothing is scheduled,
/// as after a crash between the two writes. Never a used link whose account has no token.
async fn a_link_is_used_only_with_its_token_kept_in_the_same_write(db: Db) {
    let clock = igdisplay_http::ManualClock::at_unix(1_800_000_000);
    let store = pinned(&db, &clock).await;
    let user = UserId::new(USER);
    store.delete_account(&user, "DEL").await.unwrap();
    let feed = store.create_feed("Café Nova", "{}").await.unwrap();
    let link = link_of(&store, &feed.id, 3600).await;
    let refused = store.redeem_connect_link(&link, &login(USER)).await;
    assert!(
        matches!(refused, Err(igdisplay_store::Error::Deleted { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store.connect_link(&link).await.unwrap(),
        LinkState::Valid {
            feed_id: feed.id.clone()
        }
    );
    assert_eq!(store.feed(&feed.id).await.unwrap().unwrap().user_id, None);
    assert!(store.sync_schedules(None, 10).await.unwrap().is_empty());
    assert!(store.load(&user).await.unwrap().is_none());
}

async fn a_parked_login_is_sealed_to_its_link(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    let feed = store.create_feed("Café Nova", "{}").await.unwrap();
    let link = link_of(&store, &feed.id, 3600).await;
    assert_eq!(store.parked_login(&link).await.unwrap(), None);
    let pending = br#"{"state":"PARKED-STATE-CANARY"}"#;
    assert!(store.park_connect_login(&link, pending).await.unwrap());
    assert_eq!(
        store.parked_login(&link).await.unwrap(),
        Some((feed.id.clone(), pending.to_vec()))
    );
    let contents = db.contents();
    assert!(
        !contents
            .windows(20)
            .any(|w| w == b"PARKED-STATE-CANARY\""[..20].as_ref()),
        "the parked login is sealed"
    );
    // Another store's key ring does not open it.
    let stranger = db.open(ring("k2", 2)).await;
    assert!(stranger.parked_login(&link).await.is_err());
    // Used, the parked login is erased.
    store.redeem_connect_link(&link, &login(USER)).await.unwrap();
    assert_eq!(store.parked_login(&link).await.unwrap(), None);
}

async fn deleting_the_last_feed_of_an_account_releases_its_token_and_queues_its_purge(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    let user = with_token(&store).await;
    let mut feeds = Vec::new();
    for name in ["site A", "site B"] {
        let feed = store.create_feed(name, "{}").await.unwrap();
        let link = store
            .add_connect_link(&feed.id, Duration::from_secs(3600))
            .await
            .unwrap()
            .unwrap();
        store.redeem_connect_link(&link, &login(USER)).await.unwrap();
        feeds.push(feed.id);
    }
    assert_eq!(store.feeds_of(&user).await.unwrap().len(), 2);
    let first = store.delete_feed(&feeds[0]).await.unwrap().unwrap();
    assert_eq!(
        (first.user_id.clone(), first.account_released),
        (Some(user.clone()), false)
    );
    assert!(
        store.load(&user).await.unwrap().is_some(),
        "the other feed still shows it"
    );
    let last = store.delete_feed(&feeds[1]).await.unwrap().unwrap();
    assert!(last.account_released);
    assert!(
        store.load(&user).await.unwrap().is_none(),
        "its token went with the last feed"
    );
    // Its schedule is now a purge of its mirrored files, due at once, for any instance: a
    // crash before the files are deleted leaves it to do.
    let schedules = store.sync_schedules(None, 10).await.unwrap();
    assert_eq!((schedules.len(), schedules[0].purge), (1, true));
    assert_eq!(store.feed_stats().await.unwrap().scheduled, 0, "not a sync");
    let lease = Duration::from_secs(60);
    let claimed = store.claim_syncs("a", lease, 10).await.unwrap();
    assert!(claimed.len() == 1 && claimed[0].purge, "{claimed:?}");
    // Put off (the bucket failed): due again a minute later, held by nobody.
    let retry = Some((Duration::from_secs(60), "bucket down"));
    assert!(store.finish_purge(&user, "a", retry).await.unwrap());
    assert!(store.claim_syncs("b", lease, 10).await.unwrap().is_empty());
    // Done: the row goes.
    assert!(store.finish_purge(&user, "", None).await.unwrap());
    assert!(store.sync_schedules(None, 10).await.unwrap().is_empty());
}

async fn admin_tokens_and_link_secrets_are_never_in_the_database(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    let admin = store.add_admin_token("ops").await.unwrap();
    assert!(admin.starts_with("igfa_") && admin.len() > 60);
    assert!(store.is_admin_token(&admin).await.unwrap());
    assert!(!store.is_admin_token("igfa_guess").await.unwrap());
    assert!(!store.is_admin_token(&admin[..admin.len() - 1]).await.unwrap());
    let feed = store.create_feed("x", "{}").await.unwrap();
    let link = link_of(&store, &feed.id, 60).await;
    let contents = db.contents();
    for secret in [&admin, &link] {
        assert!(
            !contents.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a secret is in the database in the clear"
        );
    }
}

async fn an_account_is_synced_by_one_instance_and_a_dead_ones_claim_is_taken_over(db: Db) {
    let clock = igdisplay_http::ManualClock::at_unix(1_800_000_000);
    let store = pinned(&db, &clock).await;
    let user = UserId::new(USER);
    bound_feed(&store, "x", &user).await;
    let lease = Duration::from_secs(120);
    assert_eq!(
        users(store.claim_syncs("a", lease, 10).await.unwrap()),
        std::slice::from_ref(&user)
    );
    assert!(
        store.claim_syncs("b", lease, 10).await.unwrap().is_empty(),
        "held by a"
    );
    // `a` dies; its claim runs out and `b` takes it over.
    clock.advance(lease);
    assert_eq!(
        users(store.claim_syncs("b", lease, 10).await.unwrap()),
        std::slice::from_ref(&user)
    );
    let next = Timestamp::from_unix(1_800_000_000 + 120 + 900);
    let after = Duration::from_secs(900);
    assert!(
        !store.finish_sync(&user, "a", after, None).await.unwrap(),
        "a's finish comes too late"
    );
    assert!(store.finish_sync(&user, "b", after, Some("boom")).await.unwrap());
    let schedule = &store.sync_schedules(None, 10).await.unwrap()[0];
    assert_eq!(
        (schedule.next_sync_at, schedule.syncs, schedule.leased),
        (next, 1, false)
    );
    assert_eq!(schedule.last_error.as_deref(), Some("boom"));
    assert!(
        store.claim_syncs("a", lease, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    clock.advance(Duration::from_secs(900));
    assert_eq!(
        users(store.claim_syncs("a", lease, 10).await.unwrap()),
        std::slice::from_ref(&user)
    );
    store.release_sync(&user, "a").await.unwrap();
    assert_eq!(users(store.claim_syncs("c", lease, 10).await.unwrap()), [user]);
}

/// `a`'s sync outlives its claim; `b` claims the account, finds the sync under way (the
/// mirror's task lease) and lets go. `a`'s finish is then recorded: the account is not due
/// again at once, so it is not synced a second time for nothing.
async fn a_sync_that_outlives_its_claim_is_recorded_once_nobody_holds_the_account(db: Db) {
    let clock = igdisplay_http::ManualClock::at_unix(1_800_000_000);
    let store = pinned(&db, &clock).await;
    let user = UserId::new(USER);
    bound_feed(&store, "x", &user).await;
    let lease = Duration::from_secs(120);
    assert_eq!(store.claim_syncs("a", lease, 10).await.unwrap().len(), 1);
    clock.advance(lease + Duration::from_secs(1));
    assert_eq!(store.claim_syncs("b", lease, 10).await.unwrap().len(), 1);
    store.release_sync(&user, "b").await.unwrap();
    assert!(
        store
            .finish_sync(&user, "a", Duration::from_secs(900), None)
            .await
            .unwrap()
    );
    let schedule = &store.sync_schedules(None, 10).await.unwrap()[0];
    assert_eq!((schedule.syncs, schedule.leased), (1, false));
    assert!(
        store.claim_syncs("c", lease, 10).await.unwrap().is_empty(),
        "recorded: not due again"
    );
}

async fn a_revoked_account_writes_needs_login_naming_its_feeds_once(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    let user = with_token(&store).await;
    let feed = bound_feed(&store, "x", &user).await;
    let event = store
        .mark_needs_login(&user, "Error validating access token")
        .await
        .unwrap()
        .unwrap();
    let Event::NeedsLogin { feeds, .. } = &event else {
        panic!("{event:?}");
    };
    assert_eq!(feeds, std::slice::from_ref(&feed.id));
    assert_eq!(event.kind(), "needs_login");
    assert_eq!(store.mark_needs_login(&user, "again").await.unwrap(), None);
    let outbox = store.list_events(None, 0, 10).await.unwrap();
    assert_eq!(
        outbox.iter().filter(|e| e.event.kind() == "needs_login").count(),
        1
    );
    assert_eq!(
        store.account(&user).await.unwrap().unwrap().state,
        igdisplay_store::AccountState::Revoked
    );
}

async fn a_deleted_accounts_feeds_are_unbound_and_keep_no_row_with_its_id(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    let user = UserId::new(USER);
    let feed = bound_feed(&store, "x", &user).await;
    // Its token gone first, as a deletion does; then its feeds let go of it.
    assert!(store.remove(&user).await.unwrap());
    assert_eq!(
        store.unbind_account(&user).await.unwrap(),
        std::slice::from_ref(&feed.id)
    );
    assert_eq!(store.feed(&feed.id).await.unwrap().unwrap().user_id, None);
    assert!(store.sync_schedules(None, 10).await.unwrap().is_empty());
    // PostgreSQL's dump is its rows; a SQLite file keeps deleted bytes in free pages and its
    // log until they are reused, so there only the rows are checked (above).
    if let Db::Postgres { .. } = &db {
        let contents = db.contents();
        assert!(
            !contents.windows(USER.len()).any(|w| w == USER.as_bytes()),
            "no row keeps the account's id"
        );
    }
}

async fn feeds_are_counted_by_state(db: Db) {
    let store = db.open(ring("k1", 1)).await;
    store.create_feed("no account yet", "{}").await.unwrap();
    let mut users = Vec::new();
    for (n, name) in ["fresh", "stale", "needs login", "never synced"]
        .iter()
        .enumerate()
    {
        let user = UserId::new(format!("1784140000000000{n}"));
        store
            .save(&record(user.as_str(), "IGAAtoken", 1_700_000_000))
            .await
            .unwrap();
        bound_feed(&store, name, &user).await;
        users.push(user);
    }
    let lease = Duration::from_secs(60);
    let claimed = store.claim_syncs("a", lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    for user in &users[..3] {
        assert!(store.finish_sync(user, "a", lease, None).await.unwrap());
    }
    // Stale: a sync that failed after one that succeeded.
    store.sync_now(&users[1]).await.unwrap();
    assert_eq!(store.claim_syncs("a", lease, 10).await.unwrap().len(), 1);
    let down = Some("Instagram is down");
    assert!(store.finish_sync(&users[1], "a", lease, down).await.unwrap());
    store.mark_needs_login(&users[2], "refused").await.unwrap();
    let stats = store.feed_stats().await.unwrap();
    assert_eq!(
        (
            stats.feeds,
            stats.bound,
            stats.pending,
            stats.fresh,
            stats.stale,
            stats.needs_login
        ),
        (5, 4, 2, 1, 1, 1),
        "{stats:?}"
    );
}

/// One rule for a feed's state, read for its page ([`SqlStore::feed_state`]) and counted for
/// the metrics ([`SqlStore::feed_stats`]): pending until a sync succeeds, fresh, stale since
/// the first of the failures that follow, fresh again, and needs_login once the token is
/// refused.
async fn a_feeds_state_follows_its_syncs_and_its_account_for_a_page_and_the_metrics_alike(db: Db) {
    use igdisplay_store::FeedState;
    let clock = igdisplay_http::ManualClock::at_unix(1_800_000_000);
    let store = pinned(&db, &clock).await;
    let user = UserId::new(USER);
    bound_feed(&store, "x", &user).await;
    let lease = Duration::from_secs(60);
    let sync = |error: Option<&'static str>| {
        let (store, user) = (store.clone(), user.clone());
        async move {
            assert_eq!(store.claim_syncs("a", lease, 10).await.unwrap().len(), 1);
            assert!(
                store
                    .finish_sync(&user, "a", Duration::ZERO, error)
                    .await
                    .unwrap()
            );
        }
    };
    let seen = || {
        let (store, user) = (store.clone(), user.clone());
        async move {
            let (state, _) = store.feed_state(&user).await.unwrap();
            let stats = store.feed_stats().await.unwrap();
            let counted = [stats.pending, stats.fresh, stats.stale, stats.needs_login];
            let slot = ["pending", "fresh", "stale", "needs_login"]
                .iter()
                .position(|name| *name == state.name())
                .unwrap();
            assert_eq!(counted[slot], 1, "{state:?} counted as such: {stats:?}");
            assert_eq!(counted.iter().sum::<u64>(), 1);
            state
        }
    };
    assert_eq!(seen().await, FeedState::Pending);
    sync(Some("down")).await;
    assert_eq!(seen().await, FeedState::Pending, "no sync has succeeded yet");
    sync(None).await;
    assert_eq!(seen().await, FeedState::Fresh);
    clock.advance(Duration::from_secs(100));
    sync(Some("down")).await;
    let since = Timestamp::from_unix(1_800_000_100);
    assert_eq!(seen().await, FeedState::Stale { since });
    clock.advance(Duration::from_secs(100));
    sync(Some("still down")).await;
    assert_eq!(
        seen().await,
        FeedState::Stale { since },
        "since the first failure"
    );
    sync(None).await;
    assert_eq!(seen().await, FeedState::Fresh);
    sync(Some("refused")).await;
    store.mark_needs_login(&user, "refused").await.unwrap();
    assert!(matches!(seen().await, FeedState::NeedsLogin { since: Some(_) }));
}
