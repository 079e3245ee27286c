//! Injected time: a [`Clock`] tells the time and sleeps, so that everything about expiry,
//! backoff and rate limits can be tested without waiting.
//!
//! [`SystemClock`] is the real one. [`ManualClock`] stands still until told to move, and its
//! `sleep` moves it forward instead of waiting, so a test of a retry loop with a 30-second
//! backoff finishes at once and can assert exactly how long the code *would* have slept.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time source and sleeper of a client.
#[async_trait::async_trait]
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// Waits for `duration`.
    async fn sleep(&self, duration: Duration);
}

/// How clients hold a clock.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock: `SystemTime::now()` and `tokio::time::sleep`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// A clock that moves only when told: by [`advance`](ManualClock::advance),
/// [`set`](ManualClock::set), or by `sleep`, which advances it instead of waiting. Clones share
/// the same time. Every sleep is recorded, for assertions on backoff.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualState>>,
}

struct ManualState {
    now: SystemTime,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self {
            inner: Arc::new(Mutex::new(ManualState {
                now: start,
                sleeps: Vec::new(),
            })),
        }
    }

    /// A clock standing `unix_seconds` after the Unix epoch.
    pub fn at_unix(unix_seconds: u64) -> Self {
        Self::new(UNIX_EPOCH + Duration::from_secs(unix_seconds))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state();
        state.now += by;
    }

    /// Sets the clock, forward or back.
    pub fn set(&self, to: SystemTime) {
        self.state().now = to;
    }

    /// Every duration slept so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state().sleeps.clone()
    }

    /// The sum of every duration slept so far.
    pub fn total_slept(&self) -> Duration {
        self.state().sleeps.iter().sum()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("ManualClock")
            .field("now", &state.now)
            .field("sleeps", &state.sleeps.len())
            .finish()
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.state().now
    }

    async fn sleep(&self, duration: Duration) {
        let mut state = self.state();
        state.now += duration;
        state.sleeps.push(duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_moves_only_when_told_and_records_sleeps() {
        let clock = ManualClock::at_unix(1_000);
        let shared: SharedClock = Arc::new(clock.clone());
        assert_eq!(shared.now(), UNIX_EPOCH + Duration::from_secs(1_000));
        shared.sleep(Duration::from_secs(30)).await;
        clock.advance(Duration::from_secs(5));
        assert_eq!(shared.now(), UNIX_EPOCH + Duration::from_secs(1_035));
        assert_eq!(clock.sleeps(), [Duration::from_secs(30)]);
        assert_eq!(clock.total_slept(), Duration::from_secs(30));
        clock.set(UNIX_EPOCH);
        assert_eq!(shared.now(), UNIX_EPOCH);
    }

    #[tokio::test(start_paused = true)]
    async fn system_clock_sleeps_on_tokio_time() {
        let before = tokio::time::Instant::now();
        SystemClock.sleep(Duration::from_secs(60)).await;
        assert!(before.elapsed() >= Duration::from_secs(60));
    }
}
