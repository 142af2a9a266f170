//! Consumer admission (`aster.consumer_admission`) between Rust peers: the service list with
//! contract ids, patterns, RPC address and advertised modes; mode selection; channels per
//! service; gates; malformed and oversized requests. Everything on 127.0.0.1, nothing timed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

mod common;

use std::collections::BTreeMap;

use aster::actors::admission::{AdmissionContext, AdmissionDecision, BoxFuture, close_code};
use aster::prelude::*;
use aster::runtime::admission::{ConsumerAdmissionRequest, ConsumerAdmissionResponse, MAX_ADMISSION_PAYLOAD};
use aster::runtime::client::request_admission;
use aster::runtime::transport::{
    ALPN_CONSUMER_ADMISSION, Endpoint, EndpointConfig, NodeAddrText, bind_endpoint, parse_address,
};
use common::taskmanager::*;
use common::*;
use iroh::endpoint::ConnectionError;

const TASK_MANAGER_ID: &str = "564f108daa850392179f626568b5c919cad3bf5996d3a41ec13229ee2b65120e";
const TASK_SESSION_ID: &str = "ada0e1fe5cded36e3151dd4c0f7820ae1e662d4e3bda5dfccd834808a80c609f";

async fn client_endpoint() -> Endpoint {
    guard("bind client endpoint", bind_endpoint(&EndpointConfig::default())).await.unwrap()
}

async fn example_node(builder: NodeBuilder) -> AsterNode {
    guard("node spawn", serve(builder)).await.unwrap()
}

fn assignment(id: &str) -> TaskAssignment {
    TaskAssignment { task_id: id.into(), title: "t".into(), priority: 1, tags: vec![] }
}

/// Sends raw bytes as the admission request; returns the raw response.
async fn raw_admission(ep: &Endpoint, node: &AsterNode, body: &[u8]) -> Vec<u8> {
    let conn = guard("connect", ep.connect(node.addr(), ALPN_CONSUMER_ADMISSION)).await.unwrap();
    let (mut send, mut recv) = guard("open", conn.open_bi()).await.unwrap();
    guard("write", send.write_all(body)).await.unwrap();
    send.finish().unwrap();
    let raw = guard("read", recv.read_to_end(MAX_ADMISSION_PAYLOAD)).await.unwrap();
    conn.close(0u32.into(), b"done");
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_admits_and_calls_in_the_selected_mode() {
    let node = example_node(AsterNode::builder()).await;
    let ep = client_endpoint().await;
    let client = guard("admission", AsterClient::connect(&ep, node.addr())).await.unwrap();
    assert_eq!(client.peer(), node.id());

    // the response: open gate, both example services with the reference's contract ids
    let adm = client.admission();
    assert!(adm.admitted);
    assert!(adm.attributes.is_empty());
    assert_eq!((adm.registry_namespace.as_str(), adm.root_pubkey.as_str(), adm.reason.as_str()), ("", "", ""));
    let listed: Vec<_> = client
        .services()
        .iter()
        .map(|s| (s.name.as_str(), s.version, s.contract_id.as_str(), s.pattern.as_str()))
        .collect();
    assert_eq!(listed, [("TaskManager", 1, TASK_MANAGER_ID, "shared"), ("TaskSession", 1, TASK_SESSION_ID, "session")]);
    for s in client.services() {
        // declared [xlang] + NATIVE added by the runtime + JSON (aster_runtime::admission::advertised_modes)
        assert_eq!(s.serialization_modes, ["xlang", "native", "json"], "{}", s.name);
        assert_eq!(s.channels.keys().collect::<Vec<_>>(), ["rpc"]);
        // channels.rpc = base64 NodeAddr text of the node: its id and its direct addresses
        let rpc = NodeAddrText::from_base64(s.rpc_address().unwrap()).unwrap();
        assert_eq!(rpc.endpoint_id, *node.id().as_bytes());
        assert_eq!(rpc.relay_url, None);
        assert_eq!(rpc.direct_addrs, node.addr().ip_addrs().copied().collect::<Vec<_>>());
        assert!(rpc.direct_addrs.iter().all(|a| a.ip().is_loopback()));
        assert_eq!(parse_address(s.rpc_address().unwrap()).unwrap(), node.addr());
    }
    // the same list as the node's own summaries
    let own: Vec<_> = node.services().iter().map(|s| (s.name.as_str(), s.contract_id.as_deref())).collect();
    assert_eq!(own, [("TaskManager", Some(TASK_MANAGER_ID)), ("TaskSession", Some(TASK_SESSION_ID))]);

    // mode selection: the producer lists [xlang, native, json]; this client supports XLANG and
    // NATIVE: the producer's order decides
    assert_eq!(client.supported_modes(), [SerializationMode::Xlang, SerializationMode::Native]);
    assert_eq!(client.mode_for("TaskManager").unwrap(), SerializationMode::Xlang);
    let ch = guard("channel", client.channel_for("TaskManager")).await.unwrap();
    assert_eq!(ch.mode(), SerializationMode::Xlang);
    assert_eq!(ch.peer(), node.id());
    let tm = TaskManagerClient::new(ch.clone());
    let ack = guard("assign_task", tm.assign_task(&assignment("adm-1"), CallOptions::new())).await.unwrap();
    assert_eq!(ack, TaskAck { task_id: "adm-1".into(), accepted: true, worker: "rs-worker-1".into() });

    // JSON explicitly: same cached connection, JSON calls
    let json = guard("json channel", client.channel_for_mode("TaskManager", SerializationMode::Json)).await.unwrap();
    assert_eq!(json.mode(), SerializationMode::Json);
    assert_eq!(json.connection().stable_id(), ch.connection().stable_id(), "one connection per RPC address");
    let ack =
        guard("assign_task json", TaskManagerClient::new(json).assign_task(&assignment("adm-2"), CallOptions::new()))
            .await
            .unwrap();
    assert_eq!(ack.task_id, "adm-2");
    // NATIVE explicitly (listed by the producer)
    let native =
        guard("native channel", client.channel_for_mode("TaskManager", SerializationMode::Native)).await.unwrap();
    let ack = guard(
        "assign_task native",
        TaskManagerClient::new(native).assign_task(&assignment("adm-n"), CallOptions::new()),
    )
    .await
    .unwrap();
    assert_eq!(ack.task_id, "adm-n");
    // a mode the producer does not list
    let e = client.channel_for_mode("TaskManager", SerializationMode::Row).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");

    // the session service, on the same connection
    let sch = guard("session channel", client.channel_for("TaskSession")).await.unwrap();
    assert_eq!(sch.connection().stable_id(), ch.connection().stable_id());
    let session = guard("open session", TaskSessionSessionClient::open(&sch)).await.unwrap();
    let ack = guard("open_task", session.open_task(&assignment("s-1"), CallOptions::new())).await.unwrap();
    assert_eq!((ack.task_id.as_str(), ack.worker.as_str()), ("s-1", "session#1"));
    guard("close session", session.close()).await.unwrap();
    let raw = guard("raw session", client.open_session("TaskSession", CallOptions::new())).await.unwrap();
    drop(raw);

    // unknown service
    let e = client.channel_for("Nope").await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("TaskManager"), "{e}");

    // a closed connection is dialed again on the next request
    client.close().await;
    let again = guard("redial", client.channel_for("TaskManager")).await.unwrap();
    assert_ne!(again.connection().stable_id(), ch.connection().stable_id());
    guard(
        "assign_task again",
        TaskManagerClient::new(again.clone()).assign_task(&assignment("adm-3"), CallOptions::new()),
    )
    .await
    .unwrap();

    client.close().await;
    ep.close().await;
    guard("shutdown", node.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_selection_without_a_shared_mode_and_the_json_fallback() {
    let node = example_node(AsterNode::builder()).await;
    let ep = client_endpoint().await;
    let opts = AdmissionOptions::new().supported_modes([SerializationMode::Row]);
    let client = guard("admission", AsterClient::connect_address(&ep, &node.ticket().to_string(), opts)).await.unwrap();
    let e = client.mode_for("TaskManager").unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = guard("channel", client.channel_for("TaskManager")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("producer offers [xlang, native, json]"), "{e}");
    // JSON always works when asked for explicitly
    let ch = guard("json", client.channel_for_mode("TaskManager", SerializationMode::Json)).await.unwrap();
    let ack =
        guard("call", TaskManagerClient::new(ch).assign_task(&assignment("j"), CallOptions::new())).await.unwrap();
    assert!(ack.accepted);
    // a client that supports only JSON selects it without being asked; one preferring NATIVE
    // still follows the producer's order when it also supports XLANG
    let opts = AdmissionOptions::new().supported_modes([SerializationMode::Json]);
    let client2 = guard("admission 2", AsterClient::connect_with(&ep, node.addr(), opts)).await.unwrap();
    assert_eq!(client2.mode_for("TaskSession").unwrap(), SerializationMode::Json);
    let opts = AdmissionOptions::new().supported_modes([SerializationMode::Native]);
    let native = guard("admission 3", AsterClient::connect_with(&ep, node.addr(), opts)).await.unwrap();
    assert_eq!(native.mode_for("TaskSession").unwrap(), SerializationMode::Native);
    let sch = guard("session channel", native.channel_for("TaskSession")).await.unwrap();
    let session = guard("open session", TaskSessionSessionClient::open(&sch)).await.unwrap();
    let ack = guard("open_task", session.open_task(&assignment("n-1"), CallOptions::new())).await.unwrap();
    assert_eq!(ack.worker, "session#1");
    guard("close session", session.close()).await.unwrap();
    native.close().await;

    client.close().await;
    client2.close().await;
    ep.close().await;
    guard("shutdown", node.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_services_and_declared_modes() {
    let state = ProbeState::new();
    let node = spawn(probe_builder(AsterNode::builder(), &state).serve(NativeOnly)).await;
    let ep = client_endpoint().await;
    let client = guard("admission", AsterClient::connect(&ep, node.addr())).await.unwrap();
    let modes: BTreeMap<&str, Vec<&str>> = client
        .services()
        .iter()
        .map(|s| (s.name.as_str(), s.serialization_modes.iter().map(String::as_str).collect()))
        .collect();
    // the declared order, JSON last
    assert_eq!(modes[PROBE], ["native", "xlang", "json"]);
    assert_eq!(modes[PROBE_SESSION], ["native", "xlang", "json"]);
    assert_eq!(modes[NATIVE_ONLY], ["native", "json"]);
    for s in client.services() {
        // hand-written glue has no contract: an empty contract id
        assert_eq!(s.contract_id, "", "{}", s.name);
    }
    let patterns: BTreeMap<&str, &str> =
        client.services().iter().map(|s| (s.name.as_str(), s.pattern.as_str())).collect();
    assert_eq!(patterns.values().filter(|p| **p == "session").count(), 1);
    // producer order [native, ...]: NATIVE
    let ch = guard("channel", client.channel_for(NATIVE_ONLY)).await.unwrap();
    assert_eq!(ch.mode(), SerializationMode::Native);
    let echoed: Msg =
        guard("echo", ch.unary(NATIVE_ONLY, 1, "echo", &Msg::new("x", 1), CallOptions::new())).await.unwrap();
    assert_eq!(echoed.n, 1);
    client.close().await;
    ep.close().await;
    guard("shutdown", node.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_is_refused_and_the_node_keeps_serving() {
    let node = example_node(AsterNode::builder()).await;
    let ep = client_endpoint().await;

    let conn = guard("connect", ep.connect(node.addr(), ALPN_CONSUMER_ADMISSION)).await.unwrap();
    let (mut send, mut recv) = guard("open", conn.open_bi()).await.unwrap();
    let body = vec![b'x'; MAX_ADMISSION_PAYLOAD + 1];
    // The write may or may not complete before the server closes: either is fine.
    let _ = guard("write", send.write_all(&body)).await;
    let _ = send.finish();
    assert!(
        guard("read", recv.read_to_end(MAX_ADMISSION_PAYLOAD)).await.is_err(),
        "no response to an oversized request"
    );
    match guard("closed", conn.closed()).await {
        ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, close_code::REQUEST_TOO_LARGE.into());
            assert_eq!(&close.reason[..], b"admission request exceeds 65536 bytes");
        }
        other => panic!("expected an application close with code 413, got {other:?}"),
    }

    // The Rust client refuses to send one at all.
    let big = ConsumerAdmissionRequest { credential_json: "x".repeat(MAX_ADMISSION_PAYLOAD), ..Default::default() };
    let e = guard("client", request_admission(&ep, node.addr(), &big)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");

    // The node keeps serving admission and calls.
    assert!(node.is_running());
    let client = guard("admission", AsterClient::connect(&ep, node.addr())).await.unwrap();
    let ch = guard("channel", client.channel_for("TaskManager")).await.unwrap();
    let ack =
        guard("call", TaskManagerClient::new(ch).assign_task(&assignment("after"), CallOptions::new())).await.unwrap();
    assert!(ack.accepted);

    client.close().await;
    ep.close().await;
    guard("shutdown", node.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_requests_get_the_reference_bytes() {
    let node = example_node(AsterNode::builder()).await;
    let ep = client_endpoint().await;
    let denied =
        br#"{"admitted":false,"attributes":{},"services":[],"registry_namespace":"","root_pubkey":"","reason":""}"#;
    // malformed JSON, a missing credential_json and an empty request are denied, not dropped
    for body in [&b"not json"[..], b"{\"iid_token\":\"\"}", b""] {
        assert_eq!(raw_admission(&ep, &node, body).await, denied, "{:?}", String::from_utf8_lossy(body));
    }
    // the golden request gets a response with the golden structure
    let golden = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/golden/admission_open_gate.c2s.bin"),
    )
    .unwrap();
    let raw = raw_admission(&ep, &node, &golden).await;
    let resp = ConsumerAdmissionResponse::from_json(&raw).unwrap();
    assert!(resp.admitted);
    assert_eq!(resp.to_json().unwrap(), raw, "the node writes the canonical encoding");
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with(
        r#"{"admitted":true,"attributes":{},"services":[{"name":"TaskManager","version":1,"contract_id":""#
    ));
    assert!(text.ends_with(r#""registry_namespace":"","root_pubkey":"","reason":""}"#), "{text}");
    ep.close().await;
    guard("shutdown", node.shutdown()).await.unwrap();
}

/// Admits only the credential `"let me in"`, with attributes; reports a root key.
struct ToyGate;

impl AdmissionGate for ToyGate {
    fn name(&self) -> &str {
        "toy"
    }

    fn root_pubkey_hex(&self) -> String {
        "ab".repeat(32)
    }

    fn admit<'a>(&'a self, ctx: &'a AdmissionContext) -> BoxFuture<'a, AdmissionDecision> {
        Box::pin(async move {
            if ctx.request.credential_json == "let me in" {
                AdmissionDecision::admit_with(BTreeMap::from([
                    ("aster.role".into(), "ops".into()),
                    ("peer".into(), ctx.peer.to_string()),
                ]))
            } else {
                AdmissionDecision::deny("wrong credential")
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_gate_decides() {
    let node = example_node(AsterNode::builder().admission_gate(ToyGate)).await;
    let ep = client_endpoint().await;

    let e = guard("denied", AsterClient::connect(&ep, node.addr())).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("admission denied by"), "{e}");
    // the raw denial: no services, the gate's root key, no reason
    let resp = guard("raw", request_admission(&ep, node.addr(), &ConsumerAdmissionRequest::open())).await.unwrap();
    assert_eq!(resp, ConsumerAdmissionResponse::denied("ab".repeat(32)));

    let opts = AdmissionOptions::new().credential_json("let me in");
    let client = guard("admitted", AsterClient::connect_with(&ep, node.addr(), opts)).await.unwrap();
    let adm = client.admission();
    assert_eq!(adm.root_pubkey, "ab".repeat(32));
    assert_eq!(adm.attributes["aster.role"], "ops");
    assert_eq!(adm.attributes["peer"], ep.id().to_string());
    assert_eq!(client.services().len(), 2);
    let ch = guard("channel", client.channel_for("TaskManager")).await.unwrap();
    guard("call", TaskManagerClient::new(ch).assign_task(&assignment("g"), CallOptions::new())).await.unwrap();

    client.close().await;
    ep.close().await;
    guard("shutdown", node.shutdown()).await.unwrap();
}
