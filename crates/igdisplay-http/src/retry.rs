//! The one retry decision of every igdisplay request: [`classify`] says whether a failed
//! attempt may be tried again, [`RetryPolicy`] says when and how often, and a client-wide
//! [`RetryBudget`] says whether retries are still worth it at all.
//!
//! Both are pure: `classify` is a function of what was sent ([`RequestKind`]) and what came
//! back ([`Outcome`]); the policy turns its answer into a delay from the attempt number and a
//! jitter draw. The Graph pipeline, the token requests and every public `is_retryable()` ask
//! `classify`, so they cannot disagree.

use crate::TransportErrorKind;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// What a request spends when it reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// A read (GET) that may be repeated freely.
    Idempotent,
    /// A request that spends something single-use (the code exchange POST spends its code):
    /// it is repeated only when it certainly never left.
    SingleUse,
}

/// What the server's error response means, as far as retrying goes. The caller derives it
/// from the status and the error body (igdisplay maps Instagram's error classes onto it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerVerdict {
    /// A passing failure: the same request may succeed (5xx, Graph codes 1 and 2, `is_transient`).
    Transient,
    /// A rate limit: the same request may succeed once the announced pause has passed.
    RateLimited,
    /// A failure that repeating will not change (bad token, bad parameter, permission).
    Final,
}

/// Instagram's error classes in the words of the one classifier: the one place they meet.
///
/// ```
/// use igdisplay_http::ServerVerdict;
/// use igdisplay_model::ErrorClass;
///
/// assert_eq!(ServerVerdict::from(ErrorClass::RateLimited), ServerVerdict::RateLimited);
/// assert_eq!(ServerVerdict::from(ErrorClass::InvalidToken), ServerVerdict::Final);
/// ```
impl From<igdisplay_model::ErrorClass> for ServerVerdict {
    fn from(class: igdisplay_model::ErrorClass) -> Self {
        use igdisplay_model::ErrorClass;
        match class {
            ErrorClass::Transient => ServerVerdict::Transient,
            ErrorClass::RateLimited => ServerVerdict::RateLimited,
            _ => ServerVerdict::Final,
        }
    }
}

/// How one attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The request was never sent: something it needed first (a token from a store, say)
    /// could not be had at the moment.
    Unsent,
    /// No complete response came back.
    Transport(TransportErrorKind),
    /// The server answered with an error.
    Refused(ServerVerdict),
}

/// What [`classify`] decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Retry {
    /// Give up: return the failure.
    Stop,
    /// Try again after an exponential backoff with jitter ([`RetryPolicy::backoff`]).
    Backoff,
    /// Try again after the rate limit's pause, never sooner (the caller knows the pause and
    /// whether it is willing to wait that long).
    AfterPause,
}

impl Retry {
    /// Whether the failure may be tried again at all.
    pub fn is_retry(self) -> bool {
        self != Retry::Stop
    }
}

/// The retry decision for an attempt of `kind` that ended in `outcome`.
///
/// - A request that never left (connect failure, or a prerequisite missing) is always
///   retried, single-use or not.
/// - A single-use request that may have reached the server is never retried: the server may
///   have spent what it carried.
/// - A read is retried after a timeout, a broken connection or body, and a transient server
///   error; after a rate limit only once the pause has passed.
/// - An invalid request, a body over the size cap and a final error are never retried.
///
/// ```
/// use igdisplay_http::{Outcome, RequestKind, Retry, ServerVerdict, TransportErrorKind, classify};
///
/// let timeout = Outcome::Transport(TransportErrorKind::Timeout);
/// assert_eq!(classify(RequestKind::Idempotent, timeout), Retry::Backoff);
/// assert_eq!(classify(RequestKind::SingleUse, timeout), Retry::Stop);
/// let throttled = Outcome::Refused(ServerVerdict::RateLimited);
/// assert_eq!(classify(RequestKind::Idempotent, throttled), Retry::AfterPause);
/// ```
pub fn classify(kind: RequestKind, outcome: Outcome) -> Retry {
    use RequestKind::{Idempotent, SingleUse};
    use TransportErrorKind as T;
    match (kind, outcome) {
        (_, Outcome::Unsent | Outcome::Transport(T::Connect)) => Retry::Backoff,
        (Idempotent, Outcome::Transport(T::Timeout | T::Io | T::Body)) => Retry::Backoff,
        (Idempotent, Outcome::Refused(ServerVerdict::Transient)) => Retry::Backoff,
        (Idempotent, Outcome::Refused(ServerVerdict::RateLimited)) => Retry::AfterPause,
        (SingleUse, _) | (_, Outcome::Transport(_)) | (_, Outcome::Refused(ServerVerdict::Final)) => {
            Retry::Stop
        }
    }
}

/// How often and how long to retry what [`classify`] allows, with capped exponential
/// backoff and full jitter: attempt `n` waits a random time in
/// `[0, min(max_delay, base_delay * 2^(n-1)))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Requests sent at most for one call, the first included. Default 3.
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry. Default 500 ms.
    pub base_delay: Duration,
    /// The largest backoff ceiling. Default 30 s.
    pub max_delay: Duration,
    /// No retry starts once this much time would have passed since the first attempt.
    /// Default 2 min.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets the number of attempts (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the first backoff ceiling.
    #[must_use]
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// Sets the largest backoff ceiling.
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets the time after which no retry starts.
    #[must_use]
    pub fn max_elapsed(mut self, elapsed: Duration) -> Self {
        self.max_elapsed = elapsed;
        self
    }

    /// The backoff ceiling of attempt `attempt` (1 for the first retry's wait after the
    /// first attempt).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay)
    }

    /// The wait before the retry that follows attempt `attempt`, drawn from `jitter`.
    pub fn backoff(&self, attempt: u32, jitter: &Jitter) -> Duration {
        let ceiling = u64::try_from(self.ceiling(attempt).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(jitter.below(ceiling))
    }

    /// Whether another attempt may start after `attempt` attempts, `elapsed` since the first,
    /// and a wait of `delay`.
    pub fn allows(&self, attempt: u32, elapsed: Duration, delay: Duration) -> bool {
        attempt < self.max_attempts && elapsed.saturating_add(delay) <= self.max_elapsed
    }
}

/// The random source of backoff jitter: SplitMix64, seeded from the OS or from a fixed seed
/// for reproducible tests. Jitter is not a secret, so a failed OS draw falls back to a
/// constant seed. Shared by reference; draws lock briefly.
#[derive(Debug)]
pub struct Jitter(Mutex<u64>);

impl Jitter {
    /// A generator starting at `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self(Mutex::new(seed))
    }

    /// A generator seeded from the OS.
    pub fn random() -> Self {
        Self::seeded(os_seed())
    }

    fn next(&self) -> u64 {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, bound)` (0 when `bound` is 0).
    pub fn below(&self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // The high half of a 64×64-bit product: no modulo bias worth the name, never overflows.
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

/// A client-wide allowance of retries: the token bucket of gRPC's retry throttling. Each
/// retry spends a token, each successful call earns back a tenth of one, and no retry starts
/// while half the bucket or less is left. When most calls fail (Instagram is down, the network
/// is gone), the clients stop tripling the load and fail fast; as calls succeed again, retries
/// come back. The clients of one app share one budget.
///
/// ```
/// use igdisplay_http::RetryBudget;
///
/// let budget = RetryBudget::new(4);
/// assert!(budget.try_spend() && budget.try_spend(), "two retries: 4 -> 3 -> 2");
/// assert!(!budget.try_spend(), "half the bucket is left: fail fast");
/// for _ in 0..10 {
///     budget.earn();
/// }
/// assert!(budget.try_spend(), "ten successes earned one retry back");
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    /// Thousandths of a token.
    milli: AtomicU32,
    max_milli: u32,
}

/// A token, in the budget's thousandths.
const TOKEN: u32 = 1000;
/// What a success earns back: a tenth of a token.
const REFUND: u32 = TOKEN / 10;

impl RetryBudget {
    /// A full bucket of `tokens` (at most 1,000,000); a retry is allowed while more than half
    /// is left, so a full bucket allows `tokens / 2` retries in a row.
    pub fn new(tokens: u32) -> Self {
        let max_milli = tokens.min(1_000_000).saturating_mul(TOKEN);
        Self {
            milli: AtomicU32::new(max_milli),
            max_milli,
        }
    }

    /// Takes a token for one retry; `false` (and nothing taken) when the budget is spent.
    pub fn try_spend(&self) -> bool {
        let threshold = self.max_milli / 2;
        self.milli
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |milli| {
                (milli > threshold).then(|| milli.saturating_sub(TOKEN))
            })
            .is_ok()
    }

    /// Records a successful call: a tenth of a token back, up to the full bucket.
    pub fn earn(&self) {
        // A full bucket (the usual case) is only read: every client of the app shares it, and
        // a write per call would bounce its cache line between the cores.
        if self.milli.load(Ordering::Acquire) >= self.max_milli {
            return;
        }
        let _ = self
            .milli
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |milli| {
                Some(milli.saturating_add(REFUND).min(self.max_milli))
            });
    }

    /// The tokens left.
    pub fn tokens(&self) -> f64 {
        f64::from(self.milli.load(Ordering::Acquire)) / f64::from(TOKEN)
    }
}

impl Default for RetryBudget {
    /// Ten tokens: five retries in a row from a full bucket, as gRPC's default.
    fn default() -> Self {
        Self::new(10)
    }
}

fn os_seed() -> u64 {
    // The std hasher's keys come from the OS once per thread and change with every `new`.
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x9E37_79B9_7F4A_7C15);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestKind::{Idempotent, SingleUse};
    use TransportErrorKind as T;

    #[rustfmt::skip]
    const TABLE: &[(RequestKind, Outcome, Retry)] = &[
        (Idempotent, Outcome::Unsent, Retry::Backoff),
        (SingleUse, Outcome::Unsent, Retry::Backoff),
        (Idempotent, Outcome::Transport(T::Connect), Retry::Backoff),
        (SingleUse, Outcome::Transport(T::Connect), Retry::Backoff),
        (Idempotent, Outcome::Transport(T::Timeout), Retry::Backoff),
        (SingleUse, Outcome::Transport(T::Timeout), Retry::Stop),
        (Idempotent, Outcome::Transport(T::Io), Retry::Backoff),
        (SingleUse, Outcome::Transport(T::Io), Retry::Stop),
        (Idempotent, Outcome::Transport(T::Body), Retry::Backoff),
        (SingleUse, Outcome::Transport(T::Body), Retry::Stop),
        (Idempotent, Outcome::Transport(T::BodyTooLarge), Retry::Stop),
        (SingleUse, Outcome::Transport(T::BodyTooLarge), Retry::Stop),
        (Idempotent, Outcome::Transport(T::InvalidRequest), Retry::Stop),
        (SingleUse, Outcome::Transport(T::InvalidRequest), Retry::Stop),
        (Idempotent, Outcome::Transport(T::Other), Retry::Stop),
        (SingleUse, Outcome::Transport(T::Other), Retry::Stop),
        (Idempotent, Outcome::Refused(ServerVerdict::Transient), Retry::Backoff),
        (SingleUse, Outcome::Refused(ServerVerdict::Transient), Retry::Stop),
        (Idempotent, Outcome::Refused(ServerVerdict::RateLimited), Retry::AfterPause),
        (SingleUse, Outcome::Refused(ServerVerdict::RateLimited), Retry::Stop),
        (Idempotent, Outcome::Refused(ServerVerdict::Final), Retry::Stop),
        (SingleUse, Outcome::Refused(ServerVerdict::Final), Retry::Stop),
    ];

    #[test]
    fn classifier_table() {
        for (kind, outcome, expected) in TABLE {
            assert_eq!(classify(*kind, *outcome), *expected, "{kind:?} {outcome:?}");
        }
    }

    #[test]
    fn the_table_covers_every_transport_kind_for_both_request_kinds() {
        for &kind in TransportErrorKind::ALL {
            for request in [Idempotent, SingleUse] {
                let outcome = Outcome::Transport(kind);
                assert!(
                    TABLE.iter().any(|(r, o, _)| *r == request && *o == outcome),
                    "{kind:?}"
                );
            }
        }
    }

    #[test]
    fn backoff_ceilings_double_up_to_the_cap_without_overflow() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.ceiling(1), Duration::from_millis(500));
        assert_eq!(policy.ceiling(2), Duration::from_secs(1));
        assert_eq!(policy.ceiling(7), Duration::from_secs(30));
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn a_draw_stays_below_its_ceiling() {
        let policy = RetryPolicy::default();
        let jitter = Jitter::seeded(42);
        for attempt in 1..20 {
            assert!(policy.backoff(attempt, &jitter) < policy.ceiling(attempt));
        }
    }

    #[test]
    fn jitter_spreads_evenly() {
        let jitter = Jitter::seeded(7);
        let low = (0..10_000).filter(|_| jitter.below(1000) < 500).count();
        assert!((4_500..5_500).contains(&low), "{low}");
        assert_eq!(jitter.below(0), 0);
    }

    #[test]
    fn the_policy_stops_at_max_attempts_and_max_elapsed() {
        let policy = RetryPolicy::default().max_attempts(2);
        assert!(policy.allows(1, Duration::ZERO, Duration::from_secs(1)));
        assert!(!policy.allows(2, Duration::ZERO, Duration::ZERO));
        assert!(!policy.allows(1, Duration::from_secs(119), Duration::from_secs(2)));
        assert!(!policy.allows(1, Duration::MAX, Duration::MAX));
    }

    #[test]
    fn the_budget_throttles_at_half_and_refills_with_successes() {
        let budget = RetryBudget::default();
        let spent = (0..20).take_while(|_| budget.try_spend()).count();
        assert_eq!(spent, 5, "five retries from a full bucket of ten");
        assert!((budget.tokens() - 5.0).abs() < f64::EPSILON);
        for _ in 0..1000 {
            budget.earn();
        }
        assert!(
            (budget.tokens() - 10.0).abs() < f64::EPSILON,
            "never above the bucket"
        );
        let empty = RetryBudget::new(0);
        assert!(!empty.try_spend(), "no bucket, no retry");
    }
}
