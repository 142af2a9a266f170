//! # aster-runtime
//!
//! Everything of Aster RPC that is not an actor: the wire protocol (frames, StreamHeader,
//! CallHeader, RpcStatus), payload codecs (JSON, Fory NATIVE, zstd), the offline-capable iroh
//! transport, consumer admission messages, and the client. Speaks the v0.1 dialect of the
//! reference release `aster-rpc` 0.1.2.
//!
//! The sans-IO cores (`wire`, `codec`, `contract`, `admission`, `trust`, `transport::ticket`) are pure and unit-tested without
//! sockets; `transport` and `client` are async on tokio + iroh.

pub mod admission;
pub mod client;
pub mod codec;
pub mod contract;
pub mod transport;
pub mod trust;
pub mod wire;

#[cfg(test)]
pub(crate) mod test_vectors;

pub use wire::{Code, SerializationMode, Status};
