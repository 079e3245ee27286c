//! The keeper against the mock Instagram, each scenario on SQLite and on PostgreSQL: due
//! tokens refreshed once and rescheduled, revoked ones marked and never retried, failures
//! backed off and recovered, a dead instance's leases taken over, a login racing a refresh,
//! expiry, key rotation while keeping, the app's budget, the callbacks' state changes, and
//! on-demand refreshes through the same lease.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use igdisplay_auth::{
    AppConfig, AuthClient, Endpoints, Platform, TokenKind, TokenManager, TokenRecord, TokenStore,
};
use igdisplay_http::test_util::json_response;
use igdisplay_http::{
    Clock as _, HttpBackend, HttpRequest, HttpResponse, HyperBackend, ManualClock, SharedBackend,
    TransportError,
};
use igdisplay_mock::{Fault, FaultKind, MockClock, MockServer, Seed, TokenLifetime};
use igdisplay_model::{AccessToken, UserId};
use igdisplay_store::{AccountState, Event, Keeper, KeeperSettings, KeyRing, SqlStore};
use sqlx::Row as _;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

mod common;
use common::{Db, ring};

const DAY: Duration = Duration::from_secs(86_400);
const T0: u64 = 1_800_000_000;
const REFRESH: &str = "/refresh_access_token";

/// A mock with `count` users `acct000001`… and their long-lived tokens issued at T0, a
/// store holding them, and clocks (the mock's and the store's) moved to T0 + `age`.
struct Fleet {
    mock: MockServer,
    store: SqlStore,
    clock: ManualClock,
    users: Vec<UserId>,
}

impl Fleet {
    async fn new(db: &Db, keys: KeyRing, count: usize, age: Duration) -> Self {
        let mock = MockServer::builder()
            .platform(igdisplay_mock::MockPlatform::InstagramLogin)
            .calls_per_hour(None)
            .clock(MockClock::Frozen(i64::try_from(T0).unwrap()))
            .seed(Seed::demo().with_fleet("acct", count, 0))
            .start()
            .unwrap();
        let clock = ManualClock::at_unix(T0);
        let store = db.open(keys).await.with_clock(Arc::new(clock.clone()));
        let mut users = Vec::new();
        for token in mock.issue_tokens("acct", TokenLifetime::LongLived).unwrap() {
            let record = TokenRecord::new(
                UserId::new(&token.user_id),
                AccessToken::new(token.access_token),
                TokenKind::LongLived,
                Platform::InstagramLogin,
                UNIX_EPOCH + Duration::from_secs(T0),
                Duration::from_secs(u64::try_from(token.expires_in).unwrap()),
            );
            store.save(&record).await.unwrap();
            users.push(record.user_id);
        }
        let fleet = Fleet {
            mock,
            store,
            clock,
            users,
        };
        fleet.advance(age);
        fleet
    }

    fn advance(&self, by: Duration) {
        self.mock.advance(by);
        self.clock.advance(by);
    }

    fn backend(&self) -> SharedBackend {
        Arc::new(HyperBackend::new().unwrap())
    }

    fn keeper_with(&self, backend: SharedBackend, settings: KeeperSettings, owner: &str) -> Keeper {
        let app = AppConfig::read_only(Platform::InstagramLogin)
            .with_endpoints(Endpoints::single_origin(self.mock.base_url()))
            .unwrap();
        Keeper::builder(self.store.clone(), app, backend)
            .settings(settings)
            .owner(owner)
            .jitter_seed(7)
            .build()
    }

    fn keeper(&self) -> Keeper {
        self.keeper_with(self.backend(), KeeperSettings::default(), "keeper-a")
    }

    fn refresh_requests(&self) -> usize {
        self.mock.journal().iter().filter(|e| e.path == REFRESH).count()
    }

    async fn state(&self, user: &UserId) -> AccountState {
        self.store
            .list(None, 10_000)
            .await
            .unwrap()
            .into_iter()
            .find(|a| &a.user_id == user)
            .unwrap()
            .state
    }

    async fn column(&self, user: &UserId, column: &str) -> Option<i64> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {column} AS v FROM accounts WHERE user_id = $1"
        )))
        .bind(user.as_str())
        .fetch_one(&pool(&self.store).await)
        .await
        .unwrap()
        .try_get("v")
        .unwrap()
    }
}

/// The store's connections, for looking under the hood.
async fn pool(store: &SqlStore) -> sqlx::AnyPool {
    store.pool().clone()
}

fn drain(events: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

on_both!(
    due_tokens_are_refreshed_once_and_next_due_on_day_twenty,
    tokens_not_yet_due_are_left_alone,
    a_revoked_token_is_marked_and_never_retried,
    a_failing_refresh_backs_off_warns_and_recovers,
    a_dead_instances_leases_are_taken_over_once_they_run_out,
    a_login_racing_a_refresh_keeps_the_newer_token,
    a_token_that_expired_unrefreshed_is_marked_expired,
    tokens_are_resealed_under_a_new_key_while_the_keeper_runs,
    a_spent_app_budget_pauses_the_refreshes,
    a_deauthorized_account_is_erased_and_never_refreshed,
    an_on_demand_refresh_takes_the_same_lease,
    a_token_failing_until_its_expiry_ends_expired,
    a_new_login_revives_a_revoked_or_deauthorized_account,
    a_token_refused_outside_a_refresh_is_marked_revoked_once,
);

async fn due_tokens_are_refreshed_once_and_next_due_on_day_twenty(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 30, 21 * DAY).await;
    let keeper = fleet.keeper_with(fleet.backend(), KeeperSettings::default().batch(7), "keeper-a");
    let mut events = keeper.events().subscribe();
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!((cycle.claimed, cycle.refreshed, cycle.failed), (30, 30, 0));
    let counts = fleet.mock.refresh_counts();
    assert!(
        fleet.users.iter().all(|u| counts.get(u.as_str()) == Some(&1)),
        "{counts:?}"
    );
    assert_eq!(
        drain(&mut events)
            .iter()
            .filter(|e| e.kind() == "refreshed")
            .count(),
        30
    );
    let now = T0 + 21 * DAY.as_secs();
    let next = fleet.column(&fleet.users[0], "next_refresh_at").await.unwrap();
    assert_eq!(next, i64::try_from(now + 20 * DAY.as_secs()).unwrap());
    assert_eq!(fleet.column(&fleet.users[0], "lease_owner").await, None);
    let again = keeper.run_once().await.unwrap();
    assert_eq!(again.claimed, 0, "nothing is refreshed twice");
    assert_eq!(fleet.refresh_requests(), 30);
    assert_eq!(keeper.due().await.unwrap(), 0);
}

async fn tokens_not_yet_due_are_left_alone(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 5, 19 * DAY).await;
    let keeper = fleet.keeper();
    assert_eq!(keeper.run_once().await.unwrap().claimed, 0);
    fleet.advance(DAY);
    assert_eq!(keeper.run_once().await.unwrap().refreshed, 5, "day 20");
}

async fn a_revoked_token_is_marked_and_never_retried(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 4, 21 * DAY).await;
    fleet.mock.revoke_tokens("acct000002").unwrap();
    let revoked = fleet.users[1].clone();
    let keeper = fleet.keeper();
    let mut events = keeper.events().subscribe();
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!(
        (cycle.refreshed, cycle.revoked),
        (3, 1),
        "one bad token never fails the batch"
    );
    assert_eq!(fleet.state(&revoked).await, AccountState::Revoked);
    assert!(drain(&mut events).contains(&Event::Revoked {
        user_id: revoked.clone(),
        at: igdisplay_model::Timestamp::from_unix(i64::try_from(T0 + 21 * DAY.as_secs()).unwrap()),
    }));
    let requests = fleet.refresh_requests();
    fleet.advance(30 * DAY);
    let later = keeper.run_once().await.unwrap();
    assert_eq!(later.refreshed, 3, "the others come due again");
    assert_eq!(
        fleet.refresh_requests(),
        requests + 3,
        "the revoked one is never tried again"
    );
    assert!(
        fleet.store.load(&revoked).await.unwrap().is_some(),
        "kept for the re-login"
    );
}

async fn a_failing_refresh_backs_off_warns_and_recovers(db: Db) {
    // Issued 57 days ago: 3 days left, inside the warning window.
    let fleet = Fleet::new(&db, ring("k1", 1), 1, 57 * DAY).await;
    let user = fleet.users[0].clone();
    // Two refreshes fail, each after the client's own three attempts.
    fleet
        .mock
        .add_fault(Fault::new(REFRESH, FaultKind::Status { status: 503 }).times(6));
    let keeper = fleet.keeper();
    let mut events = keeper.events().subscribe();
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!(cycle.failed, 1);
    assert_eq!(fleet.state(&user).await, AccountState::Failing);
    assert_eq!(fleet.column(&user, "failures").await, Some(1));
    let retry_at = fleet.column(&user, "next_refresh_at").await.unwrap();
    let now = i64::try_from(T0 + 57 * DAY.as_secs()).unwrap();
    assert!(
        retry_at > now && retry_at <= now + 5 * 60 + 30,
        "backed off: {}",
        retry_at - now
    );
    assert!(matches!(
        &drain(&mut events)[..],
        [Event::ExpiringSoon { failures: 1, .. }]
    ));
    assert_eq!(
        keeper.run_once().await.unwrap().claimed,
        0,
        "not before the backoff"
    );

    fleet.advance(Duration::from_secs(u64::try_from(retry_at - now).unwrap()));
    assert_eq!(keeper.run_once().await.unwrap().failed, 1);
    assert_eq!(fleet.column(&user, "failures").await, Some(2));
    let retry_at_2 = fleet.column(&user, "next_refresh_at").await.unwrap();
    fleet.advance(Duration::from_secs(u64::try_from(retry_at_2 - retry_at).unwrap()));
    assert_eq!(keeper.run_once().await.unwrap().refreshed, 1);
    assert_eq!(fleet.state(&user).await, AccountState::Active);
    assert_eq!(fleet.column(&user, "failures").await, Some(0));
    assert!(
        drain(&mut events)
            .iter()
            .any(|e| matches!(e, Event::Recovered { failures: 2, .. }))
    );
}

async fn a_dead_instances_leases_are_taken_over_once_they_run_out(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 6, 21 * DAY).await;
    // An instance claimed three accounts and died: its lease runs 5 minutes.
    let now = i64::try_from(T0 + 21 * DAY.as_secs()).unwrap();
    for user in &fleet.users[..3] {
        sqlx::query("UPDATE accounts SET lease_owner = 'dead', lease_until = $1 WHERE user_id = $2")
            .bind(now + 300)
            .bind(user.as_str())
            .execute(&pool(&fleet.store).await)
            .await
            .unwrap();
    }
    let keeper = fleet.keeper();
    assert_eq!(keeper.run_once().await.unwrap().refreshed, 3, "the free ones");
    assert_eq!(keeper.due().await.unwrap(), 3, "the leased ones are still due");
    fleet.advance(Duration::from_secs(300));
    assert_eq!(keeper.run_once().await.unwrap().refreshed, 3, "taken over");
    let counts = fleet.mock.refresh_counts();
    assert!(
        fleet.users.iter().all(|u| counts.get(u.as_str()) == Some(&1)),
        "{counts:?}"
    );
}

/// Stores a newer token (a login) for the refreshed user while the refresh is in flight.
#[derive(Debug)]
struct LoginDuringRefresh {
    inner: SharedBackend,
    store: SqlStore,
    login: TokenRecord,
}

#[async_trait::async_trait]
impl HttpBackend for LoginDuringRefresh {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.store.save(&self.login).await.unwrap();
        self.inner.send(request).await
    }
}

async fn a_login_racing_a_refresh_keeps_the_newer_token(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 1, 21 * DAY).await;
    let user = fleet.users[0].clone();
    let login = fleet
        .mock
        .issue_token("acct000001", TokenLifetime::LongLived)
        .unwrap();
    let login = TokenRecord::new(
        user.clone(),
        AccessToken::new(login.access_token),
        TokenKind::LongLived,
        Platform::InstagramLogin,
        UNIX_EPOCH + Duration::from_secs(T0 + 21 * DAY.as_secs()),
        60 * DAY,
    );
    let backend = Arc::new(LoginDuringRefresh {
        inner: fleet.backend(),
        store: fleet.store.clone(),
        login: login.clone(),
    });
    let keeper = fleet.keeper_with(backend, KeeperSettings::default(), "keeper-a");
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!((cycle.refreshed, cycle.lost_races), (0, 1));
    let kept = fleet.store.load(&user).await.unwrap().unwrap();
    assert_eq!(
        kept.access_token.expose_secret(),
        login.access_token.expose_secret()
    );
    assert_eq!(
        fleet.column(&user, "lease_owner").await,
        None,
        "the lease is let go"
    );
}

async fn a_token_that_expired_unrefreshed_is_marked_expired(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 2, 61 * DAY).await;
    let keeper = fleet.keeper();
    let mut events = keeper.events().subscribe();
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!((cycle.expired, cycle.claimed), (2, 0));
    assert_eq!(fleet.state(&fleet.users[0]).await, AccountState::Expired);
    assert_eq!(
        drain(&mut events)
            .iter()
            .filter(|e| e.kind() == "expired")
            .count(),
        2
    );
    assert_eq!(fleet.refresh_requests(), 0);
}

async fn tokens_are_resealed_under_a_new_key_while_the_keeper_runs(db: Db) {
    let fleet = Fleet::new(&db, ring("old", 1), 5, 10 * DAY).await;
    let old = igdisplay_store::Key::new("old", &[1; 32]).unwrap();
    let new = igdisplay_store::Key::new("new", &[2; 32]).unwrap();
    let store = db
        .open(KeyRing::new(new).with_previous(old))
        .await
        .with_clock(Arc::new(fleet.clock.clone()));
    let app = AppConfig::read_only(Platform::InstagramLogin)
        .with_endpoints(Endpoints::single_origin(fleet.mock.base_url()))
        .unwrap();
    let keeper = Keeper::builder(store.clone(), app, fleet.backend()).build();
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!(cycle.resealed, 5);
    for account in store.list(None, 100).await.unwrap() {
        assert_eq!(account.key_id, "new");
    }
    // The old key is no longer needed.
    let only_new = db.open(ring("new", 2)).await;
    assert!(only_new.load(&fleet.users[0]).await.unwrap().is_some());
}

/// Refresh answers whose usage header says the app's budget is spent.
#[derive(Debug)]
struct SpentBudget;

#[async_trait::async_trait]
impl HttpBackend for SpentBudget {
    async fn send(&self, _: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut response = json_response(
            200,
            r#"{"access_token":"IGAAfresh","token_type":"bearer","expires_in":5184000}"#,
        );
        response
            .headers_mut()
            .insert("x-app-usage", r#"{"call_count":100}"#.parse().unwrap());
        Ok(response)
    }
}

async fn a_spent_app_budget_pauses_the_refreshes(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 3, 21 * DAY).await;
    let keeper = fleet.keeper_with(
        Arc::new(SpentBudget),
        KeeperSettings::default().concurrency(1),
        "keeper-a",
    );
    let before = fleet.clock.now();
    assert_eq!(keeper.run_once().await.unwrap().refreshed, 3);
    let waited = fleet.clock.now().duration_since(before).unwrap();
    // After each answer at 100 %, the next refresh waits the default minute.
    assert_eq!(waited, Duration::from_secs(120));
}

async fn a_deauthorized_account_is_erased_and_never_refreshed(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 2, 21 * DAY).await;
    let gone = fleet.users[0].clone();
    assert!(fleet.store.deauthorize(&gone).await.unwrap());
    assert!(fleet.store.load(&gone).await.unwrap().is_none());
    assert_eq!(fleet.state(&gone).await, AccountState::Deauthorized);
    assert_eq!(fleet.keeper().run_once().await.unwrap().refreshed, 1);
    assert!(fleet.store.delete_account(&gone).await.unwrap());
    assert_eq!(fleet.store.users().await.unwrap(), [fleet.users[1].clone()]);
}

async fn an_on_demand_refresh_takes_the_same_lease(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 1, 55 * DAY).await;
    let user = fleet.users[0].clone();
    let now = i64::try_from(T0 + 55 * DAY.as_secs()).unwrap();
    // A keeper holds the lease for a minute: the on-demand refresh waits its 10 s, then goes
    // on without it (the write stays guarded).
    sqlx::query("UPDATE accounts SET lease_owner = 'keeper-b', lease_until = $1 WHERE user_id = $2")
        .bind(now + 60)
        .bind(user.as_str())
        .execute(&pool(&fleet.store).await)
        .await
        .unwrap();
    let app = AppConfig::read_only(Platform::InstagramLogin)
        .with_endpoints(Endpoints::single_origin(fleet.mock.base_url()))
        .unwrap();
    let client = AuthClient::new(app, fleet.backend()).with_clock(Arc::new(fleet.clock.clone()));
    let tokens = TokenManager::new(client, Arc::new(fleet.store.clone()));
    let fresh = tokens.record(&user).await.unwrap();
    assert_eq!(fleet.mock.refresh_counts().get(user.as_str()), Some(&1));
    assert_eq!(
        fleet.clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs(),
        u64::try_from(now).unwrap() + 10,
        "waited for the keeper's lease, on the store's clock"
    );
    assert_eq!(fresh.issued_at.unix(), now + 10);
    // Free now: the next on-demand refresh takes the lease at once, and lets it go.
    fleet.advance(2 * DAY);
    tokens.refresh_now(&user).await.unwrap();
    assert_eq!(fleet.mock.refresh_counts().get(user.as_str()), Some(&2));
}

async fn a_token_failing_until_its_expiry_ends_expired(db: Db) {
    // Issued 59 days and 22 hours ago: two hours left, and Instagram keeps failing.
    let fleet = Fleet::new(&db, ring("k1", 1), 1, 59 * DAY + Duration::from_secs(22 * 3600)).await;
    let user = fleet.users[0].clone();
    fleet
        .mock
        .add_fault(Fault::new(REFRESH, FaultKind::Status { status: 503 }));
    let keeper = fleet.keeper();
    let mut events = keeper.events().subscribe();
    assert_eq!(keeper.run_once().await.unwrap().failed, 1);
    assert_eq!(fleet.state(&user).await, AccountState::Failing);
    let retry_at = fleet.column(&user, "next_refresh_at").await.unwrap();
    let expires = i64::try_from(T0 + 60 * DAY.as_secs()).unwrap();
    assert!(retry_at < expires, "the retry comes before the expiry");
    fleet.advance(Duration::from_secs(3 * 3600));
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!((cycle.expired, cycle.claimed), (1, 0));
    assert_eq!(fleet.state(&user).await, AccountState::Expired);
    let kinds: Vec<&str> = drain(&mut events).iter().map(Event::kind).collect();
    assert_eq!(kinds, ["expiring_soon", "expired"]);
}

async fn a_new_login_revives_a_revoked_or_deauthorized_account(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 2, 21 * DAY).await;
    fleet.mock.revoke_tokens("acct000001").unwrap();
    let (revoked, gone) = (fleet.users[0].clone(), fleet.users[1].clone());
    fleet.store.deauthorize(&gone).await.unwrap();
    assert_eq!(fleet.keeper().run_once().await.unwrap().revoked, 1);
    for (user, username) in [(&revoked, "acct000001"), (&gone, "acct000002")] {
        let token = fleet
            .mock
            .issue_token(username, TokenLifetime::LongLived)
            .unwrap();
        let login = TokenRecord::new(
            user.clone(),
            AccessToken::new(token.access_token),
            TokenKind::LongLived,
            Platform::InstagramLogin,
            UNIX_EPOCH + Duration::from_secs(T0 + 21 * DAY.as_secs()),
            60 * DAY,
        );
        fleet.store.save(&login).await.unwrap();
        assert_eq!(fleet.state(user).await, AccountState::Active);
        assert_eq!(fleet.column(user, "failures").await, Some(0));
    }
    fleet.advance(21 * DAY);
    assert_eq!(
        fleet.keeper().run_once().await.unwrap().refreshed,
        2,
        "kept again"
    );
}

async fn a_token_refused_outside_a_refresh_is_marked_revoked_once(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 1, DAY).await;
    let user = fleet.users[0].clone();
    let event = fleet.store.mark_revoked(&user, "error 190").await.unwrap();
    assert!(matches!(event, Some(Event::Revoked { .. })));
    assert_eq!(fleet.state(&user).await, AccountState::Revoked);
    assert_eq!(
        fleet.store.mark_revoked(&user, "again").await.unwrap(),
        None,
        "once"
    );
    fleet.advance(30 * DAY);
    assert_eq!(
        fleet.keeper().run_once().await.unwrap().claimed,
        0,
        "never refreshed"
    );
}
