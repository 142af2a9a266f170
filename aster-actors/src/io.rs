//! The typed ends of a streaming call: [`Streaming<Req>`] (requests coming from the caller) and
//! [`ServerSink<Resp>`] (responses going to the caller).
//!
//! Both are bounded channels between the stream bridge and the service actor, so a slow handler
//! slows the QUIC stream (flow control) instead of growing memory.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use aster_runtime::Status;
use aster_runtime::codec::{Message, PayloadCodec};
use aster_runtime::wire::{Frame, limits};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Capacity of the bounded channels between a stream bridge and an actor.
pub const CHANNEL_CAPACITY: usize = 32;

/// One item of inbound traffic, as the bridge hands it to a [`Streaming`].
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A request frame (payload still encoded).
    Frame(Frame),
    /// The input ended abnormally.
    Error(Status),
}

/// The stream of requests of a client-streaming or bidi call, decoded lazily with the call's
/// serialization mode.
///
/// `message()` returns `Ok(None)` at the caller's end of input. The number of items is capped
/// at [`limits::MAX_CLIENT_STREAM_ITEMS`] (RESOURCE_EXHAUSTED beyond).
#[derive(Debug)]
pub struct Streaming<T> {
    rx: mpsc::Receiver<Inbound>,
    codec: PayloadCodec,
    received: usize,
    max_items: usize,
    done: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T: Message> Streaming<T> {
    pub(crate) fn new(rx: mpsc::Receiver<Inbound>, codec: PayloadCodec) -> Self {
        Streaming { rx, codec, received: 0, max_items: limits::MAX_CLIENT_STREAM_ITEMS, done: false, _t: PhantomData }
    }

    /// The next request; `Ok(None)` once the caller has ended its input.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        if self.done {
            return Ok(None);
        }
        let item = self.rx.recv().await;
        self.accept(item)
    }

    fn accept(&mut self, item: Option<Inbound>) -> Result<Option<T>, Status> {
        match item {
            None => {
                self.done = true;
                Ok(None)
            }
            Some(Inbound::Error(status)) => {
                self.done = true;
                Err(status)
            }
            Some(Inbound::Frame(frame)) => {
                self.received += 1;
                if self.received > self.max_items {
                    self.done = true;
                    return Err(Status::resource_exhausted(format!("client stream exceeded {} items", self.max_items)));
                }
                self.codec.decode::<T>(frame.flags, &frame.payload).map(Some)
            }
        }
    }

    /// How many requests have been received so far.
    pub fn received(&self) -> usize {
        self.received
    }

    #[cfg(test)]
    fn with_max_items(mut self, max: usize) -> Self {
        self.max_items = max;
        self
    }
}

impl<T: Message> futures::Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(item) => Poll::Ready(this.accept(item).transpose()),
        }
    }
}

/// The sending end of a server-streaming or bidi call. Each `send` encodes one response
/// frame; it waits when the caller is slow (bounded channel) and fails with CANCELLED once the
/// call has ended or was cancelled.
#[derive(Debug)]
pub struct ServerSink<T> {
    tx: mpsc::Sender<Bytes>,
    codec: PayloadCodec,
    cancel: CancellationToken,
    sent: usize,
    _t: PhantomData<fn(T)>,
}

impl<T: Message> ServerSink<T> {
    pub(crate) fn new(tx: mpsc::Sender<Bytes>, codec: PayloadCodec, cancel: CancellationToken) -> Self {
        ServerSink { tx, codec, cancel, sent: 0, _t: PhantomData }
    }

    /// Sends one response to the caller.
    pub async fn send(&mut self, item: T) -> Result<(), Status> {
        let frame = self.codec.encode_frame(&item)?;
        if self.cancel.is_cancelled() {
            return Err(Status::cancelled("call was cancelled"));
        }
        // Room in the channel (the usual case): no waiting, nothing to register.
        let frame = match self.tx.try_send(frame) {
            Ok(()) => {
                self.sent += 1;
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Status::cancelled("call has ended")),
            Err(mpsc::error::TrySendError::Full(frame)) => frame,
        };
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Status::cancelled("call was cancelled")),
            r = self.tx.send(frame) => {
                r.map_err(|_| Status::cancelled("call has ended"))?;
                self.sent += 1;
                Ok(())
            }
        }
    }

    /// True when the call has ended or was cancelled (further sends fail).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.cancel.is_cancelled()
    }

    /// How many responses were sent so far.
    pub fn sent(&self) -> usize {
        self.sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aster_runtime::{Code, SerializationMode};

    /// A message that is its own payload bytes.
    #[derive(Debug, PartialEq)]
    struct Raw(Vec<u8>);

    impl Message for Raw {
        fn wire_tag() -> &'static str {
            "test/Raw"
        }
        fn encode_payload(&self, _mode: SerializationMode, out: &mut Vec<u8>) -> Result<(), Status> {
            out.extend_from_slice(&self.0);
            Ok(())
        }
        fn decode_payload(_mode: SerializationMode, bytes: &[u8]) -> Result<Self, Status> {
            Ok(Raw(bytes.to_vec()))
        }
    }

    #[tokio::test]
    async fn streaming_enforces_the_item_cap() {
        let (tx, rx) = mpsc::channel(8);
        let mut s = Streaming::<Raw>::new(rx, PayloadCodec::new(SerializationMode::Native)).with_max_items(3);
        for i in 0..4u8 {
            tx.send(Inbound::Frame(Frame::new(0, vec![i]))).await.unwrap();
        }
        for i in 0..3u8 {
            assert_eq!(s.message().await.unwrap(), Some(Raw(vec![i])));
        }
        let err = s.message().await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(err.message().contains("3 items"), "{err}");
        assert_eq!(s.message().await.unwrap(), None, "the stream ends after the error");
    }

    #[tokio::test]
    async fn streaming_reports_input_errors_and_end() {
        let (tx, rx) = mpsc::channel(8);
        let mut s = Streaming::<Raw>::new(rx, PayloadCodec::new(SerializationMode::Native));
        tx.send(Inbound::Frame(Frame::new(0, vec![7]))).await.unwrap();
        tx.send(Inbound::Error(Status::cancelled("caller reset"))).await.unwrap();
        assert_eq!(s.message().await.unwrap(), Some(Raw(vec![7])));
        assert_eq!(s.message().await.unwrap_err().code(), Code::Cancelled);
        assert_eq!(s.received(), 1);

        let (tx, rx) = mpsc::channel(1);
        let mut s = Streaming::<Raw>::new(rx, PayloadCodec::new(SerializationMode::Native));
        drop(tx);
        assert_eq!(s.message().await.unwrap(), None, "closed channel = caller ended its input");
    }

    #[tokio::test]
    async fn sink_fails_after_the_call_ended_or_was_cancelled() {
        let (tx, rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        let mut sink = ServerSink::<Raw>::new(tx, PayloadCodec::new(SerializationMode::Native), cancel.clone());
        sink.send(Raw(vec![1, 2])).await.unwrap();
        assert_eq!(sink.sent(), 1);
        cancel.cancel();
        assert!(sink.is_closed());
        assert_eq!(sink.send(Raw(vec![3])).await.unwrap_err().code(), Code::Cancelled);
        drop(rx);
    }
}
