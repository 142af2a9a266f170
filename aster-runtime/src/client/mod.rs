//! The Aster RPC client (v0.1 dialect).
//!
//! A [`Channel`] is one QUIC connection to a peer on ALPN `aster/1`. Every call opens its own
//! bi-stream and addresses `(service, version, method)`:
//!
//! | pattern | call | what you get |
//! |---|---|---|
//! | unary | [`Channel::unary`] | the response |
//! | server stream | [`Channel::server_stream`] | a [`Streaming`] of responses |
//! | client stream | [`Channel::client_stream`] / [`Channel::client_stream_iter`] | a [`ClientStreamCall`] (send, then `finish` → response) |
//! | bidi | [`Channel::bidi`] | a [`RequestSink`] and a [`Streaming`], usable from different tasks |
//!
//! [`AsterClient`] runs the reference's connection flow first: consumer admission on
//! `aster.consumer_admission` (service list, contract ids, RPC addresses, modes), then a cached
//! [`Channel`] per RPC address, handed out per service in the serialization mode selected from
//! the producer's list ([`AsterClient::channel_for`]).
//!
//! Session-scoped services are called through a [`Session`] ([`Channel::open_session`]): one
//! stream per session, one CALL frame per call, calls strictly sequential.
//!
//! Every error is a [`Status`](crate::Status): the server's non-OK trailer as sent, transport failures as
//! `UNAVAILABLE`, malformed responses as `INTERNAL`, the local deadline as
//! `DEADLINE_EXCEEDED`. [`CallOptions`] carry the timeout (sent as an absolute
//! `deadlineEpochMs` and enforced locally), metadata and an optional mode override.
//!
//! Cancellation: dropping a call future, a [`Streaming`], a [`RequestSink`] or a
//! [`ClientStreamCall`] before the call completed cancels the call — the call's QUIC stream is
//! reset and stopped (error code [`crate::transport::stream::STREAM_CANCELLED`]); inside a
//! session a CANCEL frame is sent instead and the session stays usable.

mod admitted;
mod channel;
mod inbound;
mod options;
mod producer;
mod session;
mod streams;

pub use admitted::{AdmissionOptions, AsterClient, DEFAULT_ADMISSION_TIMEOUT, request_admission};
pub use channel::Channel;
pub use options::{CallOptions, uuid_v4};
pub use producer::request_producer_admission;
pub use session::Session;
pub use streams::{ClientStreamCall, RequestSink, Streaming};
