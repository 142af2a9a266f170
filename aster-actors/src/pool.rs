//! [`WorkerPool`]: the idle set of a shared service's worker actors.
//!
//! A call checks a worker out (`acquire`, waiting in FIFO order when every worker is busy —
//! the pool is the backpressure, no call is dropped) and the worker puts itself back when it
//! has finished (`release`). The semaphore's permits always equal the number of idle workers
//! (a permit is added only after the worker is in the idle list), so `acquire` always finds a
//! worker once it has a permit.

use std::sync::Mutex;

use aster_runtime::Status;
use tokio::sync::Semaphore;

/// Idle workers plus a permit per idle worker.
#[derive(Debug)]
pub(crate) struct WorkerPool<T> {
    idle: Mutex<Vec<T>>,
    permits: Semaphore,
}

impl<T> WorkerPool<T> {
    pub(crate) fn new() -> Self {
        WorkerPool { idle: Mutex::new(Vec::new()), permits: Semaphore::new(0) }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks out an idle worker, waiting for one if all are busy.
    pub(crate) async fn acquire(&self) -> Result<T, Status> {
        let permit = self.permits.acquire().await.map_err(|_| Status::unavailable("service is stopping"))?;
        permit.forget();
        self.idle().pop().ok_or_else(|| Status::internal("worker pool invariant broken: permit without idle worker"))
    }

    /// Checks out an idle worker if there is one, without waiting.
    pub(crate) fn try_acquire(&self) -> Option<T> {
        let permit = self.permits.try_acquire().ok()?;
        permit.forget();
        self.idle().pop()
    }

    /// Returns a worker to the idle set.
    pub(crate) fn release(&self, worker: T) {
        if self.permits.is_closed() {
            return;
        }
        self.idle().push(worker);
        self.permits.add_permits(1);
    }

    /// Closes the pool: waiting and future `acquire`s fail; returns the idle workers.
    pub(crate) fn close(&self) -> Vec<T> {
        self.permits.close();
        std::mem::take(&mut *self.idle())
    }

    /// Number of idle workers.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.idle().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn acquire_waits_for_release_in_order() {
        let pool = Arc::new(WorkerPool::new());
        pool.release(1u32);
        let first = pool.acquire().await;
        assert_eq!(first, Ok(1));
        let p2 = pool.clone();
        let waiter = tokio::spawn(async move { p2.acquire().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "no idle worker: the call waits");
        pool.release(7);
        assert_eq!(waiter.await.ok(), Some(Ok(7)));
        assert_eq!(pool.idle_count(), 0);
    }

    #[test]
    fn try_acquire_takes_only_idle_workers() {
        let pool = WorkerPool::new();
        assert_eq!(pool.try_acquire(), None::<u32>);
        pool.release(4u32);
        assert_eq!(pool.try_acquire(), Some(4));
        assert_eq!(pool.try_acquire(), None, "the only worker is checked out");
        pool.release(4);
        let _ = pool.close();
        assert_eq!(pool.try_acquire(), None, "a closed pool hands out nothing");
    }

    #[tokio::test]
    async fn close_fails_waiters_and_returns_idle() {
        let pool = Arc::new(WorkerPool::new());
        pool.release(1u32);
        pool.release(2u32);
        let mut idle = pool.close();
        idle.sort();
        assert_eq!(idle, vec![1, 2]);
        let err = pool.acquire().await.err();
        assert_eq!(err.map(|s| s.code()), Some(aster_runtime::Code::Unavailable));
        pool.release(3);
        assert_eq!(pool.idle_count(), 0, "released after close is dropped");
    }
}
