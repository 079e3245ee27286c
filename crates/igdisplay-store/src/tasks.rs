//! [`TaskLease`]: one named piece of work at a time across every instance on the database
//! (one sync of an account's mirror), on the database's clock. Its holder renews it while the
//! work runs; a holder that dies loses it when it runs out, and another instance takes over.

use crate::error::Error;
use crate::store::{SqlStore, random_u64};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A held task lease (see [`SqlStore::try_task`]). Renewed in the background every third of
/// its length while held; [`release`](Self::release) lets go at once. Dropped without a
/// release, it stops being renewed and runs out by itself.
#[derive(Debug)]
pub struct TaskLease {
    store: SqlStore,
    name: String,
    holder: String,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl SqlStore {
    /// Takes the task lease `name` for `lease` when no other holder's lease on it is running:
    /// `None` while another instance (or another task of this one) does the work. Times are
    /// the database's.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// use igdisplay_store::{Key, KeyRing, SqlStore};
    /// use std::time::Duration;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let keys = KeyRing::new(Key::new("k1", &[7; 32])?);
    /// let store = SqlStore::sqlite(&dir.path().join("accounts.db"), keys).await?;
    /// let held = store.try_task("mirror-sync:1784", Duration::from_secs(600)).await?;
    /// assert!(held.is_some());
    /// assert!(store.try_task("mirror-sync:1784", Duration::from_secs(600)).await?.is_none());
    /// held.unwrap().release().await?;
    /// assert!(store.try_task("mirror-sync:1784", Duration::from_secs(600)).await?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Database`], or [`Error::Random`] when the OS gives no randomness for the
    /// holder's name.
    pub async fn try_task(&self, name: &str, lease: Duration) -> Result<Option<TaskLease>, Error> {
        let holder = format!("task-{:016x}", random_u64()?);
        let seconds = igdisplay_model::whole_seconds(lease).max(1);
        if !self.accounts.take_task(name, &holder, seconds).await? {
            return Ok(None);
        }
        let lost = Arc::new(AtomicBool::new(false));
        // Renewals every third of the lease, counted from the take (not from whenever the
        // renewer first runs).
        let every = lease / 3;
        let mut due = self.clock.now().checked_add(every);
        let renewer = tokio::spawn({
            let (store, name, holder, lost) = (self.clone(), name.to_owned(), holder.clone(), lost.clone());
            async move {
                while let Some(at) = due {
                    // A wait on the clock, never a move of it (a simulated clock's `sleep`
                    // advances it).
                    let wait = at.duration_since(store.clock.now()).unwrap_or_default();
                    store.clock.timer(wait).await;
                    due = at.checked_add(every);
                    match store.accounts.renew_task(&name, &holder, seconds).await {
                        Ok(true) => {}
                        // Run out and taken over (this process stalled past the lease): the
                        // work is another's now.
                        Ok(false) => {
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        Err(error) => tracing::warn!(%error, task = %name, "a task lease was not renewed"),
                    }
                }
            }
        });
        Ok(Some(TaskLease {
            store: self.clone(),
            name: name.to_owned(),
            holder,
            lost,
            renewer,
        }))
    }
}

impl SqlStore {
    /// Runs `work` under the task lease `name` ([`try_task`](Self::try_task)), released
    /// once it ends: `None`, and `work` not run, while another holder does it.
    ///
    /// # Errors
    ///
    /// As [`try_task`](Self::try_task). A failed release is only logged: the lease runs out
    /// by itself.
    pub async fn exclusive<T>(
        &self,
        name: &str,
        lease: Duration,
        work: impl std::future::Future<Output = T>,
    ) -> Result<Option<T>, Error> {
        let Some(held) = self.try_task(name, lease).await? else {
            return Ok(None);
        };
        let done = work.await;
        if let Err(error) = held.release().await {
            tracing::warn!(%error, task = %name, "a task lease was not released; it runs out by itself");
        }
        Ok(Some(done))
    }
}

impl TaskLease {
    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether another holder took the lease over (this one stalled past its end): the work
    /// done since may be another's too.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Lets go of the lease now, so another instance may do the work at once.
    ///
    /// # Errors
    ///
    /// [`Error::Database`]: the lease then runs out by itself.
    pub async fn release(mut self) -> Result<(), Error> {
        self.renewer.abort();
        // Its end awaited: no renewal is in flight once the row goes.
        let _ = (&mut self.renewer).await;
        self.store.accounts.release_task(&self.name, &self.holder).await
    }
}

impl Drop for TaskLease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}
