//! [`AppBudget`]: the app's rate budget as every instance on one database shares it. Meta
//! counts an app's calls together, whoever sends them: the keeper's refreshes and the feed
//! service's syncs book their calls in one quota ([`AppQuota`]), wait out one pause (a
//! rate-limit answer one instance was given holds them all), and share the usage Instagram
//! last reported. Every time in it is the database's.

use crate::SqlStore;
use crate::error::Error;
use crate::repo::{Accounts, BudgetRow};
use igdisplay_graph::Pacer;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A quota on the app's calls, shared by every instance through the database: at most
/// `calls` per `per`, spread evenly (the generic cell rate algorithm on the database's
/// clock). The keeper books one call per refresh, the feed service a sync's Graph calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppQuota {
    /// Calls allowed per period (at least 1).
    pub calls: u32,
    /// The period.
    pub per: Duration,
}

impl AppQuota {
    /// At most `calls` per `per`.
    pub fn new(calls: u32, per: Duration) -> Self {
        Self {
            calls: calls.max(1),
            per,
        }
    }

    /// The spacing between two calls, in milliseconds (at least 1).
    fn interval_ms(&self) -> i64 {
        let per = i64::try_from(self.per.as_millis()).unwrap_or(i64::MAX);
        (per / i64::from(self.calls)).max(1)
    }
}

/// The app's rate budget, shared through the database: [`Keeper::budget`](crate::Keeper::budget)
/// gives the keeper's, so that other work of the app (the feed service's syncs) books its
/// calls in the same quota and waits out the same pauses. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    accounts: Accounts,
    pacer: Option<Arc<Pacer>>,
    quota: Option<AppQuota>,
    /// The usage this process shared last (−1: none yet), so an unchanged figure is not
    /// written again after every call.
    shared: AtomicI64,
}

impl AppBudget {
    /// The budget shared in `store`'s database, followed as `pacer` (the app's one pacer,
    /// which its clients feed with Instagram's usage headers) sees it, with `quota` if one
    /// is set. Every instance and every user of the app's budget should set the same quota.
    pub fn new(store: &SqlStore, pacer: Option<Arc<Pacer>>, quota: Option<AppQuota>) -> Self {
        Self {
            inner: Arc::new(Inner {
                accounts: store.accounts.clone(),
                pacer,
                quota,
                shared: AtomicI64::new(-1),
            }),
        }
    }

    /// Books `calls` calls in the quota (one statement; nothing without a quota) and answers
    /// how long to wait before sending them: until their slot, or until a pause every
    /// instance was told of ends.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the booking fails.
    pub async fn book(&self, calls: u32) -> Result<Duration, Error> {
        let accounts = &self.inner.accounts;
        let Some(quota) = self.inner.quota.filter(|_| calls > 0) else {
            let budget = accounts.budget().await?;
            return Ok(after(budget.blocked_until, budget.now));
        };
        let interval = quota.interval_ms().saturating_mul(i64::from(calls));
        let booked = accounts.reserve(interval).await?;
        // The slot: the new arrival time less what this booking added.
        let slot = booked.quota_tat.map(|tat| tat.saturating_sub(interval));
        Ok(after(slot, booked.now).max(after(booked.blocked_until, booked.now)))
    }

    /// How long every instance is held before its next call, if it is: a pause one instance
    /// was told of, or a quota booked further ahead than `horizon` (a claim made now would
    /// only wait, or be let go).
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the budget cannot be read.
    pub async fn held(&self, horizon: Duration) -> Result<Option<Duration>, Error> {
        Ok(self.held_by(&self.inner.accounts.budget().await?, horizon))
    }

    pub(crate) fn held_by(&self, budget: &BudgetRow, horizon: Duration) -> Option<Duration> {
        let horizon = i64::try_from(horizon.as_millis()).unwrap_or(i64::MAX);
        let quota = match self.inner.quota {
            Some(_) => budget.quota_tat.map(|tat| tat.saturating_sub(horizon)),
            None => None,
        };
        let held = after(budget.blocked_until, budget.now).max(after(quota, budget.now));
        (!held.is_zero()).then_some(held)
    }

    /// The spacing the app's policy puts between calls at `percent` of the budget (as an
    /// instance reported it): from nothing at the slow-down threshold to the policy's widest
    /// at 99 %. At 100 % the budget is paused instead ([`Self::share_usage`]).
    pub fn spacing(&self, percent: i64) -> Duration {
        let policy = self
            .inner
            .pacer
            .as_ref()
            .map(|pacer| *pacer.policy())
            .unwrap_or_default();
        let threshold = i64::from(policy.slow_down_above);
        if percent <= threshold || percent >= 100 {
            return Duration::ZERO;
        }
        let over = u32::try_from(percent - threshold).unwrap_or(0);
        let range = u32::try_from(100 - threshold).unwrap_or(1).max(1);
        policy.max_spacing * over / range
    }

    /// Shares the usage the app's pacer saw last with every instance (when it changed since
    /// this process shared it): its percentage, and at 100 % a pause until access is likely
    /// back. A failure is logged: the next call shares it again.
    pub async fn share_usage(&self) {
        let Some(pacer) = &self.inner.pacer else {
            return;
        };
        let Some(usage) = pacer.usage(None) else {
            return;
        };
        let Some(percent) = usage.max_percent() else {
            return;
        };
        let percent = i64::from(percent);
        if self.inner.shared.swap(percent, Ordering::Relaxed) == percent && percent < 100 {
            return;
        }
        let accounts = &self.inner.accounts;
        let mut shared = accounts.observe_usage(percent).await;
        if percent >= 100 && shared.is_ok() {
            let regain = usage
                .regain_access_after()
                .filter(|d| !d.is_zero())
                .unwrap_or(pacer.policy().default_wait);
            shared = accounts.block_for(regain).await;
        }
        if let Err(error) = shared {
            self.inner.shared.store(-1, Ordering::Relaxed);
            tracing::debug!(%error, "could not share the app's usage");
        }
    }

    /// Pauses every instance after Instagram refused a call of the app for its rate (for
    /// `retry_after` when it said, else the pacer's estimate): how long.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the pause cannot be written.
    pub async fn pause(&self, retry_after: Option<Duration>) -> Result<Duration, Error> {
        let pause = self.inner.pacer.as_ref().map_or_else(
            || retry_after.unwrap_or(Duration::from_secs(60)),
            |pacer| pacer.announced_pause(None, retry_after),
        );
        self.inner.accounts.block_for(pause).await?;
        Ok(pause)
    }

    /// This process's own pacer's wait before an app-level call (the usage it saw itself).
    pub(crate) fn local_wait(&self, now: std::time::SystemTime) -> Duration {
        self.inner
            .pacer
            .as_ref()
            .map_or(Duration::ZERO, |pacer| pacer.reserve(None, now))
    }
}

/// The time from `now` until `until` (both Unix milliseconds), none when it passed.
pub(crate) fn after(until: Option<i64>, now: i64) -> Duration {
    until
        .map(|until| until.saturating_sub(now))
        .filter(|ms| *ms > 0)
        .map_or(Duration::ZERO, |ms| {
            Duration::from_millis(u64::try_from(ms).unwrap_or(0))
        })
}
