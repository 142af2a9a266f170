//! Smoke tests against the real Python reference peer (PyPI `aster-rpc` 0.1.2):
//!
//! - a Rust [`Channel`] calls `../shared/interop/server.py` in JSON mode (dialed by
//!   `endpoint_id` + `rpc_addr` on ALPN `aster/1`, no admission: the Python server is
//!   open-gate);
//! - a Rust [`AsterClient`] runs consumer admission against `server.py`: the contract ids it
//!   lists equal the Rust example's, the live response re-encodes byte for byte, mode selection
//!   on its `serialization_modes: []` (= XLANG) with an XLANG call, and a JSON call;
//! - `../shared/interop/client.py` calls a Rust node serving the example TaskManager/TaskSession:
//!   all eight cases in JSON mode with admission (the reference flow: `aster.consumer_admission`,
//!   then the `channels.rpc` address) and without (`--no-admission`), and the typed client in
//!   XLANG with admission (the Rust node advertises `["xlang", "native", "json"]`).
//!
//! Ignored by default: they need the venv made by `../shared/interop/setup.sh`. Run them with
//! `scripts/interop-smoke.sh`, which runs setup.sh and then this binary in a loopback-only network
//! namespace (the Python peer otherwise sends DNS queries for `dns.iroh.link`). Without the venv
//! the tests fail with a message saying so. Everything binds to 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../examples/taskmanager/service.rs"]
mod service;

#[path = "interop/harness.rs"]
mod harness;

use std::time::Duration;

use aster::prelude::*;
use aster::runtime::admission::{ConsumerAdmissionRequest, ConsumerAdmissionResponse, MAX_ADMISSION_PAYLOAD};
use aster::runtime::transport::{ALPN_CONSUMER_ADMISSION, EndpointAddr, EndpointConfig, NodeAddrText, bind_endpoint};
use harness::{PyServer, RUST_CALLS_LIMIT, ScratchDir, interop_script, run_py_client};
use service::{TaskAck, TaskAssignment, TaskManager, TaskManagerService, TaskSession, TaskSessionService};

/// The `client.py` cases run against the Rust node.
///
/// All eight cases of client.py. In JSON mode client.py sends dicts that omit fields (`tags`,
/// `priority`, `data`), which the reference decodes to the dataclass defaults; the example's
/// message types carry `#[serde(default)]` for the same behaviour.
const CLIENT_CASES: &[&str] =
    &["unary", "unary_meta", "unary_big", "server_stream", "client_stream", "bidi", "error", "session"];

/// Lines (prefixes) client.py prints in JSON mode for each case when it got the Rust services'
/// answers.
const CASE_OUTPUT: &[(&str, &str)] = &[
    ("unary", "unary        assign_task   -> {'task_id': 't-1', 'accepted': True, 'worker': 'rs-worker-1'}"),
    ("unary_meta", "unary+meta   assign_task   -> {'task_id': 't-2', 'accepted': True, 'worker': 'rs-worker-1'}"),
    ("unary_big", "unary big    assign_task   -> {'task_id': 't-big', 'accepted': True, 'worker': 'rs-worker-1'}"),
    (
        "server_stream",
        "server-stream watch_progress -> {'task_id': 't-1', 'step': 1, 'percent': 33.333333333333336, 'note': 'ok'}",
    ),
    ("server_stream", "server-stream watch_progress -> {'task_id': 't-1', 'step': 3, 'percent': 100.0, 'note': 'ok'}"),
    ("client_stream", "client-stream upload_steps -> {'task_id': 't-1', 'steps_received': 3, 'total_bytes': 0}"),
    ("bidi", "bidi         chat          <- {'sender': 'server', 'text': 'echo: hello 0', 'seq': 0}"),
    ("bidi", "bidi         chat          <- {'sender': 'server', 'text': 'echo: hello 2', 'seq': 2}"),
    ("bidi", "bidi         chat end      <- None"),
    ("error", "error        no_such_method -> UNIMPLEMENTED \"Method 'TaskManager.no_such_method' not implemented\""),
    ("session", "session      open2         -> {'task_id': 's-2', 'accepted': True, 'worker': 'session#2'}"),
];

/// The same for the typed client (XLANG: dataclasses instead of dicts; `data` bytes included).
const TYPED_CASE_OUTPUT: &[(&str, &str)] = &[
    ("unary", "unary        assign_task   -> TaskAck(task_id='t-1', accepted=True, worker='rs-worker-1')"),
    ("unary_meta", "unary+meta   assign_task   -> TaskAck(task_id='t-2', accepted=True, worker='rs-worker-1')"),
    ("unary_big", "unary big    assign_task   -> TaskAck(task_id='t-big', accepted=True, worker='rs-worker-1')"),
    (
        "server_stream",
        "server-stream watch_progress -> ProgressUpdate(task_id='t-1', step=1, percent=33.333333333333336, note='ok')",
    ),
    ("client_stream", "client-stream upload_steps -> UploadSummary(task_id='t-1', steps_received=3, total_bytes=6)"),
    ("bidi", "bidi         chat          <- ChatMessage(sender='server', text='echo: hello 2', seq=2)"),
    ("error", "error        no_such_method -> UNIMPLEMENTED \"Method 'TaskManager.no_such_method' not implemented\""),
    ("session", "session      add_steps     -> UploadSummary(task_id='t-1', steps_received=3, total_bytes=6)"),
    ("session", "session      chat          -> [ChatMessage(sender='session(2 tasks)', text='PING 0', seq=0)"),
];

// ── Rust client → Python server ─────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn rust_client_calls_python_server_json_unary() {
    let py = PyServer::start("py-server").await;
    let (endpoint_id, rpc_addr) = (py.endpoint_id, py.rpc_addr);

    let calls = async {
        let ep = bind_endpoint(&EndpointConfig::default()).await.unwrap();
        let addr = EndpointAddr::new(endpoint_id).with_ip_addr(rpc_addr);
        let channel = Channel::connect(&ep, addr).await.unwrap();
        assert_eq!(channel.peer(), endpoint_id, "TLS identity of the peer is the advertised endpoint id");

        let json = || CallOptions::new().mode(SerializationMode::Json);
        let req = TaskAssignment {
            task_id: "rust-1".into(),
            title: "from aster-rs".into(),
            priority: 3,
            tags: vec!["rust".into(), "interop".into()],
        };
        let ack: TaskAck = channel.unary("TaskManager", 1, "assign_task", &req, json()).await.unwrap();
        assert_eq!(ack, TaskAck { task_id: "rust-1".into(), accepted: true, worker: "py-worker-1".into() });

        // accepted = priority >= 0 on the Python side
        let req = TaskAssignment { task_id: "rust-2".into(), priority: -1, ..Default::default() };
        let ack: TaskAck = channel
            .unary("TaskManager", 1, "assign_task", &req, json().metadata("x-trace-id", "abc123"))
            .await
            .unwrap();
        assert_eq!(ack, TaskAck { task_id: "rust-2".into(), accepted: false, worker: "py-worker-1".into() });

        channel.close();
        ep.close().await;
    };
    tokio::time::timeout(RUST_CALLS_LIMIT, calls).await.expect("Rust client calls timed out");
    py.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn rust_client_admission_against_python_server() {
    let py = PyServer::start("py-admission").await;
    let tm_id = TaskManagerService::<TaskManager>::contract_id().unwrap().to_hex();
    let ts_id = TaskSessionService::<TaskSession>::contract_id().unwrap().to_hex();
    assert_eq!(tm_id, "564f108daa850392179f626568b5c919cad3bf5996d3a41ec13229ee2b65120e");
    assert_eq!(ts_id, "ada0e1fe5cded36e3151dd4c0f7820ae1e662d4e3bda5dfccd834808a80c609f");

    let calls = async {
        let ep = bind_endpoint(&EndpointConfig::default()).await.unwrap();

        // The raw exchange: the live 0.1.2 response re-encodes byte for byte.
        let conn = ep.connect(py.addr(), ALPN_CONSUMER_ADMISSION).await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&ConsumerAdmissionRequest::open().to_json().unwrap()).await.unwrap();
        send.finish().unwrap();
        let raw = recv.read_to_end(MAX_ADMISSION_PAYLOAD).await.unwrap();
        conn.close(0u32.into(), b"done");
        let parsed = ConsumerAdmissionResponse::from_json(&raw).unwrap();
        assert_eq!(parsed.to_json().unwrap(), raw, "re-encoding of\n{}", String::from_utf8_lossy(&raw));
        println!("python admission response: {}", String::from_utf8_lossy(&raw));

        // The client flow.
        let client = AsterClient::connect(&ep, py.addr()).await.unwrap();
        assert_eq!(client.peer(), py.endpoint_id);
        let adm = client.admission();
        assert!(adm.admitted);
        assert!(adm.attributes.is_empty());
        assert_eq!(adm.root_pubkey.len(), 64, "dev mode sends its ephemeral root key: {adm}");
        let listed: Vec<_> = client
            .services()
            .iter()
            .map(|s| (s.name.as_str(), s.version, s.contract_id.as_str(), s.pattern.as_str()))
            .collect();
        assert_eq!(
            listed,
            [("TaskManager", 1, tm_id.as_str(), "shared"), ("TaskSession", 1, ts_id.as_str(), "session")],
            "contract ids advertised by the Python server equal the Rust example's"
        );
        for s in client.services() {
            assert!(s.serialization_modes.is_empty(), "Python advertises [] (= XLANG): {s:?}");
            let rpc = NodeAddrText::from_base64(s.rpc_address().unwrap()).unwrap();
            assert_eq!(rpc.endpoint_id, *py.endpoint_id.as_bytes());
            assert!(rpc.direct_addrs.contains(&py.rpc_addr), "{rpc:?}");
        }

        // Mode selection: [] means XLANG; the default client (XLANG + NATIVE) selects it.
        assert_eq!(client.mode_for("TaskManager").unwrap(), SerializationMode::Xlang);
        let ch = client.channel_for("TaskManager").await.unwrap();
        assert_eq!(ch.mode(), SerializationMode::Xlang);
        let req =
            TaskAssignment { task_id: "adm-x".into(), title: "xlang".into(), priority: 2, tags: vec!["a".into()] };
        let ack: TaskAck = ch.unary("TaskManager", 1, "assign_task", &req, CallOptions::new()).await.unwrap();
        assert_eq!(ack, TaskAck { task_id: "adm-x".into(), accepted: true, worker: "py-worker-1".into() });
        // A NATIVE-only client shares no mode with a Python producer.
        let native = AsterClient::connect_with(
            &ep,
            py.addr(),
            AdmissionOptions::new().supported_modes([SerializationMode::Native]),
        )
        .await
        .unwrap();
        let e = native.channel_for("TaskManager").await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        assert!(e.message().contains("producer offers [xlang]"), "{e}");

        // JSON explicitly, on the connection to channels.rpc.
        let ch = native.channel_for_mode("TaskManager", SerializationMode::Json).await.unwrap();
        assert_eq!(ch.peer(), py.endpoint_id);
        let req = TaskAssignment { task_id: "adm-1".into(), title: "admitted".into(), priority: 1, tags: vec![] };
        let ack: TaskAck = ch.unary("TaskManager", 1, "assign_task", &req, CallOptions::new()).await.unwrap();
        assert_eq!(ack, TaskAck { task_id: "adm-1".into(), accepted: true, worker: "py-worker-1".into() });

        client.close().await;
        native.close().await;
        ep.close().await;
    };
    tokio::time::timeout(RUST_CALLS_LIMIT, calls).await.expect("Rust admission client timed out");
    py.stop();
}

// ── Python client → Rust server ─────────────────────────────────────────────

/// Runs `client.py` with `args` (all eight cases) against a fresh Rust node serving the example;
/// checks that every case passed with the Rust services' answers. Returns client.py's stdout.
async fn run_client_py(name: &str, args: &[&str], expected: &[(&str, &str)]) -> String {
    let scratch = ScratchDir::new(name);

    let node = service::serve(AsterNode::builder()).await.unwrap();
    let ticket = node.ticket().to_string();
    let addr = node.addr();
    assert!(
        addr.ip_addrs().all(|sa| sa.ip().is_loopback()),
        "the Rust node must only advertise loopback addresses: {addr:?}"
    );

    let cases = CLIENT_CASES.join(",");
    let mut full: Vec<&str> = vec!["--address", &ticket];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--connect-timeout", "30", "--cases", &cases]);
    let (status, out, report) = run_py_client("client.py", &scratch, &interop_script("client.py"), &full).await;

    let result =
        out.lines().rev().find(|l| l.starts_with("RESULT ")).unwrap_or_else(|| panic!("no RESULT line\n{report}"));
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(fails.is_empty(), "client.py reported failures: {fails:#?}\n{report}");
    assert_eq!(result, format!("RESULT passed={} failed=0", CLIENT_CASES.len()), "\n{report}");
    assert!(status.success(), "{report}");

    println!("{report}");
    // The answers came from the Rust services (worker "rs-worker-1"), not from some other server.
    for (case, line) in expected.iter().filter(|(case, _)| CLIENT_CASES.contains(case)) {
        assert!(out.lines().any(|l| l.starts_with(line)), "case {case}: missing output line {line:?}\n{report}");
    }

    tokio::time::timeout(Duration::from_secs(30), node.shutdown()).await.expect("node shutdown timed out").unwrap();
    out
}

/// What client.py prints after admission against the Rust node (contract id prefixes).
const ADMITTED_LINE: &str =
    "admitted; services offered: [('TaskManager', 1, '564f108daa850392'), ('TaskSession', 1, 'ada0e1fe5cded36e')]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn python_client_calls_rust_server_json() {
    // The reference flow: admission on aster.consumer_admission, then channels.rpc on aster/1.
    let out = run_client_py("py-client-admission", &["--json"], CASE_OUTPUT).await;
    assert!(out.lines().any(|l| l == ADMITTED_LINE), "missing {ADMITTED_LINE:?}\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn python_client_calls_rust_server_json_no_admission() {
    let out = run_client_py("py-client", &["--json", "--no-admission"], CASE_OUTPUT).await;
    assert!(out.lines().any(|l| l == "connected to aster/1 directly (no admission)"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn python_typed_client_with_admission_calls_rust_server_xlang() {
    // No --json: the typed client keeps XLANG because the Rust node lists "xlang" (it would
    // switch to its JSON codec, which cannot work, for a list with "json" but no "xlang").
    let out = run_client_py("py-typed-admission", &[], TYPED_CASE_OUTPUT).await;
    assert!(out.lines().any(|l| l == ADMITTED_LINE), "missing {ADMITTED_LINE:?}\n{out}");
}
