//! Waiting for a state to change, by event: the writers' counters, the alert deliveries, the
//! simulator's request counts.
//!
//! Background work (the ledger writer, the outcome writer, alert delivery) updates counters that
//! tests and tools need to wait on: "five records spilled", "the writer is stalled", "four alerts
//! delivered". Polling them with a sleep makes a test slow on a fast machine and flaky on a
//! loaded one; a [`Progress`] beside the counters is told after each change, and
//! [`Progress::until`] wakes on exactly those changes.
//!
//! [`Progress::changed`] costs a fence and one atomic load while nobody waits, so it may sit on
//! the request path.

use std::sync::atomic::{AtomicUsize, Ordering, fence};

/// Wakes the tasks waiting in [`Progress::until`] when the state beside it changes.
#[derive(Debug, Default)]
pub struct Progress {
    notify: tokio::sync::Notify,
    /// Tasks inside [`Progress::until`]: [`Progress::changed`] only notifies when there are some.
    waiting: AtomicUsize,
}

impl Progress {
    /// Call after the state changed (after the store, so a woken waiter sees the new value).
    pub fn changed(&self) {
        // Pairs with the fence in `until`: either this load sees the waiter, or the waiter's
        // check sees the new state.
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Returns once `holds` is true, checking it now and after each [`Progress::changed`].
    pub async fn until(&self, mut holds: impl FnMut() -> bool) {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _counted = Waiting(&self.waiting);
        fence(Ordering::SeqCst);
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check: a change between the check and the await still wakes.
            notified.as_mut().enable();
            if holds() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    /// Every change is seen: a waiter for each value from 1 to N returns, with a writer on
    /// another thread counting up as fast as it can (a lost wake-up would hang this test).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_change_is_missed() {
        struct State {
            n: AtomicU64,
            progress: Progress,
        }
        let s = Arc::new(State {
            n: AtomicU64::new(0),
            progress: Progress::default(),
        });
        const N: u64 = 2_000;
        let waiters: Vec<_> = (1..=N)
            .step_by(97)
            .map(|want| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.progress
                        .until(|| s.n.load(Ordering::Relaxed) >= want)
                        .await;
                })
            })
            .collect();
        let writer = {
            let s = s.clone();
            std::thread::spawn(move || {
                for _ in 0..N {
                    s.n.fetch_add(1, Ordering::Relaxed);
                    s.progress.changed();
                }
            })
        };
        for w in waiters {
            w.await.unwrap();
        }
        writer.join().unwrap();
        assert_eq!(s.progress.waiting.load(Ordering::Relaxed), 0);
    }

    /// A state that already holds returns without any change.
    #[tokio::test]
    async fn a_state_that_holds_returns_at_once() {
        Progress::default().until(|| true).await;
    }
}
