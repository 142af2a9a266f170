//! # aster-actors
//!
//! The actor runtime of aster-rs (on [ractor]): every service instance is an actor, a
//! supervision tree owns the endpoint, the connections and the services, and typed mailboxes
//! bridge QUIC streams to handler messages for all four RPC patterns.
//!
//! - [`NodeBuilder`] / [`AsterNode`]: configure, start, and gracefully stop a node.
//! - [`service`]: descriptors, the typed-mailbox glue ([`ServiceDef`], [`RawCall`]) and the
//!   handler traits ([`SharedService`], [`SessionService`]).
//! - [`CallContext`], [`Streaming`], [`ServerSink`]: what handlers receive.
//! - [`admission`]: consumer admission on `aster.consumer_admission` — the pluggable
//!   [`AdmissionGate`] (default [`OpenGate`]) and the service list admitted consumers get.
//! - [`trust`]: the trust model on the node — [`TrustedGate`] (enrollment credentials, Gate 1),
//!   the [`AdmittedPeers`] table, Gate 0 (connections of peers that are not admitted are closed
//!   with 403) and producer admission; Gate 3 (method capabilities) runs in the stream bridge
//!   and [`authorize`] is Gate 2 ([`CallAuthorizer`]).
//! - [`mesh`]: the producer mesh ([`ProducerMesh`], [`MeshHandle`], [`MeshEvent`]): iroh-gossip
//!   with signed envelopes, salt rotation, best effort.
//!
//! A handler that panics fails only its call (INTERNAL with the panic message); its actor is
//! restarted by its supervisor, with OTP-style restart intensity escalating to the node.

pub mod admission;
pub mod authorize;
mod bridge;
pub mod context;
mod host;
pub mod io;
pub mod mesh;
mod node;
mod pool;
pub mod service;
mod service_actors;
pub mod supervision;
pub mod trust;

pub use admission::{AdmissionContext, AdmissionDecision, AdmissionGate, OpenGate};
pub use authorize::{AllowAll, CallAuthorizer};
pub use context::{CallContext, CallContextParts};
pub use io::{ServerSink, Streaming};
pub use mesh::{MeshEvent, MeshHandle, ProducerMesh};
pub use node::{AsterNode, NodeBuilder, ServiceSummary, ShutdownReport, UnaryDispatch};
pub use service::{
    MethodDescriptor, Pattern, RawCall, ReplyPort, Routed, Scope, ServiceDef, ServiceDescriptor, SessionInfo,
    SessionService, SharedService,
};
pub use supervision::RestartIntensity;
pub use trust::{AdmittedPeer, AdmittedPeers, TrustedGate};
