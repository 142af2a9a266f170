//! Every RPC pattern end to end on a real node (127.0.0.1): the example TaskManager in NATIVE,
//! JSON and XLANG modes with the exact values of the reference's `taskmanager.py`, compression
//! in both directions, metadata and peer identity in the handler, serialization-mode
//! admission, and duplicate service registration.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use aster::prelude::*;
use aster::runtime::codec::{PayloadCodec, compress};
use aster::runtime::wire::flags;
use common::taskmanager::*;
use common::*;

/// The modes of the `impl_message!` probe types (no XLANG codec).
const MODES: [SerializationMode; 2] = [SerializationMode::Native, SerializationMode::Json];

/// The modes of the example's derived types.
const TM_MODES: [SerializationMode; 3] = [SerializationMode::Native, SerializationMode::Json, SerializationMode::Xlang];

fn assignment(task_id: &str, priority: i64) -> TaskAssignment {
    TaskAssignment { task_id: task_id.into(), title: "write docs".into(), priority, tags: vec!["rust".into()] }
}

async fn taskmanager_node() -> (AsterNode, aster::runtime::transport::Endpoint, Channel) {
    let node = spawn(serve_builder()).await;
    let (ep, ch) = connect(&node).await;
    (node, ep, ch)
}

fn serve_builder() -> NodeBuilder {
    AsterNode::builder()
        .serve(TaskManagerService(TaskManager::default()))
        .serve_sessions(|info: &SessionInfo| TaskSessionService(TaskSession::new(info)))
}

async fn stop(node: AsterNode, ep: aster::runtime::transport::Endpoint, ch: Channel) {
    ch.close();
    ep.close().await;
    guard("shutdown", node.shutdown()).await.expect("shutdown");
}

#[track_caller]
fn assert_updates(got: &[ProgressUpdate], task_id: &str, n: i64) {
    assert_eq!(got.len(), n as usize, "{got:?}");
    for (i, u) in got.iter().enumerate() {
        let step = i as i64 + 1;
        assert_eq!(u.task_id, task_id);
        assert_eq!(u.step, step);
        assert_eq!(u.note, "ok");
        let expected = 100.0 * step as f64 / n as f64;
        assert!((u.percent - expected).abs() < 1e-9, "percent {} != {expected}", u.percent);
    }
}

async fn all_taskmanager_patterns(channel: &Channel, mode: SerializationMode) {
    let tm = TaskManagerClient::new(channel.clone().with_mode(mode));
    let opts = CallOptions::new;

    // unary
    let ack = guard("assign_task", tm.assign_task(&assignment("t-1", 3), opts())).await.unwrap();
    assert_eq!(ack, TaskAck { task_id: "t-1".into(), accepted: true, worker: "rs-worker-1".into() }, "{mode}");
    let ack = guard("assign_task", tm.assign_task(&assignment("t-0", 0), opts())).await.unwrap();
    assert!(ack.accepted, "priority 0 is accepted");
    let ack = guard("assign_task", tm.assign_task(&assignment("t-neg", -1), opts())).await.unwrap();
    assert_eq!(ack, TaskAck { task_id: "t-neg".into(), accepted: false, worker: "rs-worker-1".into() });

    // server stream
    let req = ProgressRequest { task_id: "t-1".into(), steps: 3 };
    let updates =
        guard("watch_progress", async { tm.watch_progress(&req, opts()).await?.collect_all().await }).await.unwrap();
    assert_updates(&updates, "t-1", 3);
    for steps in [0, -4] {
        let req = ProgressRequest { task_id: "t-empty".into(), steps };
        let updates = guard("watch_progress", async { tm.watch_progress(&req, opts()).await?.collect_all().await })
            .await
            .unwrap();
        assert!(updates.is_empty(), "steps {steps}: {updates:?}");
    }

    // client stream
    let summary = guard("upload_steps", async {
        let mut up = tm.upload_steps(opts()).await?;
        for step in 1..=3 {
            up.send(&StepUpload { task_id: "t-1".into(), step, data: vec![step as u8; step as usize] }).await?;
        }
        up.finish().await
    })
    .await
    .unwrap();
    assert_eq!(summary, UploadSummary { task_id: "t-1".into(), steps_received: 3, total_bytes: 6 });
    let empty = guard("upload_steps (empty)", async { tm.upload_steps(opts()).await?.finish().await }).await.unwrap();
    assert_eq!(empty, UploadSummary::default());

    // bidi: ping-pong, then the tail after close
    let (mut tx, mut rx) = guard("chat", tm.chat(opts())).await.unwrap();
    for seq in 0..3 {
        tx.send(&ChatMessage { sender: "rs-client".into(), text: format!("ping {seq}"), seq }).await.unwrap();
        let reply = guard("chat reply", rx.message()).await.unwrap().expect("a reply per message");
        assert_eq!(reply, ChatMessage { sender: "server".into(), text: format!("echo: ping {seq}"), seq });
    }
    tx.send(&ChatMessage { sender: "rs-client".into(), text: "last".into(), seq: 9 }).await.unwrap();
    guard("chat close", tx.close()).await.unwrap();
    let tail = guard("chat tail", rx.collect_all()).await.unwrap();
    assert_eq!(tail, vec![ChatMessage { sender: "server".into(), text: "echo: last".into(), seq: 9 }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taskmanager_all_patterns_native() {
    let (node, ep, ch) = taskmanager_node().await;
    all_taskmanager_patterns(&ch, SerializationMode::Native).await;
    stop(node, ep, ch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taskmanager_all_patterns_json() {
    let (node, ep, ch) = taskmanager_node().await;
    all_taskmanager_patterns(&ch, SerializationMode::Json).await;
    stop(node, ep, ch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taskmanager_all_patterns_xlang() {
    let (node, ep, ch) = taskmanager_node().await;
    all_taskmanager_patterns(&ch, SerializationMode::Xlang).await;
    stop(node, ep, ch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_override_per_call_and_per_channel() {
    let (node, ep, ch) = taskmanager_node().await;
    let json_channel = TaskManagerClient::new(ch.clone().with_mode(SerializationMode::Json));
    // channel default JSON, call overrides to NATIVE, XLANG and back
    for mode in TM_MODES {
        let ack = json_channel.assign_task(&assignment("m", 1), CallOptions::new().mode(mode)).await.unwrap();
        assert_eq!(ack.worker, "rs-worker-1", "{mode}");
    }
    let xlang_channel = TaskManagerClient::new(ch.clone().with_mode(SerializationMode::Xlang));
    let ack = xlang_channel.assign_task(&assignment("x", 1), CallOptions::new()).await.unwrap();
    assert_eq!(ack.task_id, "x");
    // impl_message! types have no XLANG codec: refused client-side before anything is sent
    let err = ch
        .unary::<Msg, Msg>(
            "TaskManager",
            1,
            "assign_task",
            &Msg::new("x", 1),
            CallOptions::new().mode(SerializationMode::Xlang),
        )
        .await;
    let s = expect_code(err, Code::Unimplemented);
    assert!(s.message().contains("probe/Msg has no XLANG codec"), "{s}");
    stop(node, ep, ch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_payloads_round_trip() {
    let (node, ep, ch) = taskmanager_node().await;
    let tm = TaskManagerClient::new(ch.clone());
    let big_id = "T".repeat(6000);
    let req = TaskAssignment {
        task_id: big_id.clone(),
        title: "long title ".repeat(1000),
        priority: 7,
        tags: (0..200).map(|i| format!("tag-{i}")).collect(),
    };

    // typed client, every mode: NATIVE and XLANG compress both ways, JSON never compresses
    for mode in TM_MODES {
        let ack = guard("big assign_task", tm.assign_task(&req, CallOptions::new().mode(mode))).await.unwrap();
        assert_eq!(ack, TaskAck { task_id: big_id.clone(), accepted: true, worker: "rs-worker-1".into() }, "{mode}");
    }

    // raw NATIVE and XLANG: the request goes out COMPRESSED and the response comes back
    // COMPRESSED
    for mode in [SerializationMode::Native, SerializationMode::Xlang] {
        let codec = PayloadCodec::new(mode);
        let (req_flags, payload) = codec.encode(&req).unwrap();
        assert_eq!(req_flags, flags::COMPRESSED, "a > 4096-byte {mode} payload is compressed");
        let mut bytes = header_frame(&header("TaskManager", 1, "assign_task", mode));
        bytes.extend(frame_bytes(req_flags, &payload));
        let frames = raw_exchange(&ch, &bytes).await;
        assert_eq!(frames.len(), 2, "{mode}: response + trailer: {frames:?}");
        assert_eq!(frames[0].flags, flags::COMPRESSED, "{mode}: the large response is compressed");
        let ack: TaskAck = codec.decode(frames[0].flags, &frames[0].payload).unwrap();
        assert_eq!(ack.task_id, big_id);
        assert!(trailer_status(&frames).is_ok());
        if mode == SerializationMode::Xlang {
            // pyfory's header: xlang bit, not null, NAMED_STRUCT
            let plain = codec.decode_raw(frames[0].flags, frames[0].payload.clone()).unwrap();
            assert_eq!(&plain[..3], &[0x02, 0xff, 0x1d]);
        }
    }

    // raw JSON: the server never compresses JSON, but accepts a compressed JSON request
    let json = PayloadCodec::new(SerializationMode::Json);
    let (jflags, jpayload) = json.encode(&req).unwrap();
    assert_eq!(jflags, 0);
    let packed = compress::compress(&jpayload).unwrap();
    let mut bytes = header_frame(&header("TaskManager", 1, "assign_task", SerializationMode::Json));
    bytes.extend(frame_bytes(flags::COMPRESSED, &packed));
    let frames = raw_exchange(&ch, &bytes).await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].flags, 0, "JSON responses are never compressed");
    let ack: TaskAck = json.decode(0, &frames[0].payload).unwrap();
    assert_eq!(ack.task_id, big_id);

    // client stream with large items (NATIVE and XLANG), and a server stream of large items
    for mode in [SerializationMode::Native, SerializationMode::Xlang] {
        let summary = guard("big upload", async {
            let mut up = tm.upload_steps(CallOptions::new().mode(mode)).await?;
            for step in 0..3 {
                up.send(&StepUpload { task_id: "big".into(), step, data: vec![step as u8; 100_000] }).await?;
            }
            up.finish().await
        })
        .await
        .unwrap();
        assert_eq!(summary, UploadSummary { task_id: "big".into(), steps_received: 3, total_bytes: 300_000 }, "{mode}");
    }
    stop(node, ep, ch).await;

    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let text = "x".repeat(10_000);
    let items =
        guard("big ticks", async { fx.probe.server_stream("ticks", &Msg::new(&text, 3)).await?.collect_all().await })
            .await
            .unwrap();
    let expected: Vec<Msg> = (1..=3).map(|i| Msg::new(format!("{text} {i}"), i)).collect();
    assert_eq!(items, expected);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_patterns_both_modes() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    for mode in MODES {
        let p = ProbeClient::new(fx.channel.clone().with_mode(mode));
        assert_eq!(p.echo("hi", 42).await.unwrap(), Msg::new("hi", 42), "{mode}");
        let ticks = guard("ticks", async { p.server_stream("ticks", &Msg::new("t", 4)).await?.collect_all().await })
            .await
            .unwrap();
        assert_eq!(ticks.iter().map(|m| m.n).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(ticks[3].text, "t 4");
        let sum = guard("sum", async {
            let mut call = p.sum(CallOptions::new()).await?;
            for n in 1..=10 {
                call.send(&Msg::new("n", n)).await?;
            }
            call.finish().await
        })
        .await
        .unwrap();
        assert_eq!(sum, Msg::new("10 items", 55));
        let (mut tx, rx) = guard("echo_bidi", p.echo_bidi()).await.unwrap();
        tx.send_all((0..5).map(|i| Msg::new(format!("m{i}"), i))).await.unwrap();
        tx.close().await.unwrap();
        let echoed = guard("bidi collect", rx.collect_all()).await.unwrap();
        assert_eq!(echoed, (0..5).map(|i| Msg::new(format!("echo m{i}"), i)).collect::<Vec<_>>());
    }
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_deadline_and_peer_reach_the_handler() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    for mode in MODES {
        let opts = CallOptions::new().metadata("x-trace-id", "abc123").metadata("x-other", "1").mode(mode);
        let info = fx.probe.info("x-trace-id", opts).await.unwrap();
        assert_eq!(info.metadata_value, "abc123", "{mode}");
        assert_eq!(info.metadata_len, 2);
        assert_eq!(info.service, PROBE);
        assert_eq!(info.method, "info");
        assert!(!info.has_deadline, "no timeout, no deadline");
        assert_eq!(info.session_id, "");
        assert_eq!(info.peer, fx.client_ep.id().to_string(), "ctx.peer() is the caller's endpoint id");
    }
    let info = fx.probe.info("missing", CallOptions::new().timeout(std::time::Duration::from_secs(60))).await.unwrap();
    assert_eq!(info.metadata_value, "");
    assert_eq!(info.metadata_len, 0);
    assert!(info.has_deadline, "a timeout becomes the handler's deadline");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_only_service_rejects_xlang_and_accepts_json() {
    let node = spawn(AsterNode::builder().serve(NativeOnly)).await;
    let (ep, ch) = connect(&node).await;

    // NATIVE (declared) and JSON (always accepted)
    for mode in MODES {
        let r: Msg = ch.unary(NATIVE_ONLY, 1, "echo", &Msg::new("ok", 1), CallOptions::new().mode(mode)).await.unwrap();
        assert_eq!(r, Msg::new("ok", 1), "{mode}");
    }

    // XLANG through the typed client: a client stream sends its header first; the server
    // rejects the mode before any request
    let call = guard(
        "xlang client stream",
        ch.client_stream::<Msg, Msg>(NATIVE_ONLY, 1, "sum", CallOptions::new().mode(SerializationMode::Xlang)),
    )
    .await
    .unwrap();
    let s = expect_code(guard("finish", call.finish()).await, Code::InvalidArgument);
    assert!(s.message().contains("not accepted"), "{s}");

    // raw headers in XLANG and ROW mode
    for mode in [SerializationMode::Xlang, SerializationMode::Row] {
        let mut bytes = header_frame(&header(NATIVE_ONLY, 1, "echo", mode));
        bytes.extend(frame_bytes(0, b"\x00"));
        let frames = raw_exchange(&ch, &bytes).await;
        assert_eq!(frames.len(), 1, "only the trailer: {frames:?}");
        let s = trailer_status(&frames);
        assert_eq!(s.code(), Code::InvalidArgument, "{mode}: {s}");
    }
    // an out-of-range mode value as well
    let mut h = header(NATIVE_ONLY, 1, "echo", SerializationMode::Native);
    h.serialization_mode = 9;
    let frames = raw_exchange(&ch, &header_frame(&h)).await;
    assert_eq!(trailer_status(&frames).code(), Code::InvalidArgument);

    ch.close();
    ep.close().await;
    guard("shutdown", node.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_service_is_refused() {
    let err = AsterNode::builder().serve(NativeOnly).serve(NativeOnly).spawn().await;
    let s = expect_code(err, Code::AlreadyExists);
    assert!(s.message().contains("NativeOnly"), "{s}");

    let state = ProbeState::new();
    let st = state.clone();
    let err = probe_builder(AsterNode::builder(), &state)
        .serve_sessions(move |info: &SessionInfo| ProbeSession::new(st.clone(), info))
        .spawn()
        .await;
    expect_code(err, Code::AlreadyExists);

    // a second TaskManager next to the example services
    let err = serve_builder().serve(TaskManagerService(TaskManager::default())).spawn().await;
    expect_code(err, Code::AlreadyExists);
}
