//! [`CallTracker`]: counts in-flight calls and closes admission for graceful shutdown.
//!
//! State is one atomic word: bit 0 = closed, the rest = number of in-flight calls × 2.
//! - [`CallTracker::try_begin`] admits a call unless closed (a CAS loop, so a call is never
//!   admitted after [`CallTracker::close`] returned);
//! - [`CallTracker::end`] returns `true` to exactly one caller: the one whose call was the
//!   last in flight after close — it must wake the drainer;
//! - [`CallTracker::close`] returns `true` when nothing was in flight at the moment of closing.
//!
//! Exactly one of "`close` returned true" or "some `end` returned true" happens after a close,
//! so a drainer that waits for either is never left waiting (model-checked in
//! `tests/loom_tracker.rs`).

use crate::sync::{AtomicUsize, Ordering};

const CLOSED: usize = 1;
const ONE: usize = 2;

/// Counter of in-flight calls with a "closed" flag.
#[derive(Debug)]
pub struct CallTracker {
    state: AtomicUsize,
}

impl Default for CallTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl CallTracker {
    /// An open tracker with no calls in flight.
    pub fn new() -> Self {
        CallTracker { state: AtomicUsize::new(0) }
    }

    /// Admits a call; `false` once closed.
    pub fn try_begin(&self) -> bool {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur & CLOSED != 0 {
                return false;
            }
            match self.state.compare_exchange(cur, cur + ONE, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Ends an admitted call. Returns `true` if this was the last call in flight of a closed
    /// tracker (the caller must then wake whoever drains).
    pub fn end(&self) -> bool {
        let prev = self.state.fetch_sub(ONE, Ordering::AcqRel);
        debug_assert!(prev >= ONE, "end() without begin()");
        prev == ONE | CLOSED
    }

    /// Closes admission. Returns `true` if no call was in flight at that moment.
    pub fn close(&self) -> bool {
        let prev = self.state.fetch_or(CLOSED, Ordering::AcqRel);
        prev & CLOSED == 0 && prev < ONE
    }

    /// Number of calls in flight.
    pub fn in_flight(&self) -> usize {
        self.state.load(Ordering::Acquire) / ONE
    }

    /// Whether admission is closed.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }
}

#[cfg(all(test, not(aster_loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_and_closes() {
        let t = CallTracker::new();
        assert!(t.try_begin());
        assert!(t.try_begin());
        assert_eq!(t.in_flight(), 2);
        assert!(!t.close(), "two calls in flight");
        assert!(t.is_closed());
        assert!(!t.try_begin(), "closed tracker admits nothing");
        assert!(!t.end());
        assert!(t.end(), "last end after close signals");
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn close_when_idle_reports_empty() {
        let t = CallTracker::new();
        assert!(t.close());
        assert!(!t.close(), "second close is not the first to see it empty");
    }

    #[test]
    fn end_before_close_does_not_signal() {
        let t = CallTracker::new();
        assert!(t.try_begin());
        assert!(!t.end());
        assert!(t.close());
    }
}
