//! Lock-free shared-state primitives used by the aster actor runtime.
//!
//! Kept in their own dependency-free crate so that their loom models (`--cfg aster_loom`,
//! see `tests/loom_*.rs`) build in seconds without rebuilding the iroh graph.

mod sync {
    #[cfg(aster_loom)]
    pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
    #[cfg(not(aster_loom))]
    pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
}

pub mod tracker;

pub use tracker::CallTracker;
