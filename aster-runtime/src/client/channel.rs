//! [`Channel`]: one `aster/1` connection to a peer, and the per-call-stream patterns.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use iroh::endpoint::Connection;
use iroh::{Endpoint, EndpointAddr, EndpointId};
use tokio::time::Instant;

use super::inbound::{Inbound, classify};
use super::options::{CallOptions, Deadline, split_metadata, uuid_v4, with_deadline};
use super::session::Session;
use super::streams::{ClientStreamCall, RequestSink, Streaming};
use crate::codec::{Message, PayloadCodec};
use crate::transport::stream::{FrameReader, FrameWriter};
use crate::transport::{ALPN_RPC, AsterTicket, FramedStream, addr_from_ticket};
use crate::wire::flags::HEADER;
use crate::wire::{ProtocolMessage, StreamHeader};
use crate::{SerializationMode, Status};

/// A client connection to one peer over ALPN `aster/1`.
///
/// Cheap to clone (clones share the QUIC connection). Every call opens its own bi-stream
/// (v0.1 dialect); a [`Session`] holds one stream for a sequence of calls. Calls address
/// `(service, version, method)` and carry typed messages (see [`Message`]).
///
/// ```no_run
/// # use aster_runtime::client::{Channel, CallOptions};
/// # async fn demo(ep: iroh::Endpoint, addr: iroh::EndpointAddr) -> Result<(), aster_runtime::Status> {
/// # #[derive(Debug, serde::Serialize, serde::Deserialize)] struct Req { n: i64 }
/// # #[derive(Debug, serde::Serialize, serde::Deserialize)] struct Resp { total: i64 }
/// # aster_runtime::impl_message!(Req, "demo/Req"; json_only);
/// # aster_runtime::impl_message!(Resp, "demo/Resp"; json_only);
/// let channel = Channel::connect(&ep, addr).await?;
/// let resp: Resp = channel.unary("Counter", 1, "add", &Req { n: 5 }, CallOptions::new()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Channel {
    conn: Connection,
    mode: SerializationMode,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel").field("peer", &self.conn.remote_id()).field("mode", &self.mode).finish()
    }
}

/// What every call on a fresh stream needs, prepared before the stream is opened.
pub(crate) struct Prepared {
    pub(crate) header: Vec<u8>,
    pub(crate) codec: PayloadCodec,
    pub(crate) json: bool,
    pub(crate) deadline: Option<Instant>,
}

impl Channel {
    /// Dials `addr` on ALPN `aster/1`. Failures are `UNAVAILABLE` with the reason.
    pub async fn connect(ep: &Endpoint, addr: impl Into<EndpointAddr>) -> Result<Channel, Status> {
        let addr = addr.into();
        let id = addr.id;
        let conn = ep
            .connect(addr, ALPN_RPC)
            .await
            .map_err(|e| Status::unavailable(format!("cannot connect to {id}: {e}")))?;
        Ok(Channel::from_connection(conn))
    }

    /// Dials the peer of an `aster1…` ticket (its direct addresses; the relay is not used).
    /// A malformed ticket is `INVALID_ARGUMENT`.
    pub async fn connect_ticket(ep: &Endpoint, ticket: &str) -> Result<Channel, Status> {
        let ticket =
            AsterTicket::from_str(ticket).map_err(|e| Status::invalid_argument(format!("invalid ticket: {e}")))?;
        let addr = addr_from_ticket(&ticket)?;
        Channel::connect(ep, addr).await
    }

    /// Wraps an established connection (which must have been made with ALPN `aster/1`).
    pub fn from_connection(conn: Connection) -> Channel {
        Channel { conn, mode: SerializationMode::Native }
    }

    /// Sets the default serialization mode of calls made through this handle (default
    /// [`SerializationMode::Native`]); [`CallOptions::mode`] overrides it per call.
    pub fn with_mode(mut self, mode: SerializationMode) -> Channel {
        self.mode = mode;
        self
    }

    /// The default serialization mode.
    pub fn mode(&self) -> SerializationMode {
        self.mode
    }

    /// The peer's endpoint id (from its TLS certificate).
    pub fn peer(&self) -> EndpointId {
        self.conn.remote_id()
    }

    /// The underlying QUIC connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Closes the connection immediately (every clone and every call in flight fails).
    pub fn close(&self) {
        self.conn.close(0u32.into(), b"channel closed");
    }

    /// Validates the options and encodes the StreamHeader of a call.
    fn prepare(
        &self,
        service: &str,
        version: i64,
        method: &str,
        call_id: String,
        opts: CallOptions,
    ) -> Result<Prepared, Status> {
        let mode = opts.mode.unwrap_or(self.mode);
        let (metadata_keys, metadata_values) = split_metadata(opts.metadata)?;
        let deadline = Deadline::start(opts.timeout);
        let json = mode.protocol_is_json();
        let header =
            stream_header(service, version, method, call_id, deadline.epoch_ms, mode, metadata_keys, metadata_values);
        Ok(Prepared { header: header.encode(json), codec: PayloadCodec::new(mode), json, deadline: deadline.instant })
    }

    /// Opens a bi-stream (bounded by the deadline) and queues the HEADER frame.
    async fn open(&self, p: &Prepared) -> Result<(FrameReader, FrameWriter), Status> {
        let stream = with_deadline(p.deadline, FramedStream::open(&self.conn)).await?;
        let (reader, mut writer) = stream.split();
        writer.push(HEADER, &p.header)?;
        Ok((reader, writer))
    }

    /// A unary call: one request, one response.
    ///
    /// Opens a stream, writes HEADER + request in one write and finishes; reads the response
    /// and the trailer. A non-OK trailer is returned as the error; the timeout of `opts` bounds
    /// the whole call. Dropping the future cancels the call (the stream is reset).
    pub async fn unary<Req: Message, Resp: Message>(
        &self,
        service: &str,
        version: i64,
        method: &str,
        request: &Req,
        opts: CallOptions,
    ) -> Result<Resp, Status> {
        let p = self.prepare(service, version, method, String::new(), opts)?;
        let (flags, payload) = p.codec.encode(request)?;
        let fut = async {
            let (mut reader, mut writer) = self.open(&p).await?;
            let call = CancelOnDrop::new(&mut reader, &mut writer);
            call.writer.push(flags, &payload)?;
            let (rflags, rpayload) = finish_and_read_single(call.reader, call.writer, p.json).await?;
            consume_eof(call.reader);
            call.disarm();
            p.codec.decode::<Resp>(rflags, &rpayload)
        };
        with_deadline(p.deadline, fut).await
    }

    /// A server-streaming call: one request, a stream of responses.
    ///
    /// Returns once the request is written; read the responses with [`Streaming::message`]
    /// or as a `futures::Stream`. The timeout of `opts` covers the whole stream.
    pub async fn server_stream<Req: Message, Resp: Message>(
        &self,
        service: &str,
        version: i64,
        method: &str,
        request: &Req,
        opts: CallOptions,
    ) -> Result<Streaming<Resp>, Status> {
        let p = self.prepare(service, version, method, uuid_v4(), opts)?;
        let (flags, payload) = p.codec.encode(request)?;
        let fut = async {
            let (mut reader, mut writer) = self.open(&p).await?;
            let call = CancelOnDrop::new(&mut reader, &mut writer);
            call.writer.push(flags, &payload)?;
            if let Err(write_err) = call.writer.finish().await {
                // An early answer (e.g. an error trailer) explains the failure better.
                return Err(early_status(call.reader, p.json).unwrap_or(write_err));
            }
            call.disarm();
            Ok((reader, writer))
        };
        let (reader, writer) = with_deadline(p.deadline, fut).await?;
        Ok(Streaming::per_call(reader, Some(writer), None, p.json, p.codec, p.deadline))
    }

    /// A client-streaming call: send requests with [`ClientStreamCall::send`], then
    /// [`ClientStreamCall::finish`] ends the input (QUIC finish) and returns the response.
    ///
    /// Returns once the HEADER is written (the server can reject the call before any request).
    pub async fn client_stream<Req: Message, Resp: Message>(
        &self,
        service: &str,
        version: i64,
        method: &str,
        opts: CallOptions,
    ) -> Result<ClientStreamCall<Req, Resp>, Status> {
        let p = self.prepare(service, version, method, uuid_v4(), opts)?;
        let fut = async {
            let (mut reader, mut writer) = self.open(&p).await?;
            let call = CancelOnDrop::new(&mut reader, &mut writer);
            call.writer.flush().await?;
            call.disarm();
            Ok((reader, writer))
        };
        let (reader, writer) = with_deadline(p.deadline, fut).await?;
        Ok(ClientStreamCall::per_call(reader, writer, p.json, p.codec, p.deadline))
    }

    /// A client-streaming call over all items of `requests`; returns the response.
    pub async fn client_stream_iter<Req, Resp, I>(
        &self,
        service: &str,
        version: i64,
        method: &str,
        requests: I,
        opts: CallOptions,
    ) -> Result<Resp, Status>
    where
        Req: Message,
        Resp: Message,
        I: IntoIterator<Item = Req>,
    {
        let mut call = self.client_stream::<Req, Resp>(service, version, method, opts).await?;
        for item in requests {
            call.send(&item).await?;
        }
        call.finish().await
    }

    /// A bidirectional-streaming call: returns the request sink and the response stream,
    /// which may be used from different tasks. [`RequestSink::close`] ends the input (QUIC
    /// finish); dropping either half before the call completes cancels the call.
    pub async fn bidi<Req: Message, Resp: Message>(
        &self,
        service: &str,
        version: i64,
        method: &str,
        opts: CallOptions,
    ) -> Result<(RequestSink<Req>, Streaming<Resp>), Status> {
        let p = self.prepare(service, version, method, uuid_v4(), opts)?;
        let fut = async {
            let (mut reader, mut writer) = self.open(&p).await?;
            let call = CancelOnDrop::new(&mut reader, &mut writer);
            call.writer.flush().await?;
            call.disarm();
            Ok((reader, writer))
        };
        let (reader, writer) = with_deadline(p.deadline, fut).await?;
        Ok(super::streams::per_call_bidi(reader, writer, p.json, p.codec, p.deadline))
    }

    /// Opens a session of a session-scoped service (v0.1: one stream for the whole session,
    /// one CALL frame per call). The HEADER carries method `""`, a fresh UUIDv4 session id as
    /// call id, no deadline, the metadata and mode of `opts`; the timeout of `opts` bounds
    /// only the opening.
    pub async fn open_session(&self, service: &str, version: i64, opts: CallOptions) -> Result<Session, Status> {
        let session_id = uuid_v4();
        let mode = opts.mode.unwrap_or(self.mode);
        let timeout = opts.timeout;
        let opts = CallOptions { timeout: None, ..opts };
        let p = self.prepare(service, version, "", session_id.clone(), opts)?;
        let deadline = Deadline::start(timeout).instant;
        let fut = async {
            let (mut reader, mut writer) = self.open(&p).await?;
            let call = CancelOnDrop::new(&mut reader, &mut writer);
            call.writer.flush().await?;
            call.disarm();
            Ok((reader, writer))
        };
        let (reader, writer) = with_deadline(deadline, fut).await?;
        Ok(Session::new(session_id, service.to_owned(), version, mode, p.codec, reader, writer))
    }
}

/// The StreamHeader of a call.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stream_header(
    service: &str,
    version: i64,
    method: &str,
    call_id: String,
    deadline_epoch_ms: i64,
    mode: SerializationMode,
    metadata_keys: Vec<String>,
    metadata_values: Vec<String>,
) -> StreamHeader {
    StreamHeader {
        service: service.to_owned(),
        method: method.to_owned(),
        version,
        call_id,
        deadline_epoch_ms,
        serialization_mode: mode.as_i64(),
        metadata_keys,
        metadata_values,
    }
}

/// Cancels a per-call stream (reset the send half, stop the receive half) when dropped while
/// armed: a dropped call future, an expired deadline or an early error return.
pub(crate) struct CancelOnDrop<'a> {
    pub(crate) reader: &'a mut FrameReader,
    pub(crate) writer: &'a mut FrameWriter,
    pub(crate) armed: bool,
}

impl<'a> CancelOnDrop<'a> {
    pub(crate) fn new(reader: &'a mut FrameReader, writer: &'a mut FrameWriter) -> CancelOnDrop<'a> {
        CancelOnDrop { reader, writer, armed: true }
    }

    /// The call completed (or its halves live on elsewhere): do not cancel.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.writer.reset();
            self.reader.stop();
        }
    }
}

/// Reads a single response message and the OK trailer of a unary or client-stream call.
async fn read_single_response(reader: &mut FrameReader, json: bool) -> Result<(u8, Bytes), Status> {
    let mut response: Option<(u8, Bytes)> = None;
    loop {
        match reader.next().await {
            Ok(Some(frame)) => match classify(frame, json)? {
                Inbound::Message(flags, payload) => {
                    if response.is_some() {
                        return Err(Status::internal("multiple response frames"));
                    }
                    response = Some((flags, payload));
                }
                Inbound::Skip => {}
                Inbound::Trailer(status) => {
                    if !status.is_ok() {
                        return Err(status);
                    }
                    return response.ok_or_else(|| Status::internal("trailer OK without response"));
                }
            },
            Ok(None) => return Err(Status::unavailable("stream ended before trailer")),
            Err(e) => return Err(e.to_status()),
        }
    }
}

/// Ends the input of a unary or client-stream call (flush + QUIC finish), then reads the single
/// response and the trailer.
///
/// A failed write does not hide the server's answer: a server may answer early and stop
/// reading the rest of the request, which fails the write. The outcome is the response when
/// it arrived with an OK trailer, else the server's status unless it is `UNAVAILABLE` (the
/// stream merely ended), else the write error.
pub(crate) async fn finish_and_read_single(
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
    json: bool,
) -> Result<(u8, Bytes), Status> {
    let written = writer.finish().await;
    match (read_single_response(reader, json).await, written) {
        (Ok(response), _) => Ok(response),
        (Err(e), Err(write_err)) if e.code() == crate::Code::Unavailable => Err(write_err),
        (Err(e), _) => Err(e),
    }
}

/// Reads the server's end of stream when it has already arrived with the trailer (usual:
/// the server finishes right after it), so dropping the reader does not send a spurious
/// STOP_SENDING for a stream that is complete. Never waits.
pub(crate) fn consume_eof(reader: &mut FrameReader) {
    use futures::FutureExt;
    let _ = reader.next().now_or_never();
}

/// A non-OK trailer that has already arrived (checked without waiting).
pub(crate) fn early_status(reader: &mut FrameReader, json: bool) -> Option<Status> {
    use futures::FutureExt;
    loop {
        match reader.next().now_or_never()? {
            Ok(Some(frame)) => match classify(frame, json) {
                Ok(Inbound::Trailer(s)) if !s.is_ok() => return Some(s),
                Ok(Inbound::Trailer(_)) => return None,
                Ok(_) => {}
                Err(s) => return Some(s),
            },
            _ => return None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::client::inbound::tests::golden_c2s_frames;

    /// The HEADER frames of the golden captures are what this client builds for the same call.
    #[test]
    fn header_frames_match_the_golden_captures() {
        let cases = [
            (
                "client_stream_upload_steps.c2s.bin",
                "TaskManager",
                "upload_steps",
                "cceec2f9-b1a1-42dc-a4d7-62e6eace018b",
            ),
            ("bidi_chat.c2s.bin", "TaskManager", "chat", "2253e98d-4899-4041-b7e4-d55bb38a74b9"),
            ("session_TaskSession_all_patterns.c2s.bin", "TaskSession", "", "568d10f8-4017-4648-b40e-0f99f04aae94"),
        ];
        for (file, service, method, call_id) in cases {
            let golden = golden_c2s_frames(file).remove(0);
            assert_eq!(golden.flags, HEADER);
            let h = stream_header(service, 1, method, call_id.into(), 0, SerializationMode::Xlang, vec![], vec![]);
            assert_eq!(h.encode(false), golden.payload.to_vec(), "{file}");
        }
    }
}
