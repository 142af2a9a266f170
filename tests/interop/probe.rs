//! The interop probe services, the Rust half of `tests/interop/py_probe.py`: `InteropProbe`
//! (shared scope) and `InteropSession` (session scope) with the message types tagged
//! `interop/<TypeName>`. Same names, fields (order and types) and methods as the Python
//! declarations, so the contract ids agree and XLANG payloads are byte-compatible.
//!
//! Semantics (identical in both languages; only the `<impl>` marker differs, `rs` here):
//! - `echo_meta(Text) -> MetaEcho`: `text = "<impl>:" + req.text`, the metadata keys/values and
//!   the wire deadline (ms since the epoch, 0 = none) the server saw;
//! - `slow(Text) -> Text`: never answers by itself (the deadline or a cancellation ends it);
//! - `fail(FailRequest) -> Text`: fails with the requested code and message;
//! - `big(Text) -> Text`: `text = "y" * req.n`, `n = len(req.text)`;
//! - session `add(Text) -> Text`: adds `n` to the session total (negative `n`:
//!   INVALID_ARGUMENT `"negative n: <n>"`, total unchanged), answers `"<impl>:" + text` and the
//!   total;
//! - session `ticks(Text) -> Text*`: `Text(text, total + i)` for i = 1, 2, … until cancelled.
//!
//! What the handlers observe is recorded in [`ProbeObserved`] for the tests to await.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use aster::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(default)]
#[aster(tag = "interop/Text")]
pub struct Text {
    pub text: String,
    pub n: i64,
}

impl Text {
    pub fn new(text: impl Into<String>, n: i64) -> Text {
        Text { text: text.into(), n }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(default)]
#[aster(tag = "interop/MetaEcho")]
pub struct MetaEcho {
    pub text: String,
    pub keys: Vec<String>,
    pub values: Vec<String>,
    pub deadline_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(default)]
#[aster(tag = "interop/FailRequest")]
pub struct FailRequest {
    pub code: i64,
    pub message: String,
}

#[aster::service(name = "InteropProbe", version = 1, scope = shared, serialization = [xlang])]
pub trait InteropProbeHandler {
    #[unary]
    async fn echo_meta(&self, ctx: CallContext, req: Text) -> Result<MetaEcho, Status>;

    #[unary]
    async fn slow(&self, ctx: CallContext, req: Text) -> Result<Text, Status>;

    #[unary]
    async fn fail(&self, ctx: CallContext, req: FailRequest) -> Result<Text, Status>;

    #[unary]
    async fn big(&self, ctx: CallContext, req: Text) -> Result<Text, Status>;
}

#[aster::service(name = "InteropSession", version = 1, scope = session, serialization = [xlang])]
pub trait InteropSessionHandler {
    #[unary]
    async fn add(&mut self, ctx: CallContext, req: Text) -> Result<Text, Status>;

    #[server_stream]
    async fn ticks(&mut self, ctx: CallContext, req: Text, sink: ServerSink<Text>) -> Result<(), Status>;
}

// ── observation ─────────────────────────────────────────────────────────────

/// A counter tests can await (bounded by a hang guard).
#[derive(Clone, Debug)]
pub struct Count(Arc<watch::Sender<usize>>);

impl Default for Count {
    fn default() -> Self {
        Count(Arc::new(watch::channel(0).0))
    }
}

impl Count {
    pub fn incr(&self) {
        self.0.send_modify(|c| *c += 1);
    }

    pub fn get(&self) -> usize {
        *self.0.borrow()
    }

    /// Waits until the count reaches `n`; panics after `limit` (a hang guard, not a timing
    /// assertion).
    pub async fn wait_for(&self, n: usize, limit: Duration, what: &str) {
        let mut rx = self.0.subscribe();
        if tokio::time::timeout(limit, rx.wait_for(|c| *c >= n)).await.is_err() {
            panic!("hang guard: {what} (count {} < {n}) after {limit:?}", self.get());
        }
    }
}

/// What the probe handlers observed.
#[derive(Debug, Default)]
pub struct ProbeObserved {
    /// `slow` handlers that ended because their call was cancelled (deadline included).
    pub slow_cancelled: Count,
    /// `ticks` handlers that ended because their call was cancelled.
    pub ticks_cancelled: Count,
    /// `InteropSession` instances dropped (the session ended).
    pub sessions_closed: Count,
    /// `InteropSession` instances created.
    pub sessions_opened: Count,
}

/// Counts into `counter` when dropped while the call is cancelled (the handler returned
/// because of, or was dropped on, cancellation).
struct CancelWitness {
    ctx: CallContext,
    counter: Count,
}

impl Drop for CancelWitness {
    fn drop(&mut self) {
        if self.ctx.is_cancelled() {
            self.counter.incr();
        }
    }
}

// ── implementations ─────────────────────────────────────────────────────────

pub struct RsProbe {
    pub observed: Arc<ProbeObserved>,
}

impl InteropProbeHandler for RsProbe {
    async fn echo_meta(&self, ctx: CallContext, req: Text) -> Result<MetaEcho, Status> {
        let (keys, values) = ctx.metadata().iter().cloned().unzip();
        Ok(MetaEcho { text: format!("rs:{}", req.text), keys, values, deadline_ms: ctx.deadline_epoch_ms() })
    }

    async fn slow(&self, ctx: CallContext, _req: Text) -> Result<Text, Status> {
        let _witness = CancelWitness { ctx: ctx.clone(), counter: self.observed.slow_cancelled.clone() };
        tokio::select! {
            _ = ctx.cancelled() => Err(Status::cancelled("slow: cancelled")),
            _ = tokio::time::sleep(Duration::from_secs(600)) => Err(Status::internal("slow: never cancelled")),
        }
    }

    async fn fail(&self, _ctx: CallContext, req: FailRequest) -> Result<Text, Status> {
        Err(Status::new(Code::from_i64(req.code), req.message))
    }

    async fn big(&self, _ctx: CallContext, req: Text) -> Result<Text, Status> {
        let n = usize::try_from(req.n.max(0)).unwrap_or(0).min(1 << 20);
        Ok(Text { text: "y".repeat(n), n: req.text.chars().count() as i64 })
    }
}

pub struct RsSession {
    pub observed: Arc<ProbeObserved>,
    pub total: i64,
}

impl RsSession {
    pub fn new(observed: Arc<ProbeObserved>) -> RsSession {
        observed.sessions_opened.incr();
        RsSession { observed, total: 0 }
    }
}

impl Drop for RsSession {
    fn drop(&mut self) {
        self.observed.sessions_closed.incr();
    }
}

impl InteropSessionHandler for RsSession {
    async fn add(&mut self, _ctx: CallContext, req: Text) -> Result<Text, Status> {
        if req.n < 0 {
            return Err(Status::invalid_argument(format!("negative n: {}", req.n)));
        }
        self.total += req.n;
        Ok(Text { text: format!("rs:{}", req.text), n: self.total })
    }

    async fn ticks(&mut self, ctx: CallContext, req: Text, mut sink: ServerSink<Text>) -> Result<(), Status> {
        let _witness = CancelWitness { ctx: ctx.clone(), counter: self.observed.ticks_cancelled.clone() };
        let mut i = 0;
        loop {
            i += 1;
            sink.send(Text { text: req.text.clone(), n: self.total + i }).await?;
            tokio::select! {
                _ = ctx.cancelled() => return Err(Status::cancelled("ticks: cancelled")),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }
}

/// Adds the probe services (sharing `observed`) to `builder`.
pub fn serve_probe(builder: NodeBuilder, observed: &Arc<ProbeObserved>) -> NodeBuilder {
    let shared = observed.clone();
    let sessions = observed.clone();
    builder
        .serve(InteropProbeService(RsProbe { observed: shared }))
        .serve_sessions(move |_info: &SessionInfo| InteropSessionService(RsSession::new(sessions.clone())))
}
