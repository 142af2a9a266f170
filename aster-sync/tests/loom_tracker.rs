//! loom model of `CallTracker`: under every interleaving of calls beginning/ending and a
//! concurrent close, the drainer is signalled exactly once and no call is admitted after
//! close returned.
//!
//! Run: `RUSTFLAGS="--cfg aster_loom" CARGO_TARGET_DIR=target/loom cargo test -p aster-sync --release --test loom_tracker`
#![cfg(aster_loom)]

use aster_sync::CallTracker;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

/// Two callers racing a close. Preemptions are bounded at 3 (loom's usual setting; the bugs
/// this guards against need at most two) to keep the run in seconds.
#[test]
fn drain_is_signalled_exactly_once() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let t = Arc::new(CallTracker::new());
        let signals = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicBool::new(false));

        let mut callers = Vec::new();
        for _ in 0..2 {
            let t = t.clone();
            let signals = signals.clone();
            let closed = closed.clone();
            callers.push(thread::spawn(move || {
                if t.try_begin() {
                    // Admitted: close must not have completed before we got in.
                    let _ = closed.load(Ordering::SeqCst);
                    if t.end() {
                        signals.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
        }
        if t.close() {
            signals.fetch_add(1, Ordering::SeqCst);
        }
        closed.store(true, Ordering::SeqCst);
        assert!(!t.try_begin(), "admitted after close");
        for c in callers {
            c.join().unwrap();
        }
        assert_eq!(t.in_flight(), 0);
        assert_eq!(signals.load(Ordering::SeqCst), 1, "drainer must be woken exactly once");
    });
}

#[test]
fn begin_after_close_never_admitted() {
    loom::model(|| {
        let t = Arc::new(CallTracker::new());
        let t2 = t.clone();
        let h = thread::spawn(move || t2.try_begin());
        t.close();
        let late = t.try_begin();
        assert!(!late);
        let admitted = h.join().unwrap();
        if admitted {
            assert!(t.end(), "the only call ends after close and must signal");
        }
        assert_eq!(t.in_flight(), 0);
    });
}
