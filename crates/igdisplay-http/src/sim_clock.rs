//! [`SimClock`]: simulated time for tests where several actors wait at once (two keepers, a
//! slow server, a web request polling a lease), so that waits overlap the way they do in real
//! time, unlike a [`ManualClock`](crate::ManualClock), whose every sleep moves the clock by
//! itself (two sleeps of 3 s that overlap would take it 6 s forward).

use crate::Clock;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// A clock that moves only to the next deadline someone waits for, once every actor waits.
///
/// Every `sleep` and `timer` registers its deadline and waits for the clock to reach it. The
/// clock moves when [`drive`](Self::drive) finds it quiet: deadlines are waiting, and for a
/// moment of real time nobody read the clock, began a wait or ended one (the simulation
/// cannot see a database's threads or a socket, so it lets them settle); it then jumps to the
/// earliest deadline, and everyone waiting for it goes on. Clones share the time.
///
/// An actor busy for longer than that moment without reading the clock may see time jump
/// meanwhile, as a process that stalls sees it in real time; every actor's waits overlap in
/// simulated time as they would in real time.
///
/// ```
/// use igdisplay_http::{Clock as _, test_util::SimClock};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
/// let clock = SimClock::at_unix(1_000);
/// let (a, b) = (clock.clone(), clock.clone());
/// let both = async move {
///     tokio::join!(a.sleep(Duration::from_secs(3)), b.sleep(Duration::from_secs(3)));
/// };
/// clock.drive(both).await;
/// assert_eq!(clock.unix(), 1_003, "two overlapping waits of 3 s take 3 s");
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SimClock {
    inner: Arc<Mutex<SimState>>,
    moved: Arc<Notify>,
}

struct SimState {
    now: SystemTime,
    /// Waiting deadlines, with how many wait for each.
    waiting: BTreeMap<SystemTime, usize>,
    /// Grows with every read, and every wait begun or ended: the driver moves only when it
    /// stands still.
    changes: u64,
}

/// How long the driver wants nothing to change before it moves the clock.
const QUIET: Duration = Duration::from_millis(10);
/// A jump further than this ...
const FAR: Duration = Duration::from_secs(60);
/// ... wants nothing to change for this long: an actor busy for a while between two reads of
/// the clock (a long statement) is more likely to be mistaken for a quiet one by a short
/// look, and a far jump would cost it more.
const QUIET_BEFORE_FAR: Duration = Duration::from_millis(200);

impl SimClock {
    /// A clock standing `unix_seconds` after the Unix epoch.
    pub fn at_unix(unix_seconds: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(SimState {
                now: UNIX_EPOCH + Duration::from_secs(unix_seconds),
                waiting: BTreeMap::new(),
                changes: 0,
            })),
            moved: Arc::new(Notify::new()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The time in whole Unix seconds.
    pub fn unix(&self) -> u64 {
        self.now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    /// Moves the clock forward by `by`, waking whoever waited until then.
    pub fn advance(&self, by: Duration) {
        {
            let mut state = self.state();
            state.now = state.now.checked_add(by).unwrap_or(state.now);
            state.changes = state.changes.wrapping_add(1);
        }
        self.moved.notify_waiters();
    }

    /// Runs `work` to its end, moving the clock to the next deadline whenever every actor
    /// waits. Returns what `work` returns.
    pub async fn drive<F: Future>(&self, work: F) -> F::Output {
        tokio::pin!(work);
        loop {
            tokio::select! {
                output = &mut work => return output,
                () = self.step() => {}
            }
        }
    }

    /// Waits until the clock is quiet, then moves it to the earliest deadline.
    #[allow(clippy::disallowed_methods)]
    async fn step(&self) {
        let mut quiet = Duration::ZERO;
        loop {
            let before = self.state().changes;
            // Real time: the simulation lets threads and sockets it cannot see settle.
            tokio::time::sleep(QUIET).await;
            let mut state = self.state();
            if state.changes != before {
                quiet = Duration::ZERO;
                continue;
            }
            quiet = quiet.saturating_add(QUIET);
            let Some(next) = state.waiting.keys().next().copied() else {
                continue;
            };
            let far = next.duration_since(state.now).is_ok_and(|jump| jump > FAR);
            if far && quiet < QUIET_BEFORE_FAR {
                continue;
            }
            if next > state.now {
                state.now = next;
            }
            state.changes = state.changes.wrapping_add(1);
            drop(state);
            self.moved.notify_waiters();
            return;
        }
    }

    /// Waits until the clock reaches `deadline`.
    async fn until(&self, deadline: SystemTime) {
        let _waiting = Waiting::register(self, deadline);
        loop {
            let moved = self.moved.notified();
            let mut moved = std::pin::pin!(moved);
            moved.as_mut().enable();
            if self.state().now >= deadline {
                return;
            }
            moved.await;
        }
    }
}

/// A registered deadline, removed when its wait ends or is dropped.
struct Waiting<'a> {
    clock: &'a SimClock,
    deadline: SystemTime,
}

impl<'a> Waiting<'a> {
    fn register(clock: &'a SimClock, deadline: SystemTime) -> Self {
        let mut state = clock.state();
        *state.waiting.entry(deadline).or_default() += 1;
        state.changes = state.changes.wrapping_add(1);
        Self { clock, deadline }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.clock.state();
        if let Some(count) = state.waiting.get_mut(&self.deadline) {
            *count -= 1;
            if *count == 0 {
                state.waiting.remove(&self.deadline);
            }
        }
        state.changes = state.changes.wrapping_add(1);
    }
}

impl fmt::Debug for SimClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("SimClock")
            .field("now", &state.now)
            .field("waiting", &state.waiting.len())
            .finish()
    }
}

#[async_trait::async_trait]
impl Clock for SimClock {
    fn now(&self) -> SystemTime {
        let mut state = self.state();
        state.changes = state.changes.wrapping_add(1);
        state.now
    }

    async fn sleep(&self, duration: Duration) {
        let deadline = self.state().now.checked_add(duration);
        match deadline {
            Some(deadline) => self.until(deadline).await,
            None => std::future::pending().await,
        }
    }

    async fn timer(&self, duration: Duration) {
        self.sleep(duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waits_in_sequence_add_up_and_waits_side_by_side_overlap() {
        let clock = SimClock::at_unix(0);
        let one = clock.clone();
        clock
            .drive(async move {
                one.sleep(Duration::from_secs(2)).await;
                one.sleep(Duration::from_secs(5)).await;
            })
            .await;
        assert_eq!(clock.unix(), 7);
        let (a, b, c) = (clock.clone(), clock.clone(), clock.clone());
        clock
            .drive(async move {
                tokio::join!(
                    a.sleep(Duration::from_secs(3)),
                    b.sleep(Duration::from_secs(3)),
                    c.sleep(Duration::from_secs(1))
                );
            })
            .await;
        assert_eq!(clock.unix(), 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_wait_holds_the_clock_back_no_longer() {
        let clock = SimClock::at_unix(0);
        let (a, b) = (clock.clone(), clock.clone());
        clock
            .drive(async move {
                tokio::select! {
                    () = a.sleep(Duration::from_secs(100)) => unreachable!(),
                    () = b.sleep(Duration::from_secs(1)) => {}
                }
            })
            .await;
        assert_eq!(clock.unix(), 1);
        assert!(clock.state().waiting.is_empty());
    }
}
