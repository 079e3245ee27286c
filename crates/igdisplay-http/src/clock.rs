//! Injected time: a [`Clock`] tells the time and sleeps, so that everything about expiry,
//! backoff and rate limits can be tested without waiting.
//!
//! [`SystemClock`] is the real one. [`ManualClock`] stands still until told to move, and its
//! `sleep` moves it forward instead of waiting, so a test of a retry loop with a 30-second
//! backoff finishes at once and can assert exactly how long the code *would* have slept.
//!
//! A clock has two ways to wait. [`Clock::sleep`] is the caller's own pause (backoff, pacing):
//! a manual clock jumps over it. [`Clock::timer`] is a deadline that something else must reach
//! (a timeout): a manual clock fires it only when the test moves the clock past it, so a test
//! decides exactly when a request times out.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// The time source and sleeper of a client.
#[async_trait::async_trait]
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// Waits for `duration`: the caller's own pause. A manual clock moves forward by it at once.
    async fn sleep(&self, duration: Duration);

    /// Completes once the clock has moved `duration` past the moment of the call, without
    /// moving it: the deadline of a timeout. A manual clock fires it only when advanced.
    async fn timer(&self, duration: Duration);
}

/// How clients hold a clock.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock: `SystemTime::now()` and `tokio::time::sleep`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

// The one place the library reads the real time and arms real timers.
#[allow(clippy::disallowed_methods)]
#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    async fn timer(&self, duration: Duration) {
        SystemClock::deadline(duration).await;
    }
}

impl SystemClock {
    /// [`Clock::timer`] without the box: what the crate's own backends time out with.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn deadline(duration: Duration) -> tokio::time::Sleep {
        tokio::time::sleep(duration)
    }
}

/// The system clock shifted by a number of seconds, running and sleeping in real time: a
/// program against a mock (whose time may be frozen or moved) reads the mock's time with it,
/// so token ages agree, while its waits stay real. Clones share the shift, which
/// [`set_unix`](Self::set_unix) moves while the clock is in use (a poller of the mock's time
/// keeps it current).
///
/// ```
/// use igdisplay_http::{Clock, ShiftedClock};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let clock = ShiftedClock::at_unix(1_768_478_400);
/// let now = clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
/// assert!((1_768_478_400..1_768_478_400 + 60).contains(&now));
/// clock.clone().set_unix(2_000_000_000);
/// let moved = clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
/// assert!((2_000_000_000..2_000_000_000 + 60).contains(&moved), "clones share the shift");
/// ```
#[derive(Clone, Debug)]
pub struct ShiftedClock {
    /// Seconds added to the system's time (negative: taken off).
    shift: Arc<AtomicI64>,
}

impl ShiftedClock {
    /// A clock that reads `unix_seconds` now, and runs on from there in real time.
    pub fn at_unix(unix_seconds: i64) -> Self {
        let clock = Self {
            shift: Arc::new(AtomicI64::new(0)),
        };
        clock.set_unix(unix_seconds);
        clock
    }

    /// Moves the clock (and its clones) so that it reads `unix_seconds` now.
    pub fn set_unix(&self, unix_seconds: i64) {
        let system = igdisplay_model::Timestamp::from_system_time(SystemClock.now()).unix();
        self.shift
            .store(unix_seconds.saturating_sub(system), Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl Clock for ShiftedClock {
    fn now(&self) -> SystemTime {
        let now = SystemClock.now();
        let shift = self.shift.load(Ordering::Relaxed);
        let by = Duration::from_secs(shift.unsigned_abs());
        let shifted = if shift >= 0 {
            now.checked_add(by)
        } else {
            now.checked_sub(by)
        };
        // A time beyond what the platform can hold leaves the system's.
        shifted.unwrap_or(now)
    }

    async fn sleep(&self, duration: Duration) {
        SystemClock.sleep(duration).await;
    }

    async fn timer(&self, duration: Duration) {
        SystemClock::deadline(duration).await;
    }
}

/// A clock that moves only when told: by [`advance`](ManualClock::advance),
/// [`set`](ManualClock::set), or by `sleep`, which advances it instead of waiting. Clones share
/// the same time. Every sleep is recorded, for assertions on backoff.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualState>>,
    moved: Arc<Notify>,
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
            moved: Arc::new(Notify::new()),
        }
    }

    /// A clock standing `unix_seconds` after the Unix epoch.
    pub fn at_unix(unix_seconds: u64) -> Self {
        Self::new(UNIX_EPOCH + Duration::from_secs(unix_seconds))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the clock forward (saturating at the largest time the platform can hold).
    pub fn advance(&self, by: Duration) {
        {
            let mut state = self.state();
            state.now = state.now.checked_add(by).unwrap_or(state.now);
        }
        self.moved.notify_waiters();
    }

    /// Sets the clock, forward or back.
    pub fn set(&self, to: SystemTime) {
        self.state().now = to;
        self.moved.notify_waiters();
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
        {
            let mut state = self.state();
            state.now = state.now.checked_add(duration).unwrap_or(state.now);
            state.sleeps.push(duration);
        }
        self.moved.notify_waiters();
    }

    async fn timer(&self, duration: Duration) {
        let Some(deadline) = self.now().checked_add(duration) else {
            return std::future::pending().await;
        };
        loop {
            let moved = self.moved.notified();
            let mut moved = std::pin::pin!(moved);
            // Registered before the check, so a move between the check and the await wakes it.
            moved.as_mut().enable();
            if self.now() >= deadline {
                return;
            }
            moved.await;
        }
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

    #[tokio::test]
    async fn a_manual_timer_fires_only_once_the_clock_is_moved_past_it() {
        let clock = ManualClock::at_unix(0);
        let timer = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.timer(Duration::from_secs(30)).await })
        };
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(29));
        tokio::task::yield_now().await;
        assert!(!timer.is_finished());
        clock.advance(Duration::from_secs(1));
        timer.await.unwrap();
    }

    #[tokio::test]
    async fn advancing_past_the_end_of_time_saturates() {
        let clock = ManualClock::at_unix(0);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), UNIX_EPOCH);
        clock.sleep(Duration::MAX).await;
        assert_eq!(clock.now(), UNIX_EPOCH);
    }

    #[allow(clippy::disallowed_methods)]
    #[tokio::test(start_paused = true)]
    async fn system_clock_sleeps_on_tokio_time() {
        let before = tokio::time::Instant::now();
        SystemClock.sleep(Duration::from_secs(60)).await;
        assert!(before.elapsed() >= Duration::from_secs(60));
    }
}
