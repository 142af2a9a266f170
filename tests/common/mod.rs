//! Shared fixtures of the integration tests: the example TaskManager/TaskSession services, the
//! purpose-built `Probe` (shared scope), `ProbeSession` (session scope) and `NativeOnly`
//! services, node/client helpers, and raw-stream helpers for protocol-level tests.
//!
//! Handlers record what they observe (entries, cancellation) into an [`Arc<ProbeState>`] of
//! [`Counter`]s that tests await; nothing here measures time. Every wait in a test goes through
//! [`guard`], a generous hang guard.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../examples/taskmanager/service.rs"]
pub mod taskmanager;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aster::prelude::*;
use aster::runtime::client::{ClientStreamCall, RequestSink, Streaming as ClientStreaming};
use aster::runtime::transport::{Endpoint, EndpointConfig, FramedStream, bind_endpoint};
use aster::runtime::wire::{Frame, ProtocolMessage, RpcStatus, StreamHeader, flags};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// How long any single wait in a test may take before the test is declared hung.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// Awaits `fut` under the hang guard; panics with `what` if it does not finish.
pub async fn guard<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(HANG_GUARD, fut).await {
        Ok(v) => v,
        Err(_) => panic!("hang guard: {what} did not finish within {HANG_GUARD:?}"),
    }
}

// ───────────────────────────── observation helpers ─────────────────────────────

/// A monotonically increasing counter that tests can await.
#[derive(Clone, Debug)]
pub struct Counter(Arc<watch::Sender<usize>>);

impl Default for Counter {
    fn default() -> Self {
        Counter(Arc::new(watch::channel(0).0))
    }
}

impl Counter {
    pub fn incr(&self) {
        self.0.send_modify(|c| *c += 1);
    }

    pub fn get(&self) -> usize {
        *self.0.borrow()
    }

    /// Waits (under the hang guard) until the counter reaches `n`.
    pub async fn wait_for(&self, n: usize, what: &str) {
        let mut rx = self.0.subscribe();
        guard(what, async move {
            let _ = rx.wait_for(|c| *c >= n).await;
        })
        .await;
    }
}

/// A gate that `gate` handlers block on until the test opens it.
#[derive(Clone, Debug)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Gate(Arc::new(watch::channel(false).0))
    }
}

impl Gate {
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    pub async fn wait_open(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

/// What the probe handlers record.
#[derive(Debug, Default)]
pub struct ProbeState {
    /// Entries into `echo` and `gate` handlers (pool occupancy tests).
    pub entries: Counter,
    /// Entries into `gate`.
    pub gate_entered: Counter,
    /// Entries into `sleep` / `sleep_stream` / `forever` handlers.
    pub sleep_entered: Counter,
    /// Handlers that observed the cancellation of their call (the call's token was cancelled
    /// when the handler returned or its future was dropped).
    pub cancelled: Counter,
    /// Completed `gate` handlers.
    pub gate_done: Counter,
    /// Released by the test.
    pub gate: Gate,
}

impl ProbeState {
    pub fn new() -> Arc<ProbeState> {
        Arc::new(ProbeState::default())
    }
}

/// Counts a cancellation when dropped while the call's token is cancelled, i.e. when the
/// handler returned because of, or was dropped on, cancellation.
struct CancelWitness {
    ctx: CallContext,
    cancelled: Counter,
}

impl Drop for CancelWitness {
    fn drop(&mut self) {
        if self.ctx.is_cancelled() {
            self.cancelled.incr();
        }
    }
}

/// Waits until the call is cancelled (or a long time passes, which no test reaches).
async fn wait_cancelled(ctx: &CallContext) -> Status {
    tokio::select! {
        _ = ctx.cancelled() => Status::cancelled("observed cancellation"),
        _ = tokio::time::sleep(Duration::from_secs(600)) => Status::internal("sleep ran out"),
    }
}

// ───────────────────────────── probe messages ─────────────────────────────

/// The general-purpose probe message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct)]
pub struct Msg {
    pub text: String,
    pub n: i64,
}
aster::impl_message!(Msg, "probe/Msg");

impl Msg {
    pub fn new(text: impl Into<String>, n: i64) -> Msg {
        Msg { text: text.into(), n }
    }
}

/// Request of `fail`: the status the handler returns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct)]
pub struct FailReq {
    pub code: i64,
    pub message: String,
    pub detail_key: String,
    pub detail_value: String,
}
aster::impl_message!(FailReq, "probe/FailReq");

/// Response of `info`: what the handler's `CallContext` says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct)]
pub struct Info {
    pub service: String,
    pub method: String,
    pub peer: String,
    /// The value of the metadata key named by the request's `text` ("" when absent).
    pub metadata_value: String,
    pub metadata_len: i64,
    pub has_deadline: bool,
    pub session_id: String,
}
aster::impl_message!(Info, "probe/Info");

fn info_of(ctx: &CallContext, key: &str) -> Info {
    Info {
        service: ctx.service().to_string(),
        method: ctx.method().to_string(),
        peer: ctx.peer().to_string(),
        metadata_value: ctx.metadata_value(key).unwrap_or_default().to_string(),
        metadata_len: ctx.metadata().len() as i64,
        has_deadline: ctx.deadline().is_some(),
        session_id: ctx.session_id().unwrap_or_default().to_string(),
    }
}

// ───────────────────────────── Probe: shared scope ─────────────────────────────

pub const PROBE: &str = "Probe";

pub enum ProbeMsg {
    Echo(CallContext, Msg, ReplyPort<Msg>),
    Info(CallContext, Msg, ReplyPort<Info>),
    Fail(CallContext, FailReq, ReplyPort<Msg>),
    Panic(CallContext, Msg, ReplyPort<Msg>),
    Sleep(CallContext, Msg, ReplyPort<Msg>),
    Gate(CallContext, Msg, ReplyPort<Msg>),
    Ticks(CallContext, Msg, ServerSink<Msg>, ReplyPort<()>),
    Forever(CallContext, Msg, ServerSink<Msg>, ReplyPort<()>),
    SleepStream(CallContext, Msg, ServerSink<Msg>, ReplyPort<()>),
    Sum(CallContext, Streaming<Msg>, ReplyPort<Msg>),
    EchoBidi(CallContext, Streaming<Msg>, ServerSink<Msg>, ReplyPort<()>),
}

/// The shared-scope probe service.
pub struct Probe {
    pub state: Arc<ProbeState>,
}

impl Probe {
    pub fn new(state: Arc<ProbeState>) -> Probe {
        Probe { state }
    }

    async fn echo(&self, _ctx: CallContext, req: Msg) -> Result<Msg, Status> {
        self.state.entries.incr();
        Ok(req)
    }

    async fn fail(&self, req: FailReq) -> Result<Msg, Status> {
        let mut s = Status::new(Code::from_i64(req.code), req.message);
        if !req.detail_key.is_empty() {
            s = s.with_detail(req.detail_key, req.detail_value);
        }
        Err(s)
    }

    async fn sleep(&self, ctx: CallContext) -> Result<Msg, Status> {
        let _witness = CancelWitness { ctx: ctx.clone(), cancelled: self.state.cancelled.clone() };
        self.state.sleep_entered.incr();
        Err(wait_cancelled(&ctx).await)
    }

    async fn gate(&self, _ctx: CallContext, req: Msg) -> Result<Msg, Status> {
        self.state.entries.incr();
        self.state.gate_entered.incr();
        self.state.gate.wait_open().await;
        self.state.gate_done.incr();
        if req.text == "panic" {
            panic!("probe panic: gated");
        }
        Ok(Msg::new(format!("gate {}", req.text), req.n))
    }

    async fn ticks(&self, req: Msg, mut sink: ServerSink<Msg>) -> Result<(), Status> {
        for i in 1..=req.n {
            sink.send(Msg::new(format!("{} {i}", req.text), i)).await?;
        }
        Ok(())
    }

    async fn forever(&self, ctx: CallContext, req: Msg, mut sink: ServerSink<Msg>) -> Result<(), Status> {
        let _witness = CancelWitness { ctx: ctx.clone(), cancelled: self.state.cancelled.clone() };
        self.state.sleep_entered.incr();
        let mut i = 0;
        loop {
            i += 1;
            sink.send(Msg::new(req.text.clone(), i)).await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn sleep_stream(&self, ctx: CallContext, req: Msg, mut sink: ServerSink<Msg>) -> Result<(), Status> {
        let _witness = CancelWitness { ctx: ctx.clone(), cancelled: self.state.cancelled.clone() };
        sink.send(Msg::new(req.text, 1)).await?;
        self.state.sleep_entered.incr();
        Err(wait_cancelled(&ctx).await)
    }

    async fn sum(&self, mut reqs: Streaming<Msg>) -> Result<Msg, Status> {
        let (mut total, mut count) = (0, 0);
        while let Some(m) = reqs.message().await? {
            total += m.n;
            count += 1;
        }
        Ok(Msg::new(format!("{count} items"), total))
    }

    async fn echo_bidi(&self, mut reqs: Streaming<Msg>, mut sink: ServerSink<Msg>) -> Result<(), Status> {
        while let Some(m) = reqs.message().await? {
            sink.send(Msg::new(format!("echo {}", m.text), m.n)).await?;
        }
        Ok(())
    }
}

impl ServiceDef for Probe {
    type Msg = ProbeMsg;

    fn descriptor() -> ServiceDescriptor {
        ServiceDescriptor {
            name: PROBE,
            version: 1,
            scope: Scope::Shared,
            methods: vec![
                MethodDescriptor::new("echo", Pattern::Unary),
                MethodDescriptor::new("info", Pattern::Unary),
                MethodDescriptor::new("fail", Pattern::Unary),
                MethodDescriptor::new("panic", Pattern::Unary),
                MethodDescriptor::new("sleep", Pattern::Unary),
                MethodDescriptor::new("gate", Pattern::Unary),
                MethodDescriptor::new("ticks", Pattern::ServerStream),
                MethodDescriptor::new("forever", Pattern::ServerStream),
                MethodDescriptor::new("sleep_stream", Pattern::ServerStream),
                MethodDescriptor::new("sum", Pattern::ClientStream),
                MethodDescriptor::new("echo_bidi", Pattern::Bidi),
            ],
            serialization: vec![SerializationMode::Native, SerializationMode::Xlang],
        }
    }

    fn route(method: usize, call: RawCall) -> Result<Routed<ProbeMsg>, Status> {
        match method {
            0 => call.unary(ProbeMsg::Echo),
            1 => call.unary(ProbeMsg::Info),
            2 => call.unary(ProbeMsg::Fail),
            3 => call.unary(ProbeMsg::Panic),
            4 => call.unary(ProbeMsg::Sleep),
            5 => call.unary(ProbeMsg::Gate),
            6 => call.server_stream(ProbeMsg::Ticks),
            7 => call.server_stream(ProbeMsg::Forever),
            8 => call.server_stream(ProbeMsg::SleepStream),
            9 => call.client_stream(ProbeMsg::Sum),
            10 => call.bidi(ProbeMsg::EchoBidi),
            _ => Err(Status::unimplemented(format!("Probe has no method #{method}"))),
        }
    }
}

impl SharedService for Probe {
    async fn dispatch(&self, msg: ProbeMsg) {
        match msg {
            ProbeMsg::Echo(ctx, req, reply) => {
                let _ = reply.send(self.echo(ctx, req).await);
            }
            ProbeMsg::Info(ctx, req, reply) => {
                let _ = reply.send(Ok(info_of(&ctx, &req.text)));
            }
            ProbeMsg::Fail(_ctx, req, reply) => {
                let _ = reply.send(self.fail(req).await);
            }
            ProbeMsg::Panic(_ctx, req, _reply) => {
                panic!("probe panic: {}", req.text);
            }
            ProbeMsg::Sleep(ctx, _req, reply) => {
                let _ = reply.send(self.sleep(ctx).await);
            }
            ProbeMsg::Gate(ctx, req, reply) => {
                let _ = reply.send(self.gate(ctx, req).await);
            }
            ProbeMsg::Ticks(_ctx, req, sink, done) => {
                let _ = done.send(self.ticks(req, sink).await);
            }
            ProbeMsg::Forever(ctx, req, sink, done) => {
                let _ = done.send(self.forever(ctx, req, sink).await);
            }
            ProbeMsg::SleepStream(ctx, req, sink, done) => {
                let _ = done.send(self.sleep_stream(ctx, req, sink).await);
            }
            ProbeMsg::Sum(_ctx, reqs, reply) => {
                let _ = reply.send(self.sum(reqs).await);
            }
            ProbeMsg::EchoBidi(_ctx, reqs, sink, done) => {
                let _ = done.send(self.echo_bidi(reqs, sink).await);
            }
        }
    }
}

/// Typed client of [`Probe`].
#[derive(Clone, Debug)]
pub struct ProbeClient {
    pub channel: Channel,
}

impl ProbeClient {
    pub fn new(channel: Channel) -> ProbeClient {
        ProbeClient { channel }
    }

    pub async fn unary<Req: Message, Resp: Message>(
        &self,
        method: &str,
        req: &Req,
        opts: CallOptions,
    ) -> Result<Resp, Status> {
        self.channel.unary(PROBE, 1, method, req, opts).await
    }

    pub async fn echo(&self, text: &str, n: i64) -> Result<Msg, Status> {
        self.unary("echo", &Msg::new(text, n), CallOptions::new()).await
    }

    pub async fn info(&self, key: &str, opts: CallOptions) -> Result<Info, Status> {
        self.unary("info", &Msg::new(key, 0), opts).await
    }

    pub async fn fail(&self, req: &FailReq) -> Result<Msg, Status> {
        self.unary("fail", req, CallOptions::new()).await
    }

    pub async fn panic(&self, text: &str) -> Result<Msg, Status> {
        self.unary("panic", &Msg::new(text, 0), CallOptions::new()).await
    }

    pub async fn sleep(&self, opts: CallOptions) -> Result<Msg, Status> {
        self.unary("sleep", &Msg::new("zz", 0), opts).await
    }

    pub async fn gate(&self, text: &str) -> Result<Msg, Status> {
        self.unary("gate", &Msg::new(text, 0), CallOptions::new()).await
    }

    pub async fn server_stream(&self, method: &str, req: &Msg) -> Result<ClientStreaming<Msg>, Status> {
        self.channel.server_stream(PROBE, 1, method, req, CallOptions::new()).await
    }

    pub async fn sum(&self, opts: CallOptions) -> Result<ClientStreamCall<Msg, Msg>, Status> {
        self.channel.client_stream(PROBE, 1, "sum", opts).await
    }

    pub async fn echo_bidi(&self) -> Result<(RequestSink<Msg>, ClientStreaming<Msg>), Status> {
        self.channel.bidi(PROBE, 1, "echo_bidi", CallOptions::new()).await
    }
}

// ───────────────────────────── ProbeSession: session scope ─────────────────────────────

pub const PROBE_SESSION: &str = "ProbeSession";

pub enum ProbeSessionMsg {
    Add(CallContext, Msg, ReplyPort<Msg>),
    Get(CallContext, Msg, ReplyPort<Msg>),
    Forever(CallContext, Msg, ServerSink<Msg>, ReplyPort<()>),
    Panic(CallContext, Msg, ReplyPort<Msg>),
    Info(CallContext, Msg, ReplyPort<Info>),
}

/// The session-scoped probe: a running total per session.
pub struct ProbeSession {
    pub state: Arc<ProbeState>,
    pub session_id: String,
    pub total: i64,
}

impl ProbeSession {
    pub fn new(state: Arc<ProbeState>, info: &SessionInfo) -> ProbeSession {
        ProbeSession { state, session_id: info.session_id.clone(), total: 0 }
    }

    async fn forever(&mut self, ctx: CallContext, req: Msg, mut sink: ServerSink<Msg>) -> Result<(), Status> {
        let _witness = CancelWitness { ctx: ctx.clone(), cancelled: self.state.cancelled.clone() };
        self.state.sleep_entered.incr();
        let mut i = 0;
        loop {
            i += 1;
            sink.send(Msg::new(req.text.clone(), self.total + i)).await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl ServiceDef for ProbeSession {
    type Msg = ProbeSessionMsg;

    fn descriptor() -> ServiceDescriptor {
        ServiceDescriptor {
            name: PROBE_SESSION,
            version: 1,
            scope: Scope::Session,
            methods: vec![
                MethodDescriptor::new("add", Pattern::Unary),
                MethodDescriptor::new("get", Pattern::Unary),
                MethodDescriptor::new("forever", Pattern::ServerStream),
                MethodDescriptor::new("panic", Pattern::Unary),
                MethodDescriptor::new("info", Pattern::Unary),
            ],
            serialization: vec![SerializationMode::Native, SerializationMode::Xlang],
        }
    }

    fn route(method: usize, call: RawCall) -> Result<Routed<ProbeSessionMsg>, Status> {
        match method {
            0 => call.unary(ProbeSessionMsg::Add),
            1 => call.unary(ProbeSessionMsg::Get),
            2 => call.server_stream(ProbeSessionMsg::Forever),
            3 => call.unary(ProbeSessionMsg::Panic),
            4 => call.unary(ProbeSessionMsg::Info),
            _ => Err(Status::unimplemented(format!("ProbeSession has no method #{method}"))),
        }
    }
}

impl SessionService for ProbeSession {
    async fn dispatch(&mut self, msg: ProbeSessionMsg) {
        match msg {
            ProbeSessionMsg::Add(_ctx, req, reply) => {
                self.total += req.n;
                let _ = reply.send(Ok(Msg::new(self.session_id.clone(), self.total)));
            }
            ProbeSessionMsg::Get(_ctx, _req, reply) => {
                let _ = reply.send(Ok(Msg::new(self.session_id.clone(), self.total)));
            }
            ProbeSessionMsg::Forever(ctx, req, sink, done) => {
                let _ = done.send(self.forever(ctx, req, sink).await);
            }
            ProbeSessionMsg::Panic(_ctx, req, _reply) => {
                panic!("probe session panic: {}", req.text);
            }
            ProbeSessionMsg::Info(ctx, req, reply) => {
                let _ = reply.send(Ok(info_of(&ctx, &req.text)));
            }
        }
    }
}

// ───────────────────────────── NativeOnly: declares NATIVE only ─────────────────────────────

pub const NATIVE_ONLY: &str = "NativeOnly";

pub enum NativeOnlyMsg {
    Echo(CallContext, Msg, ReplyPort<Msg>),
    Sum(CallContext, Streaming<Msg>, ReplyPort<Msg>),
}

/// A service whose descriptor declares only NATIVE (JSON is always accepted in addition).
pub struct NativeOnly;

impl ServiceDef for NativeOnly {
    type Msg = NativeOnlyMsg;

    fn descriptor() -> ServiceDescriptor {
        ServiceDescriptor {
            name: NATIVE_ONLY,
            version: 1,
            scope: Scope::Shared,
            methods: vec![
                MethodDescriptor::new("echo", Pattern::Unary),
                MethodDescriptor::new("sum", Pattern::ClientStream),
            ],
            serialization: vec![SerializationMode::Native],
        }
    }

    fn route(method: usize, call: RawCall) -> Result<Routed<NativeOnlyMsg>, Status> {
        match method {
            0 => call.unary(NativeOnlyMsg::Echo),
            1 => call.client_stream(NativeOnlyMsg::Sum),
            _ => Err(Status::unimplemented(format!("NativeOnly has no method #{method}"))),
        }
    }
}

impl SharedService for NativeOnly {
    async fn dispatch(&self, msg: NativeOnlyMsg) {
        match msg {
            NativeOnlyMsg::Echo(_ctx, req, reply) => {
                let _ = reply.send(Ok(req));
            }
            NativeOnlyMsg::Sum(_ctx, mut reqs, reply) => {
                let mut total = 0;
                let r = loop {
                    match reqs.message().await {
                        Ok(Some(m)) => total += m.n,
                        Ok(None) => break Ok(Msg::new("sum", total)),
                        Err(e) => break Err(e),
                    }
                };
                let _ = reply.send(r);
            }
        }
    }
}

// ───────────────────────────── nodes and clients ─────────────────────────────

/// A builder serving `Probe` and `ProbeSession` (sharing `state`) on 127.0.0.1:0.
pub fn probe_builder(builder: NodeBuilder, state: &Arc<ProbeState>) -> NodeBuilder {
    let shared = state.clone();
    let sessions = state.clone();
    builder
        .serve(Probe::new(shared))
        .serve_sessions(move |info: &SessionInfo| ProbeSession::new(sessions.clone(), info))
}

/// Spawns a node (under the hang guard).
pub async fn spawn(builder: NodeBuilder) -> AsterNode {
    guard("node spawn", builder.spawn()).await.expect("node spawns")
}

/// A fresh client endpoint on 127.0.0.1 and a channel to `node`.
pub async fn connect(node: &AsterNode) -> (Endpoint, Channel) {
    let ep = guard("bind client endpoint", bind_endpoint(&EndpointConfig::default())).await.expect("client endpoint");
    let ch = guard("connect", Channel::connect(&ep, node.addr())).await.expect("connects");
    (ep, ch)
}

/// A running probe node with a connected client.
pub struct ProbeFixture {
    pub node: AsterNode,
    pub state: Arc<ProbeState>,
    pub client_ep: Endpoint,
    pub channel: Channel,
    pub probe: ProbeClient,
}

impl ProbeFixture {
    /// Starts `Probe` + `ProbeSession` on `builder` and connects a client.
    pub async fn start(builder: NodeBuilder) -> ProbeFixture {
        let state = ProbeState::new();
        let node = spawn(probe_builder(builder, &state)).await;
        let (client_ep, channel) = connect(&node).await;
        let probe = ProbeClient::new(channel.clone());
        ProbeFixture { node, state, client_ep, channel, probe }
    }

    /// Closes the client and shuts the node down (asserting the shutdown worked).
    pub async fn stop(self) {
        self.channel.close();
        self.client_ep.close().await;
        guard("node shutdown", self.node.shutdown_with_grace(Duration::from_secs(5))).await.expect("shutdown report");
    }
}

// ───────────────────────────── raw streams ─────────────────────────────

/// A StreamHeader for a raw call.
pub fn header(service: &str, version: i64, method: &str, mode: SerializationMode) -> StreamHeader {
    StreamHeader {
        service: service.into(),
        method: method.into(),
        version,
        call_id: String::new(),
        deadline_epoch_ms: 0,
        serialization_mode: mode.as_i64(),
        metadata_keys: Vec::new(),
        metadata_values: Vec::new(),
    }
}

/// Opens a raw stream on `channel`, writes `bytes` (already framed), finishes the send side,
/// and returns every frame the server sent until the end of its side (an error ends the read).
pub async fn raw_exchange(channel: &Channel, bytes: &[u8]) -> Vec<Frame> {
    let stream = guard("open raw stream", FramedStream::open(channel.connection())).await.expect("open stream");
    let (mut reader, mut writer) = stream.split();
    writer.push_encoded(bytes);
    // The server may stop reading early (it answered already): write errors are fine here.
    let _ = guard("raw write", writer.finish()).await;
    let mut frames = Vec::new();
    while let Ok(Some(f)) = guard("raw read", reader.next()).await {
        frames.push(f);
    }
    frames
}

/// Encodes one frame.
pub fn frame_bytes(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    aster::runtime::wire::encode_frame(flags, payload, &mut out).expect("frame encodes");
    out.to_vec()
}

/// The HEADER frame of `h` (JSON when the header's mode is JSON, else XLANG).
pub fn header_frame(h: &StreamHeader) -> Vec<u8> {
    frame_bytes(flags::HEADER, &h.encode(h.serialization_mode == SerializationMode::Json.as_i64()))
}

/// The status of the last frame, which must be a TRAILER.
pub fn trailer_status(frames: &[Frame]) -> Status {
    let last = frames.last().unwrap_or_else(|| panic!("no frames from the server"));
    assert!(last.has(flags::TRAILER), "last frame is not a trailer: flags {:#04x}", last.flags);
    RpcStatus::decode_sniffed(&last.payload).expect("trailer decodes").to_status()
}

/// Asserts `r` failed with `code`; returns the status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(r: Result<T, Status>, code: Code) -> Status {
    match r {
        Ok(v) => panic!("expected {code}, got Ok({v:?})"),
        Err(s) => {
            assert_eq!(s.code(), code, "unexpected status {s}");
            s
        }
    }
}

/// Retries `call` while it fails with UNAVAILABLE (a service restarting), at most `tries`
/// times with a short pause; returns the first other outcome.
pub async fn retry_unavailable<T, F, Fut>(tries: usize, mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut last = Status::unavailable("not tried");
    for _ in 0..tries {
        match guard("retried call", call()).await {
            Err(s) if s.code() == Code::Unavailable => {
                last = s;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
    Err(last)
}
