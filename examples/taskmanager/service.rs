//! The TaskManager (shared scope) and TaskSession (session scope) services, with the message
//! shapes of the reference's `taskmanager.py` (wire tags `taskmgr/<TypeName>`).
//!
//! Every message type has `#[serde(default)]`: like the reference's dataclass defaults, a JSON
//! payload may leave fields out.
//!
//! The glue (message enum, `ServiceDef::route`, `dispatch`, typed client) is written by hand
//! here in exactly the shape the `#[service]` macro generates.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use aster::prelude::*;
use aster::runtime::client::ClientStreamCall;
use serde::{Deserialize, Serialize};

// ── message types ───────────────────────────────────────────────────────────

/// `taskmgr/TaskAssignment`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct)]
#[serde(default)]
pub struct TaskAssignment {
    pub task_id: String,
    pub title: String,
    pub priority: i64,
    pub tags: Vec<String>,
}
aster::impl_message!(TaskAssignment, "taskmgr/TaskAssignment");

/// `taskmgr/TaskAck`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct)]
#[serde(default)]
pub struct TaskAck {
    pub task_id: String,
    pub accepted: bool,
    pub worker: String,
}
aster::impl_message!(TaskAck, "taskmgr/TaskAck");

/// `taskmgr/ProgressRequest`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct)]
#[serde(default)]
pub struct ProgressRequest {
    pub task_id: String,
    pub steps: i64,
}
aster::impl_message!(ProgressRequest, "taskmgr/ProgressRequest");

/// `taskmgr/ProgressUpdate`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct)]
#[serde(default)]
pub struct ProgressUpdate {
    pub task_id: String,
    pub step: i64,
    pub percent: f64,
    pub note: String,
}
aster::impl_message!(ProgressUpdate, "taskmgr/ProgressUpdate");

/// `taskmgr/StepUpload`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct)]
#[serde(default)]
pub struct StepUpload {
    pub task_id: String,
    pub step: i64,
    pub data: Vec<u8>,
}
aster::impl_message!(StepUpload, "taskmgr/StepUpload");

/// `taskmgr/UploadSummary`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct)]
#[serde(default)]
pub struct UploadSummary {
    pub task_id: String,
    pub steps_received: i64,
    pub total_bytes: i64,
}
aster::impl_message!(UploadSummary, "taskmgr/UploadSummary");

/// `taskmgr/ChatMessage`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct)]
#[serde(default)]
pub struct ChatMessage {
    pub sender: String,
    pub text: String,
    pub seq: i64,
}
aster::impl_message!(ChatMessage, "taskmgr/ChatMessage");

// ── TaskManager: shared scope ───────────────────────────────────────────────

/// Handler trait of TaskManager (what a user implements).
pub trait TaskManagerHandler: Send + Sync + 'static {
    fn assign_task(
        &self,
        ctx: CallContext,
        req: TaskAssignment,
    ) -> impl Future<Output = Result<TaskAck, Status>> + Send;
    fn watch_progress(
        &self,
        ctx: CallContext,
        req: ProgressRequest,
        sink: ServerSink<ProgressUpdate>,
    ) -> impl Future<Output = Result<(), Status>> + Send;
    fn upload_steps(
        &self,
        ctx: CallContext,
        reqs: Streaming<StepUpload>,
    ) -> impl Future<Output = Result<UploadSummary, Status>> + Send;
    fn chat(
        &self,
        ctx: CallContext,
        reqs: Streaming<ChatMessage>,
        sink: ServerSink<ChatMessage>,
    ) -> impl Future<Output = Result<(), Status>> + Send;
}

/// The typed mailbox of TaskManager: one variant per method.
pub enum TaskManagerMsg {
    AssignTask(CallContext, TaskAssignment, ReplyPort<TaskAck>),
    WatchProgress(CallContext, ProgressRequest, ServerSink<ProgressUpdate>, ReplyPort<()>),
    UploadSteps(CallContext, Streaming<StepUpload>, ReplyPort<UploadSummary>),
    Chat(CallContext, Streaming<ChatMessage>, ServerSink<ChatMessage>, ReplyPort<()>),
}

/// TaskManager served by handler `H`.
pub struct TaskManagerService<H>(pub H);

impl<H: TaskManagerHandler> ServiceDef for TaskManagerService<H> {
    type Msg = TaskManagerMsg;

    fn descriptor() -> ServiceDescriptor {
        ServiceDescriptor {
            name: "TaskManager",
            version: 1,
            scope: Scope::Shared,
            methods: vec![
                MethodDescriptor::new("assign_task", Pattern::Unary),
                MethodDescriptor::new("watch_progress", Pattern::ServerStream),
                MethodDescriptor::new("upload_steps", Pattern::ClientStream),
                MethodDescriptor::new("chat", Pattern::Bidi),
            ],
            serialization: vec![SerializationMode::Native, SerializationMode::Xlang],
        }
    }

    fn route(method: usize, call: RawCall) -> Result<Routed<TaskManagerMsg>, Status> {
        match method {
            0 => call.unary(TaskManagerMsg::AssignTask),
            1 => call.server_stream(TaskManagerMsg::WatchProgress),
            2 => call.client_stream(TaskManagerMsg::UploadSteps),
            3 => call.bidi(TaskManagerMsg::Chat),
            _ => Err(Status::unimplemented(format!("TaskManager has no method #{method}"))),
        }
    }
}

impl<H: TaskManagerHandler> SharedService for TaskManagerService<H> {
    async fn dispatch(&self, msg: TaskManagerMsg) {
        match msg {
            TaskManagerMsg::AssignTask(ctx, req, reply) => {
                let _ = reply.send(self.0.assign_task(ctx, req).await);
            }
            TaskManagerMsg::WatchProgress(ctx, req, sink, done) => {
                let _ = done.send(self.0.watch_progress(ctx, req, sink).await);
            }
            TaskManagerMsg::UploadSteps(ctx, reqs, reply) => {
                let _ = reply.send(self.0.upload_steps(ctx, reqs).await);
            }
            TaskManagerMsg::Chat(ctx, reqs, sink, done) => {
                let _ = done.send(self.0.chat(ctx, reqs, sink).await);
            }
        }
    }
}

/// The example implementation (same behaviour as `taskmanager.py`, worker "rs-worker-1").
#[derive(Default)]
pub struct TaskManager {
    pub assigned: AtomicU64,
}

impl TaskManagerHandler for TaskManager {
    async fn assign_task(&self, _ctx: CallContext, req: TaskAssignment) -> Result<TaskAck, Status> {
        self.assigned.fetch_add(1, Ordering::Relaxed);
        Ok(TaskAck { task_id: req.task_id, accepted: req.priority >= 0, worker: "rs-worker-1".into() })
    }

    async fn watch_progress(
        &self,
        _ctx: CallContext,
        req: ProgressRequest,
        mut sink: ServerSink<ProgressUpdate>,
    ) -> Result<(), Status> {
        let n = req.steps.max(0);
        for i in 1..=n {
            let percent = 100.0 * i as f64 / n as f64;
            sink.send(ProgressUpdate { task_id: req.task_id.clone(), step: i, percent, note: "ok".into() }).await?;
        }
        Ok(())
    }

    async fn upload_steps(&self, _ctx: CallContext, mut reqs: Streaming<StepUpload>) -> Result<UploadSummary, Status> {
        let mut summary = UploadSummary::default();
        while let Some(r) = reqs.message().await? {
            summary.task_id = r.task_id;
            summary.steps_received += 1;
            summary.total_bytes += r.data.len() as i64;
        }
        Ok(summary)
    }

    async fn chat(
        &self,
        _ctx: CallContext,
        mut reqs: Streaming<ChatMessage>,
        mut sink: ServerSink<ChatMessage>,
    ) -> Result<(), Status> {
        while let Some(m) = reqs.message().await? {
            sink.send(ChatMessage { sender: "server".into(), text: format!("echo: {}", m.text), seq: m.seq }).await?;
        }
        Ok(())
    }
}

/// Typed client of TaskManager.
#[derive(Clone)]
pub struct TaskManagerClient {
    pub channel: Channel,
}

impl TaskManagerClient {
    pub const SERVICE: &'static str = "TaskManager";
    pub const VERSION: i64 = 1;

    pub fn new(channel: Channel) -> Self {
        TaskManagerClient { channel }
    }

    pub async fn assign_task(&self, req: &TaskAssignment, opts: CallOptions) -> Result<TaskAck, Status> {
        self.channel.unary(Self::SERVICE, Self::VERSION, "assign_task", req, opts).await
    }

    pub async fn watch_progress(
        &self,
        req: &ProgressRequest,
        opts: CallOptions,
    ) -> Result<aster::runtime::client::Streaming<ProgressUpdate>, Status> {
        self.channel.server_stream(Self::SERVICE, Self::VERSION, "watch_progress", req, opts).await
    }

    pub async fn upload_steps(&self, opts: CallOptions) -> Result<ClientStreamCall<StepUpload, UploadSummary>, Status> {
        self.channel.client_stream(Self::SERVICE, Self::VERSION, "upload_steps", opts).await
    }

    pub async fn chat(
        &self,
        opts: CallOptions,
    ) -> Result<
        (aster::runtime::client::RequestSink<ChatMessage>, aster::runtime::client::Streaming<ChatMessage>),
        Status,
    > {
        self.channel.bidi(Self::SERVICE, Self::VERSION, "chat", opts).await
    }
}

// ── TaskSession: session scope ──────────────────────────────────────────────

/// Handler trait of TaskSession: `&mut self`, one instance per session.
pub trait TaskSessionHandler: Send + 'static {
    fn open_task(
        &mut self,
        ctx: CallContext,
        req: TaskAssignment,
    ) -> impl Future<Output = Result<TaskAck, Status>> + Send;
    fn history(
        &mut self,
        ctx: CallContext,
        req: ProgressRequest,
        sink: ServerSink<ProgressUpdate>,
    ) -> impl Future<Output = Result<(), Status>> + Send;
    fn add_steps(
        &mut self,
        ctx: CallContext,
        reqs: Streaming<StepUpload>,
    ) -> impl Future<Output = Result<UploadSummary, Status>> + Send;
    fn chat(
        &mut self,
        ctx: CallContext,
        reqs: Streaming<ChatMessage>,
        sink: ServerSink<ChatMessage>,
    ) -> impl Future<Output = Result<(), Status>> + Send;
}

/// The typed mailbox of TaskSession.
pub enum TaskSessionMsg {
    OpenTask(CallContext, TaskAssignment, ReplyPort<TaskAck>),
    History(CallContext, ProgressRequest, ServerSink<ProgressUpdate>, ReplyPort<()>),
    AddSteps(CallContext, Streaming<StepUpload>, ReplyPort<UploadSummary>),
    Chat(CallContext, Streaming<ChatMessage>, ServerSink<ChatMessage>, ReplyPort<()>),
}

/// TaskSession served by handler `H`.
pub struct TaskSessionService<H>(pub H);

impl<H: TaskSessionHandler> ServiceDef for TaskSessionService<H> {
    type Msg = TaskSessionMsg;

    fn descriptor() -> ServiceDescriptor {
        ServiceDescriptor {
            name: "TaskSession",
            version: 1,
            scope: Scope::Session,
            methods: vec![
                MethodDescriptor::new("open_task", Pattern::Unary),
                MethodDescriptor::new("history", Pattern::ServerStream),
                MethodDescriptor::new("add_steps", Pattern::ClientStream),
                MethodDescriptor::new("chat", Pattern::Bidi),
            ],
            serialization: vec![SerializationMode::Native, SerializationMode::Xlang],
        }
    }

    fn route(method: usize, call: RawCall) -> Result<Routed<TaskSessionMsg>, Status> {
        match method {
            0 => call.unary(TaskSessionMsg::OpenTask),
            1 => call.server_stream(TaskSessionMsg::History),
            2 => call.client_stream(TaskSessionMsg::AddSteps),
            3 => call.bidi(TaskSessionMsg::Chat),
            _ => Err(Status::unimplemented(format!("TaskSession has no method #{method}"))),
        }
    }
}

impl<H: TaskSessionHandler> SessionService for TaskSessionService<H> {
    async fn dispatch(&mut self, msg: TaskSessionMsg) {
        match msg {
            TaskSessionMsg::OpenTask(ctx, req, reply) => {
                let _ = reply.send(self.0.open_task(ctx, req).await);
            }
            TaskSessionMsg::History(ctx, req, sink, done) => {
                let _ = done.send(self.0.history(ctx, req, sink).await);
            }
            TaskSessionMsg::AddSteps(ctx, reqs, reply) => {
                let _ = reply.send(self.0.add_steps(ctx, reqs).await);
            }
            TaskSessionMsg::Chat(ctx, reqs, sink, done) => {
                let _ = done.send(self.0.chat(ctx, reqs, sink).await);
            }
        }
    }
}

/// The example implementation (same behaviour as `taskmanager.py`).
pub struct TaskSession {
    pub peer: String,
    pub tasks: Vec<String>,
}

impl TaskSession {
    pub fn new(info: &SessionInfo) -> Self {
        TaskSession { peer: info.peer.to_string(), tasks: Vec::new() }
    }
}

impl TaskSessionHandler for TaskSession {
    async fn open_task(&mut self, _ctx: CallContext, req: TaskAssignment) -> Result<TaskAck, Status> {
        self.tasks.push(req.task_id.clone());
        Ok(TaskAck { task_id: req.task_id, accepted: true, worker: format!("session#{}", self.tasks.len()) })
    }

    async fn history(
        &mut self,
        _ctx: CallContext,
        _req: ProgressRequest,
        mut sink: ServerSink<ProgressUpdate>,
    ) -> Result<(), Status> {
        for (i, t) in self.tasks.iter().enumerate() {
            sink.send(ProgressUpdate { task_id: t.clone(), step: i as i64 + 1, percent: 0.0, note: "opened".into() })
                .await?;
        }
        Ok(())
    }

    async fn add_steps(&mut self, _ctx: CallContext, mut reqs: Streaming<StepUpload>) -> Result<UploadSummary, Status> {
        let mut summary = UploadSummary::default();
        while let Some(r) = reqs.message().await? {
            summary.task_id = r.task_id;
            summary.steps_received += 1;
            summary.total_bytes += r.data.len() as i64;
        }
        Ok(summary)
    }

    async fn chat(
        &mut self,
        _ctx: CallContext,
        mut reqs: Streaming<ChatMessage>,
        mut sink: ServerSink<ChatMessage>,
    ) -> Result<(), Status> {
        while let Some(m) = reqs.message().await? {
            let sender = format!("session({} tasks)", self.tasks.len());
            sink.send(ChatMessage { sender, text: m.text.to_uppercase(), seq: m.seq }).await?;
        }
        Ok(())
    }
}

/// Starts a node serving both services with the given builder.
pub async fn serve(builder: NodeBuilder) -> Result<AsterNode, Status> {
    builder
        .serve(TaskManagerService(TaskManager::default()))
        .serve_sessions(|info: &SessionInfo| TaskSessionService(TaskSession::new(info)))
        .spawn()
        .await
}
