//! The trust model on the node (protocol §7): the admitted-peers table, the credential gate
//! ([`TrustedGate`], Gate 1), Gate 0 (connection hooks) and producer admission.
//!
//! ```text
//!   consumer                                        node
//!   ── aster.consumer_admission ─────────────────▶  Gate 1: AdmissionGate (TrustedGate: root key,
//!                                                   nonce store, endpoint binding) → admitted? record
//!                                                   the peer + attributes in AdmittedPeers (expires
//!                                                   with the credential, capped by the peer TTL)
//!   ── aster/1 ──────────────────────────────────▶  Gate 0: after the TLS handshake, a peer that is
//!                                                   not in AdmittedPeers may only use the admission
//!                                                   ALPNs; anything else is closed with 403
//!                                                   "not admitted" (closed gates only)
//!      stream: StreamHeader ─────────────────────▶  Gate 3: service ∧ method `requires` against the
//!                                                   caller's `aster.role` → PERMISSION_DENIED
//!                                                   Gate 2: the node's CallAuthorizer (default allow)
//!                                                   then the request is decoded and dispatched
//! ```
//!
//! Producers (mesh members) present an [`EnrollmentCredential`](aster_runtime::trust::EnrollmentCredential)
//! on `aster.producer_admission`; the node checks it with
//! [`ProducerGate`](aster_runtime::trust::ProducerGate), **binding the credential's endpoint id
//! to the QUIC peer** (the reference compares it with itself, so a stolen producer credential
//! is accepted there), and answers with the mesh salt and the accepted producers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aster_runtime::transport::ADMISSION_ALPNS;
use aster_runtime::trust::gate::{MAX_ADMISSION_PAYLOAD, ProducerAdmitted};
use aster_runtime::trust::mesh::ProducerAdmissionResponse;
use aster_runtime::trust::{
    ConsumerGate, ConsumerVerdict, DenyReason, MeshState, NonceStore, PublicKey, now_ms, now_secs,
};
use iroh::EndpointId;
use iroh::endpoint::{AfterHandshakeOutcome, Connection, EndpointHooks, ReadToEndError, Side};
use iroh::protocol::{AcceptError, ProtocolHandler};
use tokio_util::sync::CancellationToken;

use crate::admission::{AdmissionContext, AdmissionDecision, AdmissionGate, BoxFuture, close_code};

/// QUIC close code of a connection refused by Gate 0 (the reference's 403).
pub const NOT_ADMITTED_CODE: u32 = 403;
/// QUIC close reason of a connection refused by Gate 0.
pub const NOT_ADMITTED_REASON: &str = "not admitted";

/// Default cap on how long an admission lasts: 24 h (the reference's `ASTER_PEER_TTL_S`).
pub const DEFAULT_PEER_TTL: Duration = Duration::from_secs(86_400);
/// Environment variable overriding [`DEFAULT_PEER_TTL`] (whole seconds, > 0).
pub const PEER_TTL_ENV: &str = "ASTER_PEER_TTL_S";

/// The peer TTL from [`PEER_TTL_ENV`] if it holds a positive number of seconds, else
/// [`DEFAULT_PEER_TTL`].
pub fn peer_ttl_from_env() -> Duration {
    std::env::var(PEER_TTL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(DEFAULT_PEER_TTL, Duration::from_secs)
}

pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

// ───────────────────────────── admitted peers ─────────────────────────────

/// One admitted peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmittedPeer {
    /// The verified attributes from its credential (empty for an open-gate admission).
    pub attributes: Arc<BTreeMap<String, String>>,
    /// When the admission ends, epoch milliseconds: the credential's expiry capped by the
    /// node's peer TTL from the time of admission.
    pub expires_at_ms: u64,
}

/// The node's admitted peers: who passed consumer (or producer) admission, with their
/// verified attributes, until their credential expires, capped by a TTL (default 24 h).
///
/// Gate 0 lets only these peers open non-admission connections when the gate is closed; the
/// bridge gives their calls the attributes (Gate 3, [`CallContext::attributes`](crate::CallContext::attributes)).
/// A new admission of the same peer replaces its entry. Expired entries are invisible and are
/// dropped on the next admission. An open gate's admissions without attributes are not
/// recorded (an open gate treats every unknown peer that way anyway).
#[derive(Debug)]
pub struct AdmittedPeers {
    ttl_ms: u64,
    peers: RwLock<HashMap<EndpointId, AdmittedPeer>>,
}

impl Default for AdmittedPeers {
    fn default() -> Self {
        AdmittedPeers::new(DEFAULT_PEER_TTL)
    }
}

impl AdmittedPeers {
    /// An empty table whose admissions last at most `ttl`.
    pub fn new(ttl: Duration) -> AdmittedPeers {
        AdmittedPeers { ttl_ms: duration_ms(ttl).max(1), peers: RwLock::new(HashMap::new()) }
    }

    /// The cap on an admission's lifetime.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    /// Records `peer` as admitted now with `attributes` until `credential_expires_at` (epoch
    /// seconds; `None` = no credential expiry), capped by the TTL. Returns the entry's expiry
    /// (epoch ms).
    pub fn admit(
        &self,
        peer: EndpointId,
        attributes: BTreeMap<String, String>,
        credential_expires_at: Option<u64>,
    ) -> u64 {
        self.admit_at(peer, attributes, credential_expires_at, now_ms())
    }

    /// [`admit`](Self::admit) at the given time (epoch ms).
    pub fn admit_at(
        &self,
        peer: EndpointId,
        attributes: BTreeMap<String, String>,
        credential_expires_at: Option<u64>,
        now_ms: u64,
    ) -> u64 {
        let cap = now_ms.saturating_add(self.ttl_ms);
        let expires_at_ms = credential_expires_at.map_or(cap, |s| s.saturating_mul(1000).min(cap));
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        peers.retain(|_, p| p.expires_at_ms > now_ms);
        peers.insert(peer, AdmittedPeer { attributes: Arc::new(attributes), expires_at_ms });
        expires_at_ms
    }

    /// The admission of `peer`, if it has one that has not expired.
    pub fn get(&self, peer: &EndpointId) -> Option<AdmittedPeer> {
        self.get_at(peer, now_ms())
    }

    /// [`get`](Self::get) at the given time (epoch ms).
    pub fn get_at(&self, peer: &EndpointId, now_ms: u64) -> Option<AdmittedPeer> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.get(peer).filter(|p| p.expires_at_ms > now_ms).cloned()
    }

    /// Whether `peer` is admitted now.
    pub fn is_admitted(&self, peer: &EndpointId) -> bool {
        self.get(peer).is_some()
    }

    /// Ends the admission of `peer`; returns whether it had one (expired or not).
    pub fn remove(&self, peer: &EndpointId) -> bool {
        self.peers.write().unwrap_or_else(|e| e.into_inner()).remove(peer).is_some()
    }

    /// Drops the entries that expired at `now_ms` (epoch ms); returns how many were dropped.
    pub fn sweep_at(&self, now_ms: u64) -> usize {
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        let before = peers.len();
        peers.retain(|_, p| p.expires_at_ms > now_ms);
        before - peers.len()
    }

    /// [`sweep_at`](Self::sweep_at) now (run periodically by the node's credential-epoch actor).
    pub fn sweep(&self) -> usize {
        self.sweep_at(now_ms())
    }

    /// Number of entries not expired now.
    pub fn len(&self) -> usize {
        let now = now_ms();
        self.peers.read().unwrap_or_else(|e| e.into_inner()).values().filter(|p| p.expires_at_ms > now).count()
    }

    /// Whether no admission is current.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ───────────────────────────── Gate 1: TrustedGate ─────────────────────────────

/// How many admissions pass between two prunings of the nonce store.
const PRUNE_EVERY: u64 = 256;

/// Consumer admission with enrollment credentials (Gate 1), on
/// [`ConsumerGate`]: the credential must be signed by the node's root key, not be expired,
/// be bound (if it names an `endpoint_id`) to the QUIC peer, and, for a one-time token, carry
/// a nonce the [`NonceStore`] has not seen (consumed here; a store failure denies).
///
/// A denial is logged with [`DenyReason::log_message`] and its kind; the consumer only sees
/// `admitted: false`. Credentials naming an instance-identity provider (`aster.iid_provider`)
/// are denied: aster-rs has no IID verifier.
///
/// ```no_run
/// use aster_actors::trust::TrustedGate;
/// use aster_runtime::trust::{InMemoryNonceStore, keys::load_public_key_file};
///
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let root = load_public_key_file("deploy-root.pub")?;
/// let gate = TrustedGate::new(root, InMemoryNonceStore::new());
/// # drop(gate); Ok(()) }
/// ```
pub struct TrustedGate {
    gate: ConsumerGate,
    nonces: Arc<dyn NonceStore>,
    admissions: AtomicU64,
}

impl std::fmt::Debug for TrustedGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedGate").field("root", self.gate.root()).field("open", &self.gate.is_open()).finish()
    }
}

impl TrustedGate {
    /// A closed gate: every consumer needs a credential under `root`.
    pub fn new(root: PublicKey, nonces: impl NonceStore + 'static) -> TrustedGate {
        TrustedGate::with_store(ConsumerGate::new(root), Arc::new(nonces))
    }

    /// An open gate under `root` (the reference's `allow_all_consumers` with a root key): a
    /// consumer without credential is admitted with no attributes; a presented credential is
    /// still checked (and gives its attributes). Gate 0 is off.
    pub fn open(root: PublicKey, nonces: impl NonceStore + 'static) -> TrustedGate {
        TrustedGate::with_store(ConsumerGate::open(root), Arc::new(nonces))
    }

    /// A gate from its parts (a shared nonce store).
    pub fn with_store(gate: ConsumerGate, nonces: Arc<dyn NonceStore>) -> TrustedGate {
        TrustedGate { gate, nonces, admissions: AtomicU64::new(0) }
    }

    /// The trusted root key.
    pub fn root(&self) -> &PublicKey {
        self.gate.root()
    }

    /// Runs the checks (blocking: the nonce store may write and fsync).
    fn decide_blocking(
        gate: &ConsumerGate,
        nonces: &dyn NonceStore,
        credential_json: &str,
        iid_token: &str,
        peer: &PublicKey,
        prune: bool,
    ) -> Result<AdmissionDecision, DenyReason> {
        let now = now_secs();
        if prune && let Err(e) = nonces.prune(now) {
            tracing::warn!(%e, "nonce store: pruning failed");
        }
        let admitted = match gate.check_credential_json(credential_json, iid_token, peer, now, nonces)? {
            ConsumerVerdict::Admitted(a) => a,
            ConsumerVerdict::IidRequired(pending) => {
                let provider = pending.provider().to_owned();
                pending.finish(Err(format!("instance-identity provider {provider:?} is not supported by aster-rs")))?
            }
        };
        Ok(AdmissionDecision::Admit { attributes: admitted.attributes, expires_at: admitted.expires_at })
    }
}

impl AdmissionGate for TrustedGate {
    fn name(&self) -> &str {
        if self.gate.is_open() { "trusted-open" } else { "trusted" }
    }

    fn is_open(&self) -> bool {
        self.gate.is_open()
    }

    fn root_pubkey_hex(&self) -> String {
        self.gate.root().to_hex()
    }

    fn admit<'a>(&'a self, ctx: &'a AdmissionContext) -> BoxFuture<'a, AdmissionDecision> {
        let gate = self.gate.clone();
        let nonces = self.nonces.clone();
        let credential_json = ctx.request.credential_json.clone();
        let iid_token = ctx.request.iid_token.clone();
        let peer = PublicKey::from(ctx.peer);
        let prune = self.admissions.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1;
        Box::pin(async move {
            let checked = tokio::task::spawn_blocking(move || {
                TrustedGate::decide_blocking(&gate, &*nonces, &credential_json, &iid_token, &peer, prune)
            })
            .await;
            match checked {
                Ok(Ok(decision)) => decision,
                Ok(Err(reason)) => AdmissionDecision::deny(format!("{} [{}]", reason.log_message(), reason.kind())),
                Err(e) => AdmissionDecision::deny(format!("credential check failed: {e}")),
            }
        })
    }
}

// ───────────────────────────── Gate 0 ─────────────────────────────

/// The endpoint hook of Gate 0: after the TLS handshake of an incoming connection, a peer
/// that is not admitted may only use an admission ALPN; anything else is closed with code
/// 403, reason "not admitted". Outgoing connections (the node dialing out) are not checked.
#[derive(Debug)]
pub(crate) struct Gate0 {
    pub(crate) admitted: Arc<AdmittedPeers>,
}

impl Gate0 {
    /// The decision for an incoming connection from `peer` on `alpn`.
    pub(crate) fn allows(&self, peer: &EndpointId, alpn: &[u8]) -> bool {
        ADMISSION_ALPNS.contains(&alpn) || self.admitted.is_admitted(peer)
    }
}

impl EndpointHooks for Gate0 {
    async fn after_handshake<'a>(&'a self, conn: &'a Connection) -> AfterHandshakeOutcome {
        if conn.side() == Side::Client {
            return AfterHandshakeOutcome::Accept;
        }
        let (peer, alpn) = (conn.remote_id(), conn.alpn());
        if self.allows(&peer, alpn) {
            return AfterHandshakeOutcome::Accept;
        }
        tracing::info!(peer = %peer.fmt_short(), alpn = %String::from_utf8_lossy(alpn),
            "Gate 0: connection from a peer that is not admitted; closed (403)");
        AfterHandshakeOutcome::Reject {
            error_code: NOT_ADMITTED_CODE.into(),
            reason: NOT_ADMITTED_REASON.as_bytes().to_vec(),
        }
    }
}

// ───────────────────────────── producer admission ─────────────────────────────

/// Bound on one producer admission exchange (the reference's frame-read timeout).
const PRODUCER_ADMISSION_TIMEOUT: Duration = aster_runtime::wire::limits::DEFAULT_FRAME_READ_TIMEOUT;
/// How long the connection is kept for the joiner to read the answer.
const LINGER: Duration = Duration::from_secs(10);

/// The mesh membership a node keeps for producer admission: without a configured producer mesh
/// an ephemeral founding state (fresh salt, this node the only producer) as the reference's
/// `AsterServer` creates when a root key is known; with one
/// ([`NodeBuilder::producer_mesh`](crate::NodeBuilder::producer_mesh)) the state the gossip
/// actor and the credential-epoch actor share (current salt, accepted producers).
pub(crate) type SharedMesh = Arc<Mutex<MeshState>>;

/// iroh protocol handler of `aster.producer_admission`.
#[derive(Clone)]
pub(crate) struct ProducerAdmissionProtocol {
    pub(crate) mesh: SharedMesh,
    pub(crate) admitted: Arc<AdmittedPeers>,
    pub(crate) draining: CancellationToken,
}

impl std::fmt::Debug for ProducerAdmissionProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerAdmissionProtocol").finish_non_exhaustive()
    }
}

impl ProducerAdmissionProtocol {
    /// Checks one request from `peer`; on success records the producer (mesh and
    /// admitted-peers table).
    fn decide(&self, raw: &[u8], peer: EndpointId) -> ProducerAdmissionResponse {
        let (response, verdict) = {
            let mut mesh = self.mesh.lock().unwrap_or_else(|e| e.into_inner());
            mesh.admit_producer(raw, &PublicKey::from(peer), now_secs())
        };
        match verdict {
            Ok(ProducerAdmitted { attributes, expires_at, .. }) => {
                let until_ms = self.admitted.admit(peer, attributes, Some(expires_at));
                tracing::info!(peer = %peer.fmt_short(), until_ms, "producer admission: accepted");
            }
            Err(reason) => {
                tracing::info!(peer = %peer.fmt_short(), reason = %reason.log_message(), kind = reason.kind(),
                    "producer admission: denied");
            }
        }
        response
    }
}

impl ProtocolHandler for ProducerAdmissionProtocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let peer = conn.remote_id();
        if self.draining.is_cancelled() {
            conn.close(close_code::UNAVAILABLE.into(), b"server is shutting down");
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + PRODUCER_ADMISSION_TIMEOUT;
        let (mut send, mut recv) = match tokio::time::timeout_at(deadline, conn.accept_bi()).await {
            Ok(Ok(streams)) => streams,
            Ok(Err(_)) => return Ok(()),
            Err(_) => {
                conn.close(close_code::TIMEOUT.into(), b"no producer admission in time");
                return Ok(());
            }
        };
        // `Err(Some(code))`: refused with `code`; `Err(None)`: the stream failed.
        let exchange = async {
            let raw = match recv.read_to_end(MAX_ADMISSION_PAYLOAD).await {
                Ok(raw) => raw,
                Err(ReadToEndError::TooLong) => {
                    let _ = recv.stop(close_code::REQUEST_TOO_LARGE.into());
                    return Err(Some(close_code::REQUEST_TOO_LARGE));
                }
                Err(ReadToEndError::Read(_)) => return Err(None),
            };
            let body = self.decide(&raw, peer).to_json();
            send.write_all(body.as_bytes()).await.map_err(|_| None)?;
            send.finish().map_err(|_| None)
        };
        let outcome = tokio::time::timeout_at(deadline, exchange).await;
        // Anything but a complete answer resets the response stream: dropped, it would be
        // finished (an empty, seemingly complete answer) and could reach the joiner first.
        match outcome {
            Ok(Ok(())) => {
                let _ = tokio::time::timeout(LINGER, async {
                    let _ = send.stopped().await;
                    conn.closed().await
                })
                .await;
            }
            Ok(Err(Some(code))) => {
                let _ = send.reset(code.into());
                conn.close(code.into(), b"producer admission request too large");
            }
            Ok(Err(None)) => {
                let _ = send.reset(close_code::UNAVAILABLE.into());
            }
            Err(_) => {
                let _ = send.reset(close_code::TIMEOUT.into());
                conn.close(close_code::TIMEOUT.into(), b"no producer admission in time");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use aster_runtime::admission::ConsumerAdmissionRequest;
    use aster_runtime::trust::{ConsumerCredential, InMemoryNonceStore, SecretKey, attributes};

    fn peer(n: u8) -> EndpointId {
        iroh::SecretKey::from_bytes(&[n; 32]).public()
    }

    fn attrs(role: &str) -> BTreeMap<String, String> {
        attributes([("aster.role", role)])
    }

    #[test]
    fn admissions_expire_with_the_credential_capped_by_the_ttl() {
        let t = AdmittedPeers::new(Duration::from_secs(100));
        let now = 1_000_000_000; // ms
        // credential expiry before the cap
        assert_eq!(t.admit_at(peer(1), attrs("a"), Some(1_000_050), now), 1_000_050_000);
        // the TTL caps a long credential and an admission without credential
        assert_eq!(t.admit_at(peer(2), attrs("b"), Some(u64::MAX), now), now + 100_000);
        assert_eq!(t.admit_at(peer(3), BTreeMap::new(), None, now), now + 100_000);
        assert_eq!(t.get_at(&peer(1), now).unwrap().attributes["aster.role"], "a");
        assert!(t.get_at(&peer(1), 1_000_049_999).is_some());
        assert!(t.get_at(&peer(1), 1_000_050_000).is_none(), "valid while now < expiry");
        assert!(t.get_at(&peer(2), now + 99_999).is_some());
        assert!(t.get_at(&peer(2), now + 100_000).is_none());
        assert!(t.get_at(&peer(9), now).is_none());
        // re-admission replaces; expired entries are dropped on admission
        t.admit_at(peer(2), attrs("c"), None, now + 200_000);
        assert_eq!(t.get_at(&peer(2), now + 200_000).unwrap().attributes["aster.role"], "c");
        assert!(!t.peers.read().unwrap().contains_key(&peer(1)));
        assert!(t.remove(&peer(2)));
        assert!(!t.remove(&peer(2)));
    }

    #[test]
    fn ttl_from_the_environment_shape() {
        // (the variable itself is not set here: tests run in parallel)
        assert_eq!(AdmittedPeers::default().ttl(), DEFAULT_PEER_TTL);
        assert_eq!(AdmittedPeers::new(Duration::ZERO).ttl(), Duration::from_millis(1));
    }

    #[test]
    fn gate0_allows_admission_alpns_and_admitted_peers() {
        let admitted = Arc::new(AdmittedPeers::default());
        let g = Gate0 { admitted: admitted.clone() };
        for alpn in ADMISSION_ALPNS {
            assert!(g.allows(&peer(1), alpn));
        }
        assert!(!g.allows(&peer(1), b"aster/1"));
        assert!(!g.allows(&peer(1), b"/iroh-gossip/1"));
        admitted.admit(peer(1), BTreeMap::new(), None);
        assert!(g.allows(&peer(1), b"aster/1"));
        assert!(!g.allows(&peer(2), b"aster/1"));
    }

    #[tokio::test]
    async fn trusted_gate_decides_and_logs_reasons() {
        let root = SecretKey::from_bytes(&[7; 32]);
        let gate = TrustedGate::new(root.public_key(), InMemoryNonceStore::new());
        assert_eq!(gate.root_pubkey_hex(), root.public_key().to_hex());
        assert!(!gate.is_open());
        let exp = now_secs() + 3600;
        let ctx = |json: String| AdmissionContext {
            peer: peer(4),
            request: ConsumerAdmissionRequest { credential_json: json, iid_token: String::new() },
        };
        let good = ConsumerCredential::policy(root.public_key(), exp, attrs("ops")).signed(&root);
        match gate.admit(&ctx(good.to_wire_json())).await {
            AdmissionDecision::Admit { attributes, expires_at } => {
                assert_eq!(attributes["aster.role"], "ops");
                assert_eq!(expires_at, Some(exp));
            }
            d => panic!("{d:?}"),
        }
        let deny = |d: AdmissionDecision| match d {
            AdmissionDecision::Deny { reason } => reason,
            d => panic!("{d:?}"),
        };
        assert!(deny(gate.admit(&ctx(String::new())).await).ends_with("[no_credential]"));
        let iid = ConsumerCredential::policy(root.public_key(), exp, attributes([("aster.iid_provider", "aws")]))
            .signed(&root);
        assert!(deny(gate.admit(&ctx(iid.to_wire_json())).await).ends_with("[iid]"));
        let ott = ConsumerCredential::ott(root.public_key(), exp, attrs("x")).signed(&root);
        assert!(matches!(gate.admit(&ctx(ott.to_wire_json())).await, AdmissionDecision::Admit { .. }));
        assert!(deny(gate.admit(&ctx(ott.to_wire_json())).await).ends_with("[ott_replay]"));
        // open: no credential admitted, a bad one still denied
        let open = TrustedGate::open(root.public_key(), InMemoryNonceStore::new());
        assert!(open.is_open());
        assert!(matches!(open.admit(&ctx(String::new())).await, AdmissionDecision::Admit { .. }));
        let other = SecretKey::from_bytes(&[8; 32]);
        let foreign = ConsumerCredential::policy(other.public_key(), exp, attrs("ops")).signed(&other);
        assert!(deny(open.admit(&ctx(foreign.to_wire_json())).await).ends_with("[foreign_root]"));
    }
}
