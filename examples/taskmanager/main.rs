//! The main job: a node serving TaskManager + TaskSession on 127.0.0.1, and a client on its
//! own endpoint that dials the node's `aster1…` ticket and calls every pattern.
//!
//! Run: `cargo run --release --example taskmanager`

mod service;

use std::time::Duration;

use aster::prelude::*;
use aster::runtime::transport::{EndpointConfig, bind_endpoint};
use service::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,aster_actors=info".into()),
        )
        .init();

    // ── server ──
    let node = serve(AsterNode::builder()).await?;
    let ticket = node.ticket().to_string();
    println!("node {}", node.id());
    for s in node.services() {
        println!("serving {} v{} contract {}", s.name, s.version, s.contract_id.as_deref().unwrap_or("-"));
    }
    println!("ticket {ticket}");

    // ── client: its own endpoint, dialing the ticket ──
    let client_ep = bind_endpoint(&EndpointConfig::default()).await?;
    let channel = Channel::connect_ticket(&client_ep, &ticket).await?;
    let tm = TaskManagerClient::new(channel.clone());

    // unary (NATIVE mode, the channel default)
    let req =
        TaskAssignment { task_id: "t-1".into(), title: "write docs".into(), priority: 3, tags: vec!["rust".into()] };
    let ack = tm.assign_task(&req, CallOptions::new().timeout(Duration::from_secs(5))).await?;
    println!("unary         assign_task      -> {ack:?}");

    // unary in JSON mode, with metadata
    let ack =
        tm.assign_task(&req, CallOptions::new().mode(SerializationMode::Json).metadata("x-trace-id", "abc123")).await?;
    println!("unary (json)  assign_task      -> {ack:?}");

    // unary in XLANG mode (what Python clients speak by default)
    let ack = tm.assign_task(&req, CallOptions::new().mode(SerializationMode::Xlang)).await?;
    println!("unary (xlang) assign_task      -> {ack:?}");

    // server stream
    let mut updates =
        tm.watch_progress(&ProgressRequest { task_id: "t-1".into(), steps: 3 }, CallOptions::new()).await?;
    while let Some(u) = updates.message().await? {
        println!("server stream watch_progress   -> {u:?}");
    }

    // client stream
    let mut upload = tm.upload_steps(CallOptions::new()).await?;
    for step in 1..=3 {
        upload.send(&StepUpload { task_id: "t-1".into(), step, data: vec![step as u8; step as usize] }).await?;
    }
    let summary = upload.finish().await?;
    println!("client stream upload_steps     -> {summary:?}");

    // bidi
    let (mut tx, mut rx) = tm.chat(CallOptions::new()).await?;
    for seq in 0..3 {
        tx.send(&ChatMessage { sender: "rs-client".into(), text: format!("ping {seq}"), seq }).await?;
        if let Some(reply) = rx.message().await? {
            println!("bidi          chat             -> {reply:?}");
        }
    }
    tx.close().await?;
    while let Some(reply) = rx.message().await? {
        println!("bidi          chat (tail)      -> {reply:?}");
    }

    // errors are Status values
    let err = channel
        .unary::<TaskAssignment, TaskAck>("TaskManager", 1, "no_such_method", &req, CallOptions::new())
        .await
        .err();
    println!("error         no_such_method   -> {}", err.map(|e| e.to_string()).unwrap_or_default());

    // session-scoped service: state lives as long as the session
    let session = channel.open_session("TaskSession", 1, CallOptions::new()).await?;
    for id in ["s-1", "s-2"] {
        let ack: TaskAck = session
            .unary("open_task", &TaskAssignment { task_id: id.into(), ..Default::default() }, CallOptions::new())
            .await?;
        println!("session       open_task        -> {ack:?}");
    }
    let mut history = session
        .server_stream::<ProgressRequest, ProgressUpdate>("history", &ProgressRequest::default(), CallOptions::new())
        .await?;
    while let Some(h) = history.message().await? {
        println!("session       history          -> {h:?}");
    }
    drop(history);
    let summary: UploadSummary = session
        .client_stream_iter(
            "add_steps",
            (1..=2).map(|step| StepUpload { task_id: "s-1".into(), step, data: vec![1; 4] }),
            CallOptions::new(),
        )
        .await?;
    println!("session       add_steps        -> {summary:?}");
    let (mut tx, mut rx) = session.bidi::<ChatMessage, ChatMessage>("chat", CallOptions::new()).await?;
    tx.send(&ChatMessage { sender: "rs-client".into(), text: "hello".into(), seq: 1 }).await?;
    if let Some(reply) = rx.message().await? {
        println!("session       chat             -> {reply:?}");
    }
    tx.close().await?;
    while rx.message().await?.is_some() {}
    drop(rx);
    session.close().await?;

    channel.close();
    client_ep.close().await;
    let report = node.shutdown().await?;
    println!("shutdown      drained={} cancelled={}", report.drained, report.cancelled_calls);
    Ok(())
}
