//! `spawn_cleanup`: Django's `clearsessions`, on a timer.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::SessionStore;

/// Handle of the task started by [`spawn_cleanup`]; dropping it stops the task.
#[derive(Debug)]
#[must_use = "the cleanup task stops when this handle is dropped"]
pub struct CleanupHandle {
    task: JoinHandle<()>,
}

impl CleanupHandle {
    /// Stops the task now (dropping the handle does the same).
    pub fn stop(self) {}
}

impl Drop for CleanupHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Calls [`SessionStore::clear_expired`] every `period` (the first time at once) on the
/// current tokio runtime. Errors are logged and the task keeps going; it stops when the
/// returned handle is dropped.
///
/// # Panics
///
/// When called outside a tokio runtime, or with a zero `period`.
pub fn spawn_cleanup<S>(store: Arc<S>, period: Duration) -> CleanupHandle
where
    S: SessionStore + ?Sized,
{
    assert!(!period.is_zero(), "spawn_cleanup needs a non-zero period");
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match store.clear_expired().await {
                Ok(0) => {}
                Ok(removed) => tracing::debug!(removed, "cleared expired sessions"),
                Err(error) => tracing::warn!(
                    error = %crate::error::error_chain(&error),
                    "clearing expired sessions failed; will retry"
                ),
            }
        }
    });
    CleanupHandle { task }
}
