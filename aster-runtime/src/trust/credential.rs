//! Enrollment credentials (§7.2): the producer [`EnrollmentCredential`] and the consumer
//! [`ConsumerCredential`] (`policy` / `ott`), their exact signed bytes, signing, verification
//! and their JSON forms (the admission wire form and the CLI file form).
//!
//! ## Signed bytes
//!
//! Producer: `endpoint_id` (the 64-char hex text, UTF-8) ‖ `root_pubkey` (32 raw bytes) ‖
//! `expires_at` (u64 big-endian) ‖ `canonical_json(attributes)`.
//!
//! Consumer: `type` (u8: 0 policy, 1 ott) ‖ `has_endpoint_id` (u8 0/1) ‖ `endpoint_id`
//! (UTF-8 hex text, only if present) ‖ `root_pubkey` (32) ‖ `expires_at` (u64 BE) ‖
//! `canonical_json(attributes)` ‖ `has_nonce` (u8 0/1) ‖ `nonce` (32, only if present).
//!
//! The signature is ed25519 by the root key over those bytes.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::TrustError;
use super::hex;
use super::json::{self, JVal};
use super::keys::{PublicKey, SecretKey, Signature};
use super::{Attributes, canonical_json};

/// Length of an OTT nonce in bytes.
pub const NONCE_LEN: usize = 32;

/// Validity the CLI gives a credential when `--expires` is not given (30 days).
pub const DEFAULT_VALIDITY_SECS: u64 = 30 * 24 * 3600;

/// A fresh random 32-byte OTT nonce.
pub fn new_nonce() -> [u8; NONCE_LEN] {
    rand::random()
}

/// The two consumer credential types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumerCredentialType {
    /// Reusable; carries no nonce.
    Policy,
    /// One-time token: carries a 32-byte nonce that an admitting node consumes.
    Ott,
}

impl ConsumerCredentialType {
    /// The wire name: `policy` / `ott`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerCredentialType::Policy => "policy",
            ConsumerCredentialType::Ott => "ott",
        }
    }

    /// The type byte of the signed message: 0 policy, 1 ott.
    pub fn code(self) -> u8 {
        match self {
            ConsumerCredentialType::Policy => 0,
            ConsumerCredentialType::Ott => 1,
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Result<Self, TrustError> {
        match s {
            "policy" => Ok(ConsumerCredentialType::Policy),
            "ott" => Ok(ConsumerCredentialType::Ott),
            other => Err(TrustError::UnknownCredentialType(other.to_string())),
        }
    }
}

/// Checks that `s` is an EndpointId text (64 hex characters), as the reference's hex-field
/// validation does. The text is kept as given: it is what the signature covers.
fn check_endpoint_text(s: &str) -> Result<(), TrustError> {
    if hex::is_hex_of_len(s, 32) {
        Ok(())
    } else {
        Err(TrustError::field("endpoint_id", format!("expected 64 hex characters, got {:?}", s)))
    }
}

/// Decodes an optional hex field where `null`, a missing key and `""` all mean "absent"
/// (the reference's `d.get(k) or ""`).
fn opt_hex<const N: usize>(field: &'static str, v: Option<&str>) -> Result<Option<[u8; N]>, TrustError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => {
            let bytes = hex::decode(s).ok_or_else(|| TrustError::field(field, "not a hex string"))?;
            let got = bytes.len();
            bytes.try_into().map(Some).map_err(|_| TrustError::Length { what: field, expected: N, got })
        }
    }
}

fn opt_signature(v: Option<&str>) -> Result<Option<Signature>, TrustError> {
    Ok(opt_hex::<64>("signature", v)?.map(Signature::from_bytes))
}

fn root_pubkey_field(s: &str) -> Result<PublicKey, TrustError> {
    let b = hex::decode(s).ok_or_else(|| TrustError::field("root_pubkey", "not a hex string"))?;
    let got = b.len();
    let arr: [u8; 32] = b.try_into().map_err(|_| TrustError::Length { what: "root_pubkey", expected: 32, got })?;
    Ok(PublicKey::from_bytes(arr))
}

fn sig_hex(sig: &Option<Signature>) -> String {
    sig.as_ref().map(Signature::to_hex).unwrap_or_default()
}

// ── producer ───────────────────────────────────────────────────────────────

/// Producer enrollment credential: binds a producer's EndpointId to the root key, with an
/// expiry and attributes (`aster trust sign --type producer`, `aster authorize`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentCredential {
    /// The producer's EndpointId as 64-char hex text (signed as text).
    pub endpoint_id: String,
    /// The root public key that signed this credential.
    pub root_pubkey: PublicKey,
    /// Expiry, epoch seconds; valid while `now < expires_at`.
    pub expires_at: u64,
    /// Attribute assertions (`aster.role`, `aster.name`, …).
    pub attributes: Attributes,
    /// The root's signature; `None` before signing (or when the file has an empty one).
    pub signature: Option<Signature>,
}

#[derive(Deserialize)]
struct RawProducer {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    endpoint_id: String,
    root_pubkey: String,
    expires_at: u64,
    #[serde(default)]
    attributes: Option<Attributes>,
    #[serde(default)]
    signature: Option<String>,
}

impl EnrollmentCredential {
    /// An unsigned credential for the producer `endpoint_id`.
    pub fn new(endpoint_id: &PublicKey, root_pubkey: PublicKey, expires_at: u64, attributes: Attributes) -> Self {
        EnrollmentCredential { endpoint_id: endpoint_id.to_hex(), root_pubkey, expires_at, attributes, signature: None }
    }

    /// The exact bytes the root key signs (see the [module docs](self)).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let canon = canonical_json(&self.attributes);
        let mut m = Vec::with_capacity(self.endpoint_id.len() + 40 + canon.len());
        m.extend_from_slice(self.endpoint_id.as_bytes());
        m.extend_from_slice(self.root_pubkey.as_bytes());
        m.extend_from_slice(&self.expires_at.to_be_bytes());
        m.extend_from_slice(canon.as_bytes());
        m
    }

    /// Signs with `root` (which should be the key of `root_pubkey`).
    pub fn sign(&mut self, root: &SecretKey) {
        self.signature = Some(root.sign(&self.signing_bytes()));
    }

    /// Builder form of [`sign`](Self::sign).
    pub fn signed(mut self, root: &SecretKey) -> Self {
        self.sign(root);
        self
    }

    /// Whether the signature verifies against the credential's own `root_pubkey`. (Whether
    /// that root is trusted is the admission gate's question.)
    pub fn verify_signature(&self) -> bool {
        self.signature.as_ref().is_some_and(|s| self.root_pubkey.verify(&self.signing_bytes(), s))
    }

    /// Parses the JSON of a producer credential: the admission wire form
    /// `{"endpoint_id","root_pubkey","expires_at","attributes","signature"}` and the CLI file
    /// form (the same plus `"type": "producer"`). `attributes` may be missing or `null` (= `{}`);
    /// `signature` may be missing or `""` (= unsigned).
    pub fn from_json(text: &str) -> Result<Self, TrustError> {
        let r: RawProducer = serde_json::from_str(text)?;
        if let Some(k) = r.kind.as_deref()
            && k != "producer"
        {
            return Err(TrustError::field("type", format!("expected \"producer\", got {k:?}")));
        }
        check_endpoint_text(&r.endpoint_id)?;
        Ok(EnrollmentCredential {
            endpoint_id: r.endpoint_id,
            root_pubkey: root_pubkey_field(&r.root_pubkey)?,
            expires_at: r.expires_at,
            attributes: r.attributes.unwrap_or_default(),
            signature: opt_signature(r.signature.as_deref())?,
        })
    }

    /// The admission wire form (compact JSON, keys `endpoint_id, root_pubkey, expires_at,
    /// attributes, signature`), as carried in `credential_json` on `aster.producer_admission`.
    pub fn to_wire_json(&self) -> String {
        let (root, sig) = (self.root_pubkey.to_hex(), sig_hex(&self.signature));
        json::compact(&[
            ("endpoint_id", JVal::Str(&self.endpoint_id)),
            ("root_pubkey", JVal::Str(&root)),
            ("expires_at", JVal::U64(self.expires_at)),
            ("attributes", JVal::Obj(&self.attributes)),
            ("signature", JVal::Str(&sig)),
        ])
    }

    /// The CLI file form, byte for byte as `aster trust sign --type producer` writes it.
    pub fn to_cli_json(&self) -> String {
        let (root, sig) = (self.root_pubkey.to_hex(), sig_hex(&self.signature));
        json::pretty(&[
            ("type", JVal::Str("producer")),
            ("endpoint_id", JVal::Str(&self.endpoint_id)),
            ("root_pubkey", JVal::Str(&root)),
            ("expires_at", JVal::U64(self.expires_at)),
            ("attributes", JVal::Obj(&self.attributes)),
            ("signature", JVal::Str(&sig)),
        ])
    }
}

// ── consumer ───────────────────────────────────────────────────────────────

/// Consumer enrollment credential (`policy` or `ott`), presented on
/// `aster.consumer_admission`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerCredential {
    /// `policy` or `ott`.
    pub credential_type: ConsumerCredentialType,
    /// The root public key that signed this credential.
    pub root_pubkey: PublicKey,
    /// Expiry, epoch seconds; valid while `now < expires_at`.
    pub expires_at: u64,
    /// Attribute assertions (`aster.role` = comma-separated roles, `aster.name`, …).
    pub attributes: Attributes,
    /// Optional binding to the presenting node's EndpointId (64-char hex text, signed as
    /// text). Kept exactly as received: `Some("")` is possible and never matches a peer.
    pub endpoint_id: Option<String>,
    /// The OTT nonce; must be present for `ott` and absent for `policy`.
    pub nonce: Option<[u8; NONCE_LEN]>,
    /// The root's signature; `None` before signing (or when the JSON has an empty one).
    pub signature: Option<Signature>,
}

#[derive(Deserialize)]
struct RawConsumer {
    #[serde(default)]
    credential_type: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    root_pubkey: String,
    expires_at: u64,
    #[serde(default)]
    attributes: Option<Attributes>,
    #[serde(default)]
    endpoint_id: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

impl ConsumerCredential {
    /// An unsigned `policy` credential.
    pub fn policy(root_pubkey: PublicKey, expires_at: u64, attributes: Attributes) -> Self {
        ConsumerCredential {
            credential_type: ConsumerCredentialType::Policy,
            root_pubkey,
            expires_at,
            attributes,
            endpoint_id: None,
            nonce: None,
            signature: None,
        }
    }

    /// An unsigned `ott` credential with a fresh random nonce.
    pub fn ott(root_pubkey: PublicKey, expires_at: u64, attributes: Attributes) -> Self {
        ConsumerCredential {
            credential_type: ConsumerCredentialType::Ott,
            nonce: Some(new_nonce()),
            ..Self::policy(root_pubkey, expires_at, attributes)
        }
    }

    /// Binds the credential to the node `endpoint_id`.
    pub fn with_endpoint_id(mut self, endpoint_id: &PublicKey) -> Self {
        self.endpoint_id = Some(endpoint_id.to_hex());
        self
    }

    /// Replaces the nonce.
    pub fn with_nonce(mut self, nonce: Option<[u8; NONCE_LEN]>) -> Self {
        self.nonce = nonce;
        self
    }

    /// The exact bytes the root key signs (see the [module docs](self)).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let canon = canonical_json(&self.attributes);
        let mut m = Vec::with_capacity(2 + 64 + 40 + canon.len() + 33);
        m.push(self.credential_type.code());
        match &self.endpoint_id {
            Some(e) => {
                m.push(1);
                m.extend_from_slice(e.as_bytes());
            }
            None => m.push(0),
        }
        m.extend_from_slice(self.root_pubkey.as_bytes());
        m.extend_from_slice(&self.expires_at.to_be_bytes());
        m.extend_from_slice(canon.as_bytes());
        match &self.nonce {
            Some(n) => {
                m.push(1);
                m.extend_from_slice(n);
            }
            None => m.push(0),
        }
        m
    }

    /// Signs with `root` (which should be the key of `root_pubkey`).
    pub fn sign(&mut self, root: &SecretKey) {
        self.signature = Some(root.sign(&self.signing_bytes()));
    }

    /// Builder form of [`sign`](Self::sign).
    pub fn signed(mut self, root: &SecretKey) -> Self {
        self.sign(root);
        self
    }

    /// Whether the signature verifies against the credential's own `root_pubkey`.
    pub fn verify_signature(&self) -> bool {
        self.signature.as_ref().is_some_and(|s| self.root_pubkey.verify(&self.signing_bytes(), s))
    }

    /// Parses a consumer credential JSON: the admission wire form (key `credential_type`) or
    /// the CLI file form (key `type`; `credential_type` wins if both are present).
    ///
    /// Field rules follow the reference's parser: `root_pubkey` 64 hex; `nonce` 64 hex or
    /// absent (`null`/missing/`""`); `signature` 128 hex or absent; `endpoint_id` 64 hex,
    /// `""`, or absent; `attributes` a string-to-string object or absent/`null`; `expires_at`
    /// a non-negative integer.
    pub fn from_json(text: &str) -> Result<Self, TrustError> {
        let r: RawConsumer = serde_json::from_str(text)?;
        let kind = r
            .credential_type
            .or(r.kind)
            .ok_or_else(|| TrustError::field("credential_type", "missing (neither credential_type nor type)"))?;
        let credential_type = ConsumerCredentialType::parse(&kind)?;
        if let Some(e) = r.endpoint_id.as_deref()
            && !e.is_empty()
        {
            check_endpoint_text(e)?;
        }
        Ok(ConsumerCredential {
            credential_type,
            root_pubkey: root_pubkey_field(&r.root_pubkey)?,
            expires_at: r.expires_at,
            attributes: r.attributes.unwrap_or_default(),
            endpoint_id: r.endpoint_id,
            nonce: opt_hex::<NONCE_LEN>("nonce", r.nonce.as_deref())?,
            signature: opt_signature(r.signature.as_deref())?,
        })
    }

    fn json_fields<'a>(
        &'a self,
        type_key: &'static str,
        root: &'a str,
        nonce: &'a Option<String>,
        sig: &'a str,
    ) -> [(&'static str, JVal<'a>); 7] {
        [
            (type_key, JVal::Str(self.credential_type.as_str())),
            ("root_pubkey", JVal::Str(root)),
            ("expires_at", JVal::U64(self.expires_at)),
            ("attributes", JVal::Obj(&self.attributes)),
            ("endpoint_id", self.endpoint_id.as_deref().map_or(JVal::Null, JVal::Str)),
            ("nonce", nonce.as_deref().map_or(JVal::Null, JVal::Str)),
            ("signature", JVal::Str(sig)),
        ]
    }

    /// The admission wire form, as the reference client builds `credential_json`
    /// (`consumer_cred_to_json`): compact, ASCII-only, keys `credential_type, root_pubkey,
    /// expires_at, attributes, endpoint_id, nonce, signature`, absent values as `null`.
    pub fn to_wire_json(&self) -> String {
        let (root, sig) = (self.root_pubkey.to_hex(), sig_hex(&self.signature));
        let nonce = self.nonce.map(|n| hex::encode(&n));
        json::compact(&self.json_fields("credential_type", &root, &nonce, &sig))
    }

    /// The CLI file form, byte for byte as `aster trust sign --type policy|ott` writes it
    /// (key `type`, two-space indent, trailing newline).
    pub fn to_cli_json(&self) -> String {
        let (root, sig) = (self.root_pubkey.to_hex(), sig_hex(&self.signature));
        let nonce = self.nonce.map(|n| hex::encode(&n));
        json::pretty(&self.json_fields("type", &root, &nonce, &sig))
    }
}

/// Attributes from `(key, value)` pairs.
pub fn attributes<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Attributes {
    pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect::<BTreeMap<_, _>>()
}
