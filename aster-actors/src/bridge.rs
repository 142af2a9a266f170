//! The stream bridge: reads one QUIC bi-stream of the `aster/1` ALPN, validates its
//! StreamHeader in the reference's dispatch order, and turns frames into typed messages for
//! the service's actors (all four patterns, plus v0.1 session streams with CALL/CANCEL frames).
//!
//! Dispatch order and error trailers (protocol §3.7): missing HEADER → INTERNAL; undecodable
//! header → INTERNAL; empty service → INVALID_ARGUMENT; unknown (service, version) →
//! NOT_FOUND; scope mismatch → FAILED_PRECONDITION; unknown method → UNIMPLEMENTED;
//! serialization mode not accepted → INVALID_ARGUMENT; bad metadata → INVALID_ARGUMENT;
//! caller's admission expired (closed gate) → UNAUTHENTICATED; capability check (Gate 3:
//! service-level ∧ method-level `requires`) → PERMISSION_DENIED; expired deadline →
//! DEADLINE_EXCEEDED; the node's call authorizer (Gate 2) → its status; only then is the request
//! decoded and the handler run under min(deadline, method timeout, 300 s). For v0.1 session
//! streams the per-call steps run for every CALL (a refused call answers with its trailer and
//! the session continues).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aster_runtime::codec::PayloadCodec;
use aster_runtime::transport::stream::{FrameReader, FrameWriter};
use aster_runtime::trust::check_call;
use aster_runtime::wire::{CallHeader, Frame, ProtocolMessage, RpcStatus, StreamHeader, flags, limits};
use aster_runtime::{SerializationMode, Status};
use bytes::Bytes;
use futures::FutureExt;
use iroh::EndpointId;
use iroh::endpoint::{RecvStream, SendStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::authorize::CallAuthorizer;
use crate::context::{CallContext, CallInfo};
use crate::host::{ServiceHost, SessionLink};
use crate::io::{CHANNEL_CAPACITY, Inbound};
use crate::node::InflightGuard;
use crate::service::{Completion, Outcome, Pattern, RawCall, Scope, ServiceDescriptor, SessionInfo};
use crate::trust::AdmittedPeers;

/// Settings the bridge applies to every stream.
#[derive(Clone, Debug)]
pub(crate) struct BridgeConfig {
    pub(crate) max_frame_size: u32,
    pub(crate) handler_cap: Duration,
    /// How long the bridge waits for a call's HEADER and (single-request patterns) its request
    /// frame before giving up on the stream.
    pub(crate) frame_read_timeout: Duration,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            max_frame_size: limits::MAX_FRAME_SIZE,
            handler_cap: limits::MAX_HANDLER_TIMEOUT,
            frame_read_timeout: limits::DEFAULT_FRAME_READ_TIMEOUT,
        }
    }
}

/// Reads the frame that opens a call (its HEADER, or a single-request call's request frame):
/// bounded by the frame-read timeout, and abandoned when the node starts shutting down, so a
/// peer that opens a stream and goes quiet holds neither a task nor the shutdown drain.
async fn read_opening_frame(env: &BridgeEnv, reader: &mut FrameReader, what: &str) -> Result<Option<Frame>, Status> {
    let limit = env.config.frame_read_timeout;
    tokio::select! {
        biased;
        _ = env.draining.cancelled() => Err(Status::unavailable("server is shutting down")),
        r = tokio::time::timeout(limit, reader.next()) => match r {
            Ok(r) => r.map_err(|e| e.to_status()),
            Err(_) => Err(Status::deadline_exceeded(format!("no {what} within {} ms", limit.as_millis()))),
        },
    }
}

/// The registered services, keyed by (name, version). Immutable once the node runs. Keyed by
/// the descriptors' `&'static str` names so a call's lookup borrows the header's name instead
/// of allocating.
pub(crate) type Registry = HashMap<(&'static str, i64), Arc<dyn ServiceHost>>;

/// Everything a bridge needs, shared by all connections of a node.
pub(crate) struct BridgeEnv {
    pub(crate) registry: Registry,
    pub(crate) config: BridgeConfig,
    /// Cancelled when shutdown's grace period is over: every running call is cancelled.
    pub(crate) hard_stop: CancellationToken,
    /// Cancelled when shutdown begins: sessions end at their next call boundary (an idle
    /// session is not a call in flight and must not hold up the drain).
    pub(crate) draining: CancellationToken,
    /// Admitted peers and their verified attributes (Gate 1's output; Gate 3's input).
    pub(crate) admitted: Arc<AdmittedPeers>,
    /// A closed gate: calls of peers without a current admission are refused (their admission
    /// expired after they connected; Gate 0 refuses the connection of others).
    pub(crate) require_admission: bool,
    /// Gate 2 (`None` = allow every call).
    pub(crate) authorizer: Option<Arc<dyn CallAuthorizer>>,
}

fn now_epoch_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn trailer(status: &Status, json: bool) -> Cow<'static, [u8]> {
    if status.code() == aster_runtime::Code::Ok && status.message().is_empty() && status.details().is_empty() {
        return Cow::Borrowed(RpcStatus::ok_bytes(json));
    }
    Cow::Owned(RpcStatus::from(status).encode(json))
}

async fn write_trailer_and_finish(env: &BridgeEnv, writer: &mut FrameWriter, status: &Status, json: bool) {
    if writer.push(flags::TRAILER, &trailer(status, json)).is_ok() {
        finish_delivered(env, writer).await;
    }
}

/// Finishes the stream. While the node is draining, also waits until the peer has
/// acknowledged everything written (or stopped reading, or the connection is gone, or the
/// node's hard stop): the stream then counts as in flight until its answer is delivered, so the
/// close at the end of the drain cannot discard it.
///
/// Outside a drain the task does not wait: QUIC keeps retransmitting a finished stream's data
/// after the handle is dropped, for as long as the connection lives, and waiting would cost
/// every call one more wake-up when the acknowledgement arrives (measured in
/// docs/benchmarks.md).
async fn finish_delivered(env: &BridgeEnv, writer: &mut FrameWriter) {
    if writer.finish().await.is_ok() && env.draining.is_cancelled() {
        tokio::select! {
            _ = writer.stopped() => {}
            _ = env.hard_stop.cancelled() => {}
        }
    }
}

/// How long an answer whose writing had to wait may take to be written: until the call's
/// deadline, but at least [`ANSWER_WRITE_GRACE`] (an answer to a call that has just reached its
/// deadline still gets its trailer out).
fn answer_bound(deadline: tokio::time::Instant) -> tokio::time::Instant {
    deadline.max(tokio::time::Instant::now() + ANSWER_WRITE_GRACE)
}

/// The least time the writing of an answer is given (see [`answer_bound`]).
const ANSWER_WRITE_GRACE: Duration = Duration::from_secs(10);

/// Writes what is queued on `writer` and finishes the stream ([`finish_delivered`]), bounded
/// by `bound` and the node's hard stop; past either, the stream is reset (the caller sees the
/// call fail instead of waiting for an answer that cannot be delivered).
async fn deliver(env: &BridgeEnv, writer: &mut FrameWriter, bound: tokio::time::Instant) {
    let delivered = tokio::select! {
        r = tokio::time::timeout_at(bound, finish_delivered(env, writer)) => r.is_ok(),
        _ = env.hard_stop.cancelled() => false,
    };
    if !delivered {
        writer.reset();
    }
}

/// Queues a call's response frame (if it has one); returns the status its trailer carries.
fn push_outcome(writer: &mut FrameWriter, result: Result<Outcome, Status>) -> Status {
    match result {
        Ok(Outcome::Response(f, payload)) => match writer.push(f, &payload) {
            Ok(()) => Status::ok(),
            Err(s) => s,
        },
        Ok(Outcome::Done) => Status::ok(),
        Err(s) => s,
    }
}

fn is_data(frame: &Frame) -> bool {
    frame.flags & !flags::COMPRESSED == 0
}

/// The effective deadline of a call: the caller's wire deadline, the method's timeout and the
/// handler cap, whichever comes first. `Err` when the wire deadline has already passed.
fn effective_deadline(
    wire_ms: i64,
    method_timeout: Option<Duration>,
    cfg: &BridgeConfig,
) -> Result<(Instant, Option<Instant>), Status> {
    let now = Instant::now();
    let mut limit = now + cfg.handler_cap;
    if let Some(t) = method_timeout {
        limit = limit.min(now + t);
    }
    let mut caller = None;
    if wire_ms > 0 {
        // As the reference: a deadline that has already passed is rejected on receipt, and a
        // running handler is stopped at exactly the deadline (no skew allowance).
        let remaining = wire_ms - now_epoch_ms();
        if remaining < 0 {
            return Err(Status::deadline_exceeded(format!(
                "deadline already expired on receipt ({} ms ago)",
                -remaining
            )));
        }
        let at = now + Duration::from_millis(remaining as u64);
        caller = Some(at);
        limit = limit.min(at);
    }
    Ok((limit, caller))
}

struct Prepared {
    ctx: CallContext,
    cancel: CancellationToken,
    enforce_at: Instant,
}

/// One call as the header (or a session's CallHeader) describes it.
struct CallRequest<'a> {
    method_idx: usize,
    peer: EndpointId,
    call_id: &'a str,
    session_id: Option<&'a str>,
    deadline_ms: i64,
    keys: &'a [String],
    values: &'a [String],
}

impl<'a> CallRequest<'a> {
    /// The call a per-call stream's HEADER describes.
    fn of_stream(header: &'a StreamHeader, method_idx: usize, peer: EndpointId) -> CallRequest<'a> {
        CallRequest {
            method_idx,
            peer,
            call_id: &header.call_id,
            session_id: None,
            deadline_ms: header.deadline_epoch_ms,
            keys: &header.metadata_keys,
            values: &header.metadata_values,
        }
    }
}

/// The call gates, before anything of the request is decoded: metadata limits, the caller's
/// admission and its attributes, Gate 3 (service-level ∧ method-level `requires` against the
/// caller's `aster.role`; PERMISSION_DENIED), the deadline (DEADLINE_EXCEEDED), then Gate 2
/// (the node's [`CallAuthorizer`], if any).
async fn admit_call(env: &BridgeEnv, host: &dyn ServiceHost, req: CallRequest<'_>) -> Result<Prepared, Status> {
    let prepared = prepare_call(env, host, req)?;
    if let Some(authorizer) = &env.authorizer {
        authorize(&**authorizer, &prepared).await?;
    }
    Ok(prepared)
}

/// Runs Gate 2 for a prepared call, bounded by its deadline; a panic is INTERNAL.
async fn authorize(authorizer: &dyn CallAuthorizer, prepared: &Prepared) -> Result<(), Status> {
    // The call itself is inside the guarded future too: a hook may panic before it returns one.
    let verdict = AssertUnwindSafe(async { authorizer.authorize(&prepared.ctx).await }).catch_unwind();
    let deadline = tokio::time::Instant::from_std(prepared.enforce_at);
    // A hook that hangs is abandoned at the node's hard stop too (the call's token is its child).
    let bounded = async {
        tokio::select! {
            biased;
            _ = prepared.cancel.cancelled() => None,
            r = tokio::time::timeout_at(deadline, verdict) => Some(r),
        }
    };
    let Some(outcome) = bounded.await else {
        return Err(Status::unavailable("server is shutting down"));
    };
    match outcome {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(s))) if s.code() == aster_runtime::Code::Ok => {
            Err(Status::permission_denied(format!("call refused by {}", authorizer.name())))
        }
        Ok(Ok(Err(s))) => Err(s),
        Ok(Err(panic)) => {
            let msg = crate::supervision::panic_message(&*panic);
            tracing::error!(authorizer = authorizer.name(), panic = %msg, "call authorizer panicked");
            Err(Status::internal(format!("authorization failed: {msg}")))
        }
        Err(_) => Err(Status::deadline_exceeded("deadline exceeded during authorization")),
    }
}

fn prepare_call(env: &BridgeEnv, host: &dyn ServiceHost, req: CallRequest<'_>) -> Result<Prepared, Status> {
    let CallRequest { method_idx, peer, call_id, session_id, deadline_ms, keys, values } = req;
    limits::validate_metadata(keys, values)?;
    let desc = host.descriptor();
    let method = &desc.methods[method_idx];
    let admission = env.admitted.get(&peer);
    if env.require_admission && admission.is_none() {
        return Err(Status::unauthenticated("the caller's admission has expired; run consumer admission again"));
    }
    let no_attributes = BTreeMap::new();
    let attributes = admission.as_ref().map_or(&no_attributes, |a| &*a.attributes);
    if let Err(denied) = check_call(desc.name, method.name, host.requires(), method.requires.as_ref(), attributes) {
        tracing::debug!(peer = %peer.fmt_short(), service = desc.name, method = method.name, %denied,
            "Gate 3: capability check failed");
        return Err(Status::permission_denied(denied.message()));
    }
    let (enforce_at, caller) = effective_deadline(deadline_ms, method.timeout, &env.config)?;
    let cancel = env.hard_stop.child_token();
    let ctx = CallContext::from_info(
        CallInfo {
            service: Cow::Borrowed(desc.name),
            method: Cow::Borrowed(method.name),
            call_id: call_id.to_string(),
            session_id: session_id.map(str::to_string),
            peer,
            deadline: caller,
            deadline_epoch_ms: deadline_ms,
            metadata: keys.iter().cloned().zip(values.iter().cloned()).collect(),
            attributes: attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        },
        cancel.clone(),
    );
    Ok(Prepared { ctx, cancel, enforce_at })
}

/// Serves a newly accepted bi-stream. Never panics on peer input, never blocks.
///
/// The unary fast path: when the HEADER, the request frame and the end of input have all
/// arrived with the stream (the usual case: a caller writes them in one go), the call is
/// checked and decoded right here and handed, together with the stream's send half (a
/// [`CallTail`]), to an idle worker actor of the service, which runs the handler and writes
/// the answer itself. A unary call then costs no task of its own and no wake-up of one. In
/// every other case (data still to come, a session, a streaming method, Gate 2 hooks, no idle
/// worker, an error to answer) the stream gets a task of its own, which resumes from exactly
/// what has been read.
pub(crate) fn accept_stream(
    env: &Arc<BridgeEnv>,
    peer: EndpointId,
    send: SendStream,
    recv: RecvStream,
    guard: InflightGuard,
) {
    let mut reader = FrameReader::new(recv).with_max_frame_size(env.config.max_frame_size);
    let writer = FrameWriter::new(send);
    let first = match reader.next().now_or_never() {
        Some(Ok(Some(f))) => f,
        // Not arrived yet, or an error / end of stream the task reports.
        _ => {
            tokio::spawn(serve_stream(env.clone(), peer, reader, writer, guard));
            return;
        }
    };
    let header = match first.has(flags::HEADER).then(|| StreamHeader::decode_sniffed(&first.payload)) {
        Some(Ok(h)) => h,
        _ => {
            tokio::spawn(serve_first(env.clone(), peer, first, reader, writer, guard));
            return;
        }
    };
    let json = header.serialization_mode == SerializationMode::Json.as_i64() || first.payload.first() == Some(&b'{');
    let routed = route_header(env, &header);
    let fast = matches!(&routed, Ok((host, Some(idx)))
        if host.descriptor().methods[*idx].pattern == Pattern::Unary)
        && env.authorizer.is_none();
    let (host, idx) = match routed {
        Ok((host, Some(idx))) if fast => (host, idx),
        routed => {
            tokio::spawn(serve_routed(env.clone(), peer, routed, header, json, reader, writer, guard));
            return;
        }
    };
    let request = match reader.next().now_or_never() {
        Some(Ok(Some(f))) if fast_path_request(&f) => f,
        // Not arrived yet: the task waits for it. Anything else it answers.
        pending => {
            let read = pending.and_then(|r| r.ok()).flatten();
            tokio::spawn(serve_call_task(env.clone(), host, idx, peer, header, json, read, reader, writer, guard));
            return;
        }
    };
    match reader.next().now_or_never() {
        Some(Ok(None)) => {}
        // Reset by the caller already: nobody is waiting for an answer.
        Some(Err(_)) => {
            let mut writer = writer;
            writer.reset();
            return;
        }
        // More input (ignored, as on the task path) or not yet the end: the task watches it.
        _ => {
            tokio::spawn(serve_call_task(
                env.clone(),
                host,
                idx,
                peer,
                header,
                json,
                Some(request),
                reader,
                writer,
                guard,
            ));
            return;
        }
    }
    drop(reader);
    let req = CallRequest::of_stream(&header, idx, peer);
    let tail_of = |cancel: CancellationToken, enforce_at: Instant, writer: FrameWriter| CallTail {
        env: env.clone(),
        writer: Some(writer),
        json,
        cancel,
        deadline: tokio::time::Instant::from_std(enforce_at),
        guard: Some(guard),
    };
    let Prepared { ctx, cancel, enforce_at } = match prepare_call(env, &*host, req) {
        Ok(p) => p,
        Err(status) => {
            let tail = tail_of(CancellationToken::new(), Instant::now(), writer);
            tokio::spawn(tail.fail(status));
            return;
        }
    };
    let codec = PayloadCodec::new(mode_of(&header));
    let raw = RawCall { ctx, codec, request: Some(request), inbound: None, outbound: None };
    let tail = tail_of(cancel, enforce_at, writer);
    host.call_now(idx, raw, tail);
}

/// The largest request payload the fast path decodes in the accept loop.
const FAST_PATH_MAX_REQUEST: usize = 16 * 1024;

/// Whether `f` is a request the accept loop may decode itself: a data frame, small and not
/// compressed. A large or compressed request is decoded in a task of its own, so the accept loop
/// never stalls the connection's other streams on a multi-megabyte decode.
fn fast_path_request(f: &Frame) -> bool {
    is_data(f) && !f.has(flags::COMPRESSED) && f.payload.len() <= FAST_PATH_MAX_REQUEST
}

/// The task of a stream that could not take the fast path, from its first frame on.
async fn serve_stream(
    env: Arc<BridgeEnv>,
    peer: EndpointId,
    mut reader: FrameReader,
    mut writer: FrameWriter,
    guard: InflightGuard,
) {
    let first = match read_opening_frame(&env, &mut reader, "HEADER frame").await {
        Ok(Some(f)) => f,
        Ok(None) => {
            let _ = writer.finish().await;
            return;
        }
        Err(status) => {
            write_trailer_and_finish(&env, &mut writer, &status, false).await;
            return;
        }
    };
    serve_first(env, peer, first, reader, writer, guard).await;
}

/// Validates and decodes the HEADER frame, then routes the stream.
async fn serve_first(
    env: Arc<BridgeEnv>,
    peer: EndpointId,
    first: Frame,
    reader: FrameReader,
    mut writer: FrameWriter,
    guard: InflightGuard,
) {
    let sniff_json = first.payload.first() == Some(&b'{');
    if !first.has(flags::HEADER) {
        let s = Status::internal("First frame must have HEADER flag");
        write_trailer_and_finish(&env, &mut writer, &s, sniff_json).await;
        return;
    }
    let header = match StreamHeader::decode_sniffed(&first.payload) {
        Ok(h) => h,
        Err(e) => {
            let s = Status::internal(format!("Invalid StreamHeader: {e}"));
            write_trailer_and_finish(&env, &mut writer, &s, sniff_json).await;
            return;
        }
    };
    let json = header.serialization_mode == SerializationMode::Json.as_i64() || sniff_json;
    let routed = route_header(&env, &header);
    serve_routed(env, peer, routed, header, json, reader, writer, guard).await;
}

/// Serves a stream whose HEADER has been routed (or refused).
#[allow(clippy::too_many_arguments)]
async fn serve_routed(
    env: Arc<BridgeEnv>,
    peer: EndpointId,
    routed: Result<(Arc<dyn ServiceHost>, Option<usize>), Status>,
    header: StreamHeader,
    json: bool,
    reader: FrameReader,
    mut writer: FrameWriter,
    guard: InflightGuard,
) {
    match routed {
        // Its own task: this one is sized for a call, an idle session needs much less.
        Ok((host, None)) => {
            tokio::spawn(async move {
                serve_session(&env, host, peer, header, json, reader, writer).await;
                drop(guard);
            });
        }
        Ok((host, Some(idx))) => serve_call_task(env, host, idx, peer, header, json, None, reader, writer, guard).await,
        Err(status) => {
            write_trailer_and_finish(&env, &mut writer, &status, json).await;
            drop(guard);
        }
    }
}

/// [`serve_call`] as the task of a stream (the fast path's fallback once routed).
#[allow(clippy::too_many_arguments)]
async fn serve_call_task(
    env: Arc<BridgeEnv>,
    host: Arc<dyn ServiceHost>,
    idx: usize,
    peer: EndpointId,
    header: StreamHeader,
    json: bool,
    read: Option<Frame>,
    reader: FrameReader,
    writer: FrameWriter,
    guard: InflightGuard,
) {
    serve_call(&env, host, idx, peer, header, json, read, reader, writer).await;
    drop(guard);
}

/// The end of a unary call, carried to where its handler runs: the stream's send half, the
/// call's deadline and cancellation, and its in-flight registration. [`CallTail::finish`]
/// awaits the handler's completion and writes the answer and the trailer; a tail dropped
/// unfinished (its actor stopped before running it) answers UNAVAILABLE from a task of its own.
pub(crate) struct CallTail {
    env: Arc<BridgeEnv>,
    writer: Option<FrameWriter>,
    json: bool,
    cancel: CancellationToken,
    deadline: tokio::time::Instant,
    guard: Option<InflightGuard>,
}

impl std::fmt::Debug for CallTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallTail").field("json", &self.json).finish_non_exhaustive()
    }
}

impl CallTail {
    /// Awaits `completion` (bounded by the deadline, the call's cancellation and the caller
    /// going away), then writes the response and the trailer.
    pub(crate) async fn finish(mut self, completion: Completion) {
        let env = self.env.clone();
        let cancel = self.cancel.clone();
        let deadline = self.deadline;
        let json = self.json;
        // The writer stays in `self` until the answer is written: should this future be dropped
        // first (its actor stopped), the tail's `Drop` still answers.
        let Some(writer) = self.writer.as_mut() else { return };
        let result = tokio::select! {
            biased;
            r = completion => match r {
                Err(_) if cancel.is_cancelled() => Err(shutdown_or_cancel(&env)),
                r => r,
            },
            _ = cancel.cancelled() => Err(shutdown_or_cancel(&env)),
            _ = tokio::time::sleep_until(deadline) => Err(Status::deadline_exceeded("deadline exceeded")),
            // The caller stopped reading the response (it dropped the call): cancel.
            _ = writer.stopped() => {
                self.abandon();
                return;
            }
        };
        // The handler's token is cancelled whatever ended the call (as on the task path).
        cancel.cancel();
        let status = push_outcome(writer, result);
        if writer.push(flags::TRAILER, &trailer(&status, json)).is_err() {
            writer.reset();
            self.writer = None;
            return;
        }
        // Usually the whole answer fits the stream's flow-control window and is handed to QUIC
        // at once. Otherwise (a caller that does not read, a large answer) or while the node
        // drains (delivery is then awaited), the rest is written by a task of its own: a caller
        // must never be able to hold a pool worker by not reading.
        if !env.draining.is_cancelled() && writer.finish().now_or_never().is_some() {
            self.writer = None;
            return;
        }
        if let Some(mut writer) = self.writer.take() {
            let guard = self.guard.take();
            tokio::spawn(async move {
                deliver(&env, &mut writer, answer_bound(deadline)).await;
                drop(guard);
            });
        }
    }

    /// Answers `status` without running a handler.
    pub(crate) async fn fail(mut self, status: Status) {
        if let Some(mut writer) = self.writer.take()
            && writer.push(flags::TRAILER, &trailer(&status, self.json)).is_ok()
        {
            deliver(&self.env, &mut writer, answer_bound(self.deadline)).await;
        }
    }

    /// The caller is gone: cancels the call and resets the stream (no answer).
    pub(crate) fn abandon(&mut self) {
        self.cancel.cancel();
        if let Some(mut writer) = self.writer.take() {
            writer.reset();
        }
    }

    /// Resolves when the caller stops reading the answer (it dropped the call).
    pub(crate) async fn caller_gone(&mut self) {
        match self.writer.as_mut() {
            Some(w) => w.stopped().await,
            None => std::future::pending().await,
        }
    }

    /// The call's deadline (the earlier of the caller's and the handler cap).
    pub(crate) fn deadline(&self) -> tokio::time::Instant {
        self.deadline
    }

    /// The call's cancellation (cancelled by the node's hard stop too).
    pub(crate) fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }
}

impl Drop for CallTail {
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else { return };
        let (env, json, guard) = (self.env.clone(), self.json, self.guard.take());
        self.cancel.cancel();
        let status = if env.hard_stop.is_cancelled() {
            Status::unavailable("server is shutting down")
        } else {
            Status::unavailable(
                "the handler was stopped before the call finished (cancelled, or the service is restarting or stopping)",
            )
        };
        let bound = answer_bound(self.deadline);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if writer.push(flags::TRAILER, &trailer(&status, json)).is_ok() {
                    deliver(&env, &mut writer, bound).await;
                }
                drop(guard);
            });
        }
    }
}

/// Steps 3–7 of the dispatch order. `Ok((host, None))` = a session stream.
fn route_header(env: &BridgeEnv, h: &StreamHeader) -> Result<(Arc<dyn ServiceHost>, Option<usize>), Status> {
    if h.service.is_empty() {
        return Err(Status::invalid_argument("Missing service name"));
    }
    // HashMap is covariant in its key: view the &'static keys at the header's lifetime.
    let registry: &HashMap<(&str, i64), Arc<dyn ServiceHost>> = &env.registry;
    let host = registry
        .get(&(h.service.as_str(), h.version))
        .cloned()
        .ok_or_else(|| Status::not_found(format!("Service '{}' v{} not found", h.service, h.version)))?;
    let desc = host.descriptor();
    match (desc.scope, h.method.is_empty()) {
        (Scope::Shared, true) => {
            return Err(Status::failed_precondition(format!(
                "Service '{}' is shared-scoped; a session stream (empty method) is only valid for session-scoped services",
                desc.name
            )));
        }
        (Scope::Session, false) => {
            return Err(Status::failed_precondition(format!(
                "Service '{}' is session-scoped; open a session stream (empty method) and send CALL frames",
                desc.name
            )));
        }
        _ => {}
    }
    let idx = if h.method.is_empty() {
        None
    } else {
        Some(
            desc.method_index(&h.method)
                .ok_or_else(|| Status::unimplemented(format!("Method '{}.{}' not implemented", desc.name, h.method)))?,
        )
    };
    match SerializationMode::from_i64(h.serialization_mode) {
        Some(m) if desc.accepts_mode_for(idx, m) => {}
        _ => return Err(mode_refused(desc, idx, h.serialization_mode)),
    }
    Ok((host, idx))
}

/// INVALID_ARGUMENT for a call whose serialization mode the service (or the method) refuses.
fn mode_refused(desc: &ServiceDescriptor, method: Option<usize>, mode: i64) -> Status {
    let accepted: Vec<&str> = desc.modes_for(method).iter().map(|m| m.as_str()).chain(["json"]).collect();
    let target = match method.and_then(|i| desc.methods.get(i)) {
        Some(m) => format!("method '{}.{}'", desc.name, m.name),
        None => format!("service '{}'", desc.name),
    };
    Status::invalid_argument(format!(
        "serialization mode {mode} is not accepted by {target} (accepts: {})",
        accepted.join(", ")
    ))
}

fn mode_of(h: &StreamHeader) -> SerializationMode {
    SerializationMode::from_i64(h.serialization_mode).unwrap_or(SerializationMode::Json)
}

/// A bounded channel when `wanted` (the response channel of a call whose handler streams, the
/// request channel of a call whose caller streams); none otherwise, so a unary call allocates
/// no channel.
fn channel_if<T>(wanted: bool) -> (Option<mpsc::Sender<T>>, Option<mpsc::Receiver<T>>) {
    if wanted {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    }
}

/// The next encoded response frame of a streaming handler (never resolves without a channel).
async fn recv_out(rx: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Queues every response frame already produced (written by the next flush).
fn drain_out(rx: &mut Option<mpsc::Receiver<Bytes>>, writer: &mut FrameWriter) {
    if let Some(rx) = rx {
        while let Ok(frame) = rx.try_recv() {
            writer.push_encoded(&frame);
        }
    }
}

/// Reads frames until the caller's input ends and forwards them to the call.
/// Returns after EOF, a client TRAILER, an error, or when the call stops listening.
async fn pump_input(mut reader: FrameReader, tx: mpsc::Sender<Inbound>, json: bool, cancel: CancellationToken) {
    let mut count = 0usize;
    loop {
        let frame = reader.next().await;
        match frame {
            Ok(None) => return,
            Ok(Some(f)) if f.has(flags::TRAILER) => {
                match RpcStatus::decode(&f.payload, json) {
                    Ok(s) if s.code == 0 => {}
                    Ok(s) => {
                        let _ = tx
                            .send(Inbound::Error(Status::cancelled(format!(
                                "caller ended its input with status {}",
                                s.to_status()
                            ))))
                            .await;
                    }
                    Err(e) => {
                        let _ =
                            tx.send(Inbound::Error(Status::internal(format!("malformed client trailer: {e}")))).await;
                    }
                }
                return;
            }
            Ok(Some(f)) if f.has(flags::CANCEL) => {}
            Ok(Some(f)) if !is_data(&f) => {
                let _ = tx
                    .send(Inbound::Error(Status::invalid_argument(format!(
                        "unexpected frame with flags {:#04x} in request stream",
                        f.flags
                    ))))
                    .await;
                return;
            }
            Ok(Some(f)) => {
                count += 1;
                if count > limits::MAX_CLIENT_STREAM_ITEMS {
                    let _ = tx
                        .send(Inbound::Error(Status::resource_exhausted(format!(
                            "client stream exceeded {} items",
                            limits::MAX_CLIENT_STREAM_ITEMS
                        ))))
                        .await;
                    reader.stop();
                    return;
                }
                if tx.send(Inbound::Frame(f)).await.is_err() {
                    // The handler has answered without reading everything: keep reading and
                    // discarding until the caller ends its input, so its writes do not fail
                    // before it has read the trailer (the reference reads all input too).
                    discard_input(&mut reader, count).await;
                    return;
                }
            }
            Err(e) => {
                // Reset by the caller or malformed input: the call is over.
                let status = e.to_status();
                cancel.cancel();
                let _ = tx.send(Inbound::Error(status)).await;
                return;
            }
        }
    }
}

/// Reads and drops request frames until EOF, reset, or the item cap.
async fn discard_input(reader: &mut FrameReader, mut count: usize) {
    while let Ok(Some(_)) = reader.next().await {
        count += 1;
        if count > limits::MAX_CLIENT_STREAM_ITEMS {
            reader.stop();
            return;
        }
    }
}

/// Watches a request half whose input is complete: resolves when the caller resets it.
async fn watch_reset(reader: &mut FrameReader) {
    loop {
        match reader.next().await {
            Ok(None) => std::future::pending::<()>().await,
            Ok(Some(_)) => continue,
            Err(_) => return,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_call(
    env: &BridgeEnv,
    host: Arc<dyn ServiceHost>,
    idx: usize,
    peer: EndpointId,
    header: StreamHeader,
    // Trailers in JSON (the header's mode, or a JSON-encoded header), as on every path.
    json: bool,
    read: Option<Frame>,
    mut reader: FrameReader,
    mut writer: FrameWriter,
) {
    let desc = host.descriptor();
    let pattern = desc.methods[idx].pattern;
    let req = CallRequest::of_stream(&header, idx, peer);
    let prepared = match admit_call(env, &*host, req).await {
        Ok(p) => p,
        Err(s) => return write_trailer_and_finish(env, &mut writer, &s, json).await,
    };
    let Prepared { ctx, cancel, enforce_at } = prepared;
    let codec = PayloadCodec::new(mode_of(&header));
    let _guard = cancel.clone().drop_guard();

    // Single-request patterns read their request before dispatch.
    let mut request = None;
    let mut read = read;
    if !pattern.client_streams() {
        loop {
            let next = match read.take() {
                Some(f) => Ok(Some(f)),
                None => read_opening_frame(env, &mut reader, "request frame").await,
            };
            match next {
                Ok(Some(f)) if f.has(flags::CANCEL) => continue,
                Ok(Some(f)) if is_data(&f) => {
                    request = Some(f);
                    break;
                }
                Ok(Some(f)) => {
                    let s = Status::invalid_argument(format!("expected a request frame, got flags {:#04x}", f.flags));
                    return write_trailer_and_finish(env, &mut writer, &s, json).await;
                }
                Ok(None) => {
                    let s = Status::invalid_argument("stream ended before the request frame");
                    return write_trailer_and_finish(env, &mut writer, &s, json).await;
                }
                Err(status) => return write_trailer_and_finish(env, &mut writer, &status, json).await,
            }
        }
    }

    let (out_tx, mut out_rx) = channel_if(pattern.server_streams());
    let (in_tx, in_rx) = channel_if(pattern.client_streams());
    let raw = RawCall { ctx, codec, request, inbound: in_rx, outbound: out_tx };

    // A single-request call's end of input usually arrived with the request: take it now, so
    // the request half is complete (dropping it unread would make QUIC send STOP_SENDING and
    // hold the stream's credit longer) and there is nothing left to watch.
    if !pattern.client_streams() && matches!(reader.next().now_or_never(), Some(Err(_))) {
        // Reset by the caller already: nobody is waiting for an answer.
        writer.reset();
        return;
    }
    let input_done = !pattern.client_streams() && reader.is_eof();
    // Input pump for streaming requests (own task, so input never waits on output).
    let mut reader_slot = (!input_done).then_some(reader);
    let pump = match in_tx {
        Some(tx) => reader_slot.take().map(|r| tokio::spawn(pump_input(r, tx, json, cancel.clone()))),
        None => None,
    };
    let mut pump = pump.map(PumpTask);

    let deadline = tokio::time::Instant::from_std(enforce_at);
    let dispatch = host.call(idx, raw);
    let result: Result<Outcome, Status> = 'call: {
        let mut completion: Completion = tokio::select! {
            biased;
            _ = cancel.cancelled() => break 'call Err(shutdown_or_cancel(env)),
            _ = tokio::time::sleep_until(deadline) => break 'call Err(Status::deadline_exceeded("deadline exceeded")),
            // The caller stopped reading the response (it dropped the call): cancel.
            _ = writer.stopped() => {
                cancel.cancel();
                writer.reset();
                return;
            }
            r = dispatch => match r {
                Ok(c) => c,
                Err(s) => break 'call Err(s),
            },
        };
        loop {
            let reset_watch = async {
                match reader_slot.as_mut() {
                    Some(r) => watch_reset(r).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                // A handler stopped by the cancellation answers as the cancellation says.
                r = &mut completion => break 'call match r {
                    Err(_) if cancel.is_cancelled() => Err(shutdown_or_cancel(env)),
                    r => r,
                },
                Some(frame) = recv_out(&mut out_rx) => {
                    writer.push_encoded(&frame);
                    drain_out(&mut out_rx, &mut writer);
                    if writer.flush().await.is_err() {
                        cancel.cancel();
                        writer.reset();
                        return;
                    }
                }
                _ = reset_watch => {
                    cancel.cancel();
                    writer.reset();
                    return;
                }
                // The caller stopped reading the response (it dropped the call, e.g. a unary
                // call whose request half is already complete): cancel the handler.
                _ = writer.stopped() => {
                    cancel.cancel();
                    writer.reset();
                    return;
                }
                _ = cancel.cancelled() => break 'call Err(shutdown_or_cancel(env)),
                _ = tokio::time::sleep_until(deadline) => break 'call Err(Status::deadline_exceeded("deadline exceeded")),
            }
        }
    };
    // The handler answered (as opposed to cancellation, deadline or shutdown).
    let answered = match &result {
        Ok(_) => true,
        Err(s) => !cancel.is_cancelled() && s.code() != aster_runtime::Code::DeadlineExceeded,
    };
    if result.is_err() {
        cancel.cancel();
    }
    // Frames the handler produced before finishing go out before the trailer.
    drain_out(&mut out_rx, &mut writer);
    let status = push_outcome(&mut writer, result);
    write_trailer_and_finish(env, &mut writer, &status, json).await;
    if answered {
        // Let the input pump drain what the caller is still sending (bounded), then stop it.
        if let Some(p) = pump.as_mut() {
            let _ = tokio::time::timeout(INPUT_DRAIN_LIMIT, &mut p.0).await;
        }
    }
}

/// How long a finished call keeps draining its caller's remaining input.
const INPUT_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The input pump of a call; aborted when the call's bridge ends.
struct PumpTask(tokio::task::JoinHandle<()>);

impl Drop for PumpTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn shutdown_or_cancel(env: &BridgeEnv) -> Status {
    if env.hard_stop.is_cancelled() {
        Status::unavailable("server is shutting down")
    } else {
        Status::cancelled("call was cancelled")
    }
}

// ───────────────────────────── sessions (v0.1) ─────────────────────────────

/// What ended a session call.
enum CallEnd {
    /// The call finished (its answer is written); the session continues.
    Continue,
    /// The session must end (protocol error, caller gone, unknown method).
    EndSession,
}

struct SessionIo {
    reader: FrameReader,
    writer: FrameWriter,
    json: bool,
    /// A frame read ahead that belongs to the next call boundary.
    pushback: Option<Frame>,
}

impl SessionIo {
    async fn next(&mut self) -> Result<Option<Frame>, Status> {
        if let Some(f) = self.pushback.take() {
            return Ok(Some(f));
        }
        self.reader.next().await.map_err(|e| e.to_status())
    }

    async fn send_trailer(&mut self, status: &Status) -> Result<(), Status> {
        let t = trailer(status, self.json);
        self.writer.send(flags::TRAILER, &t).await
    }
}

async fn serve_session(
    env: &BridgeEnv,
    host: Arc<dyn ServiceHost>,
    peer: EndpointId,
    header: StreamHeader,
    json: bool,
    reader: FrameReader,
    mut writer: FrameWriter,
) {
    if let Err(s) = limits::validate_metadata(&header.metadata_keys, &header.metadata_values) {
        return write_trailer_and_finish(env, &mut writer, &s, json).await;
    }
    let info = SessionInfo { peer, session_id: header.call_id.clone() };
    let mut link = match host.open_session(info).await {
        Ok(l) => l,
        Err(s) => return write_trailer_and_finish(env, &mut writer, &s, json).await,
    };
    let codec = PayloadCodec::new(mode_of(&header));
    let mut io = SessionIo { reader, writer, json, pushback: None };
    loop {
        let frame = tokio::select! {
            biased;
            _ = env.draining.cancelled() => {
                let _ = io.send_trailer(&Status::unavailable("server is shutting down")).await;
                break;
            }
            f = io.next() => f,
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) => break,
            // Malformed input (or a reset, where the trailer cannot arrive anyway): say why.
            Err(s) => {
                let _ = io.send_trailer(&s).await;
                break;
            }
        };
        if frame.has(flags::CANCEL) {
            // CANCEL with no call in flight is answered with a CANCELLED trailer.
            if io.send_trailer(&Status::cancelled("cancelled")).await.is_err() {
                break;
            }
            continue;
        }
        if !frame.has(flags::CALL) {
            let s = Status::failed_precondition(format!(
                "expected a CALL frame at a call boundary, got flags {:#04x}",
                frame.flags
            ));
            let _ = io.send_trailer(&s).await;
            break;
        }
        // Boxed: the state of a running call is far larger than an idle session's.
        let end = Box::pin(session_call(env, &host, &mut *link, peer, &header, codec, frame, &mut io)).await;
        if matches!(end, CallEnd::EndSession) {
            break;
        }
    }
    link.close();
    finish_delivered(env, &mut io.writer).await;
}

/// Consumes the rest of a call's input (up to the caller's TRAILER for streaming input) so the
/// session stays in sync after an early answer. A CALL frame is pushed back as the next boundary.
async fn skip_input(io: &mut SessionIo, pattern: Pattern) -> CallEnd {
    if !pattern.client_streams() {
        return match io.next().await {
            Ok(Some(f)) if is_data(&f) => CallEnd::Continue,
            Ok(Some(f)) => {
                io.pushback = Some(f);
                CallEnd::Continue
            }
            _ => CallEnd::EndSession,
        };
    }
    loop {
        match io.next().await {
            Ok(Some(f)) if f.has(flags::TRAILER) => return CallEnd::Continue,
            Ok(Some(f)) if f.has(flags::CALL) || f.has(flags::CANCEL) => {
                io.pushback = Some(f);
                return CallEnd::Continue;
            }
            Ok(Some(_)) => continue,
            _ => return CallEnd::EndSession,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn session_call(
    env: &BridgeEnv,
    host: &Arc<dyn ServiceHost>,
    link: &mut dyn SessionLink,
    peer: EndpointId,
    header: &StreamHeader,
    codec: PayloadCodec,
    frame: Frame,
    io: &mut SessionIo,
) -> CallEnd {
    let desc = host.descriptor();
    let call = match CallHeader::decode(&frame.payload, io.json) {
        Ok(c) => c,
        Err(e) => {
            let _ = io.send_trailer(&Status::internal(format!("Invalid CallHeader: {e}"))).await;
            return CallEnd::EndSession;
        }
    };
    let Some(idx) = desc.method_index(&call.method) else {
        let s = Status::unimplemented(format!("Method '{}.{}' not implemented", desc.name, call.method));
        let _ = io.send_trailer(&s).await;
        return CallEnd::EndSession;
    };
    let pattern = desc.methods[idx].pattern;
    if !desc.accepts_mode_for(Some(idx), codec.mode()) {
        let s = mode_refused(desc, Some(idx), codec.mode().as_i64());
        let end = skip_input(io, pattern).await;
        return match io.send_trailer(&s).await {
            Ok(()) => end,
            Err(_) => CallEnd::EndSession,
        };
    }
    let req = CallRequest {
        method_idx: idx,
        peer,
        call_id: &call.call_id,
        session_id: Some(&header.call_id),
        deadline_ms: call.deadline_epoch_ms,
        keys: &call.metadata_keys,
        values: &call.metadata_values,
    };
    let prepared = admit_call(env, &**host, req).await;
    let Prepared { ctx, cancel, enforce_at } = match prepared {
        Ok(p) => p,
        Err(s) => {
            let end = skip_input(io, pattern).await;
            return match io.send_trailer(&s).await {
                Ok(()) => end,
                Err(_) => CallEnd::EndSession,
            };
        }
    };
    let _guard = cancel.clone().drop_guard();

    let mut request = None;
    if !pattern.client_streams() {
        match io.next().await {
            Ok(Some(f)) if is_data(&f) => request = Some(f),
            Ok(Some(f)) if f.has(flags::CANCEL) => {
                return match io.send_trailer(&Status::cancelled("cancelled")).await {
                    Ok(()) => CallEnd::Continue,
                    Err(_) => CallEnd::EndSession,
                };
            }
            Ok(Some(f)) => {
                let s = Status::failed_precondition(format!(
                    "expected the request frame of '{}', got flags {:#04x}",
                    call.method, f.flags
                ));
                let _ = io.send_trailer(&s).await;
                return CallEnd::EndSession;
            }
            _ => return CallEnd::EndSession,
        }
    }
    let (out_tx, mut out_rx) = channel_if(pattern.server_streams());
    let (mut in_tx, in_rx) = channel_if(pattern.client_streams());
    let raw = RawCall { ctx, codec, request, inbound: in_rx, outbound: out_tx };
    let mut completion = match link.call(idx, raw) {
        Ok(c) => c,
        Err(s) => {
            let end = if pattern.client_streams() { skip_input(io, pattern).await } else { CallEnd::Continue };
            return match io.send_trailer(&s).await {
                Ok(()) => end,
                Err(_) => CallEnd::EndSession,
            };
        }
    };

    let deadline = tokio::time::Instant::from_std(enforce_at);
    let mut pending: Option<Frame> = None;
    let mut input_open = pattern.client_streams();
    let mut cancelled_by_caller = false;
    let mut end_session = false;

    let result: Result<Outcome, Status> = loop {
        let can_read = pending.is_none() && !end_session;
        let mut close_input = false;
        tokio::select! {
            biased;
            r = &mut completion => {
                // A handler stopped by the node's hard stop: the session ends with it.
                if r.is_err() && env.hard_stop.is_cancelled() {
                    end_session = true;
                    break Err(Status::unavailable("server is shutting down"));
                }
                break r;
            }
            Some(out) = recv_out(&mut out_rx) => {
                io.writer.push_encoded(&out);
                drain_out(&mut out_rx, &mut io.writer);
                if io.writer.flush().await.is_err() {
                    cancel.cancel();
                    return CallEnd::EndSession;
                }
            }
            permit = async {
                match in_tx.as_ref() {
                    Some(tx) => tx.reserve().await.ok(),
                    None => std::future::pending().await,
                }
            }, if pending.is_some() => {
                match (permit, pending.take()) {
                    (Some(p), Some(f)) => p.send(Inbound::Frame(f)),
                    _ => close_input = true,
                }
            }
            f = io.reader.next(), if can_read => match f {
                Ok(Some(f)) if f.has(flags::CANCEL) => {
                    cancelled_by_caller = true;
                    cancel.cancel();
                    break Err(Status::cancelled("cancelled"));
                }
                Ok(Some(f)) if input_open && f.has(flags::TRAILER) => {
                    input_open = false;
                    match RpcStatus::decode(&f.payload, io.json) {
                        Ok(s) if s.code == 0 => close_input = true,
                        Ok(s) => {
                            cancel.cancel();
                            break Err(Status::internal(format!("caller ended its input with {}", s.to_status())));
                        }
                        Err(e) => {
                            cancel.cancel();
                            break Err(Status::internal(format!("malformed client trailer: {e}")));
                        }
                    }
                }
                Ok(Some(f)) if input_open && is_data(&f) => { pending = Some(f); }
                Ok(Some(f)) => {
                    let s = Status::failed_precondition(format!(
                        "unexpected frame with flags {:#04x} during call '{}'",
                        f.flags, call.method
                    ));
                    cancel.cancel();
                    end_session = true;
                    break Err(s);
                }
                Ok(None) | Err(_) => {
                    // Caller finished or reset mid-call: the session is over.
                    cancel.cancel();
                    return CallEnd::EndSession;
                }
            },
            _ = env.hard_stop.cancelled() => {
                end_session = true;
                break Err(Status::unavailable("server is shutting down"));
            }
            _ = tokio::time::sleep_until(deadline) => {
                cancel.cancel();
                break Err(Status::deadline_exceeded("deadline exceeded"));
            }
        }
        if close_input {
            in_tx = None;
        }
    };
    drop(in_tx);
    if result.is_err() {
        cancel.cancel();
    }
    if !cancelled_by_caller {
        drain_out(&mut out_rx, &mut io.writer);
    }
    let write = match result {
        // Session unary / client-stream success: one response frame, no trailer.
        Ok(Outcome::Response(f, payload)) => io.writer.send(f, &payload).await,
        Ok(Outcome::Done) => io.send_trailer(&Status::ok()).await,
        Err(s) => io.send_trailer(&s).await,
    };
    if write.is_err() || end_session {
        return CallEnd::EndSession;
    }
    if input_open && !cancelled_by_caller {
        // The handler answered before the caller ended its input: consume the rest.
        if pending.take().is_some() || input_open {
            return skip_input(io, pattern).await;
        }
    }
    CallEnd::Continue
}
