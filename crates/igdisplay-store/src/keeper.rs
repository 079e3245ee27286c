//! [`Keeper`]: keeps every account's token alive, from any number of instances sharing one
//! database.
//!
//! One cycle:
//! 1. **Expire**: accounts whose token expired before a refresh succeeded become
//!    [`AccountState::Expired`], each with its [`Event::Expired`] in the same transaction.
//! 2. **Claim** a batch of due accounts under a lease, in one statement: on PostgreSQL
//!    `FOR UPDATE SKIP LOCKED`, so instances never wait for each other nor claim the same
//!    row; on SQLite the single writer makes the same statement atomic. A lease held by a
//!    dead instance runs out and the account is claimed again. A batch is sized to what
//!    the instance can refresh within its lease.
//! 3. **Refresh** the batch with bounded concurrency, each account on its own: one bad token
//!    never fails the others. Before each refresh the keeper waits out the app's budget
//!    (shared by every instance in the database: a rate-limit pause one instance was told of,
//!    and the optional refresh quota), then **re-takes the account's lease** in a
//!    compare-and-swap on its owner and version: a refresh is sent only while its lease is
//!    held, so a claim that outlived its lease, taken over by another instance, sends nothing.
//! 4. **Write back** each outcome with its event and the lease's release in one transaction,
//!    guarded by the row's version and the lease: a refresh that raced a new login, a
//!    deletion or a takeover loses and writes nothing. A refreshed token is next due on day
//!    20 ([`RefreshSchedule`](igdisplay_auth::RefreshSchedule)); a failure is retried with
//!    the schedule's backoff, well before expiry; a revoked token (error 190) is marked and
//!    never retried.
//! 5. **Deliver** the outbox's events to the webhook, when one is configured
//!    ([`WebhookSender`]), and prune what is past its retention.
//! 6. **Rotate**: tokens sealed under an older key are re-sealed, a batch per cycle.
//!
//! Every time in these statements is the database's: instances whose clocks differ agree on
//! every lease, due time and expiry.

use crate::budget::{AppBudget, AppQuota};
use crate::error::Error;
use crate::events::Event;
use crate::repo::{Accounts, ClaimedRow};
use crate::schedule::AccountState;
use crate::store::{SqlStore, random_u64};
use crate::webhook::{DeliveryTally, WebhookSender};
use futures_util::StreamExt as _;
use igdisplay_auth::{AuthClient, RefreshSchedule, TokenError, TokenRecord};
use igdisplay_graph::Pacer;
use igdisplay_http::{Jitter, Retry, SharedClock};
use igdisplay_model::whole_seconds as seconds;
use igdisplay_model::{Timestamp, UserId};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How a [`Keeper`] works. The defaults suit a fleet of any size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeeperSettings {
    /// The most accounts claimed per statement. Default 256. A claim is also kept to what the
    /// instance can refresh within its lease at its concurrency.
    pub batch: u32,
    /// Refreshes in flight at once, per instance. Default 16.
    pub concurrency: usize,
    /// How long a claim holds an account, and how long a refresh holds it from the moment it
    /// is sent: an instance that dies holding it lets it go after this long. Longer than a
    /// refresh takes, retries included. Default 5 minutes.
    pub lease: Duration,
    /// The longest an idle keeper sleeps before it asks the database again (it wakes sooner
    /// when the next due time it was told of comes first). Each wake is one statement.
    /// Default 60 seconds.
    pub idle: Duration,
    /// A failed refresh of a token with less than this left sends [`Event::ExpiringSoon`].
    /// Default 7 days.
    pub warn_within: Duration,
    /// Tokens re-sealed under the current key per cycle while a rotation is under way.
    /// Default 500.
    pub rotate_batch: u32,
    /// A quota on the app's calls, shared by every instance and every user of its
    /// [`AppBudget`] (the keeper books one call per refresh). Default none (the usage
    /// Instagram reports still paces them).
    pub quota: Option<AppQuota>,
    /// How long delivered events stay in the outbox (and undelivered ones when no webhook is
    /// configured); tombstones of deleted accounts, and the hashes that keep Meta's webhook
    /// deliveries from being kept twice, as long. Default 7 days.
    pub retention: Duration,
}

impl Default for KeeperSettings {
    fn default() -> Self {
        Self {
            batch: 256,
            concurrency: 16,
            lease: Duration::from_secs(5 * 60),
            idle: Duration::from_secs(60),
            warn_within: Duration::from_secs(7 * 86_400),
            rotate_batch: 500,
            quota: None,
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

impl KeeperSettings {
    /// Sets the most accounts claimed at once (at least 1).
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

    /// Sets the app's quota.
    #[must_use]
    pub fn quota(mut self, quota: AppQuota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// Sets the outbox's retention.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
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
    /// Refreshes whose write lost to a newer token, a deletion or a takeover: nothing written.
    pub lost_races: u64,
    /// Claimed accounts whose lease was gone before their refresh was sent (taken over after
    /// it ran out, or the row written meanwhile): nothing sent.
    pub leases_lost: u64,
    /// Leases of a dead or stalled instance taken over.
    pub takeovers: u64,
    /// Refreshes put off: too young, or the app's budget spent.
    pub deferred: u64,
    /// Tokens re-sealed under the current key.
    pub resealed: u64,
    /// Events delivered to the webhook.
    pub delivered: u64,
    /// Deliveries that failed and will be tried again.
    pub delivery_failures: u64,
    /// Events whose delivery was given up.
    pub dead: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.claimed += other.claimed;
        self.refreshed += other.refreshed;
        self.failed += other.failed;
        self.revoked += other.revoked;
        self.expired += other.expired;
        self.lost_races += other.lost_races;
        self.leases_lost += other.leases_lost;
        self.takeovers += other.takeovers;
        self.deferred += other.deferred;
        self.resealed += other.resealed;
        self.delivered += other.delivered;
        self.delivery_failures += other.delivery_failures;
        self.dead += other.dead;
    }

    fn deliveries(&mut self, pass: DeliveryTally) {
        self.delivered += pass.delivered;
        self.delivery_failures += pass.failed;
        self.dead += pass.dead;
    }
}

/// Keeps the tokens of every account in a [`SqlStore`] alive. Run one per instance (or
/// several): they share the work through the database. Cheap to clone.
///
/// Build it with the facade's `Instagram::fleet`, which shares the app's token client, rate
/// limit state, retry budget, clock and HTTP backend with everything else of the app; or,
/// without the facade, from an [`AuthClient`]:
///
/// ```
/// use igdisplay_auth::{AppConfig, AuthClient, Platform, TokenKind, TokenRecord, TokenStore};
/// use igdisplay_http::{Clock as _, ManualClock};
/// use igdisplay_http::test_util::{ReplayBackend, json_response};
/// use igdisplay_model::{AccessToken, UserId};
/// use igdisplay_store::{Event, Keeper, Key, KeyRing, SqlStore};
/// use std::{sync::Arc, time::Duration};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// // A test moves time by days: the store's statements take their time from this clock.
/// let clock = ManualClock::at_unix(1_800_000_000);
/// let store = SqlStore::sqlite(&dir.path().join("accounts.db"), KeyRing::new(Key::generate("k1")?)).await?
///     .with_pinned_time(Arc::new(clock.clone()));
/// // A token issued 21 days ago: past day 20, due.
/// let user = UserId::new("1784");
/// store.save(&TokenRecord::new(user.clone(), AccessToken::new("IGAAold"), TokenKind::LongLived,
///     Platform::InstagramLogin, clock.now() - Duration::from_secs(21 * 86_400),
///     Duration::from_secs(60 * 86_400))).await?;
///
/// // Instagram's answer, canned here; use a real backend or the mock.
/// let backend = ReplayBackend::new([Ok(json_response(200,
///     r#"{"access_token":"IGAAnew","token_type":"bearer","expires_in":5184000}"#))]);
/// let auth = AuthClient::new(AppConfig::read_only(Platform::InstagramLogin), Arc::new(backend))
///     .with_clock(Arc::new(clock.clone()));
/// let keeper = Keeper::builder(store.clone(), auth).build();
/// let mut events = store.events().subscribe().await?;
/// let cycle = keeper.run_once().await?;
/// assert_eq!(cycle.refreshed, 1);
/// assert_eq!(store.load(&user).await?.unwrap().access_token.expose_secret(), "IGAAnew");
/// assert!(matches!(events.try_next().await?.unwrap().event, Event::Refreshed { .. }));
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
    accounts: Accounts,
    client: AuthClient,
    clock: SharedClock,
    budget: AppBudget,
    settings: KeeperSettings,
    owner: String,
    webhook: Option<WebhookSender>,
    jitter: Jitter,
    totals: std::sync::Mutex<Tally>,
    /// An estimate of one refresh's time, in milliseconds, to size claims by.
    refresh_ms: AtomicU64,
    /// When pruning and key rotation last ran (Unix seconds of the instance's clock).
    maintained_at: std::sync::atomic::AtomicI64,
    stopping: AtomicBool,
    stop: tokio::sync::Notify,
}

/// Builds a [`Keeper`]: [`Keeper::builder`].
#[derive(Debug)]
#[must_use]
pub struct KeeperBuilder {
    store: SqlStore,
    client: AuthClient,
    pacer: Option<Arc<Pacer>>,
    clock: Option<SharedClock>,
    settings: KeeperSettings,
    owner: Option<String>,
    webhook: Option<WebhookSender>,
    jitter: Option<u64>,
}

impl KeeperBuilder {
    /// Follows the app's rate-limit state as its Graph clients see it (the facade passes the
    /// one pacer of the app; give the same to the [`AuthClient`] as its response observer, so
    /// the refreshes' usage headers reach it too). Without one, the keeper follows the state
    /// shared in the database only.
    pub fn pacer(mut self, pacer: Arc<Pacer>) -> Self {
        self.pacer = Some(pacer);
        self
    }

    /// The clock this instance waits on (its pauses, its idle waits; default: the store's).
    /// It decides nothing: leases, due times and expiry are the database's time.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
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

    /// Delivers the outbox's events to a webhook from this instance (any number of instances
    /// may: a delivery lease keeps each event to one at a time).
    pub fn webhook(mut self, webhook: WebhookSender) -> Self {
        self.webhook = Some(webhook);
        self
    }

    /// Seeds the jitter of the failure backoff, for reproducible tests.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter = Some(seed);
        self
    }

    /// The keeper.
    pub fn build(self) -> Keeper {
        let owner = self.owner.unwrap_or_else(|| {
            let random = random_u64().unwrap_or_default();
            format!("keeper-{}-{:08x}", std::process::id(), random & 0xffff_ffff)
        });
        Keeper {
            inner: Arc::new(Inner {
                accounts: self.store.accounts.clone(),
                clock: self.clock.unwrap_or_else(|| self.store.clock().clone()),
                budget: AppBudget::new(&self.store, self.pacer, self.settings.quota),
                store: self.store,
                client: self.client,
                settings: self.settings,
                owner,
                webhook: self.webhook,
                jitter: self.jitter.map_or_else(Jitter::random, Jitter::seeded),
                totals: std::sync::Mutex::default(),
                refresh_ms: AtomicU64::new(1000),
                maintained_at: std::sync::atomic::AtomicI64::new(i64::MIN),
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

/// How one account's turn ended.
enum Outcome {
    Refreshed,
    Failed,
    Revoked,
    Lost,
    LeaseLost,
    Deferred,
}

impl Keeper {
    /// A builder: the store, and the token client the refreshes go through (a read-only
    /// [`AppConfig`](igdisplay_auth::AppConfig) is enough: a refresh needs no secret).
    pub fn builder(store: SqlStore, client: AuthClient) -> KeeperBuilder {
        KeeperBuilder {
            store,
            client,
            pacer: None,
            clock: None,
            settings: KeeperSettings::default(),
            owner: None,
            webhook: None,
            jitter: None,
        }
    }

    /// The name this instance holds its leases under.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The store.
    pub fn store(&self) -> &SqlStore {
        &self.inner.store
    }

    /// The app's budget this keeper books its refreshes in: give it to other work of the
    /// app (the feed service's syncs) so that it books its calls in the same quota.
    pub fn budget(&self) -> &AppBudget {
        &self.inner.budget
    }

    /// The settings.
    pub fn settings(&self) -> &KeeperSettings {
        &self.inner.settings
    }

    /// What this keeper has done since it was built.
    pub fn totals(&self) -> Tally {
        *self
            .inner
            .totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn schedule(&self) -> RefreshSchedule {
        self.inner.store.schedule()
    }

    fn stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Relaxed)
    }

    /// One cycle: expires what expired, claims and refreshes batches until nothing due is
    /// left unclaimed (or [`stop`](Self::stop) was asked), delivers the outbox's events when
    /// a webhook is configured, and, at most once an hour, prunes the outbox and re-seals a
    /// batch of tokens under the current key.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the database fails; a failure of one account is never an
    /// error of the cycle (it is written to the account).
    pub async fn run_once(&self) -> Result<Tally, Error> {
        let mut cycle = Tally::default();
        let expired = self.inner.accounts.expire(1000).await?;
        if !expired.is_empty() {
            self.inner.store.wrote_event();
        }
        cycle.expired = count(expired.len());
        while !self.stopping() {
            // The app's budget, read once per batch: a pause another instance was told of
            // holds every claim; the usage it saw spaces this batch's refreshes.
            let budget = self.inner.accounts.budget().await?;
            if self.inner.budget.held_by(&budget, self.half_lease()).is_some() {
                break;
            }
            let (batch, takeovers) = self.claim().await?;
            if batch.is_empty() {
                break;
            }
            let spacing = budget
                .usage_percent
                .map_or(Duration::ZERO, |percent| self.inner.budget.spacing(percent));
            let mut tally = self.keep_batch(batch, spacing).await;
            tally.takeovers = takeovers;
            cycle.add(&tally);
            if tally.deferred == tally.claimed {
                // The budget put off the whole batch: wait before claiming again.
                break;
            }
        }
        if let Some(webhook) = &self.inner.webhook {
            cycle.deliveries(
                webhook
                    .deliver_from(&self.inner.accounts, &self.inner.owner)
                    .await?,
            );
        }
        self.maintain(&mut cycle).await?;
        self.inner
            .totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .add(&cycle);
        Ok(cycle)
    }

    /// Prunes the outbox and re-seals a batch of tokens, at most once an hour (and while a
    /// rotation is under way, every cycle).
    async fn maintain(&self, cycle: &mut Tally) -> Result<(), Error> {
        let now = Timestamp::from_system_time(self.inner.clock.now()).unix();
        let last = self.inner.maintained_at.load(Ordering::Relaxed);
        if self.stopping() || now.saturating_sub(last) < 3600 {
            return Ok(());
        }
        let retention = seconds(self.inner.settings.retention);
        self.inner.accounts.prune(retention, 5000).await?;
        match self
            .inner
            .store
            .rotate_keys(self.inner.settings.rotate_batch)
            .await
        {
            Ok(rotation) => {
                cycle.resealed = rotation.resealed;
                if rotation.remaining == 0 {
                    self.inner.maintained_at.store(now, Ordering::Relaxed);
                }
                Ok(())
            }
            // A token whose key is not in this instance's ring: the rotation waits for an
            // instance that has it, and the keeper goes on refreshing.
            Err(Error::Key(error)) => {
                tracing::warn!(%error, "key rotation is stuck: a key is missing");
                self.inner.maintained_at.store(now, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Runs cycles until `shutdown` completes. When nothing is due, one statement asks the
    /// database when the next thing is, and the keeper sleeps until then, at most
    /// [`KeeperSettings::idle`]. On shutdown no new batch is claimed and what was claimed but
    /// not started is let go; refreshes in flight finish and are written back, then this
    /// returns. A database failure is logged
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
    /// dead instance's leases are waited out and taken over), and, with a webhook, until no
    /// event waits for delivery: for batch jobs and tests.
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

    /// Cycles while there is work; when there is none, one statement asks the database how
    /// long until the next thing is due, and the keeper sleeps until then, at most
    /// [`KeeperSettings::idle`]: an idle keeper costs the database one statement per wake.
    async fn work(&self, until_idle: bool) -> Result<(), Error> {
        let mut busy = true;
        // The last cycle put off everything it claimed (this instance's own pacer holds the
        // app's budget): what is due waits a moment instead of being claimed again at once.
        let mut stalled = false;
        while !self.stopping() {
            if busy {
                match self.run_once().await {
                    Ok(cycle) if cycle.claimed > cycle.deferred || cycle.delivered > 0 => continue,
                    Ok(cycle) => stalled = cycle.claimed > 0,
                    Err(error) if until_idle => return Err(error),
                    Err(error) => tracing::warn!(%error, "the keeper's cycle failed; trying again"),
                }
            }
            // Done once nothing is due, not even under another instance's lease.
            if until_idle && self.is_idle().await? {
                return Ok(());
            }
            let idle = self.inner.settings.idle;
            // An event this process writes meanwhile (a feed's `needs_login`, a callback's)
            // wakes a keeper that delivers events: registered before the look, so none is
            // missed between the look and the sleep.
            let written = self.inner.store.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            let wait = match self.inner.accounts.next_work(self.inner.webhook.is_some()).await {
                Ok(Some(ahead)) if ahead <= 0 => {
                    // Due now (an account, an expiry, an event), unless the budget holds it.
                    match self.inner.budget.held(self.half_lease()).await {
                        Ok(Some(blocked)) => blocked.min(idle.max(Duration::from_secs(1))),
                        _ if stalled => idle.min(STALLED_WAIT),
                        _ => Duration::ZERO,
                    }
                }
                Ok(Some(ahead)) => Duration::from_secs(u64::try_from(ahead).unwrap_or(0)).min(idle),
                Ok(None) => idle,
                Err(error) if until_idle => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, "the keeper could not reach the database; trying again");
                    idle
                }
            };
            busy = wait.is_zero();
            if busy {
                continue;
            }
            let stop = self.inner.stop.notified();
            tokio::pin!(stop);
            stop.as_mut().enable();
            if self.stopping() {
                break;
            }
            let delivers = self.inner.webhook.is_some();
            tokio::select! {
                () = self.inner.clock.sleep(wait) => busy = self.maintenance_due(),
                () = stop => {}
                () = &mut written, if delivers => busy = true,
            }
        }
        Ok(())
    }

    /// Whether an hour passed since the last pruning and rotation.
    fn maintenance_due(&self) -> bool {
        let now = Timestamp::from_system_time(self.inner.clock.now()).unix();
        now.saturating_sub(self.inner.maintained_at.load(Ordering::Relaxed)) >= 3600
    }

    /// Nothing due, and (with a webhook) nothing waiting for delivery.
    async fn is_idle(&self) -> Result<bool, Error> {
        if self.due().await? > 0 {
            return Ok(false);
        }
        if self.inner.webhook.is_none() {
            return Ok(true);
        }
        Ok(self.inner.store.stats().await?.pending_events == 0)
    }

    /// How many accounts are due now, leased or not.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn due(&self) -> Result<u64, Error> {
        Ok(u64::try_from(self.inner.accounts.due().await?).unwrap_or_default())
    }

    /// How many accounts to claim: the configured batch, but no more than this instance can
    /// refresh within a lease at its concurrency and pace.
    fn claim_size(&self) -> u32 {
        let settings = &self.inner.settings;
        let per_refresh = self.inner.refresh_ms.load(Ordering::Relaxed).max(1);
        let lease_ms = u64::try_from(settings.lease.as_millis()).unwrap_or(u64::MAX);
        let rounds = (lease_ms / 2 / per_refresh).max(1);
        let fits = rounds.saturating_mul(u64::try_from(settings.concurrency).unwrap_or(u64::MAX));
        u32::try_from(fits).unwrap_or(u32::MAX).clamp(1, settings.batch)
    }

    /// Claims a batch of due accounts under this instance's lease; how many of them were
    /// taken over from another instance whose lease ran out.
    async fn claim(&self) -> Result<(Vec<(Claimed, Result<TokenRecord, Error>)>, u64), Error> {
        let lease = seconds(self.inner.settings.lease);
        let rows = self
            .inner
            .accounts
            .claim(&self.inner.owner, lease, self.claim_size())
            .await?;
        let takeovers = count(rows.iter().filter(|row| row.previous_owner.is_some()).count());
        Ok((rows.into_iter().map(|row| self.claimed(row)).collect(), takeovers))
    }

    fn claimed(&self, row: ClaimedRow) -> (Claimed, Result<TokenRecord, Error>) {
        if let Some(previous) = &row.previous_owner {
            tracing::info!(user = %row.user_id, %previous, "took over an account whose lease ran out");
            metrics::counter!("igdisplay_keeper_lease_takeovers_total").increment(1);
        }
        let record = self.inner.store.open(&row.user_id, &row.record, &row.token);
        let claimed = Claimed {
            version: row.version,
            failures: u32::try_from(row.failures).unwrap_or(u32::MAX),
            expires_at: row.expires_at,
            user_id: row.user_id,
        };
        (claimed, record)
    }

    /// Refreshes a claimed batch, `concurrency` at a time; every account settles on its own.
    async fn keep_batch(
        &self,
        batch: Vec<(Claimed, Result<TokenRecord, Error>)>,
        spacing: Duration,
    ) -> Tally {
        let mut tally = Tally {
            claimed: count(batch.len()),
            ..Tally::default()
        };
        let mut outcomes = futures_util::stream::iter(batch)
            .map(|(claimed, record)| self.keep(claimed, record, spacing))
            .buffer_unordered(self.inner.settings.concurrency);
        while let Some(outcome) = outcomes.next().await {
            let (counter, name) = match outcome {
                Outcome::Refreshed => (&mut tally.refreshed, "refreshed"),
                Outcome::Failed => (&mut tally.failed, "failed"),
                Outcome::Revoked => (&mut tally.revoked, "revoked"),
                Outcome::Lost => (&mut tally.lost_races, "lost_race"),
                Outcome::LeaseLost => (&mut tally.leases_lost, "lease_lost"),
                Outcome::Deferred => (&mut tally.deferred, "deferred"),
            };
            *counter += 1;
            metrics::counter!("igdisplay_keeper_refreshes_total", "outcome" => name).increment(1);
        }
        drop(outcomes);
        tally
    }

    /// One account's turn. A database failure here leaves the lease to run out: the account
    /// is claimed again then.
    async fn keep(&self, claimed: Claimed, record: Result<TokenRecord, Error>, spacing: Duration) -> Outcome {
        match self.try_keep(&claimed, record, spacing).await {
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
        spacing: Duration,
    ) -> Result<Outcome, Error> {
        if self.stopping() {
            // Stopping: what was claimed but not started goes back at once.
            return self.let_go(claimed).await;
        }
        let record = match record {
            Ok(record) => record,
            // A token this instance cannot open (a key missing from its ring, an altered
            // row): retried with backoff, perhaps by an instance with the key.
            Err(error) => {
                let Some(now) = self.renew(claimed).await? else {
                    return Ok(Outcome::LeaseLost);
                };
                return self.failed(claimed, now, &error.to_string()).await;
            }
        };
        // The app's budget: this instance's pacer, the shared quota's slot this books, and
        // any pause every instance was told of.
        let local = self.inner.budget.local_wait(self.inner.clock.now());
        let wait = self.inner.budget.book(1).await?.max(local).max(spacing);
        if !wait.is_zero() {
            if wait >= self.inner.settings.lease / 2 {
                // A pause longer than the claim: let the account go; it is claimed again
                // once the budget is back.
                return self.let_go(claimed).await;
            }
            self.inner.clock.sleep(wait).await;
            if self.stopping() {
                return self.let_go(claimed).await;
            }
        }
        // The lease, re-taken right before the refresh is sent: from here it is held for a
        // whole lease, longer than the refresh takes.
        let Some(now) = self.renew(claimed).await? else {
            return Ok(Outcome::LeaseLost);
        };
        let sent = self.inner.clock.now();
        let result = self.inner.client.refresh(&record).await;
        self.took(sent);
        self.inner.budget.share_usage().await;
        let error = match result {
            Ok(fresh) => return self.refreshed(claimed, &fresh).await,
            Err(error) => error,
        };
        self.refused(claimed, now, error).await
    }

    /// A refresh Instagram (or this instance) refused, settled by what the refusal means: a
    /// token this instance thinks expired is the database's call; one written for later is
    /// tried then; one Instagram no longer takes is marked revoked (with its event); a spent
    /// app budget pauses every instance; anything else is retried with backoff.
    async fn refused(&self, claimed: &Claimed, now: i64, error: TokenError) -> Result<Outcome, Error> {
        let user_id = UserId::new(&claimed.user_id);
        match error {
            // Nothing was sent: this instance's clock says the token expired, the database's
            // (which claimed it unexpired) does not. The database decides: the expiry sweep
            // marks it when it is; until then it is tried again like any passing failure.
            TokenError::Expired { .. } => {
                let reason = "this instance's clock says the token expired; the database's clock does not";
                self.failed(claimed, now, reason).await
            }
            TokenError::TooEarly { ready_at } => {
                // Written by someone with another idea of the time; try when Instagram will.
                self.settle(
                    claimed,
                    AccountState::Active,
                    claimed.failures,
                    Some(ready_at.unix()),
                    None,
                    |_| None,
                )
                .await?;
                Ok(Outcome::Deferred)
            }
            error if error.requires_reauthorization() => {
                let event = |now| {
                    Some(Event::Revoked {
                        user_id,
                        at: Timestamp::from_unix(now),
                    })
                };
                let reason = error.to_string();
                self.settle(
                    claimed,
                    AccountState::Revoked,
                    claimed.failures,
                    None,
                    Some(&reason),
                    event,
                )
                .await?;
                Ok(Outcome::Revoked)
            }
            error if error.retry() == Retry::AfterPause => {
                // The app's budget is spent: every instance waits, and this account is tried
                // again once access is likely back. Not the account's fault.
                let pause = self.inner.budget.pause(None).await?;
                let state = if claimed.failures > 0 {
                    AccountState::Failing
                } else {
                    AccountState::Active
                };
                let again = now.saturating_add(seconds(pause));
                let reason = error.to_string();
                self.settle(
                    claimed,
                    state,
                    claimed.failures,
                    Some(again),
                    Some(&reason),
                    |_| None,
                )
                .await?;
                Ok(Outcome::Deferred)
            }
            error => self.failed(claimed, now, &error.to_string()).await,
        }
    }

    /// Lets a claimed account go unrefreshed: it is claimed again later.
    async fn let_go(&self, claimed: &Claimed) -> Result<Outcome, Error> {
        self.inner
            .accounts
            .release(&claimed.user_id, &self.inner.owner)
            .await?;
        Ok(Outcome::Deferred)
    }

    /// Re-takes a claimed account's lease; the database's time, or `None` when it is gone.
    async fn renew(&self, claimed: &Claimed) -> Result<Option<i64>, Error> {
        let lease = seconds(self.inner.settings.lease);
        self.inner
            .accounts
            .renew(&claimed.user_id, &self.inner.owner, claimed.version, lease)
            .await
    }

    /// Folds one refresh's time into the estimate claims are sized by.
    fn took(&self, sent: std::time::SystemTime) {
        let took = self
            .inner
            .clock
            .now()
            .duration_since(sent)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let estimate = &self.inner.refresh_ms;
        let before = estimate.load(Ordering::Relaxed);
        // A moving average that follows a slowdown at once and a speedup gradually.
        let next = if took > before {
            took
        } else {
            before.saturating_mul(7).saturating_add(took) / 8
        };
        estimate.store(next.max(1), Ordering::Relaxed);
    }

    /// Half a lease: a quota booked further ahead than this holds the claims (a claim would
    /// only be let go).
    fn half_lease(&self) -> Duration {
        self.inner.settings.lease / 2
    }

    /// Writes a refreshed token over the claimed version, with its event.
    async fn refreshed(&self, claimed: &Claimed, fresh: &TokenRecord) -> Result<Outcome, Error> {
        let row = self.inner.store.row_of(fresh)?;
        let failures = claimed.failures;
        let (user_id, expires_at) = (fresh.user_id.clone(), fresh.expires_at);
        let event = |now| {
            let at = Timestamp::from_unix(now);
            if failures > 0 {
                Event::Recovered {
                    user_id,
                    at,
                    expires_at,
                    failures,
                }
            } else {
                Event::Refreshed {
                    user_id,
                    at,
                    expires_at,
                }
            }
        };
        let written = self
            .inner
            .accounts
            .write_refreshed(&self.inner.owner, claimed.version, &row, event)
            .await?;
        if written.is_none() {
            // A login, a deletion or a takeover came first: what is there stays.
            self.inner
                .accounts
                .release(&claimed.user_id, &self.inner.owner)
                .await?;
            return Ok(Outcome::Lost);
        }
        self.inner.store.wrote_event();
        Ok(Outcome::Refreshed)
    }

    /// A refresh failed for a passing reason: retried after the schedule's backoff, always
    /// before the token expires.
    async fn failed(&self, claimed: &Claimed, now: i64, reason: &str) -> Result<Outcome, Error> {
        let failures = claimed.failures.saturating_add(1);
        let again =
            self.schedule()
                .retry_after_failure(failures, claimed.expires_at, now, &self.inner.jitter);
        let warn_within = seconds(self.inner.settings.warn_within);
        let (user_id, expires_at) = (UserId::new(&claimed.user_id), claimed.expires_at);
        let event = |now: i64| {
            (expires_at.saturating_sub(now) <= warn_within).then(|| Event::ExpiringSoon {
                user_id,
                at: Timestamp::from_unix(now),
                expires_at: Timestamp::from_unix(expires_at),
                failures,
            })
        };
        self.settle(
            claimed,
            AccountState::Failing,
            failures,
            Some(again),
            Some(reason),
            event,
        )
        .await?;
        Ok(Outcome::Failed)
    }

    /// Writes an outcome that keeps the token, over the claimed version and lease only, with
    /// its event, and releases the lease.
    async fn settle(
        &self,
        claimed: &Claimed,
        state: AccountState,
        failures: u32,
        next_refresh_at: Option<i64>,
        reason: Option<&str>,
        event: impl FnOnce(i64) -> Option<Event>,
    ) -> Result<bool, Error> {
        let mut wrote_event = false;
        let written = self
            .inner
            .accounts
            .settle(
                &claimed.user_id,
                &self.inner.owner,
                claimed.version,
                state.as_str(),
                failures,
                next_refresh_at,
                reason,
                |now| {
                    let event = event(now);
                    wrote_event = event.is_some();
                    event
                },
            )
            .await?;
        if written && wrote_event {
            self.inner.store.wrote_event();
        }
        Ok(written)
    }
}

/// How long a keeper whose own pacer put off a whole batch waits before it claims again.
const STALLED_WAIT: Duration = Duration::from_secs(5);

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
