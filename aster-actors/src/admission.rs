//! Consumer admission on the server: the pluggable [`AdmissionGate`], the open gate, and the
//! `AdmissionActor` with its iroh protocol handler for ALPN `aster.consumer_admission`.
//!
//! ```text
//! NodeSupervisor
//! ├── AdmissionActor      owns the gate and the admission view (services, RPC address);
//! │                       answers one decision at a time (panic- and timeout-safe)
//! └── EndpointActor       its Router serves aster.consumer_admission with AdmissionProtocol:
//!                         accept one bi-stream, read ≤ 64 KiB, ask the actor, write, finish
//! ```
//!
//! Like the reference, the ALPN is always served, also by an open-gate node: clients learn the
//! service list, contract ids, RPC address and serialization modes from it.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use aster_runtime::admission::{
    AdmissionError, ConsumerAdmissionRequest, ConsumerAdmissionResponse, MAX_ADMISSION_PAYLOAD, RPC_CHANNEL,
    ServiceSummaryJson, mode_strings,
};
use futures::FutureExt;
use iroh::EndpointId;
use iroh::endpoint::{Connection, ReadToEndError, SendStream};
use iroh::protocol::{AcceptError, ProtocolHandler};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::watch;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::node::ServiceSummary;
use crate::supervision::panic_message;
use crate::trust::AdmittedPeers;

/// The boxed future an [`AdmissionGate`] returns (re-exported so gates need no `futures`
/// dependency).
pub use futures::future::BoxFuture;

/// Bound on one admission exchange before the response is written (stream accept, request,
/// decision): the reference's default frame-read timeout, 30 s.
const ADMISSION_TIMEOUT: Duration = aster_runtime::wire::limits::DEFAULT_FRAME_READ_TIMEOUT;
/// Bound on one gate decision; past it the consumer is denied.
const GATE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the response is finished, how long the connection is kept open for the consumer to
/// read it and close (dropping it earlier would discard unread data).
const LINGER: Duration = Duration::from_secs(10);

/// QUIC application close codes of a refused admission connection (HTTP-like, as the
/// reference's Gate 0 uses 403).
pub mod close_code {
    /// The request exceeded 64 KiB.
    pub const REQUEST_TOO_LARGE: u32 = 413;
    /// The exchange did not complete within 30 s.
    pub const TIMEOUT: u32 = 408;
    /// The response could not be encoded within the limits.
    pub const INTERNAL: u32 = 500;
    /// The node is shutting down, or its admission actor is not running.
    pub const UNAVAILABLE: u32 = 503;
}

// ───────────────────────────── the gate ─────────────────────────────

/// What a gate sees of one admission attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionContext {
    /// The consumer's endpoint id (authenticated by the QUIC handshake).
    pub peer: EndpointId,
    /// The request it sent.
    pub request: ConsumerAdmissionRequest,
}

/// A gate's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdmissionDecision {
    /// Admit, with the consumer's attributes (from its credential; open gate: none).
    ///
    /// The node records the peer in its [admitted-peers table](crate::trust::AdmittedPeers)
    /// until `expires_at`, capped by the node's peer TTL (default 24 h): on a closed gate only
    /// recorded peers may open `aster/1` connections (Gate 0), and their calls see the
    /// attributes ([`CallContext::attributes`](crate::CallContext::attributes), Gate 3).
    Admit {
        /// Attributes returned to the consumer and available to the call gates.
        attributes: BTreeMap<String, String>,
        /// When the admission ends, epoch seconds (the credential's `expires_at`); `None` = only
        /// the node's peer TTL applies.
        expires_at: Option<u64>,
    },
    /// Deny. The reason is logged on the server only: like the reference, the consumer gets
    /// `admitted: false` and an empty `reason` (no oracle).
    Deny {
        /// Why (server log).
        reason: String,
    },
}

impl AdmissionDecision {
    /// Admit with no attributes (for the node's peer TTL).
    pub fn admit() -> AdmissionDecision {
        AdmissionDecision::Admit { attributes: BTreeMap::new(), expires_at: None }
    }

    /// Admit with `attributes` (for the node's peer TTL).
    pub fn admit_with(attributes: BTreeMap<String, String>) -> AdmissionDecision {
        AdmissionDecision::Admit { attributes, expires_at: None }
    }

    /// Admit with `attributes` until `expires_at` (epoch seconds; capped by the peer TTL).
    pub fn admit_until(attributes: BTreeMap<String, String>, expires_at: u64) -> AdmissionDecision {
        AdmissionDecision::Admit { attributes, expires_at: Some(expires_at) }
    }

    /// Deny for `reason`.
    pub fn deny(reason: impl Into<String>) -> AdmissionDecision {
        AdmissionDecision::Deny { reason: reason.into() }
    }
}

/// Decides consumer admission (Gate 1 of the reference's trust model). The node calls it from
/// its `AdmissionActor`, one decision at a time; a gate that panics or takes longer than 10 s
/// denies.
///
/// ```
/// use aster_actors::admission::{AdmissionContext, AdmissionDecision, AdmissionGate, BoxFuture};
///
/// /// Admits only requests carrying some credential (a toy, not a check).
/// struct NeedsCredential;
///
/// impl AdmissionGate for NeedsCredential {
///     fn name(&self) -> &str {
///         "needs-credential"
///     }
///     fn admit<'a>(&'a self, ctx: &'a AdmissionContext) -> BoxFuture<'a, AdmissionDecision> {
///         Box::pin(async move {
///             if ctx.request.credential_json.is_empty() {
///                 AdmissionDecision::deny("no credential")
///             } else {
///                 AdmissionDecision::admit()
///             }
///         })
///     }
/// }
/// ```
pub trait AdmissionGate: Send + Sync + 'static {
    /// Short name for logs (e.g. `"open-gate"`).
    fn name(&self) -> &str;

    /// True when the gate admits every consumer; the node then warns, per service, at start.
    fn is_open(&self) -> bool {
        false
    }

    /// The deployment's root public key (64 hex) sent in every response; empty if none.
    fn root_pubkey_hex(&self) -> String {
        String::new()
    }

    /// Decides one admission.
    fn admit<'a>(&'a self, ctx: &'a AdmissionContext) -> BoxFuture<'a, AdmissionDecision>;
}

/// The open gate: every consumer is admitted, with no attributes, whatever it presents (the
/// reference's `allow_all_consumers=True`, which admits an empty credential; a credential is
/// not checked here either).
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenGate;

impl AdmissionGate for OpenGate {
    fn name(&self) -> &str {
        "open-gate"
    }

    fn is_open(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, _ctx: &'a AdmissionContext) -> BoxFuture<'a, AdmissionDecision> {
        Box::pin(async { AdmissionDecision::admit() })
    }
}

// ───────────────────────────── the actor ─────────────────────────────

/// Serves admission decisions with the gate and the node's admission view.
pub(crate) struct AdmissionActor;

/// What the admission actor is started with (kept by the node supervisor for restarts).
#[derive(Clone)]
pub(crate) struct AdmissionArgs {
    pub(crate) gate: Arc<dyn AdmissionGate>,
    /// The services as listed to admitted consumers.
    pub(crate) services: Arc<[ServiceSummaryJson]>,
    /// Where admitted consumers are recorded (shared with Gate 0 and the bridge).
    pub(crate) admitted: Arc<AdmittedPeers>,
}

impl AdmissionArgs {
    /// The admission view of `services`, all reachable at `rpc_b64` (base64 NodeAddr text).
    pub(crate) fn new(
        gate: Arc<dyn AdmissionGate>,
        services: &[ServiceSummary],
        rpc_b64: &str,
        admitted: Arc<AdmittedPeers>,
    ) -> AdmissionArgs {
        let services = services
            .iter()
            .map(|s| ServiceSummaryJson {
                name: s.name.clone(),
                version: s.version,
                contract_id: s.contract_id.clone().unwrap_or_default(),
                channels: BTreeMap::from([(RPC_CHANNEL.to_owned(), rpc_b64.to_owned())]),
                pattern: s.scope.as_str().to_owned(),
                serialization_modes: mode_strings(&s.serialization_modes),
            })
            .collect();
        AdmissionArgs { gate, services, admitted }
    }
}

pub(crate) enum AdmissionMsg {
    /// One request (or why it could not be parsed) from `peer`; the reply is the response.
    Admit(EndpointId, Result<ConsumerAdmissionRequest, AdmissionError>, RpcReplyPort<ConsumerAdmissionResponse>),
}

impl Actor for AdmissionActor {
    type Msg = AdmissionMsg;
    type State = AdmissionArgs;
    type Arguments = AdmissionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<AdmissionMsg>,
        args: AdmissionArgs,
    ) -> Result<AdmissionArgs, ActorProcessingErr> {
        tracing::debug!(gate = args.gate.name(), services = args.services.len(), "admission actor started");
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<AdmissionMsg>,
        msg: AdmissionMsg,
        state: &mut AdmissionArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AdmissionMsg::Admit(peer, request, reply) => {
                let response = decide(state, peer, request).await;
                let _ = reply.send(response);
            }
        }
        Ok(())
    }
}

async fn decide(
    state: &AdmissionArgs,
    peer: EndpointId,
    request: Result<ConsumerAdmissionRequest, AdmissionError>,
) -> ConsumerAdmissionResponse {
    let root_pubkey = state.gate.root_pubkey_hex();
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(peer = %peer.fmt_short(), %e, "consumer admission: malformed request; denied");
            return ConsumerAdmissionResponse::denied(root_pubkey);
        }
    };
    let ctx = AdmissionContext { peer, request };
    let gate = state.gate.clone();
    let decision = AssertUnwindSafe(async { gate.admit(&ctx).await }).catch_unwind();
    let decision = match tokio::time::timeout(GATE_TIMEOUT, decision).await {
        Ok(Ok(d)) => d,
        Ok(Err(panic)) => {
            let msg = panic_message(&*panic);
            tracing::error!(gate = gate.name(), peer = %peer.fmt_short(), panic = %msg, "admission gate panicked");
            AdmissionDecision::deny(format!("gate panicked: {msg}"))
        }
        Err(_) => AdmissionDecision::deny(format!("gate gave no decision within {GATE_TIMEOUT:?}")),
    };
    match decision {
        AdmissionDecision::Admit { attributes, expires_at } => {
            // An open gate lets everyone connect and treats unknown peers as having no
            // attributes: recording anonymous admissions would only let peers grow the table.
            if gate.is_open() && attributes.is_empty() {
                tracing::debug!(peer = %peer.fmt_short(), gate = gate.name(), "consumer admission: admitted (open)");
            } else {
                let until_ms = state.admitted.admit(peer, attributes.clone(), expires_at);
                tracing::info!(peer = %peer.fmt_short(), gate = gate.name(), until_ms, "consumer admission: admitted");
            }
            ConsumerAdmissionResponse {
                admitted: true,
                attributes,
                services: state.services.to_vec(),
                registry_namespace: String::new(),
                root_pubkey,
                reason: String::new(),
                gossip_topic: String::new(),
            }
        }
        AdmissionDecision::Deny { reason } => {
            tracing::info!(peer = %peer.fmt_short(), gate = gate.name(), %reason, "consumer admission: denied");
            ConsumerAdmissionResponse::denied(root_pubkey)
        }
    }
}

// ───────────────────────────── the protocol handler ─────────────────────────────

/// Where the protocol handler finds the current admission actor (replaced on restart; `None`
/// before the first start).
pub(crate) type AdmissionSlot = watch::Receiver<Option<ActorRef<AdmissionMsg>>>;

/// iroh protocol handler of `aster.consumer_admission`.
#[derive(Clone)]
pub(crate) struct AdmissionProtocol {
    pub(crate) slot: AdmissionSlot,
    /// Cancelled when the node begins shutting down: new admissions are refused.
    pub(crate) draining: CancellationToken,
}

impl std::fmt::Debug for AdmissionProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionProtocol").finish_non_exhaustive()
    }
}

/// Why an admission connection was closed without a response.
struct Refusal {
    code: u32,
    reason: String,
}

impl Refusal {
    fn new(code: u32, reason: impl Into<String>) -> Refusal {
        Refusal { code, reason: reason.into() }
    }
}

impl ProtocolHandler for AdmissionProtocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let peer = conn.remote_id();
        if self.draining.is_cancelled() {
            conn.close(close_code::UNAVAILABLE.into(), b"server is shutting down");
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + ADMISSION_TIMEOUT;
        match self.answer(&conn, deadline).await {
            Ok(Some(send)) => {
                // The response is finished; keep the connection until the consumer has it
                // (acknowledged) and closes, bounded.
                let _ = tokio::time::timeout(LINGER, async {
                    let _ = send.stopped().await;
                    conn.closed().await
                })
                .await;
            }
            Ok(None) => {}
            Err(refusal) => {
                tracing::warn!(peer = %peer.fmt_short(), code = refusal.code, reason = %refusal.reason,
                    "consumer admission: connection refused");
                conn.close(refusal.code.into(), refusal.reason.as_bytes());
            }
        }
        Ok(())
    }
}

impl AdmissionProtocol {
    /// One exchange, everything up to the response bounded by `deadline`. `Ok(None)`: the
    /// consumer went away (nothing to answer).
    async fn answer(&self, conn: &Connection, deadline: Instant) -> Result<Option<SendStream>, Refusal> {
        let peer = conn.remote_id();
        let timed_out = || Refusal::new(close_code::TIMEOUT, format!("no admission within {ADMISSION_TIMEOUT:?}"));
        let (mut send, mut recv) = match timeout_at(deadline, conn.accept_bi()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(peer = %peer.fmt_short(), %e, "consumer admission: no stream");
                return Ok(None);
            }
            Err(_) => return Err(timed_out()),
        };
        // A refusal resets the response stream: dropped, it would be finished (an empty,
        // seemingly complete response) and could reach the consumer before the close.
        let refuse = |send: &mut SendStream, refusal: Refusal| {
            let _ = send.reset(refusal.code.into());
            Err(refusal)
        };
        let raw = match timeout_at(deadline, recv.read_to_end(MAX_ADMISSION_PAYLOAD)).await {
            Ok(Ok(raw)) => raw,
            Ok(Err(ReadToEndError::TooLong)) => {
                let _ = recv.stop(close_code::REQUEST_TOO_LARGE.into());
                let reason = format!("admission request exceeds {MAX_ADMISSION_PAYLOAD} bytes");
                return refuse(&mut send, Refusal::new(close_code::REQUEST_TOO_LARGE, reason));
            }
            Ok(Err(ReadToEndError::Read(e))) => {
                tracing::debug!(peer = %peer.fmt_short(), %e, "consumer admission: request not received");
                let _ = send.reset(close_code::UNAVAILABLE.into());
                return Ok(None);
            }
            Err(_) => return refuse(&mut send, timed_out()),
        };
        let request = ConsumerAdmissionRequest::from_json(&raw);
        let decided = timeout_at(deadline, async {
            let actor = self.slot.clone().wait_for(Option::is_some).await.ok().and_then(|r| r.clone());
            match actor {
                Some(actor) => ractor::call!(actor, AdmissionMsg::Admit, peer, request)
                    .map_err(|e| Refusal::new(close_code::UNAVAILABLE, format!("admission is not available: {e}"))),
                None => Err(Refusal::new(close_code::UNAVAILABLE, "admission is not available")),
            }
        })
        .await;
        let response = match decided {
            Ok(Ok(r)) => r,
            Ok(Err(refusal)) => return refuse(&mut send, refusal),
            Err(_) => return refuse(&mut send, timed_out()),
        };
        let body = match response.to_json() {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(%e, "consumer admission: cannot encode the response");
                let reason = "admission response exceeds the protocol limits";
                return refuse(&mut send, Refusal::new(close_code::INTERNAL, reason));
            }
        };
        match tokio::time::timeout(LINGER, send.write_all(&body)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(peer = %peer.fmt_short(), %e, "consumer admission: response not delivered");
                return Ok(None);
            }
            Err(_) => return refuse(&mut send, Refusal::new(close_code::TIMEOUT, "admission response not read")),
        }
        if send.finish().is_err() {
            return Ok(None);
        }
        Ok(Some(send))
    }
}

/// Logs, once per service, that an open gate admits everyone (like the reference's
/// per-service warning when Gate 0 is disabled).
pub(crate) fn warn_open_gate(gate: &dyn AdmissionGate, services: &[ServiceSummary]) {
    if !gate.is_open() {
        return;
    }
    for s in services {
        tracing::warn!(
            service = %s.name,
            version = s.version,
            gate = gate.name(),
            "service '{}' v{} is served open-gate: every peer is admitted and may call it without a \
             credential; configure an AdmissionGate for production use",
            s.name,
            s.version
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::service::Scope;
    use aster_runtime::SerializationMode;

    fn summaries() -> Vec<ServiceSummary> {
        vec![
            ServiceSummary {
                name: "TaskManager".into(),
                version: 1,
                scope: Scope::Shared,
                contract_id: Some("aa".repeat(32)),
                serialization_modes: vec![SerializationMode::Native, SerializationMode::Json],
            },
            ServiceSummary {
                name: "Glue".into(),
                version: 3,
                scope: Scope::Session,
                contract_id: None,
                serialization_modes: vec![SerializationMode::Json],
            },
        ]
    }

    fn peer() -> EndpointId {
        iroh::SecretKey::from_bytes(&[5; 32]).public()
    }

    #[test]
    fn admission_view_of_the_services() {
        let args = AdmissionArgs::new(Arc::new(OpenGate), &summaries(), "QUJD", Arc::default());
        let resp = ConsumerAdmissionResponse { admitted: true, services: args.services.to_vec(), ..Default::default() };
        let json = String::from_utf8(resp.to_json().unwrap()).unwrap();
        let want = format!(
            concat!(
                r#"{{"admitted":true,"attributes":{{}},"services":["#,
                r#"{{"name":"TaskManager","version":1,"contract_id":"{}","channels":{{"rpc":"QUJD"}},"#,
                r#""pattern":"shared","serialization_modes":["native","json"]}},"#,
                r#"{{"name":"Glue","version":3,"contract_id":"","channels":{{"rpc":"QUJD"}},"#,
                r#""pattern":"session","serialization_modes":["json"]}}],"#,
                r#""registry_namespace":"","root_pubkey":"","reason":""}}"#
            ),
            "aa".repeat(32)
        );
        assert_eq!(json, want);
    }

    #[tokio::test]
    async fn open_gate_admits_with_the_service_list() {
        let args = AdmissionArgs::new(Arc::new(OpenGate), &summaries(), "QUJD", Arc::default());
        let r = decide(&args, peer(), Ok(ConsumerAdmissionRequest::open())).await;
        assert!(r.admitted);
        assert!(r.attributes.is_empty());
        // an anonymous open-gate admission is not recorded
        assert!(args.admitted.is_empty());
        assert_eq!(r.services.len(), 2);
        assert_eq!((r.registry_namespace.as_str(), r.root_pubkey.as_str(), r.reason.as_str()), ("", "", ""));
        // a credential is not checked by the open gate
        let r =
            decide(&args, peer(), Ok(ConsumerAdmissionRequest { credential_json: "{}".into(), ..Default::default() }))
                .await;
        assert!(r.admitted);
        // a malformed request is denied without asking the gate
        let bad = ConsumerAdmissionRequest::from_json(b"[]");
        let r = decide(&args, peer(), bad).await;
        assert_eq!(r, ConsumerAdmissionResponse::denied(""));
    }

    struct Panicky;
    impl AdmissionGate for Panicky {
        fn name(&self) -> &str {
            "panicky"
        }
        fn root_pubkey_hex(&self) -> String {
            "cd".repeat(32)
        }
        fn admit<'a>(&'a self, ctx: &'a AdmissionContext) -> BoxFuture<'a, AdmissionDecision> {
            if ctx.request.iid_token == "sync" {
                panic!("sync boom");
            }
            Box::pin(async move {
                match ctx.request.credential_json.as_str() {
                    "ok" => AdmissionDecision::admit_with(BTreeMap::from([("aster.role".into(), "x".into())])),
                    "no" => AdmissionDecision::deny("bad credential"),
                    _ => panic!("async boom"),
                }
            })
        }
    }

    #[tokio::test]
    async fn gate_decisions_panics_and_the_wire_reason() {
        let args = AdmissionArgs::new(Arc::new(Panicky), &summaries(), "QUJD", Arc::default());
        let req =
            |c: &str, iid: &str| Ok(ConsumerAdmissionRequest { credential_json: c.into(), iid_token: iid.into() });
        let r = decide(&args, peer(), req("ok", "")).await;
        assert!(r.admitted);
        assert_eq!(r.attributes["aster.role"], "x");
        // recorded with its attributes, for the node's peer TTL
        let entry = args.admitted.get(&peer()).unwrap();
        assert_eq!(entry.attributes["aster.role"], "x");
        assert!(args.admitted.remove(&peer()));
        assert_eq!(r.root_pubkey, "cd".repeat(32));
        let denied = ConsumerAdmissionResponse::denied("cd".repeat(32));
        // the reason stays on the server
        assert_eq!(decide(&args, peer(), req("no", "")).await, denied);
        assert!(args.admitted.get(&peer()).is_none());
        assert_eq!(decide(&args, peer(), req("boom", "")).await, denied);
        assert_eq!(decide(&args, peer(), req("ok", "sync")).await, denied);
        assert!(!Panicky.is_open());
        assert!(OpenGate.is_open());
    }
}
