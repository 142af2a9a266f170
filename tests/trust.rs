//! The trust model on loopback (protocol §7): consumer admission with Rust-signed credentials
//! (Gate 1), Gate 0 (a peer that is not admitted cannot open `aster/1`), Gate 3 (method
//! capabilities for all four patterns and for session CALLs), Gate 2 (the call authorizer),
//! and producer admission bound to the QUIC peer. Credentials are made here with the trust
//! module; nothing waits on time (expired credentials are issued already expired).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

mod common;

use std::collections::BTreeMap;

use aster::actors::authorize::CallAuthorizer;
use aster::actors::trust::{NOT_ADMITTED_CODE, NOT_ADMITTED_REASON, TrustedGate};
use aster::prelude::*;
use aster::runtime::admission::{ConsumerAdmissionRequest, ConsumerAdmissionResponse};
use aster::runtime::client::{request_admission, request_producer_admission};
use aster::runtime::transport::{ALPN_RPC, Endpoint, EndpointConfig, bind_endpoint};
use aster::runtime::trust::{
    ConsumerCredential, EnrollmentCredential, InMemoryNonceStore, PublicKey, SecretKey, attributes, now_secs,
};
use common::guard;
use futures::future::BoxFuture;
use iroh::endpoint::ConnectionError;
use serde::{Deserialize, Serialize};

// ───────────────────────────── test services ─────────────────────────────

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(default)]
#[aster(tag = "trusttest/Note")]
pub struct Note {
    pub text: String,
    pub n: i64,
}

fn note(text: &str) -> Note {
    Note { text: text.into(), n: 0 }
}

/// `aster.role=…;aster.name=…` of the caller's verified attributes, sorted.
fn attrs_text(ctx: &CallContext) -> String {
    let mut v: Vec<String> = ctx.attributes().iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.sort();
    v.join(";")
}

/// Every pattern with every requirement kind: ROLE `admin`, ANY_OF `ops|admin`, ALL_OF
/// `ops&write`; `whoami` has none and returns the caller's attributes.
#[aster::service(name = "Guarded", version = 1)]
pub trait GuardedHandler {
    #[unary]
    async fn whoami(&self, ctx: CallContext, req: Note) -> Result<Note, Status> {
        Ok(Note { text: attrs_text(&ctx), n: req.n })
    }

    #[unary(requires = role("admin"))]
    async fn u_role(&self, ctx: CallContext, req: Note) -> Result<Note, Status> {
        unary_ok(ctx, req)
    }
    #[unary(requires = any_of("ops", "admin"))]
    async fn u_any(&self, ctx: CallContext, req: Note) -> Result<Note, Status> {
        unary_ok(ctx, req)
    }
    #[unary(requires = all_of("ops", "write"))]
    async fn u_all(&self, ctx: CallContext, req: Note) -> Result<Note, Status> {
        unary_ok(ctx, req)
    }

    #[server_stream(requires = role("admin"))]
    async fn s_role(&self, ctx: CallContext, req: Note, sink: ServerSink<Note>) -> Result<(), Status> {
        stream_ok(ctx, req, sink).await
    }
    #[server_stream(requires = any_of("ops", "admin"))]
    async fn s_any(&self, ctx: CallContext, req: Note, sink: ServerSink<Note>) -> Result<(), Status> {
        stream_ok(ctx, req, sink).await
    }
    #[server_stream(requires = all_of("ops", "write"))]
    async fn s_all(&self, ctx: CallContext, req: Note, sink: ServerSink<Note>) -> Result<(), Status> {
        stream_ok(ctx, req, sink).await
    }

    #[client_stream(requires = role("admin"))]
    async fn c_role(&self, ctx: CallContext, reqs: Streaming<Note>) -> Result<Note, Status> {
        count_ok(ctx, reqs).await
    }
    #[client_stream(requires = any_of("ops", "admin"))]
    async fn c_any(&self, ctx: CallContext, reqs: Streaming<Note>) -> Result<Note, Status> {
        count_ok(ctx, reqs).await
    }
    #[client_stream(requires = all_of("ops", "write"))]
    async fn c_all(&self, ctx: CallContext, reqs: Streaming<Note>) -> Result<Note, Status> {
        count_ok(ctx, reqs).await
    }

    #[bidi_stream(requires = role("admin"))]
    async fn b_role(&self, ctx: CallContext, reqs: Streaming<Note>, sink: ServerSink<Note>) -> Result<(), Status> {
        echo_ok(ctx, reqs, sink).await
    }
    #[bidi_stream(requires = any_of("ops", "admin"))]
    async fn b_any(&self, ctx: CallContext, reqs: Streaming<Note>, sink: ServerSink<Note>) -> Result<(), Status> {
        echo_ok(ctx, reqs, sink).await
    }
    #[bidi_stream(requires = all_of("ops", "write"))]
    async fn b_all(&self, ctx: CallContext, reqs: Streaming<Note>, sink: ServerSink<Note>) -> Result<(), Status> {
        echo_ok(ctx, reqs, sink).await
    }
}

fn unary_ok(ctx: CallContext, req: Note) -> Result<Note, Status> {
    Ok(Note { text: format!("{} ok", ctx.method()), n: req.n })
}

async fn stream_ok(ctx: CallContext, req: Note, mut sink: ServerSink<Note>) -> Result<(), Status> {
    sink.send(Note { text: format!("{} ok", ctx.method()), n: req.n }).await
}

async fn count_ok(ctx: CallContext, mut reqs: Streaming<Note>) -> Result<Note, Status> {
    let mut n = 0;
    while let Some(r) = reqs.message().await? {
        n += r.n;
    }
    Ok(Note { text: format!("{} ok", ctx.method()), n })
}

async fn echo_ok(ctx: CallContext, mut reqs: Streaming<Note>, mut sink: ServerSink<Note>) -> Result<(), Status> {
    while let Some(r) = reqs.message().await? {
        sink.send(Note { text: format!("{} ok", ctx.method()), n: r.n }).await?;
    }
    Ok(())
}

struct Guarded;
impl GuardedHandler for Guarded {}

/// A service-level requirement (`ops`) in conjunction with a method-level one (`admin`).
#[aster::service(name = "Locked", version = 1, requires = role("ops"))]
pub trait LockedHandler {
    #[unary]
    async fn ping(&self, ctx: CallContext, req: Note) -> Result<Note, Status> {
        unary_ok(ctx, req)
    }
    #[unary(requires = role("admin"))]
    async fn both(&self, ctx: CallContext, req: Note) -> Result<Note, Status> {
        unary_ok(ctx, req)
    }
}

struct Locked;
impl LockedHandler for Locked {}

/// A session service: `bump` needs `admin`, `total` needs nothing.
#[aster::service(name = "Counter", version = 1, scope = session)]
pub trait CounterHandler {
    #[unary(requires = role("admin"))]
    async fn bump(&mut self, ctx: CallContext, req: Note) -> Result<Note, Status>;
    #[unary]
    async fn total(&mut self, ctx: CallContext, req: Note) -> Result<Note, Status>;
}

#[derive(Default)]
struct Counter {
    total: i64,
}

impl CounterHandler for Counter {
    async fn bump(&mut self, _ctx: CallContext, req: Note) -> Result<Note, Status> {
        self.total += req.n;
        Ok(Note { text: "bumped".into(), n: self.total })
    }
    async fn total(&mut self, ctx: CallContext, _req: Note) -> Result<Note, Status> {
        Ok(Note { text: attrs_text(&ctx), n: self.total })
    }
}

// ───────────────────────────── fixtures ─────────────────────────────

fn root() -> SecretKey {
    SecretKey::generate()
}

fn services(builder: NodeBuilder) -> NodeBuilder {
    builder
        .serve(GuardedService(Guarded))
        .serve(LockedService(Locked))
        .serve_sessions(|_: &SessionInfo| CounterService(Counter::default()))
}

async fn trusted_node(root: &SecretKey) -> AsterNode {
    common::spawn(services(AsterNode::builder().trusted(root.public_key(), InMemoryNonceStore::new()))).await
}

async fn endpoint() -> Endpoint {
    guard("bind endpoint", bind_endpoint(&EndpointConfig::default())).await.unwrap()
}

/// An endpoint with a known key (for endpoint-bound credentials).
async fn endpoint_with(key: &SecretKey) -> Endpoint {
    let cfg = EndpointConfig { secret_key: Some(key.to_iroh()), ..EndpointConfig::default() };
    guard("bind endpoint", bind_endpoint(&cfg)).await.unwrap()
}

fn in_an_hour() -> u64 {
    now_secs() + 3600
}

/// A policy credential with `aster.role = role` (no role attribute when `None`).
fn policy(root: &SecretKey, role: Option<&str>) -> ConsumerCredential {
    let mut a = attributes([("aster.name", "tester")]);
    if let Some(r) = role {
        a.insert("aster.role".into(), r.into());
    }
    ConsumerCredential::policy(root.public_key(), in_an_hour(), a).signed(root)
}

async fn admit(ep: &Endpoint, node: &AsterNode, cred: &ConsumerCredential) -> Result<AsterClient, Status> {
    guard("admission", AsterClient::connect_with(ep, node.addr(), AdmissionOptions::new().credential(cred))).await
}

/// A fresh endpoint admitted with `cred`, and its Guarded client.
async fn admitted_client(node: &AsterNode, cred: &ConsumerCredential) -> (Endpoint, AsterClient, GuardedClient) {
    let ep = endpoint().await;
    let client = admit(&ep, node, cred).await.unwrap();
    let ch = guard("channel", client.channel_for("Guarded")).await.unwrap();
    (ep, client, GuardedClient::new(ch))
}

fn assert_denied_admission(r: Result<AsterClient, Status>) {
    let e = r.map(|_| ()).unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    assert!(e.message().starts_with("admission denied by"), "{e}");
}

/// The raw response to `cred_json` from a fresh endpoint: a denial carries no reason, no
/// services, and the node's root key.
async fn raw_denial(node: &AsterNode, root: &PublicKey, cred_json: String) {
    let ep = endpoint().await;
    let req = ConsumerAdmissionRequest { credential_json: cred_json, iid_token: String::new() };
    let resp = guard("raw admission", request_admission(&ep, node.addr(), &req)).await.unwrap();
    assert_eq!(resp, ConsumerAdmissionResponse::denied(root.to_hex()));
    ep.close().await;
}

async fn shutdown(node: AsterNode) {
    guard("shutdown", node.shutdown()).await.unwrap();
}

// ───────────────────────────── Gate 1 ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admitted_consumer_calls_with_its_attributes() {
    let root = root();
    let node = trusted_node(&root).await;
    let (ep, client, guarded) = admitted_client(&node, &policy(&root, Some("ops"))).await;
    let adm = client.admission();
    assert!(adm.admitted);
    assert_eq!(adm.root_pubkey, root.public_key().to_hex());
    assert_eq!(adm.attributes["aster.role"], "ops");
    assert_eq!(client.services().len(), 3);
    // the admitted-peers table has the peer, expiring with the credential
    let entry = node.admitted_peers().get(&ep.id()).unwrap();
    assert_eq!(entry.attributes["aster.name"], "tester");
    assert!(entry.expires_at_ms <= in_an_hour() * 1000);
    // CallContext::attributes are the verified attributes
    let who = guard("whoami", guarded.whoami(&note("x"), CallOptions::new())).await.unwrap();
    assert_eq!(who.text, "aster.name=tester;aster.role=ops");
    client.close().await;
    ep.close().await;
    shutdown(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_denied_without_a_reason() {
    let root = root();
    let node = trusted_node(&root).await;
    let pk = root.public_key();

    // no credential
    let ep = endpoint().await;
    assert_denied_admission(guard("no credential", AsterClient::connect(&ep, node.addr())).await);
    raw_denial(&node, &pk, String::new()).await;

    // tampered: an attribute changed after signing
    let mut tampered = policy(&root, Some("guest"));
    tampered.attributes.insert("aster.role".into(), "admin".into());
    assert_denied_admission(admit(&ep, &node, &tampered).await);
    raw_denial(&node, &pk, tampered.to_wire_json()).await;

    // foreign root: well signed, by a root the node does not trust
    let evil = SecretKey::generate();
    let foreign = policy(&evil, Some("admin"));
    assert_denied_admission(admit(&ep, &node, &foreign).await);
    raw_denial(&node, &pk, foreign.to_wire_json()).await;
    // … also when it claims the node's root key
    let mut claims = foreign.clone();
    claims.root_pubkey = pk;
    assert_denied_admission(admit(&ep, &node, &claims).await);

    // expired (issued already expired: no waiting)
    let expired = ConsumerCredential::policy(pk, now_secs() - 10, attributes([("aster.role", "admin")])).signed(&root);
    assert_denied_admission(admit(&ep, &node, &expired).await);
    raw_denial(&node, &pk, expired.to_wire_json()).await;

    // malformed
    raw_denial(&node, &pk, "{\"credential_type\":\"policy\"}".into()).await;

    // none of these left an admission behind
    assert!(node.admitted_peers().is_empty());
    ep.close().await;
    shutdown(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_token_is_admitted_once() {
    let root = root();
    let node = trusted_node(&root).await;
    let ott =
        ConsumerCredential::ott(root.public_key(), in_an_hour(), attributes([("aster.role", "ops")])).signed(&root);
    let (ep, client, guarded) = admitted_client(&node, &ott).await;
    guard("call", guarded.u_any(&note("x"), CallOptions::new())).await.unwrap();
    // replay from another node, and from the same one
    let other = endpoint().await;
    assert_denied_admission(admit(&other, &node, &ott).await);
    assert_denied_admission(admit(&ep, &node, &ott).await);
    assert!(!node.admitted_peers().is_admitted(&other.id()));
    client.close().await;
    other.close().await;
    ep.close().await;
    shutdown(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_bound_credential_only_admits_its_node() {
    let root = root();
    let node = trusted_node(&root).await;
    let key = SecretKey::generate();
    let bound = ConsumerCredential::policy(root.public_key(), in_an_hour(), attributes([("aster.role", "ops")]))
        .with_endpoint_id(&key.public_key())
        .signed(&root);
    // another node presenting it: denied
    let thief = endpoint().await;
    assert_denied_admission(admit(&thief, &node, &bound).await);
    // the node it is bound to: admitted
    let owner = endpoint_with(&key).await;
    let client = admit(&owner, &node, &bound).await.unwrap();
    assert!(client.admission().admitted);
    client.close().await;
    thief.close().await;
    owner.close().await;
    shutdown(node).await;
}

// ───────────────────────────── Gate 0 ─────────────────────────────

/// The close a connection of an unadmitted peer ends with.
async fn assert_closed_not_admitted(ep: &Endpoint, node: &AsterNode) {
    match guard("dial aster/1", ep.connect(node.addr(), ALPN_RPC)).await {
        Ok(conn) => match guard("closed", conn.closed()).await {
            ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code, NOT_ADMITTED_CODE.into());
                assert_eq!(&close.reason[..], NOT_ADMITTED_REASON.as_bytes());
            }
            other => panic!("expected a 403 close, got {other}"),
        },
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("not admitted") && text.contains("403"), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unadmitted_peer_cannot_open_rpc_connections() {
    let root = root();
    let node = trusted_node(&root).await;
    let ep = endpoint().await;
    assert_closed_not_admitted(&ep, &node).await;
    // a channel sees the close reason
    let e = match guard("channel", Channel::connect(&ep, node.addr())).await {
        Ok(ch) => guard("call", GuardedClient::new(ch).whoami(&note("x"), CallOptions::new())).await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert!(e.message().contains("not admitted"), "{e}");
    // a denied admission does not open the gate
    let mut tampered = policy(&root, Some("ops"));
    tampered.expires_at += 1;
    assert_denied_admission(admit(&ep, &node, &tampered).await);
    assert_closed_not_admitted(&ep, &node).await;
    // once admitted, the same endpoint may connect
    let client = admit(&ep, &node, &policy(&root, Some("ops"))).await.unwrap();
    let ch = guard("channel", Channel::connect(&ep, node.addr())).await.unwrap();
    guard("call", GuardedClient::new(ch.clone()).u_any(&note("x"), CallOptions::new())).await.unwrap();
    // when the admission ends (expiry; removed here, no waiting) its calls are refused
    assert!(node.admitted_peers().remove(&ep.id()));
    let e =
        guard("expired call", GuardedClient::new(ch.clone()).whoami(&note("x"), CallOptions::new())).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    // and new connections are closed again
    assert_closed_not_admitted(&ep, &node).await;
    ch.close();
    client.close().await;
    ep.close().await;
    shutdown(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_gate_lets_everyone_connect_but_capabilities_still_apply() {
    let root = root();
    let gate = TrustedGate::open(root.public_key(), InMemoryNonceStore::new());
    let node = common::spawn(services(AsterNode::builder().admission_gate(gate))).await;
    // no admission at all: the connection is allowed, the caller has no attributes
    let (ep, ch) = common::connect(&node).await;
    let guarded = GuardedClient::new(ch.clone());
    assert_eq!(guard("whoami", guarded.whoami(&note("x"), CallOptions::new())).await.unwrap().text, "");
    let e = guard("denied", guarded.u_any(&note("x"), CallOptions::new())).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // admitted without credential: still no attributes
    let client = guard("open admission", AsterClient::connect(&ep, node.addr())).await.unwrap();
    assert!(client.admission().attributes.is_empty());
    // a presented credential is verified and gives its attributes
    let ep2 = endpoint().await;
    let client2 = admit(&ep2, &node, &policy(&root, Some("admin"))).await.unwrap();
    let g2 = GuardedClient::new(guard("channel", client2.channel_for("Guarded")).await.unwrap());
    guard("allowed", g2.u_role(&note("x"), CallOptions::new())).await.unwrap();
    assert_denied_admission(admit(&ep2, &node, &policy(&SecretKey::generate(), Some("admin"))).await);
    ch.close();
    client.close().await;
    client2.close().await;
    ep.close().await;
    ep2.close().await;
    shutdown(node).await;
}

// ───────────────────────────── Gate 3 ─────────────────────────────

/// The outcome of calling `<pattern>_<kind>` (u|s|c|b × role|any|all): `Ok(())` when the
/// handler answered, else the status.
async fn call_pattern(g: &GuardedClient, method: &str) -> Result<(), Status> {
    let opts = CallOptions::new;
    let expect = format!("{method} ok");
    let check = |n: Note| {
        assert_eq!(n.text, expect);
        Ok(())
    };
    match method {
        "u_role" => check(g.u_role(&note("x"), opts()).await?),
        "u_any" => check(g.u_any(&note("x"), opts()).await?),
        "u_all" => check(g.u_all(&note("x"), opts()).await?),
        "s_role" | "s_any" | "s_all" => {
            let stream = match method {
                "s_role" => g.s_role(&note("x"), opts()).await?,
                "s_any" => g.s_any(&note("x"), opts()).await?,
                _ => g.s_all(&note("x"), opts()).await?,
            };
            let items = stream.collect_all().await?;
            assert_eq!(items.len(), 1);
            check(items.into_iter().next().unwrap())
        }
        "c_role" | "c_any" | "c_all" => {
            // Nothing is sent before finish(): a denied call answers without reading input.
            let call = match method {
                "c_role" => g.c_role(opts()).await?,
                "c_any" => g.c_any(opts()).await?,
                _ => g.c_all(opts()).await?,
            };
            check(call.finish().await?)
        }
        _ => {
            let (tx, mut rx) = match method {
                "b_role" => g.b_role(opts()).await?,
                "b_any" => g.b_any(opts()).await?,
                _ => g.b_all(opts()).await?,
            };
            let _ = tx.close().await;
            let mut got = Vec::new();
            while let Some(n) = rx.message().await? {
                got.push(n);
            }
            assert!(got.is_empty());
            Ok(())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_for_all_four_patterns() {
    let root = root();
    let node = trusted_node(&root).await;
    // (caller's aster.role, allowed for ROLE admin, ANY_OF ops|admin, ALL_OF ops&write)
    let callers: [(Option<&str>, [bool; 3]); 5] = [
        (Some("admin"), [true, true, false]),
        (Some("ops,write"), [false, true, true]),
        (Some(" write , ops ,admin"), [true, true, true]),
        (Some("guest,Admin"), [false, false, false]),
        (None, [false, false, false]),
    ];
    for (role, allowed) in callers {
        let (ep, client, guarded) = admitted_client(&node, &policy(&root, role)).await;
        for pattern in ["u", "s", "c", "b"] {
            for (kind, allowed) in ["role", "any", "all"].into_iter().zip(allowed) {
                let method = format!("{pattern}_{kind}");
                let r = guard(&method, call_pattern(&guarded, &method)).await;
                if allowed {
                    r.unwrap_or_else(|e| panic!("{role:?} calling {method}: {e}"));
                } else {
                    let e = r.expect_err(&format!("{role:?} calling {method} must be denied"));
                    assert_eq!(e.code(), Code::PermissionDenied, "{role:?} calling {method}: {e}");
                    assert_eq!(e.message(), format!("capability check failed for method 'Guarded.{method}'"));
                }
            }
        }
        // the connection survives denials
        guard("whoami", guarded.whoami(&note("x"), CallOptions::new())).await.unwrap();
        client.close().await;
        ep.close().await;
    }
    shutdown(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_level_and_method_level_requirements_both_apply() {
    let root = root();
    let node = trusted_node(&root).await;
    for (role, ping, both) in
        [("ops", true, false), ("admin", false, false), ("ops,admin", true, true), ("guest", false, false)]
    {
        let ep = endpoint().await;
        let client = admit(&ep, &node, &policy(&root, Some(role))).await.unwrap();
        let locked = LockedClient::new(guard("channel", client.channel_for("Locked")).await.unwrap());
        let r = guard("ping", locked.ping(&note("x"), CallOptions::new())).await;
        assert_eq!(r.is_ok(), ping, "{role}: ping {r:?}");
        if let Err(e) = r {
            assert_eq!(e.code(), Code::PermissionDenied);
            assert_eq!(e.message(), "capability check failed for service 'Locked'");
        }
        let r = guard("both", locked.both(&note("x"), CallOptions::new())).await;
        assert_eq!(r.is_ok(), both, "{role}: both {r:?}");
        client.close().await;
        ep.close().await;
    }
    shutdown(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_calls_are_checked_per_call() {
    let root = root();
    let node = trusted_node(&root).await;
    for (role, may_bump) in [("ops", false), ("admin", true)] {
        let ep = endpoint().await;
        let client = admit(&ep, &node, &policy(&root, Some(role))).await.unwrap();
        let ch = guard("channel", client.channel_for("Counter")).await.unwrap();
        let session = guard("open", CounterSessionClient::open(&ch)).await.unwrap();
        let r = guard("bump", session.bump(&Note { text: String::new(), n: 5 }, CallOptions::new())).await;
        if may_bump {
            assert_eq!(r.unwrap().n, 5);
        } else {
            let e = r.unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{e}");
            assert_eq!(e.message(), "capability check failed for method 'Counter.bump'");
        }
        // the session continues after a denial, and sees the caller's attributes
        let total = guard("total", session.total(&note(""), CallOptions::new())).await.unwrap();
        assert_eq!(total.n, if may_bump { 5 } else { 0 });
        assert_eq!(total.text, format!("aster.name=tester;aster.role={role}"));
        guard("close", session.close()).await.unwrap();
        client.close().await;
        ep.close().await;
    }
    shutdown(node).await;
}

// ───────────────────────────── Gate 2 ─────────────────────────────

/// Refuses `Guarded.whoami` to callers named `mallory`; panics for `Guarded.u_any` (in its
/// future) and for `Guarded.s_role` (before returning one).
struct NoMallory;

impl CallAuthorizer for NoMallory {
    fn name(&self) -> &str {
        "no-mallory"
    }

    fn authorize<'a>(&'a self, ctx: &'a CallContext) -> BoxFuture<'a, Result<(), Status>> {
        if ctx.method() == "s_role" {
            panic!("synchronous authorizer bug");
        }
        Box::pin(async move {
            if ctx.method() == "u_any" {
                panic!("authorizer bug");
            }
            let mallory = ctx.attributes().iter().any(|(k, v)| k == "aster.name" && v == "mallory");
            if ctx.method() == "whoami" && mallory {
                Err(Status::permission_denied("not you, mallory"))
            } else {
                Ok(())
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_authorizer_runs_after_the_capability_check() {
    let root = root();
    let builder = AsterNode::builder().trusted(root.public_key(), InMemoryNonceStore::new()).authorizer(NoMallory);
    let node = common::spawn(services(builder)).await;
    let mallory = ConsumerCredential::policy(
        root.public_key(),
        in_an_hour(),
        attributes([("aster.name", "mallory"), ("aster.role", "admin")]),
    )
    .signed(&root);
    let (ep, client, guarded) = admitted_client(&node, &mallory).await;
    let e = guard("whoami", guarded.whoami(&note("x"), CallOptions::new())).await.unwrap_err();
    assert_eq!((e.code(), e.message()), (Code::PermissionDenied, "not you, mallory"));
    guard("u_role", guarded.u_role(&note("x"), CallOptions::new())).await.unwrap();
    let e = guard("u_any", guarded.u_any(&note("x"), CallOptions::new())).await.unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e}");
    let e = guard("s_role", call_pattern(&guarded, "s_role")).await.unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e}");
    // the connection and the node survive
    guard("u_role again", guarded.u_role(&note("x"), CallOptions::new())).await.unwrap();
    // Gate 3 first: a capability denial never reaches the authorizer (which would panic)
    let (ep2, client2, guarded2) = admitted_client(&node, &policy(&root, Some("guest"))).await;
    let e = guard("u_any", guarded2.u_any(&note("x"), CallOptions::new())).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    guard("whoami", guarded2.whoami(&note("x"), CallOptions::new())).await.unwrap();
    client.close().await;
    client2.close().await;
    ep.close().await;
    ep2.close().await;
    shutdown(node).await;
}

// ───────────────────────────── producer admission ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_admission_binds_the_credential_to_the_peer() {
    let root = root();
    let node = trusted_node(&root).await;
    let producer_key = SecretKey::generate();
    let cred = EnrollmentCredential::new(
        &producer_key.public_key(),
        root.public_key(),
        in_an_hour(),
        attributes([("aster.role", "producer")]),
    )
    .signed(&root);

    // stolen: presented by another node
    let thief = endpoint().await;
    let r = guard("stolen", request_producer_admission(&thief, node.addr(), &cred)).await.unwrap();
    assert!(!r.accepted);
    assert!(r.salt.is_empty() && r.accepted_producers.is_empty());
    assert!(!node.admitted_peers().is_admitted(&thief.id()));
    assert_closed_not_admitted(&thief, &node).await;

    // foreign root, presented by the right node
    let producer = endpoint_with(&producer_key).await;
    let evil = SecretKey::generate();
    let foreign =
        EnrollmentCredential::new(&producer_key.public_key(), evil.public_key(), in_an_hour(), BTreeMap::new())
            .signed(&evil);
    let r = guard("foreign", request_producer_admission(&producer, node.addr(), &foreign)).await.unwrap();
    assert!(!r.accepted);

    // the producer itself: accepted, gets the salt and the accepted set
    let r = guard("own", request_producer_admission(&producer, node.addr(), &cred)).await.unwrap();
    assert!(r.accepted);
    assert_eq!(r.salt.len(), 32);
    let mut want = vec![node.id().to_string(), producer.id().to_string()];
    want.sort();
    assert_eq!(r.accepted_producers, want);
    assert_eq!(node.admitted_peers().get(&producer.id()).unwrap().attributes["aster.role"], "producer");
    thief.close().await;
    producer.close().await;
    shutdown(node).await;
}
