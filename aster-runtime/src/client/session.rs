//! Sessions of session-scoped services, v0.1 dialect (spec §4.1): one bi-stream per session,
//! a CALL frame per call, strictly sequential calls, in-band CANCEL.
//!
//! The session stream is shared by the calls through three locks: the *slot* (held for a
//! call's whole lifetime; it also records whether a cancelled call still has to be cleaned
//! up), the writer and the reader. A call that is dropped before it completed queues a CANCEL
//! frame and leaves the slot in a recovery state; the recovery (discard frames up to the
//! server's CANCELLED trailer) runs in a spawned task, or — without a runtime — at the start
//! of the next call. Framing is never lost: writes are resumable and reads are cancel-safe.

use std::fmt;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdMutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use futures::task::AtomicWaker;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::time::Instant;

use super::inbound::{DrainStep, Pattern, SessionCallState, SessionEvent, drain_step};
use super::options::{CallOptions, Deadline, split_metadata, uuid_v4, with_deadline};
use super::streams::{ClientStreamCall, RequestSink, Streaming, call_already_ended};
use crate::codec::{Message, PayloadCodec};
use crate::transport::stream::{FrameReader, FrameWriter, ReadFrameError};
use crate::wire::flags::{CALL, CANCEL, TRAILER};
use crate::wire::{CallHeader, Frame, ProtocolMessage, RpcStatus, encode_frame};
use crate::{Code, SerializationMode, Status};

/// An open session of a session-scoped service (see [`super::Channel::open_session`]).
///
/// Calls are made by method name and run strictly one after another: a call waits until the
/// previous one has ended — a streaming call ends with its stream (the server's trailer, an
/// error, or dropping the handles), so do not keep an unfinished [`Streaming`] around while
/// making the next call on the same session from the same task. Share a session between
/// tasks with an `Arc`; the methods take `&self`.
///
/// Dropping an unfinished call (or [`Streaming::cancel`]) sends a CANCEL frame; the next call
/// first discards the cancelled call's leftovers up to the server's CANCELLED trailer, and
/// the session stays usable. A transport failure or a protocol violation breaks the session:
/// every later call fails with that status. The timeout of a call bounds everything it does,
/// including the wait for the previous call.
///
/// [`Session::close`] ends the session at a call boundary; dropping the `Session` does the
/// same once no call is in progress.
pub struct Session {
    shared: Arc<SessionShared>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &self.shared.id)
            .field("service", &self.shared.service)
            .field("version", &self.shared.version)
            .field("mode", &self.shared.mode)
            .finish()
    }
}

/// Where the session stands between calls.
#[derive(Debug)]
pub(crate) enum SlotState {
    /// At a call boundary.
    Ready,
    /// A call was abandoned and its CANCEL frame is not queued yet.
    CancelNeeded,
    /// CANCEL queued (maybe partly written): discard frames up to the CANCELLED trailer.
    /// `call_ended`: the cancelled call's own terminal trailer has been seen.
    Draining { call_ended: bool },
    /// The session stream failed or the server broke the protocol: every call fails.
    Broken(Status),
    /// Closed by [`Session::close`].
    Closed,
}

pub(crate) struct SessionShared {
    id: String,
    service: String,
    version: i64,
    mode: SerializationMode,
    json: bool,
    codec: PayloadCodec,
    slot: Arc<Mutex<SlotState>>,
    reader: Arc<Mutex<FrameReader>>,
    writer: Arc<Mutex<FrameWriter>>,
    /// The encoded TRAILER(OK) frame a client sends to end its input.
    eoi_frame: Bytes,
}

impl Drop for SessionShared {
    fn drop(&mut self) {
        // Last reference: no call is in progress. At a call boundary the halves are simply
        // dropped, which finishes the send half (the end of the session for the server);
        // otherwise the stream is reset so the server never sees a truncated frame.
        let clean = match self.slot.try_lock() {
            Ok(s) => matches!(*s, SlotState::Ready | SlotState::Closed | SlotState::Draining { .. }),
            Err(_) => false,
        };
        if let Ok(mut w) = self.writer.try_lock()
            && (!clean || w.has_pending())
        {
            w.reset();
            if let Ok(mut r) = self.reader.try_lock() {
                r.stop();
            }
        }
    }
}

fn frame_bytes(flags: u8, payload: &[u8], out: &mut BytesMut) -> Result<(), Status> {
    encode_frame(flags, payload, out).map_err(|e| e.to_status())
}

/// Appends the CALL frame carrying `header` (JSON on a JSON session, else XLANG).
fn call_frame(header: &CallHeader, json: bool, out: &mut BytesMut) -> Result<(), Status> {
    frame_bytes(CALL, &header.encode(json), out)
}

/// The client's end-of-input frame in a session: TRAILER(OK) in the session's encoding.
fn eoi_frame(json: bool) -> Bytes {
    let ok = RpcStatus::from(&Status::ok()).encode(json);
    let mut eoi = BytesMut::with_capacity(ok.len() + 5);
    // An OK status always fits a frame.
    let _ = frame_bytes(TRAILER, &ok, &mut eoi);
    eoi.freeze()
}

impl Session {
    pub(crate) fn new(
        id: String,
        service: String,
        version: i64,
        mode: SerializationMode,
        codec: PayloadCodec,
        reader: FrameReader,
        writer: FrameWriter,
    ) -> Session {
        let json = mode.protocol_is_json();
        let shared = SessionShared {
            id,
            service,
            version,
            mode,
            json,
            codec,
            slot: Arc::new(Mutex::new(SlotState::Ready)),
            reader: Arc::new(Mutex::new(reader)),
            writer: Arc::new(Mutex::new(writer)),
            eoi_frame: eoi_frame(json),
        };
        Session { shared: Arc::new(shared) }
    }

    /// The session id (the UUIDv4 sent as the session stream's `callId`).
    pub fn session_id(&self) -> &str {
        &self.shared.id
    }

    /// The service this session belongs to.
    pub fn service(&self) -> &str {
        &self.shared.service
    }

    /// The service version.
    pub fn version(&self) -> i64 {
        self.shared.version
    }

    /// The session's serialization mode (fixed when the session was opened).
    pub fn mode(&self) -> SerializationMode {
        self.shared.mode
    }

    /// Encodes the CALL frame of a call into `out`; returns the local deadline.
    fn prepare(&self, method: &str, opts: CallOptions, out: &mut BytesMut) -> Result<Option<Instant>, Status> {
        if let Some(mode) = opts.mode
            && mode != self.shared.mode
        {
            return Err(Status::invalid_argument(format!(
                "a session's serialization mode is fixed when it is opened ({}), not {mode}",
                self.shared.mode
            )));
        }
        let (metadata_keys, metadata_values) = split_metadata(opts.metadata)?;
        let deadline = Deadline::start(opts.timeout);
        let header = CallHeader {
            method: method.to_owned(),
            call_id: uuid_v4(),
            deadline_epoch_ms: deadline.epoch_ms,
            metadata_keys,
            metadata_values,
        };
        call_frame(&header, self.shared.json, out)?;
        Ok(deadline.instant)
    }

    /// Encodes the CALL frame and the single request of a unary or server-stream call.
    fn prepare_with_request<Req: Message>(
        &self,
        method: &str,
        request: &Req,
        opts: CallOptions,
    ) -> Result<(BytesMut, Option<Instant>), Status> {
        let (flags, payload) = self.shared.codec.encode(request)?;
        let mut frames = BytesMut::with_capacity(payload.len() + 128);
        let deadline = self.prepare(method, opts, &mut frames)?;
        frame_bytes(flags, &payload, &mut frames)?;
        Ok((frames, deadline))
    }

    /// A unary call: CALL + request; the server answers with one response frame (no trailer)
    /// or an error trailer.
    pub async fn unary<Req: Message, Resp: Message>(
        &self,
        method: &str,
        request: &Req,
        opts: CallOptions,
    ) -> Result<Resp, Status> {
        let (frames, deadline) = self.prepare_with_request(method, request, opts)?;
        let fut = async {
            let mut call = SessionCallGuard::acquire(&self.shared).await?;
            call.write(&frames).await?;
            let mut state = SessionCallState::new(Pattern::Unary, self.shared.json);
            let reader = self.shared.reader.clone();
            let mut reader = reader.lock().await;
            loop {
                let read = reader.next().await;
                match call.on_read(&mut state, read)? {
                    SessionEvent::Message { flags, payload, .. } => {
                        call.complete();
                        return self.shared.codec.decode::<Resp>(flags, &payload);
                    }
                    SessionEvent::Skip => {}
                    SessionEvent::End(status) => {
                        call.complete();
                        return Err(status);
                    }
                }
            }
        };
        with_deadline(deadline, fut).await
    }

    /// A server-streaming call: CALL + request; response frames, then TRAILER(OK).
    pub async fn server_stream<Req: Message, Resp: Message>(
        &self,
        method: &str,
        request: &Req,
        opts: CallOptions,
    ) -> Result<Streaming<Resp>, Status> {
        let (frames, deadline) = self.prepare_with_request(method, request, opts)?;
        let fut = async {
            let mut call = SessionCallGuard::acquire(&self.shared).await?;
            call.write(&frames).await?;
            let reader = self.shared.reader.clone().lock_owned().await;
            let state = SessionCallState::new(Pattern::ServerStream, self.shared.json);
            Ok(SessionRx { reader: Some(reader), call: CallRef::Own(call), state })
        };
        let rx = with_deadline(deadline, fut).await?;
        Ok(Streaming::session(rx, self.shared.codec, deadline))
    }

    /// A client-streaming call: CALL, then requests via [`ClientStreamCall::send`];
    /// [`ClientStreamCall::finish`] sends the client TRAILER(OK) that ends the input and
    /// reads the single response frame.
    pub async fn client_stream<Req: Message, Resp: Message>(
        &self,
        method: &str,
        opts: CallOptions,
    ) -> Result<ClientStreamCall<Req, Resp>, Status> {
        let mut frames = BytesMut::with_capacity(128);
        let deadline = self.prepare(method, opts, &mut frames)?;
        let fut = async {
            let mut call = SessionCallGuard::acquire(&self.shared).await?;
            call.write(&frames).await?;
            Ok(call)
        };
        let call = with_deadline(deadline, fut).await?;
        let state = SessionCallState::new(Pattern::ClientStream, self.shared.json);
        let cs = SessionCs { call, state, outcome: None, failed: None };
        Ok(ClientStreamCall::session(cs, self.shared.codec, deadline))
    }

    /// A client-streaming call over all items of `requests`; returns the response.
    pub async fn client_stream_iter<Req, Resp, I>(
        &self,
        method: &str,
        requests: I,
        opts: CallOptions,
    ) -> Result<Resp, Status>
    where
        Req: Message,
        Resp: Message,
        I: IntoIterator<Item = Req>,
    {
        let mut call = self.client_stream::<Req, Resp>(method, opts).await?;
        for item in requests {
            call.send(&item).await?;
        }
        call.finish().await
    }

    /// A bidi call: returns the request sink and the response stream (usable from different
    /// tasks). [`RequestSink::close`] sends the client TRAILER(OK) that ends the input; the
    /// server ends the call with its own trailer.
    pub async fn bidi<Req: Message, Resp: Message>(
        &self,
        method: &str,
        opts: CallOptions,
    ) -> Result<(RequestSink<Req>, Streaming<Resp>), Status> {
        let mut frames = BytesMut::with_capacity(128);
        let deadline = self.prepare(method, opts, &mut frames)?;
        let fut = async {
            let mut call = SessionCallGuard::acquire(&self.shared).await?;
            call.write(&frames).await?;
            let reader = self.shared.reader.clone().lock_owned().await;
            Ok((call, reader))
        };
        let (call, reader) = with_deadline(deadline, fut).await?;
        let shared = Arc::new(BidiCall {
            state: StdMutex::new(BidiState { call, cancelled: None }),
            rx_waker: AtomicWaker::new(),
        });
        let tx = SessionTx { call: shared.clone(), session: self.shared.clone(), closed: false };
        let state = SessionCallState::new(Pattern::Bidi, self.shared.json);
        let rx = SessionRx { reader: Some(reader), call: CallRef::Shared(shared), state };
        let codec = self.shared.codec;
        Ok((RequestSink::session(tx, codec, deadline), Streaming::session(rx, codec, deadline)))
    }

    /// Closes the session at a call boundary: waits until the call in progress (if any) has
    /// ended and a cancelled call has been cleaned up (within the recovery's grace periods),
    /// then finishes the stream. A session whose stream already failed, or whose cleanup
    /// failed, is simply dropped. When the server does not take the rest of the stream within
    /// 5 s the stream is reset and the result is `UNAVAILABLE`.
    pub async fn close(self) -> Result<(), Status> {
        let mut slot = self.shared.slot.clone().lock_owned().await;
        if recover(&self.shared, &mut slot).await.is_err() {
            return Ok(());
        }
        let mut w = self.shared.writer.lock().await;
        match tokio::time::timeout(CANCEL_ANSWER_GRACE, w.finish()).await {
            Ok(finished) => finished?,
            Err(_) => {
                let status = Status::unavailable(format!(
                    "session lost: the server did not read the end of the session stream within \
                     {CANCEL_ANSWER_GRACE:?}"
                ));
                w.reset();
                drop(w);
                self.shared.reader.lock().await.stop();
                *slot = SlotState::Broken(status.clone());
                return Err(status);
            }
        }
        *slot = SlotState::Closed;
        Ok(())
    }
}

/// How long the recovery waits for the server's CANCELLED trailer once the cancelled call's
/// own terminal trailer has arrived. A server that follows the spec answers at once; the
/// Python 0.1.2 server can swallow a CANCEL that reaches a session bidi call whose input is
/// still open (its handler then ends with an OK trailer and no CANCELLED trailer follows).
/// Rather than wait forever or guess (a late CANCELLED trailer would be taken for the next
/// call's answer), the session is declared broken after this grace period.
///
/// The same grace bounds the other waits on a server that should answer at once: the trailer
/// explaining a failed write ([`SessionCallGuard::write`]) and the end of the stream in
/// [`Session::close`].
const CANCEL_ANSWER_GRACE: Duration = Duration::from_secs(5);

/// How long the recovery of an abandoned call waits, in all, for the server to take the
/// CANCEL frame (and whatever of the call was still unwritten) and to end the call with its
/// own trailer. A server may still be finishing the call's handler when the CANCEL arrives
/// (one that reads the next frame only once the handler returned answers late), so this is
/// longer than [`CANCEL_ANSWER_GRACE`]; a server that stays silent (or keeps streaming) past
/// it loses the session (`UNAVAILABLE`, the stream is reset) instead of holding it forever.
const ABANDONED_CALL_GRACE: Duration = crate::wire::limits::DEFAULT_FRAME_READ_TIMEOUT;

/// Brings the session back to a call boundary (sends a pending CANCEL, discards frames up
/// to the CANCELLED trailer). Cancel-safe: progress is recorded in `slot`. Bounded: see
/// [`ABANDONED_CALL_GRACE`] and [`CANCEL_ANSWER_GRACE`].
async fn recover(s: &SessionShared, slot: &mut SlotState) -> Result<(), Status> {
    // Until the cancelled call's own trailer (the CANCEL written, the call's frames drained).
    let call_end_by = Instant::now() + ABANDONED_CALL_GRACE;
    loop {
        let call_ended = match slot {
            SlotState::Ready => return Ok(()),
            SlotState::Broken(status) => return Err(status.clone()),
            SlotState::Closed => return Err(Status::failed_precondition("session closed")),
            SlotState::CancelNeeded => {
                let mut w = s.writer.lock().await;
                *slot = match w.push(CANCEL, &[]) {
                    Ok(()) => SlotState::Draining { call_ended: false },
                    Err(e) => SlotState::Broken(e),
                };
                continue;
            }
            SlotState::Draining { call_ended } => *call_ended,
        };
        let mut w = s.writer.lock().await;
        match tokio::time::timeout_at(call_end_by, w.flush()).await {
            Ok(Ok(())) => drop(w),
            Ok(Err(e)) => {
                drop(w);
                *slot = SlotState::Broken(e);
                continue;
            }
            Err(_) => {
                // The server stopped reading: end the session on both sides.
                w.reset();
                drop(w);
                s.reader.lock().await.stop();
                *slot = SlotState::Broken(Status::unavailable(format!(
                    "session lost: the server did not read the CANCEL of an abandoned call within \
                     {ABANDONED_CALL_GRACE:?}"
                )));
                continue;
            }
        }
        let mut r = s.reader.lock().await;
        let mut call_ended = call_ended;
        *slot = loop {
            let until = if call_ended { Instant::now() + CANCEL_ANSWER_GRACE } else { call_end_by };
            let read = match tokio::time::timeout_at(until, r.next()).await {
                Ok(read) => read,
                Err(_) => {
                    // Out of sync for good: end the session on both sides.
                    r.stop();
                    s.writer.lock().await.reset();
                    break SlotState::Broken(Status::unavailable(if call_ended {
                        "session lost: the server did not answer the CANCEL of an abandoned call".to_owned()
                    } else {
                        format!(
                            "session lost: the server did not end an abandoned call within \
                             {ABANDONED_CALL_GRACE:?} of its CANCEL"
                        )
                    }));
                }
            };
            match read {
                Ok(Some(frame)) => match drain_step(&frame, s.json) {
                    DrainStep::Done => break SlotState::Ready,
                    DrainStep::Discard => {}
                    DrainStep::CallEnded => {
                        call_ended = true;
                        *slot = SlotState::Draining { call_ended: true };
                    }
                },
                Ok(None) => break SlotState::Broken(session_ended()),
                Err(e) => break SlotState::Broken(e.to_status()),
            }
        };
    }
}

fn session_ended() -> Status {
    Status::unavailable("session stream ended")
}

/// Runs the recovery of an abandoned call in a task (the slot stays locked until it is
/// done); without a runtime the slot is released as is and the next call recovers.
fn spawn_recovery(session: Arc<SessionShared>, mut slot: OwnedMutexGuard<SlotState>) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            let _ = recover(&session, &mut slot).await;
            drop(slot);
            drop(session);
        });
    }
}

/// One call's hold on the session (the slot lock) and what it has done so far.
pub(crate) struct SessionCallGuard {
    session: Arc<SessionShared>,
    slot: Option<OwnedMutexGuard<SlotState>>,
    /// The CALL frame has been queued.
    started: bool,
    /// The server has ended the call (or the session is broken): nothing to cancel.
    done: bool,
    /// The CANCEL frame has been queued.
    cancel_queued: bool,
}

impl SessionCallGuard {
    /// Waits for the session to be at a call boundary and takes it.
    async fn acquire(session: &Arc<SessionShared>) -> Result<SessionCallGuard, Status> {
        let mut slot = session.slot.clone().lock_owned().await;
        recover(session, &mut slot).await?;
        Ok(SessionCallGuard {
            session: session.clone(),
            slot: Some(slot),
            started: false,
            done: false,
            cancel_queued: false,
        })
    }

    /// Queues and writes the call's first frames.
    async fn write(&mut self, frames: &[u8]) -> Result<(), Status> {
        let writer = self.session.writer.clone();
        let mut w = writer.lock().await;
        w.push_encoded(frames);
        self.started = true;
        let r = w.flush().await;
        drop(w);
        if let Err(e) = r {
            // The server may have ended the session before reading this call (e.g. a scope
            // mismatch, whose trailer it sends before it stops reading): its status explains
            // the failure better than the write error.
            let status = self.server_trailer().await.unwrap_or(e);
            self.break_session(&status);
            return Err(status);
        }
        Ok(())
    }

    /// After a failed write: the non-OK trailer the server sent before it stopped reading,
    /// if the reader is free (it is not while a bidi call's response stream holds it) and the
    /// trailer arrives within [`CANCEL_ANSWER_GRACE`] (a server that stopped reading without
    /// a word must not hold the call forever).
    async fn server_trailer(&self) -> Option<Status> {
        let reader = self.session.reader.clone();
        let mut r = reader.try_lock().ok()?;
        let trailer = async {
            loop {
                match r.next().await {
                    Ok(Some(frame)) if frame.flags & TRAILER != 0 => {
                        let status = super::inbound::decode_trailer(&frame.payload, self.session.json);
                        return (!status.is_ok()).then_some(status);
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => return None,
                }
            }
        };
        tokio::time::timeout(CANCEL_ANSWER_GRACE, trailer).await.ok().flatten()
    }

    /// Writes one more frame of the call (request or end-of-input trailer).
    async fn write_more(&mut self, frame: &[u8]) -> Result<(), Status> {
        if self.done {
            return Err(Status::failed_precondition("the call has already ended"));
        }
        self.write(frame).await
    }

    /// Interprets the result of reading one frame for this call.
    fn on_read(
        &mut self,
        state: &mut SessionCallState,
        read: Result<Option<Frame>, ReadFrameError>,
    ) -> Result<SessionEvent, Status> {
        let status = match read {
            Ok(Some(frame)) => match state.on_frame(frame) {
                Ok(ev) => return Ok(ev),
                Err(s) => s,
            },
            Ok(None) => session_ended(),
            Err(e) => e.to_status(),
        };
        self.break_session(&status);
        Err(status)
    }

    /// The server ended the call: the session is free for the next call.
    fn complete(&mut self) {
        self.done = true;
        self.slot = None;
    }

    /// The session stream failed: every later call fails with `status`.
    fn break_session(&mut self, status: &Status) {
        if let Some(slot) = &mut self.slot {
            **slot = SlotState::Broken(status.clone());
        }
        self.done = true;
        self.slot = None;
    }

    /// Queues the CANCEL frame if the writer is free (never blocks); true once queued.
    fn try_queue_cancel(&mut self) -> bool {
        if self.cancel_queued || !self.started || self.done {
            return self.cancel_queued;
        }
        if let Ok(mut w) = self.session.writer.try_lock()
            && w.push(CANCEL, &[]).is_ok()
        {
            self.cancel_queued = true;
            // Send it right away when possible; otherwise the recovery flushes it.
            let _ = w.flush().now_or_never();
        }
        self.cancel_queued
    }

    /// Abandons an unfinished call: CANCEL, then recovery (in a task, or by the next call).
    fn abandon(&mut self) {
        let Some(mut slot) = self.slot.take() else {
            return;
        };
        if !self.started || self.done {
            return;
        }
        self.try_queue_cancel();
        *slot = if self.cancel_queued { SlotState::Draining { call_ended: false } } else { SlotState::CancelNeeded };
        spawn_recovery(self.session.clone(), slot);
    }
}

impl Drop for SessionCallGuard {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// How a response stream refers to its call.
pub(crate) enum CallRef {
    /// Server stream: the stream owns the call.
    Own(SessionCallGuard),
    /// Bidi: shared with the request sink.
    Shared(Arc<BidiCall>),
}

/// The state of a session bidi call shared by its two halves.
pub(crate) struct BidiCall {
    state: StdMutex<BidiState>,
    rx_waker: AtomicWaker,
}

struct BidiState {
    call: SessionCallGuard,
    /// Set when a half cancelled the call (dropped, deadline): the reason.
    cancelled: Option<Status>,
}

impl BidiCall {
    fn lock(&self) -> StdMutexGuard<'_, BidiState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cancels the call (no-op once the server ended it) and wakes the response stream.
    fn cancel(&self, reason: &Status) {
        let mut st = self.lock();
        if st.call.done || st.cancelled.is_some() {
            return;
        }
        st.cancelled = Some(reason.clone());
        settle(&mut st);
        drop(st);
        self.rx_waker.wake();
    }
}

/// Once a cancelled bidi call's CANCEL is queued (no request can follow it: the sink checks
/// `cancelled` under the writer lock), the session is handed to the recovery.
fn settle(st: &mut BidiState) {
    if st.cancelled.is_some() && st.call.try_queue_cancel() {
        st.call.abandon();
    }
}

/// The receive side of a server-stream or bidi call in a session.
pub(crate) struct SessionRx {
    /// The session's reader, held until the call ends.
    reader: Option<OwnedMutexGuard<FrameReader>>,
    call: CallRef,
    state: SessionCallState,
}

impl SessionRx {
    pub(crate) fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<(u8, Bytes)>, Status>> {
        if self.reader.is_none() {
            return Poll::Ready(Ok(None));
        }
        if let CallRef::Shared(b) = &self.call {
            b.rx_waker.register(cx.waker());
            let cancelled = b.lock().cancelled.clone();
            if let Some(reason) = cancelled {
                self.reader = None;
                return Poll::Ready(Err(reason));
            }
        }
        loop {
            let read = match self.reader.as_mut() {
                Some(r) => match r.poll_next(cx) {
                    Poll::Ready(read) => read,
                    Poll::Pending => return Poll::Pending,
                },
                None => return Poll::Ready(Ok(None)),
            };
            let event = match &mut self.call {
                CallRef::Own(call) => call.on_read(&mut self.state, read),
                CallRef::Shared(b) => b.lock().call.on_read(&mut self.state, read),
            };
            match event {
                Ok(SessionEvent::Message { flags, payload, .. }) => {
                    return Poll::Ready(Ok(Some((flags, payload))));
                }
                Ok(SessionEvent::Skip) => {}
                Ok(SessionEvent::End(status)) => {
                    self.reader = None;
                    match &mut self.call {
                        CallRef::Own(call) => call.complete(),
                        CallRef::Shared(b) => b.lock().call.complete(),
                    }
                    return Poll::Ready(if status.is_ok() { Ok(None) } else { Err(status) });
                }
                Err(status) => {
                    self.reader = None;
                    return Poll::Ready(Err(status));
                }
            }
        }
    }

    /// Cancels the call unless it has ended.
    pub(crate) fn abort(&mut self, reason: &Status) {
        if self.reader.take().is_none() {
            return;
        }
        match &mut self.call {
            CallRef::Own(call) => call.abandon(),
            CallRef::Shared(b) => b.cancel(reason),
        }
    }
}

impl Drop for SessionRx {
    fn drop(&mut self) {
        self.abort(&Status::cancelled("response stream dropped"));
    }
}

/// The request side of a bidi call in a session.
pub(crate) struct SessionTx {
    call: Arc<BidiCall>,
    session: Arc<SessionShared>,
    closed: bool,
}

impl SessionTx {
    /// Writes one frame unless the call was cancelled or has ended.
    async fn write_frame(&mut self, frame: &[u8], deadline: Option<Instant>) -> Result<(), Status> {
        let fut = async {
            let writer = self.session.writer.clone();
            let mut w = writer.lock().await;
            {
                let st = self.call.lock();
                if let Some(reason) = &st.cancelled {
                    return Err(reason.clone());
                }
                if st.call.done {
                    return Err(call_already_ended(&Status::ok()));
                }
            }
            w.push_encoded(frame);
            let r = w.flush().await;
            drop(w);
            if let Err(e) = &r {
                self.call.lock().call.break_session(e);
            }
            r
        };
        let r = with_deadline(deadline, fut).await;
        if let Err(e) = &r
            && e.code() == Code::DeadlineExceeded
        {
            self.call.cancel(e);
        }
        // A cancel that could not be queued while this send held the writer goes out now.
        settle(&mut self.call.lock());
        r
    }

    pub(crate) async fn send(&mut self, flags: u8, payload: &[u8], deadline: Option<Instant>) -> Result<(), Status> {
        let mut frame = BytesMut::with_capacity(payload.len() + 5);
        frame_bytes(flags, payload, &mut frame)?;
        self.write_frame(&frame, deadline).await
    }

    /// Ends the input with the client TRAILER(OK).
    pub(crate) async fn close(&mut self, deadline: Option<Instant>) -> Result<(), Status> {
        if self.call.lock().call.done {
            // The server already ended the call: nothing more may be sent for it.
            self.closed = true;
            return Ok(());
        }
        let eoi = self.session.eoi_frame.clone();
        self.write_frame(&eoi, deadline).await?;
        self.closed = true;
        Ok(())
    }
}

impl Drop for SessionTx {
    fn drop(&mut self) {
        if !self.closed {
            self.call.cancel(&Status::cancelled("request sink dropped"));
        }
    }
}

/// A client-stream call in a session.
pub(crate) struct SessionCs {
    call: SessionCallGuard,
    state: SessionCallState,
    /// The server ended the call before the end of input (its response or error).
    outcome: Option<Result<(u8, Bytes), Status>>,
    /// The call failed locally (deadline, transport) or was abandoned.
    failed: Option<Status>,
}

impl SessionCs {
    /// Records a server frame that arrived before the end of input, without waiting.
    fn poll_early(&mut self) {
        let reader = self.call.session.reader.clone();
        let Ok(mut r) = reader.try_lock() else { return };
        while self.outcome.is_none() && self.failed.is_none() {
            let Some(read) = r.next().now_or_never() else {
                return;
            };
            match self.call.on_read(&mut self.state, read) {
                Ok(SessionEvent::Message { flags, payload, .. }) => {
                    self.call.complete();
                    self.outcome = Some(Ok((flags, payload)));
                }
                Ok(SessionEvent::Skip) => {}
                Ok(SessionEvent::End(status)) => {
                    self.call.complete();
                    self.outcome = Some(Err(status));
                }
                Err(status) => self.failed = Some(status),
            }
        }
    }

    fn check(&self) -> Result<(), Status> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        match &self.outcome {
            None => Ok(()),
            Some(Err(status)) => Err(status.clone()),
            Some(Ok(_)) => Err(Status::failed_precondition("the server responded before the end of input")),
        }
    }

    fn fail(&mut self, e: &Status) {
        if self.failed.is_none() {
            self.failed = Some(e.clone());
        }
        self.call.abandon();
    }

    pub(crate) async fn send(&mut self, flags: u8, payload: &[u8], deadline: Option<Instant>) -> Result<(), Status> {
        self.check()?;
        self.poll_early();
        self.check()?;
        let mut frame = BytesMut::with_capacity(payload.len() + 5);
        frame_bytes(flags, payload, &mut frame)?;
        let r = with_deadline(deadline, self.call.write_more(&frame)).await;
        if let Err(e) = &r {
            self.fail(e);
        }
        r
    }

    pub(crate) async fn finish(&mut self, deadline: Option<Instant>) -> Result<(u8, Bytes), Status> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        self.poll_early();
        if let Some(outcome) = self.outcome.take() {
            return outcome;
        }
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        let fut = async {
            let eoi = self.call.session.eoi_frame.clone();
            self.call.write_more(&eoi).await?;
            let reader = self.call.session.reader.clone();
            let mut r = reader.lock().await;
            loop {
                let read = r.next().await;
                match self.call.on_read(&mut self.state, read)? {
                    SessionEvent::Message { flags, payload, .. } => {
                        self.call.complete();
                        return Ok((flags, payload));
                    }
                    SessionEvent::Skip => {}
                    SessionEvent::End(status) => {
                        self.call.complete();
                        return Err(status);
                    }
                }
            }
        };
        let r = with_deadline(deadline, fut).await;
        if let Err(e) = &r {
            self.fail(e);
        }
        r
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::client::inbound::tests::golden_c2s_frames;

    fn encoded(f: &Frame) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_frame(f.flags, &f.payload, &mut b).unwrap();
        b.to_vec()
    }

    /// The CALL frames and the client's end-of-input trailer of the golden session capture
    /// are byte for byte what this client writes.
    #[test]
    fn call_and_end_of_input_frames_match_the_golden_session() {
        let frames = golden_c2s_frames("session_TaskSession_all_patterns.c2s.bin");
        let calls: Vec<&Frame> = frames.iter().filter(|f| f.flags == CALL).collect();
        assert_eq!(calls.len(), 5);
        for golden in calls {
            let h = CallHeader::decode(&golden.payload, false).unwrap();
            let mut out = BytesMut::new();
            call_frame(&h, false, &mut out).unwrap();
            assert_eq!(out.to_vec(), encoded(golden), "{}", h.method);
        }
        let trailers: Vec<&Frame> = frames.iter().filter(|f| f.flags == TRAILER).collect();
        assert_eq!(trailers.len(), 2, "client stream and bidi end their input with TRAILER(OK)");
        for golden in trailers {
            assert_eq!(eoi_frame(false).to_vec(), encoded(golden));
        }
        let json = br#"{"code":0,"message":"","detailKeys":[],"detailValues":[]}"#;
        let mut expected = vec![json.len() as u8 + 1, 0, 0, 0, TRAILER];
        expected.extend_from_slice(json);
        assert_eq!(eoi_frame(true).to_vec(), expected);
    }
}
