//! [`Pacer`]: the rate-limit state of one app, shared by every client of its users.
//!
//! Instagram limits an app as a whole (`X-App-Usage`, codes 4 and 341) and each user apart
//! (`X-Business-Use-Case-Usage`, code 17 and the others). The pacer keeps one scope for the
//! app and one per user: before each request a client waits out the larger of its user's
//! pause and the app's, so an app-level throttle pauses every user's queries and a user-level
//! one only that user's, however many clients exist.

use crate::RateLimitPolicy;
use igdisplay_model::{GraphError, Usage, UserId};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

/// The longest pause any announcement can impose: a server that says "wait 2^64 seconds"
/// gets a day, and the policy's `max_wait` decides whether to wait that long.
pub const MAX_PAUSE: Duration = Duration::from_secs(24 * 3600);

/// The usage `headers` report (`X-App-Usage`, `X-Business-Use-Case-Usage`); empty when they
/// are absent or unreadable.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-app-usage", r#"{"call_count":12,"total_cputime":3,"total_time":5}"#.parse()?);
/// let usage = igdisplay_graph::reported_usage(&headers);
/// assert_eq!(usage.max_percent(), Some(12));
/// # Ok::<(), http::header::InvalidHeaderValue>(())
/// ```
pub fn reported_usage(headers: &http::HeaderMap) -> Usage {
    // Looked up by `HeaderName`: a `&str` name is parsed and checked on every lookup.
    const APP: http::HeaderName = http::HeaderName::from_static(igdisplay_model::APP_USAGE_HEADER);
    const BUSINESS: http::HeaderName =
        http::HeaderName::from_static(igdisplay_model::BUSINESS_USE_CASE_USAGE_HEADER);
    let header = |name: &http::HeaderName| headers.get(name).map(http::HeaderValue::as_bytes);
    Usage::from_headers(header(&APP), header(&BUSINESS))
}

/// How many idle user scopes are kept before the idle ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// Whose budget a rate limit spent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The whole app's: every user waits.
    App,
    /// One user's.
    User(UserId),
}

/// The rate-limit state of one app: the usage Instagram reported, pauses announced or
/// computed, and the optional client-side quota. Share it (`Arc<Pacer>`) between every client
/// of the app; the facade does.
#[derive(Debug)]
pub struct Pacer {
    policy: RateLimitPolicy,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    app: Budget,
    users: HashMap<UserId, Budget>,
    /// The quota's theoretical arrival time of the next request.
    quota_tat: Option<SystemTime>,
}

/// What is known of one budget.
#[derive(Clone, Debug, Default)]
struct Budget {
    usage: Option<Usage>,
    blocked_until: Option<SystemTime>,
}

impl Budget {
    fn percent(&self) -> u8 {
        self.usage.as_ref().and_then(Usage::max_percent).unwrap_or(0)
    }

    fn is_idle(&self, now: SystemTime) -> bool {
        self.usage.is_none() && self.blocked_until.is_none_or(|until| until <= now)
    }
}

/// What to do before a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pause {
    /// How long to wait first (zero: go).
    pub(crate) wait: Duration,
    /// Whether the budget is spent (a wait the policy may refuse), or only nearly (spacing).
    pub(crate) exhausted: bool,
    /// The usage that caused it.
    pub(crate) usage: Option<Usage>,
}

impl Pacer {
    /// A pacer following `policy`.
    pub fn new(policy: RateLimitPolicy) -> Self {
        Self {
            policy,
            state: Mutex::default(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &RateLimitPolicy {
        &self.policy
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The usage last reported for the app and for `user`, together.
    pub fn usage(&self, user: Option<&UserId>) -> Option<Usage> {
        let state = self.state();
        let mut usage = state.app.usage.clone().unwrap_or_default();
        if let Some(user) = user
            .and_then(|u| state.users.get(u))
            .and_then(|b| b.usage.as_ref())
        {
            usage.business.clone_from(&user.business);
        }
        (!usage.is_empty()).then_some(usage)
    }

    /// Until when `scope` is known to be refused, if it is.
    pub fn blocked_until(&self, scope: &Scope, now: SystemTime) -> Option<SystemTime> {
        let state = self.state();
        let budget = match scope {
            Scope::App => Some(&state.app),
            Scope::User(user) => state.users.get(user),
        };
        budget.and_then(|b| b.blocked_until).filter(|until| *until > now)
    }

    /// Records the usage headers of a response to `user`'s request: the app's part for the
    /// app, the business use cases for the user (for the app when there is no user). The
    /// Graph clients call it for every response; a client of its own (a token keeper) calls it
    /// to share the app's budget.
    pub fn observe(&self, user: Option<&UserId>, usage: Usage) {
        let mut state = self.state();
        let Some(user) = user else {
            // Without a user every budget is the app's.
            state.app.usage = Some(usage);
            return;
        };
        let Usage { app, business, .. } = usage;
        if let Some(app) = app {
            let mut only_app = Usage::default();
            only_app.app = Some(app);
            state.app.usage = Some(only_app);
        }
        if !business.is_empty() {
            let mut only_user = Usage::default();
            only_user.business = business;
            state.users.entry(user.clone()).or_default().usage = Some(only_user);
        }
    }

    /// Blocks `scope` for `pause` from `now` (a rate-limit error was answered).
    pub fn block(&self, scope: Scope, now: SystemTime, pause: Duration) {
        let until = now
            .checked_add(pause.min(MAX_PAUSE))
            .or_else(|| now.checked_add(Duration::from_secs(1)));
        let mut state = self.state();
        let budget = match scope {
            Scope::App => &mut state.app,
            Scope::User(user) => state.users.entry(user).or_default(),
        };
        budget.blocked_until = budget.blocked_until.max(until);
    }

    /// The pause a rate-limit error with `retry_after` (if the server said) announces, by the
    /// usage's estimate or the policy's default otherwise.
    pub fn announced_pause(&self, user: Option<&UserId>, retry_after: Option<Duration>) -> Duration {
        retry_after
            .or_else(|| self.usage(user).as_ref().and_then(Usage::regain_access_after))
            .unwrap_or(self.policy.default_wait)
            .min(MAX_PAUSE)
    }

    /// How long `user`'s next request must wait at `now`, for a client of its own that shares
    /// the app's budget (a token keeper): a known block, spacing above the slow-down
    /// threshold, the regain time at 100 %. Books the request's slot of the quota.
    ///
    /// ```
    /// use igdisplay_graph::{Pacer, RateLimitPolicy};
    /// use igdisplay_model::Usage;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let pacer = Pacer::new(RateLimitPolicy::default());
    /// let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    /// assert_eq!(pacer.reserve(None, now), Duration::ZERO);
    /// pacer.observe(None, Usage::from_headers(Some(br#"{"call_count":100}"#), None));
    /// assert_eq!(pacer.reserve(None, now), pacer.policy().default_wait, "spent: wait for it to come back");
    /// ```
    pub fn reserve(&self, user: Option<&UserId>, now: SystemTime) -> Duration {
        self.before_request(user, now).wait
    }

    /// What `user`'s next request must wait at `now`. At 100 % the spent budget is blocked for
    /// the estimated regain time; the quota's slot is booked.
    pub(crate) fn before_request(&self, user: Option<&UserId>, now: SystemTime) -> Pause {
        let policy = self.policy;
        let mut state = self.state();
        if state.users.len() > PRUNE_ABOVE {
            state.users.retain(|_, budget| !budget.is_idle(now));
        }
        let State {
            app,
            users,
            quota_tat,
        } = &mut *state;
        let mut no_user = Budget::default();
        let user_budget = match user {
            Some(user) => users.get_mut(user).unwrap_or(&mut no_user),
            None => &mut no_user,
        };
        let blocked = [app.blocked_until, user_budget.blocked_until]
            .into_iter()
            .flatten()
            .max()
            .and_then(|until| until.duration_since(now).ok())
            .filter(|d| !d.is_zero());
        let (app_percent, user_percent) = (app.percent(), user_budget.percent());
        let (spent, percent) = if app_percent >= user_percent {
            (&mut *app, app_percent)
        } else {
            (&mut *user_budget, user_percent)
        };
        let mut pause = if let Some(wait) = blocked {
            Pause {
                wait,
                exhausted: true,
                usage: spent.usage.clone(),
            }
        } else if percent >= 100 {
            let wait = spent
                .usage
                .as_ref()
                .and_then(Usage::regain_access_after)
                .filter(|d| !d.is_zero())
                .unwrap_or(policy.default_wait);
            spent.blocked_until = now.checked_add(wait);
            // The figure is spent: the next response says what the usage is then.
            Pause {
                wait,
                exhausted: true,
                usage: spent.usage.take(),
            }
        } else if percent > policy.slow_down_above {
            let over = u32::from(percent - policy.slow_down_above);
            let range = u32::from(100u8.saturating_sub(policy.slow_down_above)).max(1);
            Pause {
                wait: policy.max_spacing * over / range,
                exhausted: false,
                usage: None,
            }
        } else {
            Pause {
                wait: Duration::ZERO,
                exhausted: false,
                usage: None,
            }
        };
        if let Some(quota) = policy.quota {
            let at = now.checked_add(pause.wait).unwrap_or(now);
            let interval = Duration::from_secs(1) / quota.per_second;
            let tolerance = interval * (quota.burst - 1);
            let tat = quota_tat.map_or(at, |tat| tat.max(at));
            let wait = tat
                .duration_since(at)
                .unwrap_or_default()
                .saturating_sub(tolerance);
            *quota_tat = tat.checked_add(interval);
            pause.wait = pause.wait.max(wait);
        }
        pause
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new(RateLimitPolicy::default())
    }
}

/// Whose budget a rate-limit error spent: codes 4 and 341 are the app's, every other
/// throttle (17, 32, 613, the 80000 business use cases, a bare 429) the user's.
pub(crate) fn scope_of(error: Option<&GraphError>, user: Option<&UserId>) -> Scope {
    match (error.map(|e| e.code), user) {
        (Some(4 | 341), _) | (_, None) => Scope::App,
        (_, Some(user)) => Scope::User(user.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn an_app_block_pauses_every_user() {
        let pacer = Pacer::default();
        pacer.block(Scope::App, at(0), Duration::from_secs(60));
        for user in ["1", "2"] {
            let pause = pacer.before_request(Some(&UserId::new(user)), at(10));
            assert_eq!(pause.wait, Duration::from_secs(50));
            assert!(pause.exhausted);
        }
    }

    #[test]
    fn a_user_block_pauses_only_that_user() {
        let pacer = Pacer::default();
        pacer.block(Scope::User(UserId::new("1")), at(0), Duration::from_secs(60));
        assert_eq!(
            pacer.before_request(Some(&UserId::new("1")), at(0)).wait,
            Duration::from_secs(60)
        );
        assert_eq!(
            pacer.before_request(Some(&UserId::new("2")), at(0)).wait,
            Duration::ZERO
        );
    }

    #[test]
    fn a_huge_pause_is_clamped_to_a_day() {
        let pacer = Pacer::default();
        pacer.block(Scope::App, at(0), Duration::MAX);
        assert_eq!(pacer.blocked_until(&Scope::App, at(0)), Some(at(0) + MAX_PAUSE));
        assert_eq!(pacer.announced_pause(None, Some(Duration::MAX)), MAX_PAUSE);
    }

    #[test]
    fn throttle_codes_name_their_scope() {
        let user = UserId::new("7");
        let error = |code: i64| -> GraphError {
            serde_json::from_str(&format!(r#"{{"message":"m","code":{code}}}"#)).unwrap()
        };
        assert_eq!(scope_of(Some(&error(4)), Some(&user)), Scope::App);
        assert_eq!(scope_of(Some(&error(341)), Some(&user)), Scope::App);
        assert_eq!(scope_of(Some(&error(17)), Some(&user)), Scope::User(user.clone()));
        assert_eq!(scope_of(None, Some(&user)), Scope::User(user.clone()));
        assert_eq!(scope_of(Some(&error(17)), None), Scope::App);
    }

    #[test]
    fn idle_users_are_pruned_past_the_cap() {
        let pacer = Pacer::default();
        for i in 0..=PRUNE_ABOVE {
            pacer.block(
                Scope::User(UserId::new(i.to_string())),
                at(0),
                Duration::from_secs(1),
            );
        }
        pacer.before_request(None, at(100));
        assert!(pacer.state().users.is_empty());
    }
}
