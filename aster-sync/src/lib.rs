//! Lock-free and lock-sharded shared-state primitives used by the aster runtime (call tracking,
//! single-use claims).
//!
//! Kept in their own dependency-free crate so that their loom models (`--cfg aster_loom`,
//! see `tests/loom_*.rs`) build in seconds without rebuilding the iroh graph.

mod sync {
    #[cfg(aster_loom)]
    pub(crate) use loom::sync::Mutex;
    #[cfg(aster_loom)]
    pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
    #[cfg(not(aster_loom))]
    pub(crate) use std::sync::Mutex;
    #[cfg(not(aster_loom))]
    pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
}

pub mod claim;
pub mod tracker;

pub use claim::ClaimSet;
pub use tracker::CallTracker;
