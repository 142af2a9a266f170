//! The producer mesh (§7.5): gossip topic derivation, signed gossip envelopes, producer
//! admission responses, and [`MeshState`], a pure state machine that applies inbound
//! envelopes (replay window, accepted-producer set, signature, clock drift, dispatch). The
//! gossip transport is not here.
//!
//! * Topic: `BLAKE3(root_pubkey (32 raw bytes) ‖ "aster-producer-mesh" ‖ salt)`.
//! * Envelope JSON: `{"type":u8,"payload":"<hex>","sender":"<endpoint hex>","epoch_ms":int,"signature":"<hex>"}`.
//! * Signed bytes: `u8 type ‖ payload ‖ sender (UTF-8 hex text) ‖ u64 BE epoch_ms`, ed25519 by
//!   the sender's node key (the sender's EndpointId is its public key).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::credential::EnrollmentCredential;
use super::error::TrustError;
use super::gate::{DenyReason, ProducerAdmitted, ProducerGate};
use super::hex;
use super::json::{self, JVal};
use super::keys::{PublicKey, SecretKey, Signature};

/// The domain string between root key and salt in the topic derivation.
pub const MESH_TOPIC_DOMAIN: &[u8] = b"aster-producer-mesh";
/// Length of a mesh salt.
pub const SALT_LEN: usize = 32;
/// Maximum payload of a gossip envelope (the reference's `MAX_GOSSIP_PAYLOAD_SIZE`).
pub const MAX_GOSSIP_PAYLOAD: usize = 64 * 1024;

/// A fresh random mesh salt (founding node).
pub fn new_salt() -> [u8; SALT_LEN] {
    rand::random()
}

/// The 32-byte gossip topic of the mesh of `root_pubkey` with `salt`:
/// `BLAKE3(root_pubkey ‖ "aster-producer-mesh" ‖ salt)`.
pub fn derive_gossip_topic(root_pubkey: &PublicKey, salt: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(root_pubkey.as_bytes());
    h.update(MESH_TOPIC_DOMAIN);
    h.update(salt);
    *h.finalize().as_bytes()
}

/// The message types of the reference (0–127 reserved; above 128 for extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProducerMessageType {
    /// A producer announces itself (payload: credential / rcan bytes).
    Introduce = 1,
    /// A producer leaves (`{"reason": …}`).
    Depart = 2,
    /// A contract collection was published.
    ContractPublished = 3,
    /// Service lease heartbeat.
    LeaseUpdate = 4,
}

impl ProducerMessageType {
    /// The type byte.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The known type with this byte.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Introduce),
            2 => Some(Self::Depart),
            3 => Some(Self::ContractPublished),
            4 => Some(Self::LeaseUpdate),
            _ => None,
        }
    }
}

/// Type bytes above this are extensions (delivered to the caller, not interpreted).
pub const FIRST_EXTENSION_TYPE: u8 = 129;

/// A signed producer gossip envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerMessage {
    /// The type byte ([`ProducerMessageType`] or an extension).
    pub msg_type: u8,
    /// The per-type payload.
    pub payload: Vec<u8>,
    /// The sender's EndpointId as hex text (signed as text).
    pub sender: String,
    /// The sender's wall clock at send time, epoch milliseconds.
    pub epoch_ms: u64,
    /// The sender's signature; `None` if empty on the wire.
    pub signature: Option<Signature>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    msg_type: u8,
    payload: String,
    sender: String,
    epoch_ms: u64,
    #[serde(default)]
    signature: Option<String>,
}

impl ProducerMessage {
    /// The signed bytes: `u8 type ‖ payload ‖ sender (UTF-8) ‖ u64 BE epoch_ms`.
    pub fn signing_bytes_of(msg_type: u8, payload: &[u8], sender: &str, epoch_ms: u64) -> Vec<u8> {
        let mut m = Vec::with_capacity(1 + payload.len() + sender.len() + 8);
        m.push(msg_type);
        m.extend_from_slice(payload);
        m.extend_from_slice(sender.as_bytes());
        m.extend_from_slice(&epoch_ms.to_be_bytes());
        m
    }

    /// This envelope's signed bytes.
    pub fn signing_bytes(&self) -> Vec<u8> {
        Self::signing_bytes_of(self.msg_type, &self.payload, &self.sender, self.epoch_ms)
    }

    /// A message from the holder of `node_key` (sender = its EndpointId), signed.
    pub fn sign(msg_type: u8, payload: Vec<u8>, node_key: &SecretKey, epoch_ms: u64) -> Self {
        let sender = node_key.public_key().to_hex();
        let signature = Some(node_key.sign(&Self::signing_bytes_of(msg_type, &payload, &sender, epoch_ms)));
        ProducerMessage { msg_type, payload, sender, epoch_ms, signature }
    }

    /// An Introduce carrying the sender's producer credential (wire JSON) as payload.
    pub fn introduce(credential: &EnrollmentCredential, node_key: &SecretKey, epoch_ms: u64) -> Self {
        Self::sign(ProducerMessageType::Introduce.code(), credential.to_wire_json().into_bytes(), node_key, epoch_ms)
    }

    /// A Depart with a human-readable reason (may be empty).
    pub fn depart(reason: &str, node_key: &SecretKey, epoch_ms: u64) -> Self {
        let payload = DepartPayload { reason: reason.to_string() }.encode();
        Self::sign(ProducerMessageType::Depart.code(), payload, node_key, epoch_ms)
    }

    /// The known type, if it is one.
    pub fn kind(&self) -> Option<ProducerMessageType> {
        ProducerMessageType::from_code(self.msg_type)
    }

    /// The sender's public key, if `sender` is 64 hex characters.
    pub fn sender_key(&self) -> Option<PublicKey> {
        PublicKey::from_hex(&self.sender).ok()
    }

    /// Whether the signature verifies under the sender's key.
    pub fn verify_signature(&self) -> bool {
        match (self.sender_key(), &self.signature) {
            (Some(k), Some(s)) => k.verify(&self.signing_bytes(), s),
            _ => false,
        }
    }

    /// The gossip wire form (compact JSON, keys `type, payload, sender, epoch_ms, signature`).
    pub fn to_json(&self) -> String {
        let payload = hex::encode(&self.payload);
        let sig = self.signature.as_ref().map(Signature::to_hex).unwrap_or_default();
        json::compact(&[
            ("type", JVal::U64(u64::from(self.msg_type))),
            ("payload", JVal::Str(&payload)),
            ("sender", JVal::Str(&self.sender)),
            ("epoch_ms", JVal::U64(self.epoch_ms)),
            ("signature", JVal::Str(&sig)),
        ])
    }

    /// Parses the gossip wire form. The payload may be at most [`MAX_GOSSIP_PAYLOAD`] bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustError> {
        if bytes.len() > 2 * MAX_GOSSIP_PAYLOAD + 1024 {
            return Err(TrustError::field("payload", format!("envelope of {} bytes is too large", bytes.len())));
        }
        let r: RawEnvelope = serde_json::from_slice(bytes)?;
        let payload = hex::decode(&r.payload).ok_or_else(|| TrustError::field("payload", "not a hex string"))?;
        if payload.len() > MAX_GOSSIP_PAYLOAD {
            return Err(TrustError::field("payload", format!("{} bytes exceeds the limit", payload.len())));
        }
        let signature = match r.signature.as_deref() {
            None | Some("") => None,
            Some(s) => Some(Signature::from_hex(s)?),
        };
        Ok(ProducerMessage { msg_type: r.msg_type, payload, sender: r.sender, epoch_ms: r.epoch_ms, signature })
    }
}

/// Depart payload: `{"reason": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DepartPayload {
    /// Human-readable reason; empty = none.
    #[serde(default)]
    pub reason: String,
}

impl DepartPayload {
    /// Compact JSON, as the reference encodes it.
    pub fn encode(&self) -> Vec<u8> {
        json::compact(&[("reason", JVal::Str(&self.reason))]).into_bytes()
    }
}

/// ContractPublished payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractPublishedPayload {
    /// Service name.
    pub service_name: String,
    /// Service version.
    pub version: i64,
    /// Hex HashSeq root of the published contract collection.
    pub contract_collection_hash: String,
}

impl ContractPublishedPayload {
    /// Compact JSON in the reference's key order.
    pub fn encode(&self) -> Vec<u8> {
        let v = self.version.to_string();
        json::compact(&[
            ("service_name", JVal::Str(&self.service_name)),
            ("version", JVal::Raw(&v)),
            ("contract_collection_hash", JVal::Str(&self.contract_collection_hash)),
        ])
        .into_bytes()
    }
}

/// LeaseUpdate payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseUpdatePayload {
    /// Service name.
    pub service_name: String,
    /// Service version.
    pub version: i64,
    /// Contract id (64 hex).
    pub contract_id: String,
    /// Health status string.
    pub health_status: String,
    /// Addressing metadata.
    #[serde(default)]
    pub addressing_info: BTreeMap<String, String>,
}

impl LeaseUpdatePayload {
    /// Compact JSON in the reference's key order.
    pub fn encode(&self) -> Vec<u8> {
        let v = self.version.to_string();
        json::compact(&[
            ("service_name", JVal::Str(&self.service_name)),
            ("version", JVal::Raw(&v)),
            ("contract_id", JVal::Str(&self.contract_id)),
            ("health_status", JVal::Str(&self.health_status)),
            ("addressing_info", JVal::Obj(&self.addressing_info)),
        ])
        .into_bytes()
    }
}

/// The answer on `aster.producer_admission`:
/// `{"accepted":bool,"salt":"<hex>","accepted_producers":[…],"reason":""}` (reason always
/// empty on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerAdmissionResponse {
    /// Whether the joiner was accepted.
    pub accepted: bool,
    /// The mesh salt (empty when denied).
    pub salt: Vec<u8>,
    /// The accepted producers' EndpointIds (hex), sorted.
    pub accepted_producers: Vec<String>,
}

#[derive(Deserialize)]
struct RawAdmissionResponse {
    accepted: bool,
    #[serde(default)]
    salt: String,
    #[serde(default)]
    accepted_producers: Vec<String>,
}

impl ProducerAdmissionResponse {
    /// The denial (no salt, no producers).
    pub fn denied() -> Self {
        Self::default()
    }

    /// Compact JSON as the reference writes it.
    pub fn to_json(&self) -> String {
        let salt = hex::encode(&self.salt);
        json::compact(&[
            ("accepted", JVal::Bool(self.accepted)),
            ("salt", JVal::Str(&salt)),
            ("accepted_producers", JVal::StrList(&self.accepted_producers)),
            ("reason", JVal::Str("")),
        ])
    }

    /// Parses a response.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustError> {
        let r: RawAdmissionResponse = serde_json::from_slice(bytes)?;
        let salt = hex::decode(&r.salt).ok_or_else(|| TrustError::field("salt", "not a hex string"))?;
        Ok(ProducerAdmissionResponse { accepted: r.accepted, salt, accepted_producers: r.accepted_producers })
    }
}

/// Replay-window and clock-drift settings (the reference's `ClockDriftConfig` defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshConfig {
    /// Messages with `|now − epoch_ms|` above this are dropped (30 s).
    pub replay_window_ms: u64,
    /// A peer (or this node) whose offset differs from the mesh median by more is drifting (5 s).
    pub drift_tolerance_ms: u64,
    /// LeaseUpdate cadence (15 min).
    pub lease_heartbeat_ms: u64,
    /// No drift decisions this long after joining (60 s).
    pub grace_period_ms: u64,
    /// Peers needed before a median exists (3).
    pub min_peers_for_median: usize,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            replay_window_ms: 30_000,
            drift_tolerance_ms: 5_000,
            lease_heartbeat_ms: 900_000,
            grace_period_ms: 60_000,
            min_peers_for_median: 3,
        }
    }
}

impl MeshConfig {
    /// Applies the reference's environment overrides: `ASTER_CLOCK_DRIFT_TOLERANCE_MS`,
    /// `ASTER_REPLAY_WINDOW_MS`, `ASTER_GRACE_PERIOD_MS` (unparsable values are ignored).
    pub fn with_env_overrides(mut self) -> Self {
        let get = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(v) = get("ASTER_CLOCK_DRIFT_TOLERANCE_MS") {
            self.drift_tolerance_ms = v;
        }
        if let Some(v) = get("ASTER_REPLAY_WINDOW_MS") {
            self.replay_window_ms = v;
        }
        if let Some(v) = get("ASTER_GRACE_PERIOD_MS") {
            self.grace_period_ms = v;
        }
        self
    }
}

/// What an applied envelope means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipEvent {
    /// A producer introduced itself; `new` if it was not in the accepted set before.
    Introduced {
        /// The producer.
        sender: PublicKey,
        /// Whether it was newly accepted.
        new: bool,
    },
    /// A producer left the mesh (removed from the accepted set).
    Departed {
        /// The producer.
        sender: PublicKey,
        /// Its reason (empty if none or unparsable).
        reason: String,
    },
    /// A contract collection was published (for the registry).
    ContractPublished {
        /// The publisher.
        sender: PublicKey,
        /// The payload.
        payload: ContractPublishedPayload,
    },
    /// A lease heartbeat (for the registry).
    LeaseUpdate {
        /// The producer.
        sender: PublicKey,
        /// The payload.
        payload: LeaseUpdatePayload,
    },
    /// An extension message (type ≥ [`FIRST_EXTENSION_TYPE`]) from an accepted producer.
    Extension {
        /// The producer.
        sender: PublicKey,
        /// The type byte.
        msg_type: u8,
        /// The opaque payload.
        payload: Vec<u8>,
    },
    /// This node's clock deviates from the mesh median: it is now dead; the caller should
    /// broadcast a Depart and stop sending. The triggering message is not dispatched.
    SelfDeparture,
}

/// Why an envelope was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GossipDrop {
    /// Not a valid envelope.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// `|now − epoch_ms|` exceeds the replay window.
    #[error("outside replay window (delta={delta_ms} ms)")]
    OutsideReplayWindow {
        /// The absolute difference.
        delta_ms: u64,
    },
    /// The sender is not an accepted producer (possible salt leak or removed node).
    #[error("SECURITY ALERT: message from non-accepted sender {sender}")]
    UnknownSender {
        /// The claimed sender.
        sender: String,
    },
    /// The signature does not verify under the sender's key.
    #[error("SECURITY ALERT: invalid signature from sender {sender}")]
    BadSignature {
        /// The claimed sender.
        sender: String,
    },
    /// The same signed envelope was already applied within the replay window.
    #[error("duplicate envelope from {sender}")]
    Duplicate {
        /// The sender.
        sender: String,
    },
    /// An Introduce that does not establish the sender (see [`MeshState::handle_message`]).
    #[error("invalid Introduce from {sender}: {reason}")]
    InvalidIntroduce {
        /// The claimed sender.
        sender: String,
        /// Why.
        reason: String,
    },
    /// A ContractPublished / LeaseUpdate payload that does not parse.
    #[error("malformed payload of type {msg_type} from {sender}: {reason}")]
    InvalidPayload {
        /// The sender.
        sender: String,
        /// The type byte.
        msg_type: u8,
        /// Why.
        reason: String,
    },
    /// ContractPublished / LeaseUpdate from a drift-isolated producer.
    #[error("{sender} is drift-isolated; message ignored")]
    DriftIsolated {
        /// The sender.
        sender: String,
    },
    /// A reserved, unknown type byte.
    #[error("unknown message type {0}")]
    UnknownType(u8),
}

impl GossipDrop {
    /// Whether the reference logs this as a "SECURITY ALERT".
    pub fn is_security_alert(&self) -> bool {
        matches!(self, GossipDrop::UnknownSender { .. } | GossipDrop::BadSignature { .. })
    }
}

/// A mesh participant's state; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct MeshState {
    root: PublicKey,
    self_id: PublicKey,
    salt: Vec<u8>,
    topic: [u8; 32],
    config: MeshConfig,
    accepted: BTreeSet<String>,
    offsets: BTreeMap<String, i64>,
    drift_isolated: BTreeSet<String>,
    /// Signatures of applied envelopes → their epoch_ms (duplicate suppression).
    seen: HashMap<[u8; 64], u64>,
    seen_prune_at: usize,
    joined_at_ms: u64,
    dead: bool,
}

impl MeshState {
    /// A founding node's state: a fresh salt; this node is the only accepted producer.
    pub fn found(root: PublicKey, self_id: PublicKey, now_ms: u64, config: MeshConfig) -> Self {
        Self::with_salt(root, self_id, new_salt().to_vec(), [self_id.to_hex()], now_ms, config)
    }

    /// A state with a known salt and accepted set (restart, or after joining).
    pub fn with_salt(
        root: PublicKey,
        self_id: PublicKey,
        salt: Vec<u8>,
        accepted: impl IntoIterator<Item = String>,
        now_ms: u64,
        config: MeshConfig,
    ) -> Self {
        let mut accepted: BTreeSet<String> = accepted.into_iter().collect();
        accepted.insert(self_id.to_hex());
        MeshState {
            topic: derive_gossip_topic(&root, &salt),
            root,
            self_id,
            salt,
            config,
            accepted,
            offsets: BTreeMap::new(),
            drift_isolated: BTreeSet::new(),
            seen: HashMap::new(),
            seen_prune_at: 1024,
            joined_at_ms: now_ms,
            dead: false,
        }
    }

    /// The joiner's state from the admission response it received.
    pub fn join(
        root: PublicKey,
        self_id: PublicKey,
        response: &ProducerAdmissionResponse,
        now_ms: u64,
        config: MeshConfig,
    ) -> Result<Self, TrustError> {
        if !response.accepted {
            return Err(TrustError::field("accepted", "admission was denied"));
        }
        if response.salt.is_empty() {
            return Err(TrustError::field("salt", "missing"));
        }
        Ok(Self::with_salt(root, self_id, response.salt.clone(), response.accepted_producers.clone(), now_ms, config))
    }

    /// The mesh salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// The gossip topic.
    pub fn topic(&self) -> &[u8; 32] {
        &self.topic
    }

    /// Rotates the mesh salt (epochal revocation, §7.5): the topic becomes
    /// `derive_gossip_topic(root, salt)`. The accepted set is kept; producers that are not given
    /// the new salt cannot derive the new topic. Returns the new topic.
    pub fn rotate_salt(&mut self, salt: Vec<u8>) -> [u8; 32] {
        self.topic = derive_gossip_topic(&self.root, &salt);
        self.salt = salt;
        self.topic
    }

    /// The root key.
    pub fn root(&self) -> &PublicKey {
        &self.root
    }

    /// This node's EndpointId.
    pub fn self_id(&self) -> &PublicKey {
        &self.self_id
    }

    /// The settings.
    pub fn config(&self) -> &MeshConfig {
        &self.config
    }

    /// Whether this node self-departed (clock drift): it must not send anything but Depart.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// The accepted producers (hex EndpointIds, sorted; includes this node).
    pub fn accepted_producers(&self) -> impl Iterator<Item = &str> {
        self.accepted.iter().map(String::as_str)
    }

    /// Whether `producer` is accepted.
    pub fn is_accepted(&self, producer: &PublicKey) -> bool {
        self.accepted.contains(&producer.to_hex())
    }

    /// Drift-isolated producers (hex).
    pub fn drift_isolated(&self) -> impl Iterator<Item = &str> {
        self.drift_isolated.iter().map(String::as_str)
    }

    /// Last seen clock offset (`now − epoch_ms`, ms) per producer.
    pub fn peer_offsets(&self) -> &BTreeMap<String, i64> {
        &self.offsets
    }

    /// Adds an accepted producer.
    pub fn accept(&mut self, producer: &PublicKey) -> bool {
        self.accepted.insert(producer.to_hex())
    }

    /// Removes a producer (and its drift state).
    pub fn remove(&mut self, producer: &str) -> bool {
        self.drift_isolated.remove(producer);
        self.offsets.remove(producer);
        self.accepted.remove(producer)
    }

    /// Handles a producer admission request from the QUIC peer `peer`: on success the peer is
    /// accepted and the response carries the salt and the accepted producers.
    pub fn admit_producer(
        &mut self,
        request: &[u8],
        peer: &PublicKey,
        now_secs: u64,
    ) -> (ProducerAdmissionResponse, Result<ProducerAdmitted, DenyReason>) {
        match ProducerGate::new(self.root).check_request(request, peer, now_secs) {
            Ok(a) => {
                self.accept(&a.endpoint_id);
                let resp = ProducerAdmissionResponse {
                    accepted: true,
                    salt: self.salt.clone(),
                    accepted_producers: self.accepted.iter().cloned().collect(),
                };
                (resp, Ok(a))
            }
            Err(d) => (ProducerAdmissionResponse::denied(), Err(d)),
        }
    }

    /// Parses and applies one gossip envelope (see [`handle_message`](Self::handle_message)).
    pub fn handle(&mut self, raw: &[u8], now_ms: u64) -> Result<GossipEvent, GossipDrop> {
        let msg = ProducerMessage::from_json(raw).map_err(|e| GossipDrop::Malformed(e.to_string()))?;
        self.handle_message(&msg, now_ms)
    }

    /// Applies one envelope, in the reference's order:
    ///
    /// 1. replay window: `|now − epoch_ms| ≤ replay_window_ms`;
    /// 2. the sender is accepted — except a self-certifying Introduce: an unknown sender is
    ///    accepted if the payload is its producer credential (wire JSON) under this mesh's
    ///    root, unexpired, bound to the sender, and the envelope is signed by the sender;
    /// 3. the envelope signature;
    /// 4. not a duplicate of an envelope already applied (same signature);
    /// 5. clock offset tracking; drift isolation of the sender; self-drift → [`GossipEvent::SelfDeparture`];
    /// 6. dispatch by type.
    pub fn handle_message(&mut self, msg: &ProducerMessage, now_ms: u64) -> Result<GossipEvent, GossipDrop> {
        let delta_ms = now_ms.abs_diff(msg.epoch_ms);
        if delta_ms > self.config.replay_window_ms {
            return Err(GossipDrop::OutsideReplayWindow { delta_ms });
        }
        let sender = || msg.sender.clone();
        let introduce = msg.kind() == Some(ProducerMessageType::Introduce);
        let known = self.accepted.contains(&msg.sender);
        if !known && !introduce {
            return Err(GossipDrop::UnknownSender { sender: sender() });
        }
        let Some(sender_key) = msg.sender_key().filter(|k| k.to_hex() == msg.sender) else {
            return Err(GossipDrop::UnknownSender { sender: sender() });
        };
        if !msg.verify_signature() {
            return Err(GossipDrop::BadSignature { sender: sender() });
        }
        if !known {
            self.check_introduce_credential(msg, now_ms)?;
        }
        let Some(sig) = msg.signature.as_ref().map(|s| *s.as_bytes()) else {
            return Err(GossipDrop::BadSignature { sender: sender() });
        };
        if self.seen.contains_key(&sig) {
            return Err(GossipDrop::Duplicate { sender: sender() });
        }
        self.remember(sig, msg.epoch_ms, now_ms);

        // Clock offsets and drift (skipped in the grace period and below the median quorum).
        let offset = i64::try_from(i128::from(now_ms) - i128::from(msg.epoch_ms)).unwrap_or(0);
        self.offsets.insert(msg.sender.clone(), offset);
        if let Some(median) = self.median_offset(now_ms) {
            let tol = i128::from(self.config.drift_tolerance_ms);
            if (i128::from(offset) - i128::from(median)).abs() > tol {
                self.drift_isolated.insert(msg.sender.clone());
            } else {
                self.drift_isolated.remove(&msg.sender);
            }
            if i128::from(median).abs() > tol && !self.dead {
                self.dead = true;
                return Ok(GossipEvent::SelfDeparture);
            }
        }

        match msg.kind() {
            Some(ProducerMessageType::Introduce) => {
                if msg.payload.is_empty() {
                    return Err(GossipDrop::InvalidIntroduce { sender: sender(), reason: "empty payload".into() });
                }
                let new = self.accept(&sender_key);
                Ok(GossipEvent::Introduced { sender: sender_key, new })
            }
            Some(ProducerMessageType::Depart) => {
                self.remove(&msg.sender);
                let reason =
                    serde_json::from_slice::<DepartPayload>(&msg.payload).map(|p| p.reason).unwrap_or_default();
                Ok(GossipEvent::Departed { sender: sender_key, reason })
            }
            Some(ProducerMessageType::ContractPublished) => {
                self.not_isolated(msg)?;
                let payload = serde_json::from_slice(&msg.payload).map_err(|e| self.bad_payload(msg, e))?;
                Ok(GossipEvent::ContractPublished { sender: sender_key, payload })
            }
            Some(ProducerMessageType::LeaseUpdate) => {
                self.not_isolated(msg)?;
                let payload = serde_json::from_slice(&msg.payload).map_err(|e| self.bad_payload(msg, e))?;
                Ok(GossipEvent::LeaseUpdate { sender: sender_key, payload })
            }
            None if msg.msg_type >= FIRST_EXTENSION_TYPE => {
                Ok(GossipEvent::Extension { sender: sender_key, msg_type: msg.msg_type, payload: msg.payload.clone() })
            }
            None => Err(GossipDrop::UnknownType(msg.msg_type)),
        }
    }

    fn check_introduce_credential(&self, msg: &ProducerMessage, now_ms: u64) -> Result<(), GossipDrop> {
        let invalid = |reason: String| GossipDrop::InvalidIntroduce { sender: msg.sender.clone(), reason };
        let text = std::str::from_utf8(&msg.payload).map_err(|_| invalid("payload is not a credential".into()))?;
        let cred = EnrollmentCredential::from_json(text).map_err(|e| invalid(e.to_string()))?;
        let Some(peer) = msg.sender_key() else {
            return Err(invalid("sender is not an EndpointId".into()));
        };
        ProducerGate::new(self.root).check_credential(&cred, &peer, now_ms / 1000).map(|_| ()).map_err(|d| {
            if let DenyReason::ForeignRoot { .. } | DenyReason::EndpointMismatch { .. } = d {
                GossipDrop::UnknownSender { sender: msg.sender.clone() }
            } else {
                invalid(d.log_message())
            }
        })
    }

    fn not_isolated(&self, msg: &ProducerMessage) -> Result<(), GossipDrop> {
        if self.drift_isolated.contains(&msg.sender) {
            Err(GossipDrop::DriftIsolated { sender: msg.sender.clone() })
        } else {
            Ok(())
        }
    }

    fn bad_payload(&self, msg: &ProducerMessage, e: serde_json::Error) -> GossipDrop {
        GossipDrop::InvalidPayload { sender: msg.sender.clone(), msg_type: msg.msg_type, reason: e.to_string() }
    }

    fn remember(&mut self, sig: [u8; 64], epoch_ms: u64, now_ms: u64) {
        if self.seen.len() >= self.seen_prune_at {
            let window = self.config.replay_window_ms;
            // Entries outside the window can never pass check 1 again.
            self.seen.retain(|_, e| now_ms.abs_diff(*e) <= window);
            self.seen_prune_at = (self.seen.len() * 2).max(1024);
        }
        self.seen.insert(sig, epoch_ms);
    }

    /// The mesh median offset (`median_high` of the tracked offsets), or `None` during the
    /// grace period or with fewer than `min_peers_for_median` tracked peers.
    fn median_offset(&self, now_ms: u64) -> Option<i64> {
        if now_ms.saturating_sub(self.joined_at_ms) < self.config.grace_period_ms {
            return None;
        }
        if self.offsets.len() < self.config.min_peers_for_median {
            return None;
        }
        let mut v: Vec<i64> = self.offsets.values().copied().collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }
}
