//! [`Keeper`]: keeps every account's token alive, from any number of instances sharing one
//! database.
//!
//! One cycle:
//! 1. **Expire**: accounts whose token expired before a refresh succeeded become
//!    [`AccountState::Expired`] ([`Event::Expired`]).
//! 2. **Claim** a batch of due accounts under a lease, in one statement: on PostgreSQL
//!    `FOR UPDATE SKIP LOCKED`, so instances never wait for each other nor claim the same
//!    row; on SQLite the single writer makes the same statement atomic. A lease held by a
//!    dead instance runs out and the account is claimed again.
//! 3. **Refresh** the batch with bounded concurrency, paced by the app's budget (the
//!    [`Pacer`] reads the usage headers; a rate-limit answer pauses every refresh of this
//!    instance), each account on its own: one bad token never fails the others.
//! 4. **Write back** each outcome in one statement, guarded by the row's version: a refresh
//!    that raced a new login loses and the newer token stays. A refreshed token is next due on
//!    day 20 ([`RefreshSchedule`](crate::RefreshSchedule)); a failure is retried with backoff
//!    and jitter, well before expiry; a revoked token (error 190) is marked and never retried.
//! 5. **Rotate**: tokens sealed under an older key are re-sealed, a batch per cycle.
//!
//! Statements per refreshed account: one write-back, plus one claim per batch.

use crate::events::{Event, Events};
use crate::schedule::AccountState;
use crate::schema::claim_sql;
use crate::sql::{Error, SqlStore};
use futures_util::StreamExt as _;
use igdisplay_auth::{AppConfig, AuthClient, TokenError, TokenRecord};
use igdisplay_graph::{Pacer, RateLimitPolicy, Scope};
use igdisplay_http::{
    HttpBackend, HttpRequest, HttpResponse, Jitter, Retry, RetryPolicy, SharedBackend, SharedClock,
    TransportError,
};
use igdisplay_model::{Timestamp, UserId};
use sqlx::Row as _;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// How a [`Keeper`] works. The defaults suit a fleet of any size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeeperSettings {
    /// Accounts claimed per statement. Default 256.
    pub batch: u32,
    /// Refreshes in flight at once, per instance. Default 16.
    pub concurrency: usize,
    /// How long a claim holds an account; an instance that dies holding it lets it go after
    /// this long. Longer than a batch takes. Default 5 minutes.
    pub lease: Duration,
    /// How long to wait when nothing is due before looking again. Default 30 seconds.
    pub idle: Duration,
    /// The backoff of failed refreshes (capped exponential with full jitter, counted in
    /// failures in a row). Default: from 5 minutes up to 6 hours.
    pub failure_backoff: RetryPolicy,
    /// A failed refresh of a token with less than this left sends [`Event::ExpiringSoon`].
    /// Default 7 days.
    pub warn_within: Duration,
    /// Tokens re-sealed under the current key per cycle while a rotation is under way.
    /// Default 500.
    pub rotate_batch: u32,
}

impl Default for KeeperSettings {
    fn default() -> Self {
        Self {
            batch: 256,
            concurrency: 16,
            lease: Duration::from_secs(5 * 60),
            idle: Duration::from_secs(30),
            failure_backoff: RetryPolicy::default()
                .base_delay(Duration::from_secs(5 * 60))
                .max_delay(Duration::from_secs(6 * 3600)),
            warn_within: Duration::from_secs(7 * 86_400),
            rotate_batch: 500,
        }
    }
}

impl KeeperSettings {
    /// Sets the claim batch (at least 1).
    #[must_use]
    pub fn batch(mut self, batch: u32) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Sets the refreshes in flight (at least 1).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sets the lease (at least one second).
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// Sets the idle wait.
    #[must_use]
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Sets the failure backoff.
    #[must_use]
    pub fn failure_backoff(mut self, backoff: RetryPolicy) -> Self {
        self.failure_backoff = backoff;
        self
    }
}

/// What one [`Keeper::run_once`] did (also the running totals of [`Keeper::totals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Tally {
    /// Accounts claimed.
    pub claimed: u64,
    /// Tokens refreshed and written back.
    pub refreshed: u64,
    /// Refreshes that failed for a passing reason, rescheduled with backoff.
    pub failed: u64,
    /// Tokens Instagram refused, marked revoked.
    pub revoked: u64,
    /// Tokens found expired.
    pub expired: u64,
    /// Refreshes whose write lost to a newer token (a login, another writer): the newer kept.
    pub lost_races: u64,
    /// Refreshes put off: too young, or the app's budget spent.
    pub deferred: u64,
    /// Tokens re-sealed under the current key.
    pub resealed: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.claimed += other.claimed;
        self.refreshed += other.refreshed;
        self.failed += other.failed;
        self.revoked += other.revoked;
        self.expired += other.expired;
        self.lost_races += other.lost_races;
        self.deferred += other.deferred;
        self.resealed += other.resealed;
    }
}

/// Keeps the tokens of every account in a [`SqlStore`] alive. Run one per instance (or
/// several): they share the work through the database. Cheap to clone.
///
/// ```
/// use igdisplay_auth::{AppConfig, Platform, TokenKind, TokenRecord, TokenStore};
/// use igdisplay_http::{Clock as _, ManualClock};
/// use igdisplay_http::test_util::{ReplayBackend, json_response};
/// use igdisplay_model::{AccessToken, UserId};
/// use igdisplay_store::{Event, Keeper, Key, KeyRing, SqlStore};
/// use std::{sync::Arc, time::Duration};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let clock = ManualClock::at_unix(1_800_000_000);
/// let store = SqlStore::sqlite(&dir.path().join("accounts.db"), KeyRing::new(Key::generate("k1")?)).await?
///     .with_clock(Arc::new(clock.clone()));
/// // A token issued 21 days ago: past day 20, due.
/// let user = UserId::new("1784");
/// store.save(&TokenRecord::new(user.clone(), AccessToken::new("IGAAold"), TokenKind::LongLived,
///     Platform::InstagramLogin, clock.now() - Duration::from_secs(21 * 86_400),
///     Duration::from_secs(60 * 86_400))).await?;
///
/// // Instagram's answer, canned here; use a real backend or the mock.
/// let backend = ReplayBackend::new([Ok(json_response(200,
///     r#"{"access_token":"IGAAnew","token_type":"bearer","expires_in":5184000}"#))]);
/// let keeper = Keeper::builder(store.clone(), AppConfig::read_only(Platform::InstagramLogin), Arc::new(backend))
///     .build();
/// let mut events = keeper.events().subscribe();
/// let cycle = keeper.run_once().await?;
/// assert_eq!(cycle.refreshed, 1);
/// assert_eq!(store.load(&user).await?.unwrap().access_token.expose_secret(), "IGAAnew");
/// assert!(matches!(events.try_recv()?, Event::Refreshed { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Keeper {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: SqlStore,
    client: AuthClient,
    clock: SharedClock,
    pacer: Arc<Pacer>,
    settings: KeeperSettings,
    owner: String,
    events: Events,
    jitter: Jitter,
    totals: std::sync::Mutex<Tally>,
    stopping: AtomicBool,
    stop: tokio::sync::Notify,
}

/// Builds a [`Keeper`]: [`Keeper::builder`].
#[derive(Debug)]
#[must_use]
pub struct KeeperBuilder {
    store: SqlStore,
    app: AppConfig,
    backend: SharedBackend,
    pacer: Option<Arc<Pacer>>,
    settings: KeeperSettings,
    owner: Option<String>,
    events: Events,
    jitter: Option<u64>,
}

impl KeeperBuilder {
    /// Shares the app's rate-limit state with its Graph clients (default: a pacer of the
    /// keeper's own with the default policy).
    pub fn pacer(mut self, pacer: Arc<Pacer>) -> Self {
        self.pacer = Some(pacer);
        self
    }

    /// The settings.
    pub fn settings(mut self, settings: KeeperSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The name this instance holds its leases under (default: `keeper-<pid>-<random>`):
    /// unique per running instance.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Where events go (default: a channel of its own; pass the web app's to share one).
    pub fn events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Seeds the jitter of the failure backoff, for reproducible tests.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter = Some(seed);
        self
    }

    /// The keeper.
    pub fn build(self) -> Keeper {
        let pacer = self
            .pacer
            .unwrap_or_else(|| Arc::new(Pacer::new(RateLimitPolicy::default())));
        let watched: SharedBackend = Arc::new(Watched {
            inner: self.backend,
            pacer: pacer.clone(),
        });
        let clock = self.store.clock().clone();
        let client = AuthClient::new(self.app, watched).with_clock(clock.clone());
        let owner = self.owner.unwrap_or_else(|| {
            let mut random = [0u8; 4];
            let _ = getrandom::fill(&mut random);
            format!("keeper-{}-{:08x}", std::process::id(), u32::from_le_bytes(random))
        });
        Keeper {
            inner: Arc::new(Inner {
                store: self.store,
                client,
                clock,
                pacer,
                settings: self.settings,
                owner,
                events: self.events,
                jitter: self.jitter.map_or_else(Jitter::random, Jitter::seeded),
                totals: std::sync::Mutex::default(),
                stopping: AtomicBool::new(false),
                stop: tokio::sync::Notify::new(),
            }),
        }
    }
}

/// A claimed account.
struct Claimed {
    user_id: String,
    version: i64,
    failures: u32,
    expires_at: i64,
}

/// A claimed account and its token record (an error when it does not open).
type Turn = (Claimed, Result<TokenRecord, Error>);

/// How one account's turn ended.
enum Outcome {
    Refreshed,
    Failed,
    Revoked,
    Expired,
    Lost,
    Deferred,
}

impl Keeper {
    /// A builder: the store, the app (a read-only [`AppConfig`] is enough: a refresh needs no
    /// secret) and the HTTP backend the refreshes go through.
    pub fn builder(store: SqlStore, app: AppConfig, backend: SharedBackend) -> KeeperBuilder {
        KeeperBuilder {
            store,
            app,
            backend,
            pacer: None,
            settings: KeeperSettings::default(),
            owner: None,
            events: Events::default(),
            jitter: None,
        }
    }

    /// The events of this keeper (subscribe before running to miss none).
    pub fn events(&self) -> &Events {
        &self.inner.events
    }

    /// The name this instance holds its leases under.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The store.
    pub fn store(&self) -> &SqlStore {
        &self.inner.store
    }

    /// What this keeper has done since it was built.
    pub fn totals(&self) -> Tally {
        *self
            .inner
            .totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    fn now_unix(&self) -> i64 {
        self.inner.store.now_unix()
    }

    /// One cycle: expires what expired, claims and refreshes batches until nothing due is
    /// left unclaimed (or [`stop`](Self::stop) was asked), and re-seals a batch of tokens
    /// under the current key.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the database fails; a failure of one account is never an
    /// error of the cycle (it is written to the account).
    pub async fn run_once(&self) -> Result<Tally, Error> {
        let mut cycle = Tally {
            expired: self.expire().await?,
            ..Tally::default()
        };
        while !self.inner.stopping.load(Ordering::Relaxed) {
            let batch = self.claim().await?;
            if batch.is_empty() {
                break;
            }
            cycle.add(&self.keep_batch(batch).await);
        }
        if !self.inner.stopping.load(Ordering::Relaxed) {
            let rotation = self
                .inner
                .store
                .rotate_keys(self.inner.settings.rotate_batch)
                .await;
            match rotation {
                Ok(rotation) => cycle.resealed = rotation.resealed,
                // A token whose key is not in this instance's ring: the rotation waits for an
                // instance that has it, and the keeper goes on refreshing.
                Err(Error::Key(error)) => tracing::warn!(%error, "key rotation is stuck: a key is missing"),
                Err(error) => return Err(error),
            }
        }
        self.inner
            .totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .add(&cycle);
        Ok(cycle)
    }

    /// Runs cycles until `shutdown` completes, waiting [`KeeperSettings::idle`] between
    /// cycles that found nothing due. On shutdown no new batch is claimed; refreshes in
    /// flight finish and are written back, then this returns. A database failure is logged
    /// and the cycle tried again after the idle wait: the keeper outlives a database restart.
    ///
    /// # Errors
    ///
    /// None today; the `Result` is for failures that must stop the keeper.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let work = self.work(false);
        tokio::pin!(work);
        tokio::select! {
            done = &mut work => return done,
            () = shutdown => self.stop(),
        }
        work.await
    }

    /// Runs cycles until no account is due, including those leased by other instances (a
    /// dead instance's leases are waited out and taken over): for batch jobs and tests.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn run_until_idle(&self) -> Result<(), Error> {
        self.work(true).await
    }

    /// Asks a running keeper to stop after the batch in flight. A stopped keeper stays
    /// stopped: build another to start again.
    pub fn stop(&self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
        self.inner.stop.notify_waiters();
    }

    async fn work(&self, until_idle: bool) -> Result<(), Error> {
        while !self.inner.stopping.load(Ordering::Relaxed) {
            match self.run_once().await {
                Ok(cycle) if cycle.claimed > 0 => continue,
                Ok(_) if until_idle && self.due().await? == 0 => return Ok(()),
                Ok(_) => {}
                Err(error) if until_idle => return Err(error),
                Err(error) => tracing::warn!(%error, "the keeper's cycle failed; trying again"),
            }
            let stop = self.inner.stop.notified();
            tokio::pin!(stop);
            stop.as_mut().enable();
            if self.inner.stopping.load(Ordering::Relaxed) {
                break;
            }
            tokio::select! {
                () = self.inner.clock.sleep(self.inner.settings.idle) => {}
                () = stop => {}
            }
        }
        Ok(())
    }

    /// How many accounts are due now, leased or not.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn due(&self) -> Result<u64, Error> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM accounts
             WHERE state IN ('active', 'failing') AND next_refresh_at <= $1 AND expires_at > $1",
        )
        .bind(self.now_unix())
        .fetch_one(&self.inner.store.pool)
        .await?
        .try_get("n")?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// Marks the accounts whose token expired before a refresh succeeded.
    async fn expire(&self) -> Result<u64, Error> {
        let now = self.now_unix();
        let rows = sqlx::query(
            "UPDATE accounts SET state = 'expired', next_refresh_at = NULL, lease_owner = NULL,
                 lease_until = NULL, updated_at = $2
             WHERE state IN ('active', 'failing') AND expires_at <= $1
               AND (lease_until IS NULL OR lease_until <= $1)
             RETURNING user_id, expires_at",
        )
        .bind(now)
        .bind(now)
        .fetch_all(&self.inner.store.pool)
        .await?;
        for row in &rows {
            self.inner.events.send(Event::Expired {
                user_id: UserId::new(row.try_get::<String, _>("user_id")?),
                at: Timestamp::from_unix(now),
                expired_at: Timestamp::from_unix(row.try_get("expires_at")?),
            });
        }
        Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX))
    }

    /// Claims up to a batch of due accounts under this instance's lease.
    async fn claim(&self) -> Result<Vec<Turn>, Error> {
        let now = self.now_unix();
        let lease = i64::try_from(self.inner.settings.lease.as_secs()).unwrap_or(i64::MAX);
        let rows = sqlx::query(claim_sql(self.inner.store.dialect))
            .bind(&self.inner.owner)
            .bind(now.saturating_add(lease))
            .bind(now)
            .bind(i64::from(self.inner.settings.batch))
            .fetch_all(&self.inner.store.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let user_id: String = row.try_get("user_id")?;
                let failures: i64 = row.try_get("failures")?;
                let record = self.inner.store.open_row(&user_id, row);
                let claimed = Claimed {
                    version: row.try_get("version")?,
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                    expires_at: row.try_get("expires_at")?,
                    user_id,
                };
                Ok((claimed, record))
            })
            .collect()
    }

    /// Refreshes a claimed batch, `concurrency` at a time; every account settles on its own.
    async fn keep_batch(&self, batch: Vec<Turn>) -> Tally {
        let mut tally = Tally {
            claimed: u64::try_from(batch.len()).unwrap_or(u64::MAX),
            ..Tally::default()
        };
        let mut outcomes = futures_util::stream::iter(batch)
            .map(|(claimed, record)| self.keep(claimed, record))
            .buffer_unordered(self.inner.settings.concurrency);
        while let Some(outcome) = outcomes.next().await {
            let count = match outcome {
                Outcome::Refreshed => &mut tally.refreshed,
                Outcome::Failed => &mut tally.failed,
                Outcome::Revoked => &mut tally.revoked,
                Outcome::Expired => &mut tally.expired,
                Outcome::Lost => &mut tally.lost_races,
                Outcome::Deferred => &mut tally.deferred,
            };
            *count += 1;
        }
        tally
    }

    /// One account's turn. A database failure here leaves the lease to run out: the account
    /// is claimed again then.
    async fn keep(&self, claimed: Claimed, record: Result<TokenRecord, Error>) -> Outcome {
        match self.try_keep(&claimed, record).await {
            Ok(outcome) => outcome,
            Err(error) => {
                let user = &claimed.user_id;
                tracing::warn!(%user, %error, "could not write an account back; its lease will run out");
                Outcome::Failed
            }
        }
    }

    async fn try_keep(
        &self,
        claimed: &Claimed,
        record: Result<TokenRecord, Error>,
    ) -> Result<Outcome, Error> {
        let record = match record {
            Ok(record) => record,
            // A token this instance cannot open (a key missing from its ring, an altered
            // row): retried with backoff, perhaps by an instance with the key.
            Err(error) => return self.failed(claimed, error.to_string()).await,
        };
        let wait = self.inner.pacer.reserve(None, self.now());
        if !wait.is_zero() {
            self.inner.clock.sleep(wait).await;
        }
        let error = match self.inner.client.refresh(&record).await {
            Ok(fresh) => return self.refreshed(claimed, &fresh).await,
            Err(error) => error,
        };
        let now = self.now_unix();
        match error {
            TokenError::Expired { .. } => {
                self.settle(claimed, AccountState::Expired, claimed.failures, None, None)
                    .await?;
                self.inner.events.send(Event::Expired {
                    user_id: UserId::new(&claimed.user_id),
                    at: Timestamp::from_unix(now),
                    expired_at: Timestamp::from_unix(claimed.expires_at),
                });
                Ok(Outcome::Expired)
            }
            TokenError::TooEarly { ready_at } => {
                // Written by someone with another idea of the time; try when Instagram will.
                self.settle(
                    claimed,
                    AccountState::Active,
                    claimed.failures,
                    Some(ready_at.unix()),
                    None,
                )
                .await?;
                Ok(Outcome::Deferred)
            }
            error if error.requires_reauthorization() => {
                let reason = error.to_string();
                if self
                    .settle(
                        claimed,
                        AccountState::Revoked,
                        claimed.failures,
                        None,
                        Some(&reason),
                    )
                    .await?
                {
                    self.inner.events.send(Event::Revoked {
                        user_id: UserId::new(&claimed.user_id),
                        at: Timestamp::from_unix(now),
                    });
                }
                Ok(Outcome::Revoked)
            }
            error if error.retry() == Retry::AfterPause => {
                // The app's budget is spent: every refresh of this instance waits, and this
                // account is tried again once access is likely back. Not the account's fault.
                let pause = self.inner.pacer.announced_pause(None, None);
                self.inner.pacer.block(Scope::App, self.now(), pause);
                let again = now.saturating_add(i64::try_from(pause.as_secs()).unwrap_or(i64::MAX));
                let state = if claimed.failures > 0 {
                    AccountState::Failing
                } else {
                    AccountState::Active
                };
                self.settle(
                    claimed,
                    state,
                    claimed.failures,
                    Some(again),
                    Some(&error.to_string()),
                )
                .await?;
                Ok(Outcome::Deferred)
            }
            error => self.failed(claimed, error.to_string()).await,
        }
    }

    /// Writes a refreshed token over the claimed version.
    async fn refreshed(&self, claimed: &Claimed, fresh: &TokenRecord) -> Result<Outcome, Error> {
        let row = self.inner.store.row_of(fresh)?;
        if self
            .inner
            .store
            .update_if_version(&row, claimed.version)
            .await?
            .is_none()
        {
            // A login (or another writer) stored a newer token meanwhile: it stays.
            sqlx::query(
                "UPDATE accounts SET lease_owner = NULL, lease_until = NULL WHERE user_id = $1 AND lease_owner = $2",
            )
            .bind(&claimed.user_id)
            .bind(&self.inner.owner)
            .execute(&self.inner.store.pool)
            .await?;
            return Ok(Outcome::Lost);
        }
        let (user_id, at, expires_at) = (
            fresh.user_id.clone(),
            Timestamp::from_unix(self.now_unix()),
            fresh.expires_at,
        );
        self.inner.events.send(if claimed.failures > 0 {
            Event::Recovered {
                user_id,
                at,
                expires_at,
                failures: claimed.failures,
            }
        } else {
            Event::Refreshed {
                user_id,
                at,
                expires_at,
            }
        });
        Ok(Outcome::Refreshed)
    }

    /// A refresh failed for a passing reason: retried after a backoff that grows with the
    /// failures in a row, always before the token expires.
    async fn failed(&self, claimed: &Claimed, reason: String) -> Result<Outcome, Error> {
        let failures = claimed.failures.saturating_add(1);
        let backoff = &self.inner.settings.failure_backoff;
        // Full jitter under a ceiling that doubles with each failure, but never less than a
        // tenth of the ceiling: a burst of failures spreads out without retrying at once.
        let ceiling = backoff.ceiling(failures);
        let wait = (ceiling / 10).saturating_add(backoff.backoff(failures, &self.inner.jitter));
        let now = self.now_unix();
        let last_chance = claimed
            .expires_at
            .saturating_sub(3600)
            .max(now.saturating_add(60));
        let again = now
            .saturating_add(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX))
            .min(last_chance);
        let written = self
            .settle(
                claimed,
                AccountState::Failing,
                failures,
                Some(again),
                Some(&reason),
            )
            .await?;
        let warn_within = i64::try_from(self.inner.settings.warn_within.as_secs()).unwrap_or(i64::MAX);
        if written && claimed.expires_at.saturating_sub(now) <= warn_within {
            self.inner.events.send(Event::ExpiringSoon {
                user_id: UserId::new(&claimed.user_id),
                at: Timestamp::from_unix(now),
                expires_at: Timestamp::from_unix(claimed.expires_at),
                failures,
            });
        }
        Ok(Outcome::Failed)
    }

    /// Writes an outcome that keeps the token, over the claimed version only (a newer token
    /// written meanwhile is left as it is), and releases the lease. Returns whether it was
    /// written.
    async fn settle(
        &self,
        claimed: &Claimed,
        state: AccountState,
        failures: u32,
        next_refresh_at: Option<i64>,
        reason: Option<&str>,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE accounts SET state = $1, failures = $2, next_refresh_at = $3, last_error = $4,
                 lease_owner = NULL, lease_until = NULL, updated_at = $5
             WHERE user_id = $6 AND version = $7",
        )
        .bind(state.as_str())
        .bind(i64::from(failures))
        .bind(next_refresh_at)
        .bind(reason.map(|r| truncate(r, 500)))
        .bind(self.now_unix())
        .bind(&claimed.user_id)
        .bind(claimed.version)
        .execute(&self.inner.store.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The keeper's backend: every response's usage headers go to the pacer, so the refreshes
/// follow the app's budget as Instagram reports it.
#[derive(Debug)]
struct Watched {
    inner: SharedBackend,
    pacer: Arc<Pacer>,
}

#[async_trait::async_trait]
impl HttpBackend for Watched {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let response = self.inner.send(request).await?;
        let usage = igdisplay_graph::reported_usage(response.headers());
        if !usage.is_empty() {
            self.pacer.observe(None, usage);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_never_splits_a_character() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("short", 500), "short");
    }
}
