//! Session-scoped services (v0.1: one stream per session, CALL frames): state across calls,
//! independent sessions, in-band CANCEL keeping the session usable, and the scope checks.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use aster::prelude::*;
use common::taskmanager::*;
use common::*;

fn task(id: &str) -> TaskAssignment {
    TaskAssignment { task_id: id.into(), ..Default::default() }
}

async fn taskmanager_node() -> (AsterNode, aster::runtime::transport::Endpoint, Channel) {
    let node = spawn(
        AsterNode::builder()
            .serve(TaskManagerService(TaskManager::default()))
            .serve_sessions(|info: &SessionInfo| TaskSessionService(TaskSession::new(info))),
    )
    .await;
    let (ep, ch) = connect(&node).await;
    (node, ep, ch)
}

async fn stop(node: AsterNode, ep: aster::runtime::transport::Endpoint, ch: Channel) {
    ch.close();
    ep.close().await;
    guard("shutdown", node.shutdown()).await.expect("shutdown");
}

async fn open_task(s: &Session, id: &str) -> TaskAck {
    guard("open_task", s.unary("open_task", &task(id), CallOptions::new())).await.unwrap()
}

async fn history(s: &Session) -> Vec<ProgressUpdate> {
    guard("history", async {
        s.server_stream::<ProgressRequest, ProgressUpdate>("history", &ProgressRequest::default(), CallOptions::new())
            .await?
            .collect_all()
            .await
    })
    .await
    .unwrap()
}

fn opened(task_id: &str, step: i64) -> ProgressUpdate {
    ProgressUpdate { task_id: task_id.into(), step, percent: 0.0, note: "opened".into() }
}

async fn task_session_state_across_calls(mode: SerializationMode) {
    let (node, ep, ch) = taskmanager_node().await;
    let session =
        guard("open_session", ch.open_session("TaskSession", 1, CallOptions::new().mode(mode))).await.unwrap();
    assert_eq!(session.mode(), mode);

    let ack = open_task(&session, "s-1").await;
    assert_eq!(ack, TaskAck { task_id: "s-1".into(), accepted: true, worker: "session#1".into() });
    let ack = open_task(&session, "s-2").await;
    assert_eq!(ack, TaskAck { task_id: "s-2".into(), accepted: true, worker: "session#2".into() });

    assert_eq!(history(&session).await, vec![opened("s-1", 1), opened("s-2", 2)]);

    let summary: UploadSummary = guard(
        "add_steps",
        session.client_stream_iter(
            "add_steps",
            (1..=2).map(|step| StepUpload { task_id: "s-1".into(), step, data: vec![1; 4] }),
            CallOptions::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(summary, UploadSummary { task_id: "s-1".into(), steps_received: 2, total_bytes: 8 });
    let empty: UploadSummary = guard(
        "add_steps (empty)",
        session.client_stream_iter("add_steps", Vec::<StepUpload>::new(), CallOptions::new()),
    )
    .await
    .unwrap();
    assert_eq!(empty, UploadSummary::default());

    let (mut tx, mut rx) =
        guard("chat", session.bidi::<ChatMessage, ChatMessage>("chat", CallOptions::new())).await.unwrap();
    tx.send(&ChatMessage { sender: "rs-client".into(), text: "hello".into(), seq: 1 }).await.unwrap();
    let reply = guard("chat reply", rx.message()).await.unwrap().expect("reply");
    assert_eq!(reply, ChatMessage { sender: "session(2 tasks)".into(), text: "HELLO".into(), seq: 1 });
    tx.send(&ChatMessage { sender: "rs-client".into(), text: "bye".into(), seq: 2 }).await.unwrap();
    guard("chat close", tx.close()).await.unwrap();
    let tail = guard("chat tail", rx.collect_all()).await.unwrap();
    assert_eq!(tail, vec![ChatMessage { sender: "session(2 tasks)".into(), text: "BYE".into(), seq: 2 }]);

    // still the same session after every pattern
    let ack = open_task(&session, "s-3").await;
    assert_eq!(ack.worker, "session#3");
    guard("close session", session.close()).await.unwrap();
    stop(node, ep, ch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_session_keeps_state_native() {
    task_session_state_across_calls(SerializationMode::Native).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_session_keeps_state_json() {
    task_session_state_across_calls(SerializationMode::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_session_keeps_state_xlang() {
    task_session_state_across_calls(SerializationMode::Xlang).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_independent() {
    let (node, ep, ch) = taskmanager_node().await;
    let a = ch.open_session("TaskSession", 1, CallOptions::new()).await.unwrap();
    let b = ch.open_session("TaskSession", 1, CallOptions::new()).await.unwrap();
    assert_ne!(a.session_id(), b.session_id());

    assert_eq!(open_task(&a, "a-1").await.worker, "session#1");
    assert_eq!(open_task(&b, "b-1").await.worker, "session#1", "b has its own instance");
    assert_eq!(open_task(&a, "a-2").await.worker, "session#2");
    assert_eq!(history(&a).await, vec![opened("a-1", 1), opened("a-2", 2)]);
    assert_eq!(history(&b).await, vec![opened("b-1", 1)]);

    // closing one leaves the other alive
    a.close().await.unwrap();
    assert_eq!(open_task(&b, "b-2").await.worker, "session#2");
    // a new session starts from scratch
    let c = ch.open_session("TaskSession", 1, CallOptions::new()).await.unwrap();
    assert!(history(&c).await.is_empty());
    b.close().await.unwrap();
    c.close().await.unwrap();
    stop(node, ep, ch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_context_carries_session_id_and_peer() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let s = fx.channel.open_session(PROBE_SESSION, 1, CallOptions::new()).await.unwrap();
    let info: Info = s
        .unary(
            "info",
            &Msg::new("k", 0),
            CallOptions::new().metadata("k", "v").timeout(std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!(info.service, PROBE_SESSION);
    assert_eq!(info.method, "info");
    assert_eq!(info.session_id, s.session_id());
    assert_eq!(info.peer, fx.client_ep.id().to_string());
    assert_eq!(info.metadata_value, "v");
    assert!(info.has_deadline);
    let r: Msg = s.unary("add", &Msg::new("", 3), CallOptions::new()).await.unwrap();
    assert_eq!(r, Msg::new(s.session_id(), 3), "the session instance knows its id");
    s.close().await.unwrap();
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_stream_keeps_the_session_and_its_state() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let s = fx.channel.open_session(PROBE_SESSION, 1, CallOptions::new()).await.unwrap();
    let r: Msg = s.unary("add", &Msg::new("", 5), CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 5);

    for round in 1..=2 {
        let mut stream =
            guard("forever", s.server_stream::<Msg, Msg>("forever", &Msg::new("tick", 0), CallOptions::new()))
                .await
                .unwrap();
        let first = guard("first item", stream.message()).await.unwrap().expect("an item");
        assert_eq!(first, Msg::new("tick", 6));
        if round == 1 {
            drop(stream); // CANCEL frame
        } else {
            stream.cancel();
        }
        fx.state.cancelled.wait_for(round, "the handler observes the CANCEL").await;

        // the next call on the same session works and sees the retained state
        let r: Msg = guard("get after cancel", s.unary("get", &Msg::default(), CallOptions::new())).await.unwrap();
        assert_eq!(r.n, 5, "state retained after CANCEL (round {round})");
    }
    let r: Msg = s.unary("add", &Msg::new("", 1), CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 6);
    s.close().await.unwrap();
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_method_in_a_session_is_unimplemented() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let s = fx.channel.open_session(PROBE_SESSION, 1, CallOptions::new()).await.unwrap();
    let r: Msg = s.unary("add", &Msg::new("", 2), CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 2);
    let err = guard("nope", s.unary::<Msg, Msg>("nope", &Msg::default(), CallOptions::new())).await;
    let st = expect_code(err, Code::Unimplemented);
    assert_eq!(st.message(), "Method 'ProbeSession.nope' not implemented");
    // the reference ends the session loop after an unknown method: later calls fail
    let after = guard("after unknown method", s.unary::<Msg, Msg>("get", &Msg::default(), CallOptions::new())).await;
    assert!(after.is_err(), "the session has ended: {after:?}");
    // a new session works
    let s2 = fx.channel.open_session(PROBE_SESSION, 1, CallOptions::new()).await.unwrap();
    let r: Msg = s2.unary("get", &Msg::default(), CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 0);
    s2.close().await.unwrap();
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_service_without_a_session_is_failed_precondition() {
    let (node, ep, ch) = taskmanager_node().await;
    let err = guard(
        "plain unary to a session service",
        ch.unary::<TaskAssignment, TaskAck>("TaskSession", 1, "open_task", &task("x"), CallOptions::new()),
    )
    .await;
    let s = expect_code(err, Code::FailedPrecondition);
    assert!(s.message().contains("session-scoped"), "{s}");
    // streaming patterns too
    let err = guard("plain server stream", async {
        ch.server_stream::<ProgressRequest, ProgressUpdate>(
            "TaskSession",
            1,
            "history",
            &ProgressRequest::default(),
            CallOptions::new(),
        )
        .await?
        .collect_all()
        .await
    })
    .await;
    expect_code(err, Code::FailedPrecondition);
    stop(node, ep, ch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_on_a_shared_service_is_failed_precondition() {
    let (node, ep, ch) = taskmanager_node().await;
    let session = guard("open_session", ch.open_session("TaskManager", 1, CallOptions::new())).await.unwrap();
    let err =
        guard("first call", session.unary::<TaskAssignment, TaskAck>("assign_task", &task("x"), CallOptions::new()))
            .await;
    let s = expect_code(err, Code::FailedPrecondition);
    assert!(s.message().contains("shared-scoped"), "{s}");
    drop(session);
    // the channel is unaffected
    let ack = TaskManagerClient::new(ch.clone()).assign_task(&task("y"), CallOptions::new()).await.unwrap();
    assert_eq!(ack.worker, "rs-worker-1");
    stop(node, ep, ch).await;
}

/// `NodeBuilder::max_concurrent_streams` bounds the streams a peer holds open: past it, opening
/// one more waits (QUIC stream credit) until another closes; nothing is refused or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_limit_makes_the_next_session_wait_for_a_free_stream() {
    let node = spawn(
        AsterNode::builder()
            .max_concurrent_streams(2)
            .serve_sessions(|info: &SessionInfo| TaskSessionService(TaskSession::new(info))),
    )
    .await;
    let (ep, ch) = connect(&node).await;
    let a = guard("open a", ch.open_session("TaskSession", 1, CallOptions::new())).await.unwrap();
    let b = guard("open b", ch.open_session("TaskSession", 1, CallOptions::new())).await.unwrap();
    assert_eq!(open_task(&a, "a").await.task_id, "a");
    assert_eq!(open_task(&b, "b").await.task_id, "b");
    // A third session cannot get a stream while both are open.
    let third = ch.open_session("TaskSession", 1, CallOptions::new().timeout(std::time::Duration::from_millis(300)));
    let Err(err) = guard("open c (blocked)", third).await else { panic!("no stream credit for a third session") };
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    // Closing one frees a stream: the next session opens and works.
    guard("close a", a.close()).await.unwrap();
    let c = guard("open c", ch.open_session("TaskSession", 1, CallOptions::new())).await.unwrap();
    assert_eq!(open_task(&c, "c").await.worker, "session#1");
    assert_eq!(open_task(&b, "b2").await.worker, "session#2", "the other session kept its state");
    stop(node, ep, ch).await;
}
