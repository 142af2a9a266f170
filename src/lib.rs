//! # aster
//!
//! Identity-first RPC for Rust: dial a public key, not a hostname. Services are
//! [ractor](https://docs.rs/ractor) actors served over [iroh](https://docs.rs/iroh) QUIC, and
//! speak the wire dialect of the reference release `aster-rpc` 0.1.2, so Rust nodes and Python
//! peers can call each other.
//!
//! This facade re-exports the runtime ([`runtime`]: wire, codecs, transport, client) and the
//! actor framework ([`actors`]: node, supervision, service glue). Most programs only need the
//! [`prelude`].
//!
//! ```no_run
//! use aster::prelude::*;
//!
//! # async fn run() -> Result<(), Status> {
//! // A node with no services, bound to 127.0.0.1 on a free port.
//! let node = AsterNode::builder().spawn().await?;
//! println!("dial me at {}", node.ticket());
//!
//! // A client endpoint dialing it by id + address.
//! let client = aster::runtime::transport::bind_endpoint(&Default::default()).await?;
//! let channel = Channel::connect(&client, node.addr()).await?;
//! # drop(channel);
//! node.shutdown().await?;
//! # Ok(())
//! # }
//! ```

pub use aster_actors as actors;
pub use aster_runtime as runtime;
pub use aster_runtime::impl_message;

/// The names most programs need.
pub mod prelude {
    pub use aster_actors::{
        AsterNode, CallContext, MethodDescriptor, NodeBuilder, Pattern, RawCall, ReplyPort, RestartIntensity, Routed,
        Scope, ServerSink, ServiceDef, ServiceDescriptor, SessionInfo, SessionService, SharedService, ShutdownReport,
        Streaming,
    };
    pub use aster_runtime::client::{CallOptions, Channel, Session};
    pub use aster_runtime::codec::Message;
    pub use aster_runtime::{Code, SerializationMode, Status};
}
