//! The sync scheduler: each instance claims the accounts whose sync is due (a lease in the
//! database, so one instance at a time syncs an account, and a dead instance's accounts are
//! taken over when its leases run out), mirrors them, and schedules the next sync at the
//! account's own pace within its feeds' bounds. Every sync books its Graph calls in the app's
//! budget shared with the keeper and every other instance ([`AppBudget`](igdisplay::store::AppBudget)): a quota booked far
//! ahead, or a pause Instagram announced to any instance, holds every claim. A token Instagram
//! refuses marks the account and writes `needs_login`; its feeds keep their last good posts.

use crate::service::FeedService;
use crate::settings::FeedSettings;
use futures_util::StreamExt as _;
use igdisplay::model::{Timestamp, UserId};
use igdisplay::store::FeedRow;
use igdisplay_mirror::{Mirror, SyncError};
use std::time::Duration;

/// How long after a sync refused for the token the account is looked at again (a new login
/// through a connect link schedules it at once).
const AFTER_REFUSAL: Duration = Duration::from_secs(7 * 86_400);

/// How long after a purge that could not run (the bucket failed, a sync was under way) it
/// is tried again.
const PURGE_RETRY: Duration = Duration::from_secs(60);

/// The Graph calls a sync is booked for in the app's budget before it runs: a steady-state
/// sync's (the newest page, the stories' check). What a sync sent beyond them is booked
/// after it, so the quota counts every call.
const SYNC_CALLS: u32 = 2;

/// The Graph error code of the app's own rate limit ("Application request limit reached"):
/// every instance pauses, not only the account's.
const APP_LIMIT_CODE: i64 = 4;

/// What one pass of the scheduler did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pass {
    /// Accounts claimed.
    pub claimed: usize,
    /// Accounts synced.
    pub synced: usize,
    /// Syncs that failed (the last good feed kept).
    pub failed: usize,
    /// Accounts found refused (marked, `needs_login` written).
    pub needs_login: usize,
    /// Accounts another process was syncing (left due), and purges put off.
    pub skipped: usize,
    /// Accounts no feed shows any more whose mirrored files were deleted.
    pub purged: usize,
    /// Accounts given back unsynced because the app's budget would make them wait longer
    /// than half a lease (left due).
    pub deferred: usize,
    /// The app's budget held the whole pass (a pause, or a quota booked far ahead): nothing
    /// was claimed, for about this long.
    pub held: Option<Duration>,
}

impl Pass {
    /// Adds what `other` counted (its `claimed` and `held` aside).
    fn add(&mut self, other: &Pass) {
        self.synced += other.synced;
        self.failed += other.failed;
        self.needs_login += other.needs_login;
        self.skipped += other.skipped;
        self.purged += other.purged;
        self.deferred += other.deferred;
    }
}

impl FeedService {
    /// One pass: claims up to [`FeedsConfig::sync_batch`](crate::FeedsConfig::sync_batch) due
    /// accounts and syncs them, [`FeedsConfig::sync_concurrency`](crate::FeedsConfig::sync_concurrency)
    /// at a time (a bucket's latency is waited out in parallel), the longest overdue first.
    ///
    /// # Errors
    ///
    /// The store's, when the claim itself fails.
    pub async fn sync_due(&self) -> Result<Pass, igdisplay::store::Error> {
        let config = &self.inner.config;
        if let Some(held) = self.inner.budget.held(config.sync_lease / 2).await? {
            metrics::counter!("igdisplay_feed_passes_held_total").increment(1);
            return Ok(Pass {
                held: Some(held),
                ..Pass::default()
            });
        }
        let claimed = self
            .inner
            .store
            .claim_syncs(&config.owner, config.sync_lease, config.sync_batch)
            .await?;
        let mut pass = Pass {
            claimed: claimed.len(),
            ..Pass::default()
        };
        // The slots in the app's budget are booked in the claims' order (the longest overdue
        // first); then the syncs run at once, each after its slot. Once one slot is too far
        // ahead, the rest are given back unbooked (a booking given back would still hold its
        // share of the quota).
        let mut planned = Vec::with_capacity(claimed.len());
        let mut full = false;
        for claim in claimed {
            let slot = if self.stopping() {
                // Stopping: what was claimed but not started goes back at once.
                None
            } else if claim.purge {
                Some(Duration::ZERO)
            } else if full {
                None
            } else {
                let slot = self.book_slot(&claim.user_id).await;
                full = slot.is_none();
                slot
            };
            match slot {
                Some(wait) => planned.push((claim, wait)),
                None => {
                    if self.stopping() {
                        pass.skipped += 1;
                    } else {
                        pass.deferred += 1;
                        metrics::counter!("igdisplay_feed_syncs_total", "outcome" => "deferred").increment(1);
                    }
                    self.give_back(&claim.user_id).await;
                }
            }
        }
        let done: Vec<Pass> = futures_util::stream::iter(planned)
            .map(|(claim, wait)| async move {
                let mut one = Pass::default();
                if !self.wait_slot(wait).await {
                    one.skipped += 1;
                    self.give_back(&claim.user_id).await;
                } else if claim.purge {
                    self.purge_claimed(&claim.user_id, &mut one).await;
                } else {
                    metrics::histogram!("igdisplay_feed_sync_lag_seconds").record(claim.lag.as_secs_f64());
                    self.sync_account(&claim.user_id, &mut one).await;
                }
                one
            })
            .buffer_unordered(config.sync_concurrency.max(1))
            .collect()
            .await;
        for one in &done {
            pass.add(one);
        }
        Ok(pass)
    }

    /// Runs passes until `shutdown` completes, waiting [`FeedsConfig::idle`](crate::FeedsConfig::idle)
    /// after a pass that found nothing due. When `shutdown` comes, the sync under way is
    /// finished; the accounts claimed but not started, or waiting for the app's budget, are
    /// given back (still due, for another instance).
    pub async fn run_scheduler(&self, shutdown: impl std::future::Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let pass = {
                let pass = self.sync_due();
                tokio::pin!(pass);
                tokio::select! {
                    biased;
                    pass = &mut pass => pass,
                    () = &mut shutdown => {
                        self.stop();
                        if let Err(error) = pass.await {
                            tracing::warn!(%error, "the last pass failed");
                        }
                        return;
                    }
                }
            };
            let idle = match &pass {
                // Nothing due, or all of it put off by the app's budget: wait before asking again.
                Ok(pass) => pass.claimed == pass.deferred,
                Err(error) => {
                    tracing::warn!(%error, "claiming due syncs failed");
                    true
                }
            };
            if idle {
                let clock = self.inner.instagram.clock().clone();
                tokio::select! {
                    () = clock.sleep(self.inner.config.idle) => {}
                    () = &mut shutdown => return,
                }
            } else if futures_now(&mut shutdown) {
                return;
            }
        }
    }

    /// Stops the scheduler: no sync starts, and a wait for the app's budget ends at once.
    fn stop(&self) {
        self.inner
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.stop.notify_waiters();
    }

    fn stopping(&self) -> bool {
        self.inner.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Lets go of this instance's claim on `user`, unsynced (still due).
    async fn give_back(&self, user: &UserId) {
        if let Err(error) = self
            .inner
            .store
            .release_sync(user, &self.inner.config.owner)
            .await
        {
            tracing::warn!(%error, "a claim was not released; it runs out by itself");
        }
    }

    /// One account's sync under the mirror's task lease, and its next time.
    async fn sync_account(&self, user: &UserId, pass: &mut Pass) {
        let inner = &self.inner;
        let owner = &inner.config.owner;
        let graph = inner.instagram.graph(user);
        let started = inner.instagram.clock().now();
        let work = inner.mirror.sync(user, &graph);
        let done = inner
            .store
            .exclusive(&Mirror::sync_task(user), inner.config.sync_lease, work)
            .await;
        let done = match done {
            Ok(None) => {
                pass.skipped += 1;
                if let Err(error) = inner.store.release_sync(user, owner).await {
                    tracing::warn!(%error, "a claim was not released; it runs out by itself");
                }
                return;
            }
            Ok(Some(synced)) => Ok(synced),
            Err(error) => Err(error),
        };
        // The feeds that show the account, read once: their bounds, then their caches.
        let feeds = inner.store.feeds_of(user).await.unwrap_or_default();
        let bounds = bounds_of(&feeds);
        let (after, error) = match done {
            Err(error) => {
                tracing::warn!(%error, user = %user, "the sync's task lease failed");
                (Duration::from_secs(60), Some(error.to_string()))
            }
            Ok(Ok(report)) => {
                pass.synced += 1;
                tracing::info!(user = %user, items = report.items, downloaded = report.downloaded, "synced");
                let calls = report.graph_calls.saturating_add(report.story_calls);
                metrics::counter!("igdisplay_feed_graph_calls_total")
                    .increment(u64::try_from(calls).unwrap_or(u64::MAX));
                self.book_beyond(calls).await;
                (self.next_sync(user, &bounds).await, None)
            }
            Ok(Err(error)) => self.failed_sync(user, error, &bounds, pass).await,
        };
        let took = inner
            .instagram
            .clock()
            .now()
            .duration_since(started)
            .unwrap_or_default();
        metrics::histogram!("igdisplay_feed_sync_seconds").record(took.as_secs_f64());
        inner.budget.share_usage().await;
        let outcome = if error.is_none() { "synced" } else { "failed" };
        metrics::counter!("igdisplay_feed_syncs_total", "outcome" => outcome).increment(1);
        if let Err(error) = inner
            .store
            .finish_sync(user, owner, after, error.as_deref())
            .await
        {
            tracing::warn!(%error, "a sync's end was not recorded; the claim runs out by itself");
        }
        // This instance's cache of the account's feeds goes: the next read shows the sync.
        for feed in &feeds {
            self.forget(&feed.id);
        }
    }

    /// Deletes the mirrored files of `user`, an account no feed shows any more, under the
    /// mirror's task lease of the account, then its purge (held by `owner`, or by nobody:
    /// `""`). `None` when a sync of the account was under way (it is tried again later). A
    /// crash before the files are gone leaves the purge due, for any instance to claim.
    pub(crate) async fn purge_account(
        &self,
        user: &UserId,
        owner: &str,
    ) -> Result<Option<igdisplay_mirror::PurgeReport>, PurgeError> {
        let inner = &self.inner;
        let work = inner.mirror.purge(user);
        let report = match inner
            .store
            .exclusive(&Mirror::sync_task(user), inner.config.sync_lease, work)
            .await?
        {
            Some(report) => report?,
            None => return Ok(None),
        };
        if let Err(error) = inner.store.finish_purge(user, owner, None).await {
            tracing::warn!(%error, "a purge was done but not recorded; it runs again");
        }
        Ok(Some(report))
    }

    /// A claimed purge; put off a while when it cannot run.
    async fn purge_claimed(&self, user: &UserId, pass: &mut Pass) {
        let owner = &self.inner.config.owner;
        let why = match self.purge_account(user, owner).await {
            Ok(Some(report)) => {
                pass.purged += 1;
                tracing::info!(user = %user, files = report.files, "an account no feed shows was purged");
                return;
            }
            Ok(None) => "a sync of the account was under way".to_owned(),
            Err(error) => igdisplay::model::error_chain(&error),
        };
        tracing::warn!(user = %user, error = %why, "a purge is put off; it is tried again");
        pass.skipped += 1;
        if let Err(error) = self
            .inner
            .store
            .finish_purge(user, owner, Some((PURGE_RETRY, &why)))
            .await
        {
            tracing::warn!(%error, "a purge's claim was not released; it runs out by itself");
        }
    }

    /// Books the sync's calls in the app's budget: how long until its slot, or `None` (the
    /// sync is given back) when the slot is further than half a lease ahead or the budget
    /// cannot be booked.
    async fn book_slot(&self, user: &UserId) -> Option<Duration> {
        let inner = &self.inner;
        match inner.budget.book(SYNC_CALLS).await {
            Ok(wait) if wait < inner.config.sync_lease / 2 => Some(wait),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, user = %user, "the app's budget could not be booked; the sync waits");
                None
            }
        }
    }

    /// Waits `wait` for a slot in the app's budget: `false` when the scheduler stops first.
    async fn wait_slot(&self, wait: Duration) -> bool {
        let inner = &self.inner;
        // Registered before the look, so a stop between the look and the wait is not missed.
        let stopped = inner.stop.notified();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        if self.stopping() {
            return false;
        }
        if wait.is_zero() {
            return true;
        }
        tokio::select! {
            () = inner.instagram.clock().sleep(wait) => true,
            () = stopped => false,
        }
    }

    /// Books what a sync sent beyond the calls booked before it.
    async fn book_beyond(&self, calls: usize) {
        let beyond = u32::try_from(calls)
            .unwrap_or(u32::MAX)
            .saturating_sub(SYNC_CALLS);
        if beyond > 0
            && let Err(error) = self.inner.budget.book(beyond).await
        {
            tracing::debug!(%error, "a sync's extra calls were not booked");
        }
    }

    /// How long an account whose sync Instagram refused for its rate waits: the pause
    /// Instagram announced (or the pacer's estimate for the account). The app's own limit
    /// pauses every instance as long.
    async fn rate_pause(&self, user: &UserId, error: &igdisplay::graph::Error) -> Duration {
        let retry_after = match error {
            igdisplay::graph::Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        };
        let app_wide = error.graph_error().is_some_and(|e| e.code == APP_LIMIT_CODE);
        if app_wide {
            match self.inner.budget.pause(retry_after).await {
                Ok(pause) => return pause,
                Err(error) => tracing::warn!(%error, "the app's pause was not shared"),
            }
        }
        self.inner
            .instagram
            .pacer()
            .announced_pause(Some(user), retry_after)
    }

    /// How long until the next try, and the error, of a failed sync; a refused token marks
    /// the account.
    async fn failed_sync(
        &self,
        user: &UserId,
        error: SyncError,
        bounds: &FeedSettings,
        pass: &mut Pass,
    ) -> (Duration, Option<String>) {
        let message = igdisplay::model::error_chain(&error);
        if let SyncError::Listing { source, .. } = &error
            && source.requires_login()
        {
            pass.needs_login += 1;
            match self.inner.store.mark_needs_login(user, &message).await {
                Ok(Some(_)) => {
                    tracing::info!(user = %user, "the account's token was refused: needs_login written")
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "needs_login was not written"),
            }
            return (AFTER_REFUSAL, Some(message));
        }
        pass.failed += 1;
        if let SyncError::Listing { source, .. } = &error
            && source.is_rate_limited()
        {
            tracing::warn!(user = %user, error = %message, "a sync was refused for the rate; the last good feed is kept");
            return (self.rate_pause(user, source).await, Some(message));
        }
        tracing::warn!(user = %user, error = %message, "a sync failed; the last good feed is kept");
        (bounds.sync_interval(Duration::ZERO), Some(message))
    }

    /// How long until the account is next due: its own pace (the mirror's next poll, a
    /// quarter of its median posting gap, on the mirror's clock) within the tightest bounds
    /// of the feeds that show it (`bounds`).
    async fn next_sync(&self, user: &UserId, bounds: &FeedSettings) -> Duration {
        let now = Timestamp::from_system_time(self.inner.instagram.clock().now());
        let wanted = match self.inner.mirror.index(user).await {
            Ok(Some(index)) => {
                let seconds = index.next_poll_at.unix().saturating_sub(now.unix());
                Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
            }
            _ => Duration::ZERO,
        };
        bounds.sync_interval(wanted)
    }
}

/// The sync bounds of an account's `feeds` together: the shortest minimum and the shortest
/// maximum (the most demanding feed wins); the defaults when no feed's settings read.
fn bounds_of(feeds: &[FeedRow]) -> FeedSettings {
    let mut bounds = FeedSettings::default();
    let all: Vec<FeedSettings> = feeds
        .iter()
        .filter_map(|f| serde_json::from_str(&f.settings).ok())
        .collect();
    if let Some(min) = all.iter().map(|s| s.sync_min_seconds).min() {
        bounds.sync_min_seconds = min;
    }
    if let Some(max) = all.iter().map(|s| s.sync_max_seconds).min() {
        bounds.sync_max_seconds = max.max(bounds.sync_min_seconds);
    }
    bounds
}

/// Why an account's mirrored files could not be deleted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PurgeError {
    /// The bucket or folder failed.
    #[error(transparent)]
    Mirror(#[from] SyncError),
    /// The task lease could not be taken.
    #[error(transparent)]
    Store(#[from] igdisplay::store::Error),
}

/// Whether `shutdown` has already completed (polled once, without waiting).
fn futures_now(shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>) -> bool {
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    shutdown.as_mut().poll(&mut context).is_ready()
}
