//! The one clock Tollgate reads: the data plane (admission, limits, budgets, request times, key
//! expiry, alerts) and the control plane (reports, expiries) take a [`Clock`] instead of asking
//! the system, so tests set it to the last millisecond of a minute, an hour, a day or a month and
//! check the boundary on purpose, instead of skipping when one happens to pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Unix milliseconds from the system, or from a hand-set value shared by every clone.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            None => f.write_str("Clock(system)"),
            Some(t) => write!(f, "Clock(manual {})", t.load(Ordering::Relaxed)),
        }
    }
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that reads `start_ms` until it is set or advanced (tests, replays).
    pub fn manual(start_ms: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Now, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::Relaxed),
            None => system_ms(),
        }
    }

    /// Sets a manual clock to `ms`; returns false (and changes nothing) on the system clock.
    pub fn set(&self, ms: i64) -> bool {
        match &self.manual {
            Some(t) => {
                t.store(ms, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Moves a manual clock forward by `by`; returns false on the system clock.
    pub fn advance(&self, by: Duration) -> bool {
        match &self.manual {
            Some(t) => {
                t.fetch_add(
                    i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
                    Ordering::Relaxed,
                );
                true
            }
            None => false,
        }
    }
}

fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_is_shared_by_its_clones() {
        let c = Clock::manual(1_000);
        let d = c.clone();
        assert!(c.advance(Duration::from_millis(500)));
        assert_eq!(d.now_ms(), 1_500);
        assert!(d.set(42));
        assert_eq!(c.now_ms(), 42);
        let s = Clock::system();
        assert!(!s.set(1) && s.now_ms() > 1_700_000_000_000);
    }
}
