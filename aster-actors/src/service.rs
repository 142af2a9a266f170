//! Service definitions: descriptors, the typed-mailbox glue, and the handler traits.
//!
//! A service is described by a [`ServiceDescriptor`] and has one message enum (its typed
//! mailbox) with a variant per method. [`ServiceDef::route`] turns a raw call from the stream
//! bridge into that message, using the pattern helpers of [`RawCall`]; the service actor hands
//! the message to [`SharedService::dispatch`] or [`SessionService::dispatch`].
//!
//! | pattern | message carries | reply path |
//! |---|---|---|
//! | unary | `CallContext`, request, [`ReplyPort<Resp>`] | reply → response frame + trailer |
//! | server stream | `CallContext`, request, [`ServerSink<Resp>`], [`ReplyPort<()>`] | sink → frames; reply → trailer |
//! | client stream | `CallContext`, [`Streaming<Req>`], [`ReplyPort<Resp>`] | reply → response frame + trailer |
//! | bidi | `CallContext`, [`Streaming<Req>`], [`ServerSink<Resp>`], [`ReplyPort<()>`] | sink → frames; reply → trailer |
//!
//! This glue is written by hand today; the `#[service]` macro generates the same shape.

use std::future::Future;
use std::time::Duration;

use aster_runtime::codec::{Message, PayloadCodec};
use aster_runtime::contract::{CapabilityRequirement, ContractId};
use aster_runtime::wire::Frame;
use aster_runtime::{SerializationMode, Status};
use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::context::CallContext;
use crate::io::{Inbound, ServerSink, Streaming};

/// The reply port of a call: the handler sends its result exactly once.
pub type ReplyPort<T> = ractor::RpcReplyPort<Result<T, Status>>;

/// Service instance scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One instance serves every caller (a pool of actors shares it).
    Shared,
    /// One instance (one actor) per session stream.
    Session,
}

impl Scope {
    /// The reference's name for the scope (`"shared"` / `"session"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Shared => "shared",
            Scope::Session => "session",
        }
    }
}

/// RPC pattern of a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStream,
    /// A stream of requests, one response.
    ClientStream,
    /// Streams in both directions.
    Bidi,
}

impl Pattern {
    /// True when the caller sends a stream of requests.
    pub fn client_streams(self) -> bool {
        matches!(self, Pattern::ClientStream | Pattern::Bidi)
    }

    /// True when the handler sends a stream of responses.
    pub fn server_streams(self) -> bool {
        matches!(self, Pattern::ServerStream | Pattern::Bidi)
    }
}

/// One method of a service.
#[derive(Clone, Debug)]
pub struct MethodDescriptor {
    /// Wire name of the method.
    pub name: &'static str,
    /// Its RPC pattern.
    pub pattern: Pattern,
    /// Server-side time limit (in addition to the caller's deadline and the 300 s cap).
    pub timeout: Option<Duration>,
    /// Whether the method may safely be retried.
    pub idempotent: bool,
    /// The capability the caller needs (`requires =` of `#[service]` methods), checked before
    /// the request is decoded (Gate 3: PERMISSION_DENIED unless the caller's verified
    /// `aster.role` satisfies it and the service-level [`ServiceDef::requires`]). Never part of
    /// a 0.1.2 contract (the Python producer always leaves it out).
    pub requires: Option<CapabilityRequirement>,
    /// Per-method serialization modes (`serialization =` of a method), overriding the
    /// service's list; `None` = the service's. Enforced per call (and per session CALL).
    pub serialization: Option<Vec<SerializationMode>>,
}

impl MethodDescriptor {
    /// A method with no timeout, not idempotent, no requirement, the service's modes.
    pub const fn new(name: &'static str, pattern: Pattern) -> Self {
        MethodDescriptor { name, pattern, timeout: None, idempotent: false, requires: None, serialization: None }
    }
}

/// The static description of a service.
#[derive(Clone, Debug)]
pub struct ServiceDescriptor {
    /// Wire name of the service.
    pub name: &'static str,
    /// Version (part of the dispatch key).
    pub version: i64,
    /// Instance scope.
    pub scope: Scope,
    /// Methods; [`ServiceDef::route`] receives the index into this list.
    pub methods: Vec<MethodDescriptor>,
    /// Serialization modes the service declares, in preference order. JSON is always
    /// accepted in addition.
    pub serialization: Vec<SerializationMode>,
}

impl ServiceDescriptor {
    /// Index of the method named `name`.
    pub fn method_index(&self, name: &str) -> Option<usize> {
        self.methods.iter().position(|m| m.name == name)
    }

    /// Whether a call in `mode` is accepted (declared modes plus JSON; never ROW).
    pub fn accepts_mode(&self, mode: SerializationMode) -> bool {
        mode == SerializationMode::Json || (mode != SerializationMode::Row && self.serialization.contains(&mode))
    }

    /// The modes a call of method `method` may use besides JSON: the method's own
    /// `serialization` list when it declares one, else the service's.
    pub fn modes_for(&self, method: Option<usize>) -> &[SerializationMode] {
        method.and_then(|i| self.methods.get(i)).and_then(|m| m.serialization.as_deref()).unwrap_or(&self.serialization)
    }

    /// Whether a call of `method` in `mode` is accepted (its modes plus JSON; never ROW).
    pub fn accepts_mode_for(&self, method: Option<usize>, mode: SerializationMode) -> bool {
        mode == SerializationMode::Json || (mode != SerializationMode::Row && self.modes_for(method).contains(&mode))
    }
}

/// What the service actor reports back for one call.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// One response payload (unary, client stream), already encoded: (flags, payload).
    Response(u8, Bytes),
    /// A streaming response finished normally (its frames were sent through the sink).
    Done,
}

/// The future the bridge awaits for a call's result.
pub(crate) type Completion = BoxFuture<'static, Result<Outcome, Status>>;

/// A call turned into a typed mailbox message, plus the bridge's side of its reply.
pub struct Routed<M> {
    pub(crate) msg: M,
    pub(crate) completion: Completion,
    /// The actor reports how the handler ended here: `Some(panic message)` after a panic
    /// (INTERNAL), `None` when it returned. Dropped unsent, the handler was cancelled or its
    /// actor stopped or killed before it finished (a service restart or shutdown: UNAVAILABLE).
    pub(crate) fault_tx: oneshot::Sender<Option<String>>,
}

impl<M> std::fmt::Debug for Routed<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routed").finish_non_exhaustive()
    }
}

/// A decoded call as the stream bridge hands it to [`ServiceDef::route`]: context, codec and
/// the raw request channel(s). The pattern helpers build the typed message.
#[derive(Debug)]
pub struct RawCall {
    pub(crate) ctx: CallContext,
    pub(crate) codec: PayloadCodec,
    pub(crate) request: Option<Frame>,
    pub(crate) inbound: Option<mpsc::Receiver<Inbound>>,
    pub(crate) outbound: Option<mpsc::Sender<Bytes>>,
}

fn missing(what: &str) -> Status {
    Status::internal(format!("method pattern mismatch: the call has no {what}"))
}

async fn await_reply<T>(
    rx: oneshot::Receiver<Result<T, Status>>,
    fault: oneshot::Receiver<Option<String>>,
) -> Result<T, Status> {
    match rx.await {
        Ok(result) => result,
        Err(_) => match fault.await {
            Ok(Some(panic)) => Err(Status::internal(format!("handler panicked: {panic}"))),
            Ok(None) => Err(Status::internal("handler ended without replying")),
            Err(_) => Err(Status::unavailable(
                "the handler was stopped before the call finished (cancelled, or the service is restarting or stopping)",
            )),
        },
    }
}

impl RawCall {
    /// The call's context.
    pub fn context(&self) -> &CallContext {
        &self.ctx
    }

    fn take_request<Req: Message>(&mut self) -> Result<Req, Status> {
        let frame = self.request.take().ok_or_else(|| missing("request frame"))?;
        self.codec.decode::<Req>(frame.flags, &frame.payload)
    }

    fn routed<M, T>(
        msg: M,
        rx: oneshot::Receiver<Result<T, Status>>,
        finish: impl FnOnce(T) -> Result<Outcome, Status> + Send + 'static,
    ) -> Routed<M>
    where
        T: Send + 'static,
    {
        let (fault_tx, fault_rx) = oneshot::channel();
        let completion: Completion = Box::pin(async move {
            let r = await_reply(rx, fault_rx).await?;
            finish(r)
        });
        Routed { msg, completion, fault_tx }
    }

    /// Builds a unary message: `build(ctx, request, reply)`.
    pub fn unary<Req, Resp, M>(
        mut self,
        build: impl FnOnce(CallContext, Req, ReplyPort<Resp>) -> M,
    ) -> Result<Routed<M>, Status>
    where
        Req: Message,
        Resp: Message,
    {
        let req = self.take_request::<Req>()?;
        let (tx, rx) = oneshot::channel();
        let codec = self.codec;
        let msg = build(self.ctx, req, tx.into());
        Ok(Self::routed(msg, rx, move |resp: Resp| {
            let (flags, payload) = codec.encode(&resp)?;
            Ok(Outcome::Response(flags, payload))
        }))
    }

    /// Builds a server-streaming message: `build(ctx, request, sink, done)`.
    pub fn server_stream<Req, Resp, M>(
        mut self,
        build: impl FnOnce(CallContext, Req, ServerSink<Resp>, ReplyPort<()>) -> M,
    ) -> Result<Routed<M>, Status>
    where
        Req: Message,
        Resp: Message,
    {
        let req = self.take_request::<Req>()?;
        let out = self.outbound.take().ok_or_else(|| missing("response channel"))?;
        let sink = ServerSink::new(out, self.codec, self.ctx.cancellation_token().clone());
        let (tx, rx) = oneshot::channel();
        let msg = build(self.ctx, req, sink, tx.into());
        Ok(Self::routed(msg, rx, |()| Ok(Outcome::Done)))
    }

    /// Builds a client-streaming message: `build(ctx, requests, reply)`.
    pub fn client_stream<Req, Resp, M>(
        mut self,
        build: impl FnOnce(CallContext, Streaming<Req>, ReplyPort<Resp>) -> M,
    ) -> Result<Routed<M>, Status>
    where
        Req: Message,
        Resp: Message,
    {
        let inbound = self.inbound.take().ok_or_else(|| missing("request channel"))?;
        let requests = Streaming::new(inbound, self.codec);
        let (tx, rx) = oneshot::channel();
        let codec = self.codec;
        let msg = build(self.ctx, requests, tx.into());
        Ok(Self::routed(msg, rx, move |resp: Resp| {
            let (flags, payload) = codec.encode(&resp)?;
            Ok(Outcome::Response(flags, payload))
        }))
    }

    /// Builds a bidi message: `build(ctx, requests, sink, done)`.
    pub fn bidi<Req, Resp, M>(
        mut self,
        build: impl FnOnce(CallContext, Streaming<Req>, ServerSink<Resp>, ReplyPort<()>) -> M,
    ) -> Result<Routed<M>, Status>
    where
        Req: Message,
        Resp: Message,
    {
        let inbound = self.inbound.take().ok_or_else(|| missing("request channel"))?;
        let out = self.outbound.take().ok_or_else(|| missing("response channel"))?;
        let requests = Streaming::new(inbound, self.codec);
        let sink = ServerSink::new(out, self.codec, self.ctx.cancellation_token().clone());
        let (tx, rx) = oneshot::channel();
        let msg = build(self.ctx, requests, sink, tx.into());
        Ok(Self::routed(msg, rx, |()| Ok(Outcome::Done)))
    }
}

/// The glue between the runtime and a service's typed mailbox (generated by `#[service]`,
/// or written by hand).
pub trait ServiceDef: Send + Sized + 'static {
    /// The typed mailbox message: one variant per method.
    type Msg: Send + 'static;

    /// The service's description (name, version, scope, methods, modes).
    fn descriptor() -> ServiceDescriptor;

    /// Turns the raw call for `descriptor().methods[method]` into a typed message, using the
    /// pattern helpers of [`RawCall`]. Request decoding errors are returned as the status.
    fn route(method: usize, call: RawCall) -> Result<Routed<Self::Msg>, Status>;

    /// The service's contract id (aster-rpc 0.1.2 profile), when it has a contract:
    /// `#[service]` computes it from the generated description; hand-written glue has none.
    fn contract_id() -> Option<ContractId> {
        None
    }

    /// The capability every call of the service requires (`requires =` of `#[service]`),
    /// checked together with each method's [`MethodDescriptor::requires`] before the request
    /// is decoded (Gate 3). Default: none.
    fn requires() -> Option<CapabilityRequirement> {
        None
    }
}

/// A shared-scope service: one instance, called concurrently by a pool of actors.
pub trait SharedService: ServiceDef + Sync {
    /// Handles one message (runs inside a service actor).
    fn dispatch(&self, msg: Self::Msg) -> impl Future<Output = ()> + Send + '_;
}

/// A session-scope service: one instance per session, owned by its session actor; calls
/// arrive strictly one at a time.
pub trait SessionService: ServiceDef {
    /// Handles one message (runs inside the session's actor).
    fn dispatch(&mut self, msg: Self::Msg) -> impl Future<Output = ()> + Send + '_;
}

/// Who a new session is for.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The caller's endpoint id.
    pub peer: iroh::EndpointId,
    /// The session id the caller chose (`callId` of the session's StreamHeader).
    pub session_id: String,
}
