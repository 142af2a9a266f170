//! [`FramedStream`]: a QUIC bi-stream carrying Aster frames.
//!
//! The read half enforces the frame limits before buffering (a too-large length prefix is
//! rejected as soon as its four bytes arrive); EOF exactly at a frame boundary is a clean end,
//! EOF inside a frame is [`FrameError::Truncated`].

use std::future::Future;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use iroh::endpoint::{RecvStream, SendStream, VarInt};

use crate::Status;
use crate::wire::frame::{FRAME_OVERHEAD, expected_len};
use crate::wire::{Frame, FrameDecoder, FrameError, encode_frame};

/// QUIC application error code used when aster resets or stops a stream (cancellation).
pub const STREAM_CANCELLED: u32 = 0x1;

/// `e` with its source chain (`connection lost: closed by peer: not admitted (code 403)`):
/// quinn-style errors display only their own level, which would hide the peer's close reason.
pub(crate) fn with_sources(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The read half of a framed stream.
///
/// Frames that arrive whole inside one QUIC chunk are sliced out of it without copying; only
/// a frame split across chunks is assembled in a buffer (released after a large frame, so an
/// idle reader holds at most 64 KiB).
#[derive(Debug)]
pub struct FrameReader {
    recv: RecvStream,
    /// The rest of the last chunk read (only while `buf` is empty).
    chunk: Bytes,
    /// A frame being assembled across chunks (followed by nothing: `chunk` is then empty).
    buf: BytesMut,
    decoder: FrameDecoder,
    eof: bool,
}

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadFrameError {
    /// The peer sent bytes that are not a valid frame.
    #[error("malformed frame: {0}")]
    Frame(#[from] FrameError),
    /// The stream was reset or the connection was lost.
    #[error("stream read failed: {0}")]
    Stream(String),
}

impl ReadFrameError {
    /// The status to report for this error (malformed input → the frame error's status,
    /// transport failure → UNAVAILABLE).
    pub fn to_status(&self) -> Status {
        match self {
            ReadFrameError::Frame(e) => e.to_status(),
            ReadFrameError::Stream(m) => Status::unavailable(m.clone()),
        }
    }
}

impl FrameReader {
    /// Wraps a QUIC receive stream.
    pub fn new(recv: RecvStream) -> Self {
        FrameReader { recv, chunk: Bytes::new(), buf: BytesMut::new(), decoder: FrameDecoder::new(), eof: false }
    }

    /// Sets the maximum accepted frame size (default 16 MiB).
    pub fn with_max_frame_size(mut self, max: u32) -> Self {
        self.decoder = FrameDecoder::with_max_frame_size(max);
        self
    }

    /// Reads the next frame; `Ok(None)` on a clean end of stream at a frame boundary.
    ///
    /// Cancel-safe: dropping the future loses no data (partial frames stay buffered).
    pub async fn next(&mut self) -> Result<Option<Frame>, ReadFrameError> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Poll form of [`FrameReader::next`], for hand-written futures and streams.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Frame>, ReadFrameError>> {
        loop {
            if self.buf.is_empty() {
                if let Some(frame) = self.decoder.decode_shared(&mut self.chunk)? {
                    return Poll::Ready(Ok(Some(frame)));
                }
                // A partial frame (or nothing): assemble it from the next chunks.
                if !self.chunk.is_empty() {
                    self.buf.extend_from_slice(&self.chunk);
                    self.chunk = Bytes::new();
                }
            }
            if !self.buf.is_empty()
                && let Some(frame) = self.decoder.decode(&mut self.buf)?
            {
                if self.buf.is_empty() && self.buf.capacity() > KEEP_BUFFER {
                    // A large frame was assembled: do not keep its buffer while idle.
                    self.buf = BytesMut::new();
                }
                return Poll::Ready(Ok(Some(frame)));
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Poll::Ready(Ok(None));
                }
                let have = self.buf.len();
                return Poll::Ready(Err(FrameError::Truncated { needed: expected_len(&self.buf), have }.into()));
            }
            // `read_chunk` is cancel-safe and leaves the waker registered when it is pending,
            // so polling a fresh future once per call is sound.
            let read = std::pin::pin!(self.recv.read_chunk(64 * 1024));
            match read.poll(cx) {
                Poll::Ready(Ok(Some(chunk))) if self.buf.is_empty() => self.chunk = chunk,
                Poll::Ready(Ok(Some(chunk))) => self.buf.extend_from_slice(&chunk),
                Poll::Ready(Ok(None)) => self.eof = true,
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(ReadFrameError::Stream(with_sources(&e))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Tells the peer to stop sending (used on cancellation); ignores an already closed stream.
    pub fn stop(&mut self) {
        let _ = self.recv.stop(VarInt::from_u32(STREAM_CANCELLED));
    }

    /// Whether a clean EOF has been seen.
    pub fn is_eof(&self) -> bool {
        self.eof && self.buf.is_empty() && self.chunk.is_empty()
    }
}

/// Buffer capacity a reader or writer keeps between frames; a larger one (left by a large
/// frame) is released, so an idle stream holds at most this much.
const KEEP_BUFFER: usize = 64 * 1024;

/// Extra room reserved with the first frame of a write (see [`FrameWriter::push`]).
const PUSH_SLACK: usize = 128;

/// The write half of a framed stream. Frames are encoded into a reusable buffer and written
/// in as few QUIC writes as possible.
///
/// Writes are resumable: if a [`FrameWriter::flush`] (or a method built on it) is cancelled,
/// the unwritten rest stays pending and the next flush writes it first, so the frame
/// boundaries on the stream are never lost.
#[derive(Debug)]
pub struct FrameWriter {
    send: SendStream,
    buf: BytesMut,
    /// Bytes handed to a write that has not completed yet (the unwritten suffix).
    pending: Bytes,
}

impl FrameWriter {
    /// Wraps a QUIC send stream.
    pub fn new(send: SendStream) -> Self {
        FrameWriter { send, buf: BytesMut::new(), pending: Bytes::new() }
    }

    /// Whether bytes are buffered or partially written (not yet handed to QUIC entirely).
    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty() || !self.pending.is_empty()
    }

    /// Appends a frame to the pending buffer without writing it.
    pub fn push(&mut self, flags: u8, payload: &[u8]) -> Result<(), Status> {
        if self.buf.is_empty() {
            // The first frame of a write: leave room for a small frame after it (a trailer, or
            // a unary call's request after its HEADER) so the pair costs one allocation.
            self.buf.reserve(FRAME_OVERHEAD + payload.len() + PUSH_SLACK);
        }
        encode_frame(flags, payload, &mut self.buf).map_err(|e| e.to_status())
    }

    /// Appends already-encoded frame bytes to the pending buffer.
    pub fn push_encoded(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Writes everything pending. Cancel-safe in the sense above: progress is kept.
    pub async fn flush(&mut self) -> Result<(), Status> {
        loop {
            if self.pending.is_empty() {
                if self.buf.is_empty() {
                    return Ok(());
                }
                self.pending = self.buf.split().freeze();
                if self.buf.capacity() > KEEP_BUFFER {
                    // The rest of a large write's buffer is not kept for the next one.
                    self.buf = BytesMut::new();
                }
            }
            // `write_many_chunks` is cancel-safe and advances `pending` in place: a fully
            // written chunk is taken (left empty), a partially written one keeps its suffix.
            let mut chunks: &mut [Bytes] = std::slice::from_mut(&mut self.pending);
            self.send
                .write_many_chunks(&mut chunks)
                .await
                .map_err(|e| Status::unavailable(format!("stream write failed: {}", with_sources(&e))))?;
        }
    }

    /// Encodes and writes one frame.
    pub async fn send(&mut self, flags: u8, payload: &[u8]) -> Result<(), Status> {
        self.push(flags, payload)?;
        self.flush().await
    }

    /// Writes pre-encoded frame bytes.
    pub async fn send_encoded(&mut self, bytes: Bytes) -> Result<(), Status> {
        self.flush().await?;
        self.pending = bytes;
        self.flush().await
    }

    /// Flushes and finishes the stream (end of our side).
    pub async fn finish(&mut self) -> Result<(), Status> {
        self.flush().await?;
        self.send.finish().map_err(|e| Status::unavailable(format!("stream finish failed: {e}")))
    }

    /// Resets the stream (abrupt end, used on cancellation); ignores an already closed stream.
    pub fn reset(&mut self) {
        let _ = self.send.reset(VarInt::from_u32(STREAM_CANCELLED));
    }

    /// Resolves when the peer stops reading this stream (it cancelled) or the stream ends.
    pub async fn stopped(&mut self) {
        let _ = self.send.stopped().await;
    }
}

/// A QUIC bi-stream carrying Aster frames, split into its halves.
#[derive(Debug)]
pub struct FramedStream {
    /// The read half.
    pub reader: FrameReader,
    /// The write half.
    pub writer: FrameWriter,
}

impl FramedStream {
    /// Wraps the two halves of a bi-stream.
    pub fn new(send: SendStream, recv: RecvStream) -> Self {
        FramedStream { reader: FrameReader::new(recv), writer: FrameWriter::new(send) }
    }

    /// Opens a new bi-stream on `conn`.
    pub async fn open(conn: &iroh::endpoint::Connection) -> Result<Self, Status> {
        let (send, recv) = conn.open_bi().await.map_err(|e| Status::unavailable(format!("cannot open stream: {e}")))?;
        Ok(FramedStream::new(send, recv))
    }

    /// Splits into (reader, writer).
    pub fn split(self) -> (FrameReader, FrameWriter) {
        (self.reader, self.writer)
    }
}
