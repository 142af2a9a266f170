//! `.aster-identity` files (TOML, written by `aster enroll node`): the node's secret key and
//! one or more peer entries (enrollment credentials).
//!
//! ```toml
//! [node]
//! secret_key = "<base64 32-byte seed>"
//! endpoint_id = "<64 hex>"
//!
//! [[peers]]
//! name = "carol"
//! role = "consumer"
//! type = "policy"            # or "ott"
//! root_pubkey = "<64 hex>"
//! endpoint_id = "<64 hex>"
//! expires_at = 1797837262
//! nonce = "<64 hex>"         # OTT only
//! signature = "<128 hex>"
//! attributes = { "k" = "v" } # optional
//! ```
//!
//! `aster-cli` 0.1.2 leaves `aster.role` / `aster.name` out of `attributes` when they equal
//! `role` / `name`, although they were signed; [`IdentityPeer::to_consumer_credential`]
//! restores whichever of them makes the signature verify.

use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;

use super::credential::{ConsumerCredential, ConsumerCredentialType, EnrollmentCredential, NONCE_LEN};
use super::error::TrustError;
use super::hex;
use super::keys::{PublicKey, SecretKey, Signature};
use super::{ATTR_NAME, ATTR_ROLE, Attributes};

#[derive(Deserialize, Default)]
struct RawNode {
    #[serde(default)]
    secret_key: Option<String>,
    #[serde(default)]
    endpoint_id: Option<String>,
}

#[derive(Deserialize)]
struct RawPeer {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    root_pubkey: String,
    #[serde(default)]
    endpoint_id: Option<String>,
    expires_at: u64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    attributes: Attributes,
}

#[derive(Deserialize)]
struct RawIdentity {
    #[serde(default)]
    node: RawNode,
    #[serde(default)]
    peers: Vec<RawPeer>,
}

/// One `[[peers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPeer {
    /// Label (`name`).
    pub name: Option<String>,
    /// `producer` or `consumer`.
    pub role: Option<String>,
    /// `type`: `policy` (default) or `ott`. (Producer entries also say `policy`.)
    pub credential_type: String,
    /// The root key.
    pub root_pubkey: PublicKey,
    /// The bound EndpointId (hex text).
    pub endpoint_id: Option<String>,
    /// Expiry, epoch seconds.
    pub expires_at: u64,
    /// OTT nonce.
    pub nonce: Option<[u8; NONCE_LEN]>,
    /// The root's signature.
    pub signature: Option<Signature>,
    /// The attributes as written in the file (possibly missing `aster.role`/`aster.name`).
    pub attributes: Attributes,
}

/// A parsed `.aster-identity` file.
#[derive(Debug, Clone)]
pub struct IdentityFile {
    /// The node's secret key (`[node] secret_key`), if present.
    pub secret_key: Option<SecretKey>,
    /// The peer entries, in file order.
    pub peers: Vec<IdentityPeer>,
}

impl IdentityFile {
    /// Parses the TOML text. `[node] endpoint_id`, if present with a secret key, must be its
    /// public key.
    pub fn parse(text: &str) -> Result<Self, TrustError> {
        let raw: RawIdentity = toml::from_str(text).map_err(|e| TrustError::Toml(e.to_string()))?;
        let secret_key = match raw.node.secret_key.as_deref() {
            None | Some("") => None,
            Some(b64) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| TrustError::field("secret_key", e.to_string()))?;
                Some(SecretKey::from_slice(&bytes)?)
            }
        };
        if let (Some(sk), Some(eid)) = (&secret_key, raw.node.endpoint_id.as_deref())
            && PublicKey::from_hex(eid)? != sk.public_key()
        {
            return Err(TrustError::KeyMismatch(".aster-identity [node]"));
        }
        let peers = raw.peers.into_iter().map(IdentityPeer::from_raw).collect::<Result<_, _>>()?;
        Ok(IdentityFile { secret_key, peers })
    }

    /// Reads and parses a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TrustError> {
        let path = path.as_ref();
        Self::parse(&std::fs::read_to_string(path).map_err(|e| TrustError::io(path, e))?)
    }

    /// The node's EndpointId, if the file has a secret key.
    pub fn endpoint_id(&self) -> Option<PublicKey> {
        self.secret_key.as_ref().map(SecretKey::public_key)
    }

    /// The peer entry called `name`.
    pub fn peer(&self, name: &str) -> Option<&IdentityPeer> {
        self.peers.iter().find(|p| p.name.as_deref() == Some(name))
    }

    /// The entry a client uses: the first with `role = "consumer"`, else the first.
    pub fn consumer_peer(&self) -> Option<&IdentityPeer> {
        self.peers.iter().find(|p| p.role.as_deref() == Some("consumer")).or_else(|| self.peers.first())
    }

    /// The first entry with `role = "producer"`.
    pub fn producer_peer(&self) -> Option<&IdentityPeer> {
        self.peers.iter().find(|p| p.role.as_deref() == Some("producer"))
    }
}

impl IdentityPeer {
    fn from_raw(r: RawPeer) -> Result<Self, TrustError> {
        let nonce = match r.nonce.as_deref() {
            None | Some("") => None,
            Some(n) => {
                Some(hex::decode_array::<NONCE_LEN>(n).ok_or_else(|| TrustError::field("nonce", "expected 64 hex"))?)
            }
        };
        let signature = match r.signature.as_deref() {
            None | Some("") => None,
            Some(s) => Some(Signature::from_hex(s)?),
        };
        Ok(IdentityPeer {
            name: r.name,
            role: r.role,
            credential_type: r.kind.unwrap_or_else(|| "policy".to_string()),
            root_pubkey: PublicKey::from_hex(&r.root_pubkey)?,
            endpoint_id: r.endpoint_id,
            expires_at: r.expires_at,
            nonce,
            signature,
            attributes: r.attributes,
        })
    }

    /// Attribute sets to try: as written, then with `aster.role` / `aster.name` restored from
    /// `role` / `name` where missing (each alone, then both).
    fn attribute_candidates(&self) -> Vec<Attributes> {
        let mut out = vec![self.attributes.clone()];
        let add = |base: &Attributes, key: &str, v: &Option<String>| {
            v.as_ref().filter(|_| !base.contains_key(key)).map(|v| {
                let mut a = base.clone();
                a.insert(key.to_string(), v.clone());
                a
            })
        };
        let with_role = add(&self.attributes, ATTR_ROLE, &self.role);
        let with_name = add(&self.attributes, ATTR_NAME, &self.name);
        let with_both = with_role.as_ref().and_then(|a| add(a, ATTR_NAME, &self.name));
        out.extend(with_role);
        out.extend(with_name);
        out.extend(with_both);
        out
    }

    /// The consumer credential of this entry. If the attributes as written do not verify,
    /// the elided `aster.role` / `aster.name` are restored (see the [module docs](self)); if no
    /// variant verifies, the attributes are returned as written (the server will deny).
    pub fn to_consumer_credential(&self) -> Result<ConsumerCredential, TrustError> {
        let base = ConsumerCredential {
            credential_type: ConsumerCredentialType::parse(&self.credential_type)?,
            root_pubkey: self.root_pubkey,
            expires_at: self.expires_at,
            attributes: Attributes::new(),
            endpoint_id: self.endpoint_id.clone(),
            nonce: self.nonce,
            signature: self.signature,
        };
        let mut candidates = self.attribute_candidates().into_iter();
        let first = ConsumerCredential { attributes: candidates.next().unwrap_or_default(), ..base.clone() };
        if first.verify_signature() {
            return Ok(first);
        }
        Ok(candidates
            .map(|attributes| ConsumerCredential { attributes, ..base.clone() })
            .find(ConsumerCredential::verify_signature)
            .unwrap_or(first))
    }

    /// The producer credential of this entry (`aster enroll node --role producer`), with the
    /// same attribute recovery as [`to_consumer_credential`](Self::to_consumer_credential).
    pub fn to_enrollment_credential(&self) -> Result<EnrollmentCredential, TrustError> {
        let endpoint_id =
            self.endpoint_id.clone().ok_or_else(|| TrustError::field("endpoint_id", "missing in producer entry"))?;
        let make = |attributes: Attributes| EnrollmentCredential {
            endpoint_id: endpoint_id.clone(),
            root_pubkey: self.root_pubkey,
            expires_at: self.expires_at,
            attributes,
            signature: self.signature,
        };
        let mut candidates = self.attribute_candidates().into_iter();
        let first = make(candidates.next().unwrap_or_default());
        if first.verify_signature() {
            return Ok(first);
        }
        Ok(candidates.map(make).find(EnrollmentCredential::verify_signature).unwrap_or(first))
    }
}

/// Loads a consumer credential from a credential file's text the way the reference client
/// does: JSON (`aster trust sign` output or wire form) if it starts with `{`, else an
/// `.aster-identity` TOML file (its [`consumer_peer`](IdentityFile::consumer_peer)).
pub fn consumer_credential_from_file_text(text: &str) -> Result<ConsumerCredential, TrustError> {
    let t = text.trim();
    if t.starts_with('{') {
        return ConsumerCredential::from_json(t);
    }
    let id = IdentityFile::parse(t)?;
    id.consumer_peer()
        .ok_or_else(|| TrustError::field("peers", "no peer entries in identity file"))?
        .to_consumer_credential()
}
