//! Admission checks (Gate 1): consumer admission in the order of §7.3 and producer admission,
//! each rejection with a typed [`DenyReason`].
//!
//! Consumer order (as `aster.trust.consumer` / `aster.trust.admission` 0.1.2):
//!
//! 1. parse the request and the credential JSON ([`DenyReason::NoCredential`],
//!    [`DenyReason::Malformed`]; wrong key/nonce/signature lengths are malformed);
//! 2. credential `root_pubkey` equals the gate's root ([`DenyReason::ForeignRoot`]);
//! 3. structure: OTT carries a nonce, policy carries none ([`DenyReason::OttWithoutNonce`],
//!    [`DenyReason::PolicyWithNonce`]);
//! 4. signature ([`DenyReason::BadSignature`]: tampered fields, missing signature);
//! 5. `expires_at > now` ([`DenyReason::Expired`]);
//! 6. `endpoint_id`, if set, equals the QUIC peer's EndpointId ([`DenyReason::EndpointMismatch`]);
//! 7. OTT: consume the nonce ([`DenyReason::OttReplay`], [`DenyReason::NonceStore`]);
//! 8. IID, if the credential carries `aster.iid_provider` ([`ConsumerVerdict::IidRequired`];
//!    network, so done by the caller).
//!
//! A denial is answered on the wire without any reason (oracle protection); the reason is for
//! the server log only: [`DenyReason::log_message`].
//!
//! Credentials carry no not-before time, so there is no "not yet valid" check.

use serde::Deserialize;

use super::credential::{ConsumerCredential, ConsumerCredentialType, EnrollmentCredential};
use super::json::{self, JVal};
use super::keys::PublicKey;
use super::nonce::NonceStore;
use super::{ATTR_IID_PROVIDER, Attributes};

/// Maximum size of an admission request (the reference reads at most 64 KiB).
pub const MAX_ADMISSION_PAYLOAD: usize = 64 * 1024;

/// Why an admission was refused. Never sent to the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenyReason {
    /// The request carried no credential (`credential_json` empty) and the gate is closed.
    #[error("no credential presented")]
    NoCredential,
    /// The request or the credential could not be parsed (bad JSON, missing field, wrong
    /// hex length of a key, nonce or signature, unknown credential type, oversized request).
    #[error("malformed credential: {0}")]
    Malformed(String),
    /// The credential was issued under another root key.
    #[error("untrusted root key {}", .presented.to_hex())]
    ForeignRoot {
        /// The credential's root key.
        presented: PublicKey,
    },
    /// An OTT credential without a nonce.
    #[error("OTT credential must carry a nonce")]
    OttWithoutNonce,
    /// A policy credential with a nonce.
    #[error("policy credential must not carry a nonce")]
    PolicyWithNonce,
    /// The signature is missing or does not verify (a field was changed after signing, or
    /// it was signed by another key).
    #[error("invalid signature")]
    BadSignature,
    /// The credential has expired (`expires_at <= now`).
    #[error("credential expired (expires_at={expires_at}, now={now})")]
    Expired {
        /// The credential's expiry.
        expires_at: u64,
        /// The time of the check.
        now: u64,
    },
    /// The credential is bound to another node.
    #[error("endpoint_id mismatch: credential={credential:?}, peer={}", .peer.to_hex())]
    EndpointMismatch {
        /// The credential's `endpoint_id` text.
        credential: String,
        /// The QUIC peer's EndpointId.
        peer: PublicKey,
    },
    /// The OTT nonce was already consumed.
    #[error("OTT nonce already consumed")]
    OttReplay,
    /// The nonce store failed; admission fails closed.
    #[error("nonce store failure: {0}")]
    NonceStore(String),
    /// The instance-identity check failed (reported by the caller).
    #[error("IID verification failed: {0}")]
    Iid(String),
}

impl DenyReason {
    /// The line for the server log (the peer only ever sees `admitted:false`).
    pub fn log_message(&self) -> String {
        self.to_string()
    }

    /// A short stable label (for metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            DenyReason::NoCredential => "no_credential",
            DenyReason::Malformed(_) => "malformed",
            DenyReason::ForeignRoot { .. } => "foreign_root",
            DenyReason::OttWithoutNonce => "ott_without_nonce",
            DenyReason::PolicyWithNonce => "policy_with_nonce",
            DenyReason::BadSignature => "bad_signature",
            DenyReason::Expired { .. } => "expired",
            DenyReason::EndpointMismatch { .. } => "endpoint_mismatch",
            DenyReason::OttReplay => "ott_replay",
            DenyReason::NonceStore(_) => "nonce_store",
            DenyReason::Iid(_) => "iid",
        }
    }
}

/// The admission request on `aster.consumer_admission` and `aster.producer_admission`:
/// `{"credential_json": "<credential JSON as a string>", "iid_token": "…"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdmissionRequest {
    /// The credential's JSON text; empty = no credential.
    pub credential_json: String,
    /// A pre-fetched instance-identity token; empty = none.
    pub iid_token: String,
}

#[derive(Deserialize)]
struct RawRequest {
    credential_json: String,
    #[serde(default)]
    iid_token: Option<String>,
}

impl AdmissionRequest {
    /// Parses a request (at most [`MAX_ADMISSION_PAYLOAD`] bytes). `iid_token` may be missing
    /// or `null`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DenyReason> {
        if bytes.len() > MAX_ADMISSION_PAYLOAD {
            return Err(DenyReason::Malformed(format!("request of {} bytes exceeds the limit", bytes.len())));
        }
        let r: RawRequest =
            serde_json::from_slice(bytes).map_err(|e| DenyReason::Malformed(format!("request: {e}")))?;
        Ok(AdmissionRequest { credential_json: r.credential_json, iid_token: r.iid_token.unwrap_or_default() })
    }

    /// The request JSON as the reference client writes it (compact, ASCII-only).
    pub fn to_json(&self) -> String {
        json::compact(&[
            ("credential_json", JVal::Str(&self.credential_json)),
            ("iid_token", JVal::Str(&self.iid_token)),
        ])
    }
}

/// A successful consumer admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerAdmitted {
    /// The peer's attributes (from the credential; empty for an open-gate admission).
    pub attributes: Attributes,
    /// The credential's expiry (`None` for an open-gate admission without credential). The
    /// reference caps the peer-store entry at this time and at 24 h.
    pub expires_at: Option<u64>,
    /// The credential type (`None` for an open-gate admission without credential).
    pub credential_type: Option<ConsumerCredentialType>,
}

/// A credential that passed every offline check but names an IID provider: the caller must
/// verify the instance identity and then call [`PendingIid::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the IID check must be run and its result passed to finish()"]
pub struct PendingIid {
    admitted: ConsumerAdmitted,
    provider: String,
    iid_token: String,
}

impl PendingIid {
    /// The `aster.iid_provider` value (`aws|gcp|azure`).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The token from the request (`iid_token`; empty = none).
    pub fn iid_token(&self) -> &str {
        &self.iid_token
    }

    /// The credential attributes the IID claims are checked against (`aster.iid_*`).
    pub fn attributes(&self) -> &Attributes {
        &self.admitted.attributes
    }

    /// Completes the admission with the IID check's result (`Err` = a log reason).
    pub fn finish(self, iid: Result<(), String>) -> Result<ConsumerAdmitted, DenyReason> {
        iid.map(|()| self.admitted).map_err(DenyReason::Iid)
    }
}

/// The outcome of a consumer admission that was not denied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum ConsumerVerdict {
    /// Admitted.
    Admitted(ConsumerAdmitted),
    /// Admitted once the IID check passes (the OTT nonce, if any, is already consumed, as in
    /// the reference).
    IidRequired(PendingIid),
}

/// The consumer admission gate of one node: its trusted root key and whether it is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGate {
    root: PublicKey,
    allow_unenrolled: bool,
}

impl ConsumerGate {
    /// A closed gate: every consumer needs a credential under `root`.
    pub fn new(root: PublicKey) -> Self {
        ConsumerGate { root, allow_unenrolled: false }
    }

    /// An open gate (`allow_all_consumers`): a request without credential is admitted with
    /// empty attributes. A credential that is presented is still checked.
    pub fn open(root: PublicKey) -> Self {
        ConsumerGate { root, allow_unenrolled: true }
    }

    /// The trusted root key (also sent as `root_pubkey` in every admission response).
    pub fn root(&self) -> &PublicKey {
        &self.root
    }

    /// Whether requests without credential are admitted.
    pub fn is_open(&self) -> bool {
        self.allow_unenrolled
    }

    /// Whether the admission response to `peer` may include the mesh's `gossip_topic`: only
    /// when the peer's EndpointId is the root public key (the operator's shell).
    pub fn reveals_gossip_topic(&self, peer: &PublicKey) -> bool {
        *peer == self.root
    }

    /// Runs all checks on a raw request (the bytes read from the admission stream).
    pub fn check_request(
        &self,
        request: &[u8],
        peer: &PublicKey,
        now: u64,
        nonces: &dyn NonceStore,
    ) -> Result<ConsumerVerdict, DenyReason> {
        let req = AdmissionRequest::from_json(request)?;
        self.check_parsed_request(&req, peer, now, nonces)
    }

    /// Runs all checks on a parsed request.
    pub fn check_parsed_request(
        &self,
        req: &AdmissionRequest,
        peer: &PublicKey,
        now: u64,
        nonces: &dyn NonceStore,
    ) -> Result<ConsumerVerdict, DenyReason> {
        self.check_credential_json(&req.credential_json, &req.iid_token, peer, now, nonces)
    }

    /// Runs all checks on the `credential_json` and `iid_token` of a request that was parsed
    /// elsewhere (empty `credential_json` = no credential).
    pub fn check_credential_json(
        &self,
        credential_json: &str,
        iid_token: &str,
        peer: &PublicKey,
        now: u64,
        nonces: &dyn NonceStore,
    ) -> Result<ConsumerVerdict, DenyReason> {
        if credential_json.is_empty() {
            if self.allow_unenrolled {
                return Ok(ConsumerVerdict::Admitted(ConsumerAdmitted {
                    attributes: Attributes::new(),
                    expires_at: None,
                    credential_type: None,
                }));
            }
            return Err(DenyReason::NoCredential);
        }
        let cred = ConsumerCredential::from_json(credential_json).map_err(|e| DenyReason::Malformed(e.to_string()))?;
        self.check_credential(&cred, iid_token, peer, now, nonces)
    }

    /// Checks 2–8 on a parsed credential.
    pub fn check_credential(
        &self,
        cred: &ConsumerCredential,
        iid_token: &str,
        peer: &PublicKey,
        now: u64,
        nonces: &dyn NonceStore,
    ) -> Result<ConsumerVerdict, DenyReason> {
        if cred.root_pubkey != self.root {
            return Err(DenyReason::ForeignRoot { presented: cred.root_pubkey });
        }
        match (cred.credential_type, cred.nonce.is_some()) {
            (ConsumerCredentialType::Ott, false) => return Err(DenyReason::OttWithoutNonce),
            (ConsumerCredentialType::Policy, true) => return Err(DenyReason::PolicyWithNonce),
            _ => {}
        }
        if !cred.verify_signature() {
            return Err(DenyReason::BadSignature);
        }
        if cred.expires_at <= now {
            return Err(DenyReason::Expired { expires_at: cred.expires_at, now });
        }
        if let Some(e) = &cred.endpoint_id
            && *e != peer.to_hex()
        {
            return Err(DenyReason::EndpointMismatch { credential: e.clone(), peer: *peer });
        }
        if let (ConsumerCredentialType::Ott, Some(nonce)) = (cred.credential_type, cred.nonce) {
            match nonces.consume(nonce, cred.expires_at) {
                Ok(true) => {}
                Ok(false) => return Err(DenyReason::OttReplay),
                Err(e) => return Err(DenyReason::NonceStore(e.to_string())),
            }
        }
        let admitted = ConsumerAdmitted {
            attributes: cred.attributes.clone(),
            expires_at: Some(cred.expires_at),
            credential_type: Some(cred.credential_type),
        };
        Ok(match cred.attributes.get(ATTR_IID_PROVIDER) {
            None => ConsumerVerdict::Admitted(admitted),
            Some(p) => ConsumerVerdict::IidRequired(PendingIid {
                admitted,
                provider: p.clone(),
                iid_token: iid_token.to_string(),
            }),
        })
    }
}

/// A successful producer admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerAdmitted {
    /// The admitted producer (the QUIC peer, which the credential is bound to).
    pub endpoint_id: PublicKey,
    /// The credential's attributes.
    pub attributes: Attributes,
    /// The credential's expiry.
    pub expires_at: u64,
}

/// The producer admission gate (`aster.producer_admission`) of a mesh member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerGate {
    root: PublicKey,
}

impl ProducerGate {
    /// A gate trusting `root`.
    pub fn new(root: PublicKey) -> Self {
        ProducerGate { root }
    }

    /// The trusted root key.
    pub fn root(&self) -> &PublicKey {
        &self.root
    }

    /// Checks a raw request: `{"credential_json": …}` or, as the reference also accepts, a
    /// bare credential JSON.
    pub fn check_request(&self, request: &[u8], peer: &PublicKey, now: u64) -> Result<ProducerAdmitted, DenyReason> {
        if request.len() > MAX_ADMISSION_PAYLOAD {
            return Err(DenyReason::Malformed(format!("request of {} bytes exceeds the limit", request.len())));
        }
        let cred_json = match AdmissionRequest::from_json(request) {
            Ok(r) => r.credential_json,
            Err(_) => String::from_utf8_lossy(request).into_owned(),
        };
        if cred_json.is_empty() {
            return Err(DenyReason::NoCredential);
        }
        let cred = EnrollmentCredential::from_json(&cred_json).map_err(|e| DenyReason::Malformed(e.to_string()))?;
        self.check_credential(&cred, peer, now)
    }

    /// Checks a parsed credential: root, signature, expiry, and that the credential's
    /// `endpoint_id` is the QUIC peer (the reference compares it with itself, §13 item 8).
    pub fn check_credential(
        &self,
        cred: &EnrollmentCredential,
        peer: &PublicKey,
        now: u64,
    ) -> Result<ProducerAdmitted, DenyReason> {
        if cred.root_pubkey != self.root {
            return Err(DenyReason::ForeignRoot { presented: cred.root_pubkey });
        }
        if !cred.verify_signature() {
            return Err(DenyReason::BadSignature);
        }
        if cred.expires_at <= now {
            return Err(DenyReason::Expired { expires_at: cred.expires_at, now });
        }
        if cred.endpoint_id != peer.to_hex() {
            return Err(DenyReason::EndpointMismatch { credential: cred.endpoint_id.clone(), peer: *peer });
        }
        Ok(ProducerAdmitted { endpoint_id: *peer, attributes: cred.attributes.clone(), expires_at: cred.expires_at })
    }
}
