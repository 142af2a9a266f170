//! The handles of streaming calls: [`Streaming`] (responses), [`RequestSink`] (bidi
//! requests) and [`ClientStreamCall`] (client-stream requests + the single response).
//!
//! Each has two implementations behind one public type: a call on its own QUIC stream
//! ("per call") and a call inside a v0.1 session stream.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::task::AtomicWaker;
use tokio::time::{Instant, Sleep};

use super::channel::{consume_eof, early_status, finish_and_read_single};
use super::inbound::{Inbound, classify};
use super::options::deadline_exceeded;
use super::session::{SessionCs, SessionRx, SessionTx};
use crate::codec::{Message, PayloadCodec};
use crate::transport::stream::{FrameReader, FrameWriter};
use crate::{Code, Status};

// ---------------------------------------------------------------------------------------------
// Streaming<T>
// ---------------------------------------------------------------------------------------------

/// The responses of a server-streaming or bidi call.
///
/// Read with [`Streaming::message`] or as a `futures::Stream` of `Result<T, Status>`. The
/// stream ends (`Ok(None)` / `None`) after the server's OK trailer; a non-OK trailer, a
/// transport failure, a decode failure or the call's deadline is returned once as `Err`,
/// after which the stream is ended. Dropping the stream before its end cancels the call
/// (per-call stream: reset + stop; session: a CANCEL frame).
pub struct Streaming<T> {
    rx: Rx,
    codec: PayloadCodec,
    deadline: Option<(Instant, Pin<Box<Sleep>>)>,
    finished: bool,
    _t: PhantomData<fn() -> T>,
}

pub(crate) enum Rx {
    PerCall(PerCallRx),
    Session(SessionRx),
}

impl Rx {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<(u8, Bytes)>, Status>> {
        match self {
            Rx::PerCall(rx) => rx.poll_frame(cx),
            Rx::Session(rx) => rx.poll_frame(cx),
        }
    }

    fn abort(&mut self, reason: &Status) {
        match self {
            Rx::PerCall(rx) => rx.abort(reason),
            Rx::Session(rx) => rx.abort(reason),
        }
    }
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.rx {
            Rx::PerCall(_) => "per-call",
            Rx::Session(_) => "session",
        };
        f.debug_struct("Streaming").field("kind", &kind).field("finished", &self.finished).finish()
    }
}

impl<T> Streaming<T> {
    fn new(rx: Rx, codec: PayloadCodec, deadline: Option<Instant>) -> Streaming<T> {
        Streaming {
            rx,
            codec,
            deadline: deadline.map(|at| (at, Box::pin(tokio::time::sleep_until(at)))),
            finished: false,
            _t: PhantomData,
        }
    }

    pub(crate) fn per_call(
        reader: FrameReader,
        writer: Option<FrameWriter>,
        link: Option<Arc<Link>>,
        json: bool,
        codec: PayloadCodec,
        deadline: Option<Instant>,
    ) -> Streaming<T> {
        Streaming::new(Rx::PerCall(PerCallRx { reader, writer, link, json, ended: false }), codec, deadline)
    }

    pub(crate) fn session(rx: SessionRx, codec: PayloadCodec, deadline: Option<Instant>) -> Streaming<T> {
        Streaming::new(Rx::Session(rx), codec, deadline)
    }

    /// Cancels the call now (the same as dropping the stream). In a session the CANCEL frame
    /// is sent and the session recovers (discarding frames up to the server's CANCELLED
    /// trailer) before its next call.
    pub fn cancel(mut self) {
        self.fail(Status::cancelled("call cancelled by the client"));
    }

    /// Whether the stream has ended (its last item was returned).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn fail(&mut self, status: Status) -> Status {
        if !self.finished {
            self.finished = true;
            self.rx.abort(&status);
        }
        status
    }
}

impl<T: Message> Streaming<T> {
    /// The next response; `Ok(None)` after the OK trailer.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    /// Reads all remaining responses.
    pub async fn collect_all(mut self) -> Result<Vec<T>, Status> {
        let mut out = Vec::new();
        while let Some(m) = self.message().await? {
            out.push(m);
        }
        Ok(out)
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Status>> {
        if self.finished {
            return Poll::Ready(Ok(None));
        }
        if let Some((at, _)) = &self.deadline
            && *at <= Instant::now()
        {
            return Poll::Ready(Err(self.fail(deadline_exceeded())));
        }
        match self.rx.poll_frame(cx) {
            Poll::Ready(Ok(Some((flags, payload)))) => match self.codec.decode::<T>(flags, &payload) {
                Ok(m) => Poll::Ready(Ok(Some(m))),
                Err(e) => Poll::Ready(Err(self.fail(e))),
            },
            Poll::Ready(Ok(None)) => {
                self.finished = true;
                Poll::Ready(Ok(None))
            }
            Poll::Ready(Err(e)) => {
                self.finished = true;
                Poll::Ready(Err(e))
            }
            Poll::Pending => {
                if let Some((_, sleep)) = &mut self.deadline
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(self.fail(deadline_exceeded())));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: Message> futures::Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx).map(Result::transpose)
    }
}

impl<T: Message> futures::stream::FusedStream for Streaming<T> {
    fn is_terminated(&self) -> bool {
        self.finished
    }
}

/// The receive side of a call on its own stream.
pub(crate) struct PerCallRx {
    reader: FrameReader,
    /// Server stream: the (finished) send half, reset when the call is cancelled.
    writer: Option<FrameWriter>,
    /// Bidi: the state shared with the request sink.
    link: Option<Arc<Link>>,
    json: bool,
    ended: bool,
}

impl PerCallRx {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<(u8, Bytes)>, Status>> {
        if self.ended {
            return Poll::Ready(Ok(None));
        }
        if let Some(link) = &self.link {
            link.rx_waker.register(cx.waker());
            let cancelled = match &*link.lock() {
                LinkState::Cancelled(reason) => Some(reason.clone()),
                _ => None,
            };
            if let Some(reason) = cancelled {
                self.abort(&reason);
                return Poll::Ready(Err(reason));
            }
        }
        loop {
            let status = match self.reader.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Some(frame))) => match classify(frame, self.json) {
                    Ok(Inbound::Message(flags, payload)) => {
                        return Poll::Ready(Ok(Some((flags, payload))));
                    }
                    Ok(Inbound::Skip) => continue,
                    Ok(Inbound::Trailer(status)) => {
                        self.ended = true;
                        if let Some(link) = &self.link {
                            link.complete(&status);
                        }
                        consume_eof(&mut self.reader);
                        return Poll::Ready(if status.is_ok() { Ok(None) } else { Err(status) });
                    }
                    Err(status) => status,
                },
                Poll::Ready(Ok(None)) => Status::unavailable("stream ended before trailer"),
                Poll::Ready(Err(e)) => e.to_status(),
            };
            self.abort(&status);
            return Poll::Ready(Err(status));
        }
    }

    /// Cancels the call: stop reading, reset the send half (or tell the sink).
    fn abort(&mut self, reason: &Status) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.reader.stop();
        if let Some(w) = &mut self.writer {
            w.reset();
        }
        if let Some(link) = &self.link {
            link.cancel(reason);
        }
    }
}

impl Drop for PerCallRx {
    fn drop(&mut self) {
        self.abort(&Status::cancelled("response stream dropped"));
    }
}

/// State shared by the two halves of a per-call bidi stream.
pub(crate) struct Link {
    state: Mutex<LinkState>,
    rx_waker: AtomicWaker,
}

pub(crate) enum LinkState {
    Running,
    /// One half cancelled the call (dropped, deadline, failure) for this reason.
    Cancelled(Status),
    /// The server's trailer arrived with this status.
    Completed(Status),
}

impl Link {
    fn new() -> Arc<Link> {
        Arc::new(Link { state: Mutex::new(LinkState::Running), rx_waker: AtomicWaker::new() })
    }

    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cancel(&self, reason: &Status) {
        let mut st = self.lock();
        if matches!(*st, LinkState::Running) {
            *st = LinkState::Cancelled(reason.clone());
            drop(st);
            self.rx_waker.wake();
        }
    }

    fn complete(&self, status: &Status) {
        let mut st = self.lock();
        if matches!(*st, LinkState::Running) {
            *st = LinkState::Completed(status.clone());
        }
    }

    /// Whether the sink may still send.
    fn check_send(&self) -> Result<(), Status> {
        match &*self.lock() {
            LinkState::Running => Ok(()),
            LinkState::Cancelled(reason) => Err(reason.clone()),
            LinkState::Completed(status) => Err(call_already_ended(status)),
        }
    }

    fn is_completed(&self) -> bool {
        matches!(*self.lock(), LinkState::Completed(_))
    }
}

/// The error of a send after the server ended the call with `status`.
pub(crate) fn call_already_ended(status: &Status) -> Status {
    if status.is_ok() { Status::failed_precondition("the server has already ended the call") } else { status.clone() }
}

/// The two halves of a bidi call on its own stream.
pub(crate) fn per_call_bidi<Req, Resp>(
    reader: FrameReader,
    writer: FrameWriter,
    json: bool,
    codec: PayloadCodec,
    deadline: Option<Instant>,
) -> (RequestSink<Req>, Streaming<Resp>) {
    let link = Link::new();
    let tx = PerCallTx { writer, link: link.clone(), closed: false, failed: None };
    let sink = RequestSink { tx: Tx::PerCall(tx), codec, deadline, _t: PhantomData };
    (sink, Streaming::per_call(reader, None, Some(link), json, codec, deadline))
}

// ---------------------------------------------------------------------------------------------
// RequestSink<T>
// ---------------------------------------------------------------------------------------------

/// The request half of a bidi call.
///
/// [`RequestSink::send`] writes one request; [`RequestSink::close`] ends the input (QUIC
/// finish on a per-call stream, a client TRAILER(OK) in a session). Dropping the sink without
/// closing it cancels the call.
pub struct RequestSink<T> {
    tx: Tx,
    codec: PayloadCodec,
    deadline: Option<Instant>,
    _t: PhantomData<fn(&T)>,
}

pub(crate) enum Tx {
    PerCall(PerCallTx),
    Session(SessionTx),
}

impl<T> fmt::Debug for RequestSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.tx {
            Tx::PerCall(_) => "per-call",
            Tx::Session(_) => "session",
        };
        f.debug_struct("RequestSink").field("kind", &kind).finish()
    }
}

impl<T> RequestSink<T> {
    pub(crate) fn session(tx: SessionTx, codec: PayloadCodec, deadline: Option<Instant>) -> RequestSink<T> {
        RequestSink { tx: Tx::Session(tx), codec, deadline, _t: PhantomData }
    }

    /// Ends the input: no more requests. The responses keep coming on the response stream.
    pub async fn close(mut self) -> Result<(), Status> {
        match &mut self.tx {
            Tx::PerCall(tx) => tx.close(self.deadline).await,
            Tx::Session(tx) => tx.close(self.deadline).await,
        }
    }

    /// Cancels the call (the same as dropping the sink without closing it).
    pub fn cancel(self) {}
}

impl<T: Message> RequestSink<T> {
    /// Writes one request.
    ///
    /// Fails when the call was cancelled (the reason is returned, e.g. `DEADLINE_EXCEEDED`),
    /// when the server has already ended the call (its error status, or
    /// `FAILED_PRECONDITION` after an OK trailer), or with `UNAVAILABLE` when the stream
    /// cannot be written (the response stream then reports the call's final status).
    pub async fn send(&mut self, request: &T) -> Result<(), Status> {
        let (flags, payload) = self.codec.encode(request)?;
        match &mut self.tx {
            Tx::PerCall(tx) => tx.send(flags, &payload, self.deadline).await,
            Tx::Session(tx) => tx.send(flags, &payload, self.deadline).await,
        }
    }

    /// Writes every item of `requests`, in order.
    pub async fn send_all<I>(&mut self, requests: I) -> Result<(), Status>
    where
        I: IntoIterator<Item = T>,
    {
        for r in requests {
            self.send(&r).await?;
        }
        Ok(())
    }
}

/// The send side of a bidi call on its own stream.
pub(crate) struct PerCallTx {
    writer: FrameWriter,
    link: Arc<Link>,
    /// Closed, cancelled or failed: dropping it does nothing more.
    closed: bool,
    /// A write failed: the stream cannot carry more requests.
    failed: Option<Status>,
}

impl PerCallTx {
    async fn send(&mut self, flags: u8, payload: &[u8], deadline: Option<Instant>) -> Result<(), Status> {
        if let Err(e) = self.link.check_send() {
            // Cancelled by the response side (or ended by the server): nothing more to send.
            self.cancel(&e);
            return Err(e);
        }
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        self.writer.push(flags, payload)?;
        let r = super::options::with_deadline(deadline, self.writer.flush()).await;
        self.after_write(r)
    }

    async fn close(&mut self, deadline: Option<Instant>) -> Result<(), Status> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        let cancelled = match &*self.link.lock() {
            LinkState::Cancelled(reason) => Some(reason.clone()),
            _ => None,
        };
        if let Some(reason) = cancelled {
            self.cancel(&reason);
            return Err(reason);
        }
        let r = super::options::with_deadline(deadline, self.writer.finish()).await;
        let r = self.after_write(r);
        if r.is_ok() {
            self.closed = true;
        }
        r
    }

    fn after_write(&mut self, r: Result<(), Status>) -> Result<(), Status> {
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Code::DeadlineExceeded => {
                self.cancel(&e);
                Err(e)
            }
            Err(e) => {
                // The stream is dead; the response stream reports the call's outcome (so a
                // later drop of this sink must not turn it into CANCELLED).
                let e = self.link.check_send().err().unwrap_or(e);
                self.failed = Some(e.clone());
                self.closed = true;
                Err(e)
            }
        }
    }

    /// Cancels the call from this side: reset the send half unless the server already ended
    /// the call, and tell the response stream.
    fn cancel(&mut self, reason: &Status) {
        if !self.closed && !self.link.is_completed() {
            self.writer.reset();
            self.link.cancel(reason);
        }
        self.closed = true;
    }
}

impl Drop for PerCallTx {
    fn drop(&mut self) {
        if !self.closed {
            self.cancel(&Status::cancelled("request sink dropped"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ClientStreamCall<Req, Resp>
// ---------------------------------------------------------------------------------------------

/// A client-streaming call in progress: send requests, then [`ClientStreamCall::finish`].
///
/// Dropping it without finishing cancels the call.
pub struct ClientStreamCall<Req, Resp> {
    cs: Cs,
    codec: PayloadCodec,
    deadline: Option<Instant>,
    _t: PhantomData<ReqResp<Req, Resp>>,
}

/// Variance/auto-trait marker: sends `Req`, yields `Resp`.
type ReqResp<Req, Resp> = (fn(&Req), fn() -> Resp);

pub(crate) enum Cs {
    PerCall(PerCallCs),
    Session(SessionCs),
}

impl<Req, Resp> fmt::Debug for ClientStreamCall<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.cs {
            Cs::PerCall(_) => "per-call",
            Cs::Session(_) => "session",
        };
        f.debug_struct("ClientStreamCall").field("kind", &kind).finish()
    }
}

impl<Req, Resp> ClientStreamCall<Req, Resp> {
    pub(crate) fn per_call(
        reader: FrameReader,
        writer: FrameWriter,
        json: bool,
        codec: PayloadCodec,
        deadline: Option<Instant>,
    ) -> ClientStreamCall<Req, Resp> {
        let cs = PerCallCs { reader, writer, json, failed: None, done: false };
        ClientStreamCall { cs: Cs::PerCall(cs), codec, deadline, _t: PhantomData }
    }

    pub(crate) fn session(
        cs: SessionCs,
        codec: PayloadCodec,
        deadline: Option<Instant>,
    ) -> ClientStreamCall<Req, Resp> {
        ClientStreamCall { cs: Cs::Session(cs), codec, deadline, _t: PhantomData }
    }

    /// Cancels the call (the same as dropping it).
    pub fn cancel(self) {}
}

impl<Req: Message, Resp: Message> ClientStreamCall<Req, Resp> {
    /// Writes one request.
    ///
    /// A write failure (`UNAVAILABLE`) usually means the server ended the call early; when
    /// its error trailer has already arrived, that status is returned instead, and
    /// [`ClientStreamCall::finish`] still reports the call's outcome.
    pub async fn send(&mut self, request: &Req) -> Result<(), Status> {
        let (flags, payload) = self.codec.encode(request)?;
        match &mut self.cs {
            Cs::PerCall(cs) => cs.send(flags, &payload, self.deadline).await,
            Cs::Session(cs) => cs.send(flags, &payload, self.deadline).await,
        }
    }

    /// Ends the input and waits for the response (and, on a per-call stream, the trailer).
    pub async fn finish(mut self) -> Result<Resp, Status> {
        let (flags, payload) = match &mut self.cs {
            Cs::PerCall(cs) => cs.finish(self.deadline).await?,
            Cs::Session(cs) => cs.finish(self.deadline).await?,
        };
        self.codec.decode::<Resp>(flags, &payload)
    }
}

/// A client-stream call on its own stream.
pub(crate) struct PerCallCs {
    reader: FrameReader,
    writer: FrameWriter,
    json: bool,
    failed: Option<Status>,
    done: bool,
}

impl PerCallCs {
    async fn send(&mut self, flags: u8, payload: &[u8], deadline: Option<Instant>) -> Result<(), Status> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        self.writer.push(flags, payload)?;
        match super::options::with_deadline(deadline, self.writer.flush()).await {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Code::DeadlineExceeded => {
                self.abort(&e);
                Err(e)
            }
            Err(e) => Err(early_status(&mut self.reader, self.json).unwrap_or(e)),
        }
    }

    async fn finish(&mut self, deadline: Option<Instant>) -> Result<(u8, Bytes), Status> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        let fut = finish_and_read_single(&mut self.reader, &mut self.writer, self.json);
        let r = super::options::with_deadline(deadline, fut).await;
        match &r {
            Ok(_) => {
                consume_eof(&mut self.reader);
                self.done = true;
            }
            Err(e) if e.code() == Code::DeadlineExceeded => self.abort(e),
            Err(_) => {}
        }
        r
    }

    fn abort(&mut self, reason: &Status) {
        if self.failed.is_none() && !self.done {
            self.writer.reset();
            self.reader.stop();
            self.failed = Some(reason.clone());
        }
    }
}

impl Drop for PerCallCs {
    fn drop(&mut self) {
        self.abort(&Status::cancelled("client-stream call dropped"));
    }
}
