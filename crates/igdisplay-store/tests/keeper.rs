//! The keeper against the mock Instagram, each scenario on SQLite and on PostgreSQL: due
//! tokens refreshed once and rescheduled, revoked ones marked and never retried, failures
//! backed off and recovered, a dead instance's leases taken over, leases that hold while
//! Instagram is slow, clocks that disagree, a login racing a refresh, deletions racing
//! refreshes, expiry, key rotation while keeping, the app's budget shared by every instance,
//! the callbacks' state changes, and on-demand refreshes through the same lease.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use igdisplay_auth::{
    AppConfig, AuthClient, Endpoints, Platform, ResponseObserver, StoreError, TokenError, TokenKind,
    TokenManager, TokenRecord, TokenStore,
};
use igdisplay_graph::{Pacer, RateLimitPolicy};
use igdisplay_http::test_util::{SimClock, json_response};
use igdisplay_http::{
    Clock, HttpBackend, HttpRequest, HttpResponse, HyperBackend, ManualClock, SharedBackend, SharedClock,
    SystemClock, TransportError,
};
use igdisplay_mock::{Fault, FaultKind, MockClock, MockServer, Seed, TokenLifetime};
use igdisplay_model::{AccessToken, UserId};
use igdisplay_store::{
    AccountState, AppQuota, Event, Keeper, KeeperSettings, KeyRing, OutboxEvent, SqlStore, Subscription,
};
use sqlx::Row as _;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;
use common::{Db, ring};

const DAY: Duration = Duration::from_secs(86_400);
const T0: u64 = 1_800_000_000;
const REFRESH: &str = "/refresh_access_token";

/// The test's time: a manual clock (one actor at a time) or a simulated one (several actors
/// whose waits overlap).
#[derive(Clone)]
enum TestClock {
    Manual(ManualClock),
    Sim(SimClock),
}

impl TestClock {
    fn shared(&self) -> SharedClock {
        match self {
            TestClock::Manual(clock) => Arc::new(clock.clone()),
            TestClock::Sim(clock) => Arc::new(clock.clone()),
        }
    }

    fn advance(&self, by: Duration) {
        match self {
            TestClock::Manual(clock) => clock.advance(by),
            TestClock::Sim(clock) => clock.advance(by),
        }
    }

    fn now(&self) -> SystemTime {
        self.shared().now()
    }

    fn unix(&self) -> i64 {
        i64::try_from(self.now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
    }

    fn sim(&self) -> &SimClock {
        match self {
            TestClock::Sim(clock) => clock,
            TestClock::Manual(_) => panic!("a simulated clock was expected"),
        }
    }
}

/// A mock with `count` users `acct000001`… and their long-lived tokens issued at T0, a
/// store holding them whose statements take their time from the test's clock, both moved to
/// T0 + `age`.
struct Fleet {
    mock: MockServer,
    store: SqlStore,
    clock: TestClock,
    users: Vec<UserId>,
}

impl Fleet {
    async fn new(db: &Db, keys: KeyRing, count: usize, age: Duration) -> Self {
        Self::with_clock(db, keys, count, age, TestClock::Manual(ManualClock::at_unix(T0))).await
    }

    /// A fleet on simulated time, for scenarios where several actors wait at once.
    async fn simulated(db: &Db, keys: KeyRing, count: usize, age: Duration) -> Self {
        Self::with_clock(db, keys, count, age, TestClock::Sim(SimClock::at_unix(T0))).await
    }

    async fn with_clock(db: &Db, keys: KeyRing, count: usize, age: Duration, clock: TestClock) -> Self {
        let mock = MockServer::builder()
            .platform(igdisplay_mock::MockPlatform::InstagramLogin)
            .calls_per_hour(None)
            .workers(2)
            .clock(MockClock::Frozen(i64::try_from(T0).unwrap()))
            .seed(Seed::demo().with_fleet("acct", count, 0))
            .start()
            .unwrap();
        let store = db.open(keys).await.with_pinned_time(clock.shared());
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

    fn client(&self, backend: SharedBackend) -> AuthClient {
        let app = AppConfig::read_only(Platform::InstagramLogin)
            .with_endpoints(Endpoints::single_origin(self.mock.base_url()))
            .unwrap();
        AuthClient::new(app, backend).with_clock(self.clock.shared())
    }

    fn keeper_with(&self, backend: SharedBackend, settings: KeeperSettings, owner: &str) -> Keeper {
        Keeper::builder(self.store.clone(), self.client(backend))
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
        .fetch_one(self.store.pool())
        .await
        .unwrap()
        .try_get("v")
        .unwrap()
    }

    /// Every account refreshed exactly once, and active.
    async fn assert_each_refreshed_once(&self) {
        let counts = self.mock.refresh_counts();
        let twice: Vec<_> = self
            .users
            .iter()
            .filter(|u| counts.get(u.as_str()) != Some(&1))
            .collect();
        assert!(
            twice.is_empty(),
            "{} not refreshed exactly once: {twice:?}",
            twice.len()
        );
        let states = self.store.counts().await.unwrap();
        assert_eq!(
            states[&AccountState::Active],
            self.users.len() as u64,
            "{states:?}"
        );
    }
}

/// Every event the subscription has now.
async fn drain(events: &mut Subscription) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(OutboxEvent { event, .. }) = events.try_next().await.unwrap() {
        out.push(event);
    }
    out
}

on_both!(
    due_tokens_are_refreshed_once_and_next_due_on_day_twenty,
    tokens_not_yet_due_are_left_alone,
    a_revoked_token_is_marked_and_never_retried,
    a_failing_refresh_backs_off_warns_and_recovers,
    a_dead_instances_leases_are_taken_over_once_they_run_out,
    a_keeper_run_until_idle_ends_once_another_instance_finished_the_work,
    slow_refreshes_under_a_short_lease_are_sent_once_by_two_keepers,
    a_keeper_whose_clock_is_off_takes_over_no_live_lease_and_expires_nothing_early,
    a_login_racing_a_refresh_keeps_the_newer_token,
    a_thousand_deletions_racing_refreshes_bring_no_account_back,
    a_token_that_expired_unrefreshed_is_marked_expired,
    tokens_are_resealed_under_a_new_key_while_the_keeper_runs,
    a_spent_app_budget_pauses_every_keeper,
    four_keepers_under_a_quota_of_600_an_hour_send_at_most_600_in_an_hour,
    a_deauthorized_account_is_erased_and_never_refreshed,
    an_on_demand_refresh_while_a_keeper_holds_the_lease_sends_nothing_of_its_own,
    an_on_demand_use_of_a_revoked_account_fails_at_once_and_sends_nothing,
    a_token_failing_until_its_expiry_ends_expired,
    a_new_login_revives_a_revoked_or_deauthorized_account,
    a_token_refused_outside_a_refresh_is_marked_revoked_once,
);

async fn due_tokens_are_refreshed_once_and_next_due_on_day_twenty(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 30, 21 * DAY).await;
    let keeper = fleet.keeper_with(fleet.backend(), KeeperSettings::default().batch(7), "keeper-a");
    let mut events = fleet.store.events().subscribe().await.unwrap();
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!((cycle.claimed, cycle.refreshed, cycle.failed), (30, 30, 0));
    fleet.assert_each_refreshed_once().await;
    assert_eq!(
        drain(&mut events)
            .await
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
    let mut events = fleet.store.events().subscribe().await.unwrap();
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!(
        (cycle.refreshed, cycle.revoked),
        (3, 1),
        "one bad token never fails the batch"
    );
    assert_eq!(fleet.state(&revoked).await, AccountState::Revoked);
    assert!(drain(&mut events).await.contains(&Event::Revoked {
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
    assert_eq!(
        fleet.store.account(&revoked).await.unwrap().unwrap().state,
        AccountState::Revoked,
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
    let mut events = fleet.store.events().subscribe().await.unwrap();
    let started = fleet.clock.unix();
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!(cycle.failed, 1);
    assert_eq!(fleet.state(&user).await, AccountState::Failing);
    assert_eq!(fleet.column(&user, "failures").await, Some(1));
    let retry_at = fleet.column(&user, "next_refresh_at").await.unwrap();
    // The client's own retries slept on the clock before the failure was written.
    let failed_at = fleet.clock.unix();
    assert!(
        retry_at > failed_at && retry_at <= failed_at + 5 * 60 + 30,
        "backed off: {} (the retries took {})",
        retry_at - failed_at,
        failed_at - started
    );
    assert!(matches!(
        &drain(&mut events).await[..],
        [Event::ExpiringSoon { failures: 1, .. }]
    ));
    assert_eq!(
        keeper.run_once().await.unwrap().claimed,
        0,
        "not before the backoff"
    );

    fleet.advance(Duration::from_secs(
        u64::try_from(retry_at - fleet.clock.unix()).unwrap(),
    ));
    assert_eq!(keeper.run_once().await.unwrap().failed, 1);
    assert_eq!(fleet.column(&user, "failures").await, Some(2));
    let retry_at_2 = fleet.column(&user, "next_refresh_at").await.unwrap();
    fleet.advance(Duration::from_secs(
        u64::try_from(retry_at_2 - fleet.clock.unix()).unwrap(),
    ));
    assert_eq!(keeper.run_once().await.unwrap().refreshed, 1);
    assert_eq!(fleet.state(&user).await, AccountState::Active);
    assert_eq!(fleet.column(&user, "failures").await, Some(0));
    assert!(
        drain(&mut events)
            .await
            .iter()
            .any(|e| matches!(e, Event::Recovered { failures: 2, .. }))
    );
}

async fn a_dead_instances_leases_are_taken_over_once_they_run_out(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 6, 21 * DAY).await;
    // An instance claimed three accounts and died: its lease runs 5 minutes.
    let now = fleet.clock.unix();
    for user in &fleet.users[..3] {
        sqlx::query("UPDATE accounts SET lease_owner = 'dead', lease_until = $1 WHERE user_id = $2")
            .bind(now + 300)
            .bind(user.as_str())
            .execute(fleet.store.pool())
            .await
            .unwrap();
    }
    let keeper = fleet.keeper();
    assert_eq!(keeper.run_once().await.unwrap().refreshed, 3, "the free ones");
    assert_eq!(keeper.due().await.unwrap(), 3, "the leased ones are still due");
    fleet.advance(Duration::from_secs(300));
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!((cycle.refreshed, cycle.takeovers), (3, 3), "taken over");
    fleet.assert_each_refreshed_once().await;
}

/// Keeper B runs until idle while another instance holds the one due account's lease; that
/// instance refreshes it meanwhile. B sees nothing left to do and ends (it once kept waiting
/// for work that another had done).
async fn a_keeper_run_until_idle_ends_once_another_instance_finished_the_work(db: Db) {
    let fleet = Fleet::simulated(&db, ring("k1", 1), 1, 21 * DAY).await;
    let user = fleet.users[0].clone();
    let now = fleet.clock.unix();
    sqlx::query("UPDATE accounts SET lease_owner = 'keeper-a', lease_until = $1 WHERE user_id = $2")
        .bind(now + 60)
        .bind(user.as_str())
        .execute(fleet.store.pool())
        .await
        .unwrap();
    let b = fleet.keeper_with(
        fleet.backend(),
        KeeperSettings::default().idle(Duration::from_secs(1)),
        "keeper-b",
    );
    let (clock, pool) = (fleet.clock.shared(), fleet.store.pool().clone());
    let ended = fleet
        .clock
        .sim()
        .drive(async {
            let other = async {
                // Keeper A refreshes it after 5 s and lets the lease go.
                clock.sleep(Duration::from_secs(5)).await;
                sqlx::query(
                    "UPDATE accounts SET next_refresh_at = $1, lease_owner = NULL, lease_until = NULL WHERE user_id = $2",
                )
                .bind(now + 20 * 86_400)
                .bind(user.as_str())
                .execute(&pool)
                .await
                .unwrap();
                // Half an hour later (before the hourly maintenance would wake it), B must
                // have ended long ago.
                clock.sleep(Duration::from_secs(1800)).await;
            };
            tokio::select! {
                done = b.run_until_idle() => done.map(|()| true),
                () = other => Ok(false),
            }
        })
        .await
        .unwrap();
    assert!(ended, "keeper B kept waiting");
    assert_eq!(b.totals().refreshed, 0);
}

/// Instagram answering each refresh in `delay` of the test's (simulated) time: half before it
/// reaches the mock, half after.
#[derive(Debug)]
struct Slow {
    inner: SharedBackend,
    clock: SharedClock,
    delay: Duration,
}

#[async_trait::async_trait]
impl HttpBackend for Slow {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.clock.sleep(self.delay / 2).await;
        let response = self.inner.send(request).await;
        self.clock.sleep(self.delay / 2).await;
        response
    }
}

/// Instagram answering a refresh only once the test lets it (`release`): a refresh that
/// outlasts whatever the test does meanwhile, with no race against the simulated clock.
#[derive(Debug)]
struct Held {
    inner: SharedBackend,
    release: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl HttpBackend for Held {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.release.notified().await;
        self.inner.send(request).await
    }
}

/// Two keepers, each refresh taking 3 s and a lease of 10 s: a claimed batch outlives its
/// lease (16 at a time, 3 s each), but every refresh re-takes its account's lease right before
/// it is sent, so the other keeper never sends the same one.
async fn slow_refreshes_under_a_short_lease_are_sent_once_by_two_keepers(db: Db) {
    let fleet = Fleet::simulated(&db, ring("k1", 1), 300, 21 * DAY).await;
    let slow: SharedBackend = Arc::new(Slow {
        inner: fleet.backend(),
        clock: fleet.clock.shared(),
        delay: Duration::from_secs(3),
    });
    let settings = KeeperSettings::default()
        .lease(Duration::from_secs(10))
        .batch(256)
        .concurrency(16)
        .idle(Duration::from_secs(1));
    let a = fleet.keeper_with(slow.clone(), settings, "keeper-a");
    let b = fleet.keeper_with(slow, settings, "keeper-b");
    let (done_a, done_b) = fleet
        .clock
        .sim()
        .drive(async { tokio::join!(a.run_until_idle(), b.run_until_idle()) })
        .await;
    done_a.unwrap();
    done_b.unwrap();
    fleet.assert_each_refreshed_once().await;
    let (ta, tb) = (a.totals(), b.totals());
    assert_eq!(ta.refreshed + tb.refreshed, 300, "{ta:?} {tb:?}");
    assert!(ta.refreshed > 0 && tb.refreshed > 0, "both worked: {ta:?} {tb:?}");
}

/// Keeper B's clock is 10 minutes ahead (then behind) of the database's: the leases and
/// expiry it sees are the database's, so it takes over no live lease and expires nothing
/// before its time. Here the store takes the database's own clock.
async fn a_keeper_whose_clock_is_off_takes_over_no_live_lease_and_expires_nothing_early(db: Db) {
    // Tokens minted 21 days ago of the real time: due now, by the database's clock.
    let real = i64::try_from(SystemClock.now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap();
    let mock = MockServer::builder()
        .platform(igdisplay_mock::MockPlatform::InstagramLogin)
        .calls_per_hour(None)
        .clock(MockClock::System { offset: -21 * 86_400 })
        .seed(Seed::demo().with_fleet("acct", 4, 0))
        .start()
        .unwrap();
    let minted = mock.issue_tokens("acct", TokenLifetime::LongLived).unwrap();
    mock.advance(21 * DAY);
    let store = db.open(ring("k1", 1)).await;
    let issued = UNIX_EPOCH + Duration::from_secs(u64::try_from(real).unwrap()) - 21 * DAY;
    let users: Vec<UserId> = minted.iter().map(|t| UserId::new(&t.user_id)).collect();
    for (n, token) in minted.iter().enumerate() {
        let record = TokenRecord::new(
            users[n].clone(),
            AccessToken::new(&token.access_token),
            TokenKind::LongLived,
            Platform::InstagramLogin,
            issued,
            60 * DAY,
        );
        store.save(&record).await.unwrap();
    }
    let db_now = if matches!(db, Db::Postgres { .. }) {
        "CAST(FLOOR(EXTRACT(EPOCH FROM now())) AS BIGINT)"
    } else {
        "CAST(strftime('%s', 'now') AS INTEGER)"
    };
    let set = |sql: &str, user: &UserId| {
        let sql = sql.replace("{now}", db_now);
        let user = user.as_str().to_owned();
        let pool = store.pool().clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(user)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // Keeper A holds the first two for 5 minutes of the database's time.
    for user in &users[..2] {
        set(
            "UPDATE accounts SET lease_owner = 'keeper-a', lease_until = {now} + 300 WHERE user_id = $1",
            user,
        )
        .await;
    }
    // The last one is failing, retried in an hour, and expires in 5 minutes.
    set(
        "UPDATE accounts SET state = 'failing', failures = 1, next_refresh_at = {now} + 3600,
             expires_at = {now} + 300 WHERE user_id = $1",
        &users[3],
    )
    .await;
    for skew in [600_i64, -600] {
        let skewed = ManualClock::new(if skew > 0 {
            SystemClock.now() + Duration::from_secs(600)
        } else {
            SystemClock.now() - Duration::from_secs(600)
        });
        let app = AppConfig::read_only(Platform::InstagramLogin)
            .with_endpoints(Endpoints::single_origin(mock.base_url()))
            .unwrap();
        let client =
            AuthClient::new(app, Arc::new(HyperBackend::new().unwrap())).with_clock(Arc::new(skewed.clone()));
        let keeper = Keeper::builder(store.clone(), client)
            .clock(Arc::new(skewed))
            .owner(format!("keeper-b{skew}"))
            .build();
        let cycle = keeper.run_once().await.unwrap();
        assert_eq!(cycle.takeovers, 0, "skew {skew}: {cycle:?}");
        assert_eq!(cycle.expired, 0, "skew {skew}: nothing expires early");
        let listed: BTreeMap<UserId, _> = store
            .list(None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.user_id.clone(), a))
            .collect();
        for user in &users[..2] {
            assert_eq!(listed[user].leased_by.as_deref(), Some("keeper-a"), "skew {skew}");
        }
        assert_eq!(listed[&users[2]].state, AccountState::Active, "skew {skew}");
        assert_eq!(
            listed[&users[3]].state,
            AccountState::Failing,
            "skew {skew}: not expired early"
        );
    }
    // The one free and due, not about to expire, was refreshed (by the first run).
    let counts = mock.refresh_counts();
    assert_eq!(counts.get(users[2].as_str()), Some(&1));
    assert_eq!(counts.get(users[0].as_str()), None);
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

/// When, around a refresh of an account, its data-deletion callback lands.
#[derive(Clone, Copy, Debug)]
enum When {
    /// Before the refresh is sent.
    Before,
    /// After Instagram answered, before the token is written.
    After,
}

/// Deletes the account a refresh is for, before or after Instagram answers, as planned.
#[derive(Debug)]
struct DeleteDuringRefresh {
    inner: SharedBackend,
    store: SqlStore,
    /// The old token of each account, and when its deletion lands.
    plan: BTreeMap<String, (UserId, When)>,
}

#[async_trait::async_trait]
impl HttpBackend for DeleteDuringRefresh {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let query = request.uri().query().unwrap_or_default().to_owned();
        let token = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("access_token="))
            .unwrap_or_default()
            .to_owned();
        let planned = self.plan.get(&token).cloned();
        if let Some((user, When::Before)) = &planned {
            self.store.delete_account(user, "DEL").await.unwrap();
        }
        let response = self.inner.send(request).await;
        if let Some((user, When::After)) = &planned {
            self.store.delete_account(user, "DEL").await.unwrap();
        }
        response
    }
}

/// A small seeded generator: the same races on every run.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// 1,000 seeded races: each account's data-deletion callback lands just before or just
/// after its refresh is answered, the refresh an on-demand one (a web request through
/// `TokenManager`) or the keeper's. No refresh's write brings a deleted account back, as a row
/// or as a token anyone is handed.
async fn a_thousand_deletions_racing_refreshes_bring_no_account_back(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 1000, 21 * DAY).await;
    let mut seeded = Seeded(0x5eed_1e55);
    let mut plan = BTreeMap::new();
    let mut on_demand = Vec::new();
    for user in &fleet.users {
        let token = fleet.store.load(user).await.unwrap().unwrap().access_token;
        let roll = seeded.next();
        let when = if roll & 1 == 0 { When::Before } else { When::After };
        plan.insert(token.expose_secret().to_owned(), (user.clone(), when));
        if roll & 2 == 0 {
            on_demand.push(user.clone());
        }
    }
    let backend: SharedBackend = Arc::new(DeleteDuringRefresh {
        inner: fleet.backend(),
        store: fleet.store.clone(),
        plan,
    });
    // On-demand refreshes, sixteen at a time, each racing its deletion.
    let tokens = TokenManager::new(fleet.client(backend.clone()), Arc::new(fleet.store.clone()));
    use futures_util::StreamExt as _;
    let handed_out: Vec<_> = futures_util::stream::iter(&on_demand)
        .map(|user| tokens.record(user))
        .buffer_unordered(16)
        .collect()
        .await;
    for outcome in &handed_out {
        assert!(
            matches!(outcome, Err(TokenError::NoToken(_))),
            "a deleted account's token was handed out: {outcome:?}"
        );
    }
    // The keeper refreshes the others, each racing its deletion.
    let keeper = fleet.keeper_with(backend, KeeperSettings::default(), "keeper-a");
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!(cycle.refreshed, 0, "{cycle:?}");
    let left = fleet.store.list(None, 10_000).await.unwrap();
    assert!(
        left.is_empty(),
        "{} accounts came back: {:?}",
        left.len(),
        &left[..left.len().min(3)]
    );
    assert!(fleet.store.users().await.unwrap().is_empty());
    // And stay gone.
    fleet.advance(30 * DAY);
    assert_eq!(keeper.run_once().await.unwrap().claimed, 0);
    assert_eq!(
        on_demand.len() + usize::try_from(cycle.lost_races + cycle.leases_lost).unwrap(),
        1000,
        "every race was run: {cycle:?}"
    );
}

async fn a_token_that_expired_unrefreshed_is_marked_expired(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 2, 61 * DAY).await;
    let keeper = fleet.keeper();
    let mut events = fleet.store.events().subscribe().await.unwrap();
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!((cycle.expired, cycle.claimed), (2, 0));
    assert_eq!(fleet.state(&fleet.users[0]).await, AccountState::Expired);
    assert_eq!(
        drain(&mut events)
            .await
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
        .with_pinned_time(fleet.clock.shared());
    let keeper = Keeper::builder(store.clone(), fleet.client(fleet.backend())).build();
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

/// A keeper as the facade builds one: its client's responses reach the app's pacer.
fn paced_keeper(fleet: &Fleet, backend: SharedBackend, settings: KeeperSettings, owner: &str) -> Keeper {
    let pacer = Arc::new(Pacer::new(RateLimitPolicy::default()));
    let observed = pacer.clone();
    let client = fleet
        .client(backend)
        .with_response_observer(ResponseObserver::new(move |headers| {
            observed.observe(None, igdisplay_graph::reported_usage(headers));
        }));
    Keeper::builder(fleet.store.clone(), client)
        .pacer(pacer)
        .settings(settings)
        .owner(owner)
        .build()
}

/// One keeper is told the app's budget is spent: the pause goes to the database, and a
/// second keeper, which saw nothing itself, waits it out too.
async fn a_spent_app_budget_pauses_every_keeper(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 3, 21 * DAY).await;
    let settings = KeeperSettings::default().concurrency(1).batch(1);
    let a = paced_keeper(&fleet, Arc::new(SpentBudget), settings, "keeper-a");
    let first = a.run_once().await.unwrap();
    assert_eq!(first.refreshed, 1, "{first:?}");
    let blocked = sqlx::query("SELECT blocked_until, usage_percent FROM app_budget")
        .fetch_one(fleet.store.pool())
        .await
        .unwrap();
    let until: i64 = blocked.try_get("blocked_until").unwrap();
    assert_eq!(blocked.try_get::<i64, _>("usage_percent").unwrap(), 100);
    assert_eq!(
        until,
        fleet.clock.unix() * 1000 + 60_000,
        "the policy's default minute"
    );
    // Another instance, which heard nothing from Instagram, claims nothing meanwhile.
    let b = paced_keeper(&fleet, fleet.backend(), settings, "keeper-b");
    assert_eq!(b.run_once().await.unwrap().claimed, 0);
    fleet.advance(Duration::from_secs(60));
    assert_eq!(b.run_once().await.unwrap().refreshed, 2, "after the pause");
}

/// Counts the refreshes sent at each (simulated) second.
#[derive(Debug)]
struct Stamped {
    inner: SharedBackend,
    clock: SharedClock,
    sent: Mutex<Vec<u64>>,
}

#[async_trait::async_trait]
impl HttpBackend for Stamped {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let now = self.clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        self.sent.lock().unwrap().push(now);
        self.inner.send(request).await
    }
}

/// Four keepers, 2,000 accounts due and a quota of 600 refreshes an hour for the app: kept in
/// the database, the quota holds for all four together.
async fn four_keepers_under_a_quota_of_600_an_hour_send_at_most_600_in_an_hour(db: Db) {
    let fleet = Fleet::simulated(&db, ring("k1", 1), 2000, 21 * DAY).await;
    let stamped = Arc::new(Stamped {
        inner: fleet.backend(),
        clock: fleet.clock.shared(),
        sent: Mutex::default(),
    });
    let settings = KeeperSettings::default()
        .concurrency(2)
        .idle(Duration::from_secs(5))
        .quota(AppQuota::new(600, Duration::from_secs(3600)));
    let keepers: Vec<Keeper> = (1..=4)
        .map(|n| fleet.keeper_with(stamped.clone(), settings, &format!("keeper-{n}")))
        .collect();
    let start = fleet.clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let sim = fleet.clock.sim().clone();
    let hour = sim.clone();
    sim.drive(async {
        // An hour, in short steps: no far deadline for the simulation to jump to.
        let stop = async move {
            while hour.unix() < start + 3600 {
                hour.sleep(Duration::from_secs(5)).await;
            }
        };
        let stop = futures_util::future::FutureExt::shared(Box::pin(stop));
        let runs = keepers.iter().map(|keeper| keeper.run(stop.clone()));
        futures_util::future::join_all(runs).await
    })
    .await;
    let sent = stamped.sent.lock().unwrap().clone();
    let in_the_hour = sent.iter().filter(|at| **at < start + 3600).count();
    assert!(
        (400..=600).contains(&in_the_hour),
        "{in_the_hour} refreshes in the first hour ({} in all)",
        sent.len()
    );
    let by_keeper: Vec<u64> = keepers.iter().map(|k| k.totals().refreshed).collect();
    assert!(by_keeper.iter().filter(|n| **n > 0).count() >= 2, "{by_keeper:?}");
}

async fn a_deauthorized_account_is_erased_and_never_refreshed(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 2, 21 * DAY).await;
    let gone = fleet.users[0].clone();
    assert!(fleet.store.deauthorize(&gone).await.unwrap().is_some());
    assert!(matches!(
        fleet.store.load(&gone).await,
        Err(StoreError::LoginRequired {
            state: "deauthorized"
        })
    ));
    assert_eq!(fleet.state(&gone).await, AccountState::Deauthorized);
    assert_eq!(fleet.keeper().run_once().await.unwrap().refreshed, 1);
    fleet.store.delete_account(&gone, "DEL-1").await.unwrap();
    assert_eq!(fleet.store.users().await.unwrap(), [fleet.users[1].clone()]);
}

/// A keeper holds an account's lease and refreshes it slowly; a web request wants the same
/// token meanwhile. The request waits for the keeper's write and uses the new token (a 3 s
/// refresh), or, when the keeper takes longer than the wait, the current token, which is
/// still valid: either way Instagram gets one refresh, the keeper's.
///
/// The longer refresh is held until the request has its answer ([`Held`]), not timed on the
/// simulated clock: that clock jumps to the next deadline whenever nobody touched it for a
/// moment of real time, and on a loaded machine one of the request's lease checks (a query on
/// a database thread) outlasted that moment, so a two-minute refresh finished inside the
/// request's ten-second wait (seen twice in CI, the second time with a 200 ms quiet).
async fn an_on_demand_refresh_while_a_keeper_holds_the_lease_sends_nothing_of_its_own(db: Db) {
    for held in [false, true] {
        let db = match &db {
            Db::Sqlite(_) => Db::sqlite(),
            Db::Postgres { .. } => Db::postgres().await.unwrap(),
        };
        let fleet = Fleet::simulated(&db, ring("k1", 1), 1, 21 * DAY).await;
        let user = fleet.users[0].clone();
        let direct = TokenManager::new(fleet.client(fleet.backend()), Arc::new(fleet.store.clone()));
        let old = fleet.store.load(&user).await.unwrap().unwrap();
        let release = Arc::new(tokio::sync::Notify::new());
        let slow: SharedBackend = if held {
            Arc::new(Held {
                inner: fleet.backend(),
                release: release.clone(),
            })
        } else {
            Arc::new(Slow {
                inner: fleet.backend(),
                clock: fleet.clock.shared(),
                delay: Duration::from_secs(3),
            })
        };
        let keeper = fleet.keeper_with(slow, KeeperSettings::default(), "keeper-a");
        let store = fleet.store.clone();
        let clock = fleet.clock.shared();
        let (cycle, handed) = fleet
            .clock
            .sim()
            .drive(async {
                let keeping = keeper.run_once();
                let asking = async {
                    // Once the keeper holds the lease, the request comes in.
                    while store.list(None, 10).await.unwrap()[0].leased_by.is_none() {
                        clock.sleep(Duration::from_millis(100)).await;
                    }
                    let handed = direct.record(&user).await;
                    release.notify_one();
                    handed
                };
                tokio::join!(keeping, asking)
            })
            .await;
        assert_eq!(cycle.unwrap().refreshed, 1);
        let handed = handed.unwrap();
        let stored = fleet.store.load(&user).await.unwrap().unwrap();
        assert_eq!(
            fleet.mock.refresh_counts().get(user.as_str()),
            Some(&1),
            "held {held}: the keeper's refresh only"
        );
        if held {
            assert!(handed.same_token(&old), "the current token, still valid");
        } else {
            assert!(handed.same_token(&stored), "the keeper's new token");
        }
    }
}

async fn an_on_demand_use_of_a_revoked_account_fails_at_once_and_sends_nothing(db: Db) {
    let fleet = Fleet::new(&db, ring("k1", 1), 1, 21 * DAY).await;
    let user = fleet.users[0].clone();
    fleet.mock.revoke_tokens("acct000001").unwrap();
    let tokens = TokenManager::new(fleet.client(fleet.backend()), Arc::new(fleet.store.clone()));
    let error = tokens.record(&user).await.unwrap_err();
    assert!(
        matches!(error, TokenError::Revoked(_)),
        "{error:?} {:?}",
        std::error::Error::source(&error)
    );
    assert_eq!(fleet.refresh_requests(), 1, "Instagram refused it once");
    assert_eq!(fleet.state(&user).await, AccountState::Revoked);
    for _ in 0..3 {
        let error = tokens.record(&user).await.unwrap_err();
        assert!(error.requires_reauthorization(), "{error:?}");
        assert!(error.to_string().contains("log in again"), "{error}");
    }
    assert_eq!(fleet.refresh_requests(), 1, "nothing more is sent");
}

async fn a_token_failing_until_its_expiry_ends_expired(db: Db) {
    // Issued 59 days and 22 hours ago: two hours left, and Instagram keeps failing.
    let fleet = Fleet::new(&db, ring("k1", 1), 1, 59 * DAY + Duration::from_secs(22 * 3600)).await;
    let user = fleet.users[0].clone();
    fleet
        .mock
        .add_fault(Fault::new(REFRESH, FaultKind::Status { status: 503 }));
    let keeper = fleet.keeper();
    let mut events = fleet.store.events().subscribe().await.unwrap();
    assert_eq!(keeper.run_once().await.unwrap().failed, 1);
    assert_eq!(fleet.state(&user).await, AccountState::Failing);
    let retry_at = fleet.column(&user, "next_refresh_at").await.unwrap();
    let expires = i64::try_from(T0 + 60 * DAY.as_secs()).unwrap();
    assert!(retry_at < expires, "the retry comes before the expiry");
    fleet.advance(Duration::from_secs(3 * 3600));
    let cycle = keeper.run_once().await.unwrap();
    assert_eq!((cycle.expired, cycle.claimed), (1, 0));
    assert_eq!(fleet.state(&user).await, AccountState::Expired);
    let kinds: Vec<&str> = drain(&mut events).await.iter().map(Event::kind).collect();
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
    let kinds: BTreeSet<String> = fleet
        .store
        .list_events(None, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind().to_owned())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["revoked".to_owned()]),
        "one event, in the outbox"
    );
    fleet.advance(30 * DAY);
    assert_eq!(
        fleet.keeper().run_once().await.unwrap().claimed,
        0,
        "never refreshed"
    );
}
