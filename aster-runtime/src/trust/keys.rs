//! Ed25519 keys and signatures (ed25519-dalek), and the key files of `aster-cli` 0.1.2.
//!
//! One key type serves both roles of §7.1: the **root key** (offline trust anchor, signs
//! credentials) and the **node key** (the iroh secret key; its public key is the EndpointId
//! and signs producer gossip). The secret is always the 32-byte RFC 8032 seed.
//!
//! Key files (JSON, as `aster-cli` writes them — `json.dump(indent=2)` plus a newline):
//!
//! | file | writer | content |
//! |---|---|---|
//! | root key | `aster keygen root --out F`, `aster trust keygen --out-key F` | `{"private_key": <64 hex seed>, "public_key": <64 hex>}` |
//! | root public key | same, next to it as `<F minus extension>.pub` | `{"public_key": <64 hex>}` (a bare 64-hex line is also accepted) |
//! | node key | `aster keygen producer --out F` | `{"secret_key": <64 hex seed>, "node_id": <64 hex EndpointId>}` |

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::error::TrustError;
use super::hex;

/// Length of a public key (root key, EndpointId) in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of a secret key (ed25519 seed) in bytes.
pub const SECRET_KEY_LEN: usize = 32;
/// Length of an ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

fn decode_fixed<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], TrustError> {
    let bytes = hex::decode(s).ok_or_else(|| TrustError::field(what, "not a hex string"))?;
    let got = bytes.len();
    bytes.try_into().map_err(|_| TrustError::Length { what, expected: N, got })
}

fn slice_fixed<const N: usize>(what: &'static str, b: &[u8]) -> Result<[u8; N], TrustError> {
    b.try_into().map_err(|_| TrustError::Length { what, expected: N, got: b.len() })
}

/// An ed25519 public key: a root public key or a node's EndpointId.
///
/// Holds the 32 raw bytes without checking that they decode to a curve point; an invalid
/// point simply never verifies a signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; PUBLIC_KEY_LEN]) -> Self {
        PublicKey(bytes)
    }

    /// From a slice that must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, TrustError> {
        slice_fixed("public key", bytes).map(PublicKey)
    }

    /// From 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Result<Self, TrustError> {
        decode_fixed("public key", s).map(PublicKey)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// Lowercase hex (the form used on the wire and as EndpointId text).
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Whether the bytes decode to a valid ed25519 point.
    pub fn is_valid_point(&self) -> bool {
        VerifyingKey::from_bytes(&self.0).is_ok()
    }

    /// Verifies an ed25519 signature over `msg` (RFC 8032, with ed25519-dalek's strict
    /// checks: canonical encodings, no small-order keys).
    pub fn verify(&self, msg: &[u8], signature: &Signature) -> bool {
        let Ok(vk) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        vk.verify_strict(msg, &sig).is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl FromStr for PublicKey {
    type Err = TrustError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// Wraps 64 raw bytes.
    pub const fn from_bytes(bytes: [u8; SIGNATURE_LEN]) -> Self {
        Signature(bytes)
    }

    /// From a slice that must be exactly 64 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, TrustError> {
        slice_fixed("signature", bytes).map(Signature)
    }

    /// From 128 hex characters (either case).
    pub fn from_hex(s: &str) -> Result<Self, TrustError> {
        decode_fixed("signature", s).map(Signature)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

/// An ed25519 secret key (the 32-byte seed): a root key or a node key. `Debug` never prints
/// the secret; the seed is zeroized on drop (ed25519-dalek's `zeroize` feature).
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A fresh random key (operating-system randomness).
    pub fn generate() -> Self {
        SecretKey(SigningKey::from_bytes(&rand::random::<[u8; SECRET_KEY_LEN]>()))
    }

    /// From the 32-byte seed.
    pub fn from_bytes(seed: &[u8; SECRET_KEY_LEN]) -> Self {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// From a slice that must be exactly 32 bytes.
    pub fn from_slice(seed: &[u8]) -> Result<Self, TrustError> {
        slice_fixed::<SECRET_KEY_LEN>("secret key", seed).map(|s| Self::from_bytes(&s))
    }

    /// From 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Result<Self, TrustError> {
        decode_fixed::<SECRET_KEY_LEN>("secret key", s).map(|s| Self::from_bytes(&s))
    }

    /// The 32-byte seed.
    pub fn to_bytes(&self) -> [u8; SECRET_KEY_LEN] {
        self.0.to_bytes()
    }

    /// The seed as lowercase hex (the key files' form).
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0.to_bytes())
    }

    /// The public key (for a node key: the EndpointId).
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `msg` (RFC 8032 ed25519: deterministic, so equal to the reference's signature of
    /// the same bytes with the same key).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        use ed25519_dalek::Signer as _;
        Signature(self.0.sign(msg).to_bytes())
    }

    /// The underlying ed25519-dalek key.
    pub fn as_signing_key(&self) -> &SigningKey {
        &self.0
    }
}

impl From<SigningKey> for SecretKey {
    fn from(k: SigningKey) -> Self {
        SecretKey(k)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public={})", self.public_key().to_hex())
    }
}

// ── iroh ───────────────────────────────────────────────────────────────────

impl From<&iroh::SecretKey> for SecretKey {
    /// The node key of an iroh endpoint (same 32-byte seed).
    fn from(k: &iroh::SecretKey) -> Self {
        SecretKey::from_bytes(&k.to_bytes())
    }
}

impl SecretKey {
    /// As an iroh secret key (the endpoint identity whose EndpointId is
    /// [`public_key`](Self::public_key)).
    pub fn to_iroh(&self) -> iroh::SecretKey {
        iroh::SecretKey::from_bytes(&self.to_bytes())
    }
}

impl From<iroh::PublicKey> for PublicKey {
    /// An EndpointId.
    fn from(k: iroh::PublicKey) -> Self {
        PublicKey(*k.as_bytes())
    }
}

impl PublicKey {
    /// As an iroh EndpointId; fails if the bytes are not a valid ed25519 point.
    pub fn to_iroh(&self) -> Result<iroh::PublicKey, TrustError> {
        iroh::PublicKey::from_bytes(&self.0).map_err(|e| TrustError::field("public key", e.to_string()))
    }
}

// ── key files ──────────────────────────────────────────────────────────────

#[derive(Serialize, Deserialize)]
struct RootKeyJson {
    private_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct PublicKeyJson {
    public_key: String,
}

#[derive(Serialize, Deserialize)]
struct NodeKeyJson {
    secret_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node_id: Option<String>,
}

/// Python's `json.dump(obj, f, indent=2); f.write("\n")` for flat string objects
/// (serde_json's pretty printer uses the same two-space indent and `": "` separator).
fn pretty_json<T: Serialize>(v: &T) -> Result<String, TrustError> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    Ok(s)
}

fn read_text(path: &Path) -> Result<String, TrustError> {
    fs::read_to_string(path).map_err(|e| TrustError::io(path, e))
}

/// Creates `path` exclusively (fails if it exists), owner-only permissions on Unix (0600, as
/// the CLI does for key files), writes `text` and syncs it.
fn write_new_private(path: &Path, text: &str) -> Result<(), TrustError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| TrustError::io(path, e))?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| TrustError::io(path, e))
}

/// The root key pair file (`aster keygen root` / `aster trust keygen`).
#[derive(Clone, Debug)]
pub struct RootKeyFile {
    /// The root private key.
    pub secret: SecretKey,
}

impl RootKeyFile {
    /// A fresh random root key.
    pub fn generate() -> Self {
        RootKeyFile { secret: SecretKey::generate() }
    }

    /// The root public key (the trust anchor).
    pub fn public_key(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// Parses `{"private_key": hex, "public_key": hex}`. `public_key` may be absent (it is
    /// then derived, like the CLI's signer does); if present it must match the private key.
    pub fn parse(text: &str) -> Result<Self, TrustError> {
        let j: RootKeyJson = serde_json::from_str(text)?;
        let secret = SecretKey::from_hex(&j.private_key)?;
        if let Some(p) = j.public_key
            && PublicKey::from_hex(&p)? != secret.public_key()
        {
            return Err(TrustError::KeyMismatch("root key file"));
        }
        Ok(RootKeyFile { secret })
    }

    /// The file text exactly as the CLI writes it.
    pub fn to_json(&self) -> Result<String, TrustError> {
        pretty_json(&RootKeyJson { private_key: self.secret.to_hex(), public_key: Some(self.public_key().to_hex()) })
    }

    /// Reads and parses a root key file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TrustError> {
        Self::parse(&read_text(path.as_ref())?)
    }

    /// Writes the key file like the CLI: refuses to overwrite, mode 0600; then writes the
    /// public key file next to it ([`public_key_path`]) unless that exists. Returns the path
    /// of the public key file.
    pub fn write_new(&self, path: impl AsRef<Path>) -> Result<PathBuf, TrustError> {
        let path = path.as_ref();
        write_new_private(path, &self.to_json()?)?;
        let pub_path = public_key_path(path);
        if !pub_path.exists() {
            fs::write(&pub_path, public_key_file_json(&self.public_key())?)
                .map_err(|e| TrustError::io(&pub_path, e))?;
        }
        Ok(pub_path)
    }
}

/// Where the CLI puts the public key of the key file `key_path`: the same name with the
/// extension replaced by (or, without one, extended with) `.pub`.
pub fn public_key_path(key_path: &Path) -> PathBuf {
    key_path.with_extension("pub")
}

/// Parses a root public key file: JSON `{"public_key": hex}` or a bare 64-hex string
/// (surrounding whitespace ignored), as the reference's `root_pubkey_file` loader accepts.
pub fn parse_public_key_file(text: &str) -> Result<PublicKey, TrustError> {
    let t = text.trim();
    if t.starts_with('{') {
        let j: PublicKeyJson = serde_json::from_str(t)?;
        PublicKey::from_hex(&j.public_key)
    } else {
        PublicKey::from_hex(t)
    }
}

/// Reads a root public key file (see [`parse_public_key_file`]).
pub fn load_public_key_file(path: impl AsRef<Path>) -> Result<PublicKey, TrustError> {
    parse_public_key_file(&read_text(path.as_ref())?)
}

/// The text of a public key file as the CLI writes it: `{"public_key": hex}` pretty-printed.
pub fn public_key_file_json(key: &PublicKey) -> Result<String, TrustError> {
    pretty_json(&PublicKeyJson { public_key: key.to_hex() })
}

/// A node key file (`aster keygen producer`): the iroh secret key and its EndpointId.
#[derive(Clone, Debug)]
pub struct NodeKeyFile {
    /// The node's secret key.
    pub secret: SecretKey,
}

impl NodeKeyFile {
    /// The EndpointId (`node_id`).
    pub fn node_id(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// Parses `{"secret_key": hex, "node_id": hex}`; `node_id`, if present, must be the
    /// secret key's public key.
    pub fn parse(text: &str) -> Result<Self, TrustError> {
        let j: NodeKeyJson = serde_json::from_str(text)?;
        let secret = SecretKey::from_hex(&j.secret_key)?;
        if let Some(id) = j.node_id
            && PublicKey::from_hex(&id)? != secret.public_key()
        {
            return Err(TrustError::KeyMismatch("node key file"));
        }
        Ok(NodeKeyFile { secret })
    }

    /// The file text exactly as the CLI writes it.
    pub fn to_json(&self) -> Result<String, TrustError> {
        pretty_json(&NodeKeyJson { secret_key: self.secret.to_hex(), node_id: Some(self.node_id().to_hex()) })
    }

    /// Reads and parses a node key file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TrustError> {
        Self::parse(&read_text(path.as_ref())?)
    }

    /// Writes the file like the CLI: refuses to overwrite, mode 0600.
    pub fn write_new(&self, path: impl AsRef<Path>) -> Result<(), TrustError> {
        write_new_private(path.as_ref(), &self.to_json()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1 TEST 1.
    #[test]
    fn rfc8032_vector() {
        let sk = SecretKey::from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        assert_eq!(sk.public_key().to_hex(), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let sig = sk.sign(b"");
        assert_eq!(
            sig.to_hex(),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(sk.public_key().verify(b"", &sig));
        assert!(!sk.public_key().verify(b"x", &sig));
    }

    #[test]
    fn iroh_keys_convert() {
        let ik = iroh::SecretKey::from_bytes(&[5; 32]);
        let k = SecretKey::from(&ik);
        assert_eq!(k.to_bytes(), ik.to_bytes());
        assert_eq!(PublicKey::from(ik.public()), k.public_key());
        assert_eq!(k.public_key().to_iroh().unwrap(), ik.public());
        assert_eq!(k.to_iroh().public(), ik.public());
        // The iroh key signs what ours verifies (both ed25519-dalek under the hood).
        let sig = ik.sign(b"msg");
        assert!(k.public_key().verify(b"msg", &Signature::from_bytes(sig.to_bytes())));
        assert!(
            PublicKey::from_bytes({
                let mut b = [0u8; 32];
                b[0] = 2;
                b
            })
            .to_iroh()
            .is_err()
        );
    }

    #[test]
    fn wrong_lengths_are_errors() {
        assert!(matches!(PublicKey::from_hex("abcd"), Err(TrustError::Length { expected: 32, got: 2, .. })));
        assert!(matches!(PublicKey::from_slice(&[0; 31]), Err(TrustError::Length { .. })));
        assert!(matches!(Signature::from_hex(&"00".repeat(63)), Err(TrustError::Length { expected: 64, .. })));
        assert!(matches!(SecretKey::from_slice(&[0; 33]), Err(TrustError::Length { .. })));
        assert!(matches!(PublicKey::from_hex(&"zz".repeat(32)), Err(TrustError::Field { .. })));
    }

    #[test]
    fn invalid_point_never_verifies() {
        // y = 2 is not on the curve.
        let mut b = [0u8; 32];
        b[0] = 2;
        let pk = PublicKey::from_bytes(b);
        assert!(!pk.is_valid_point());
        assert!(!pk.verify(b"m", &Signature::from_bytes([0; 64])));
    }

    #[test]
    fn key_file_roundtrip_and_mismatch() {
        let k = RootKeyFile { secret: SecretKey::from_bytes(&[7; 32]) };
        let text = k.to_json().unwrap();
        assert!(text.starts_with("{\n  \"private_key\": \"0707"), "{text}");
        assert!(text.ends_with("\"\n}\n"));
        assert_eq!(RootKeyFile::parse(&text).unwrap().public_key(), k.public_key());
        let only_priv = format!("{{\"private_key\": \"{}\"}}", "07".repeat(32));
        assert_eq!(RootKeyFile::parse(&only_priv).unwrap().public_key(), k.public_key());
        let wrong = format!("{{\"private_key\": \"{}\", \"public_key\": \"{}\"}}", "07".repeat(32), "08".repeat(32));
        assert!(matches!(RootKeyFile::parse(&wrong), Err(TrustError::KeyMismatch(_))));
        let pk = k.public_key();
        assert_eq!(parse_public_key_file(&public_key_file_json(&pk).unwrap()).unwrap(), pk);
        assert_eq!(parse_public_key_file(&format!("  {}\n", pk.to_hex())).unwrap(), pk);
        assert_eq!(public_key_path(Path::new("a/deploy-root.key")), Path::new("a/deploy-root.pub"));
        assert_eq!(public_key_path(Path::new("a/root")), Path::new("a/root.pub"));
    }

    #[test]
    fn node_key_file_checks_node_id() {
        let n = NodeKeyFile { secret: SecretKey::from_bytes(&[9; 32]) };
        let parsed = NodeKeyFile::parse(&n.to_json().unwrap()).unwrap();
        assert_eq!(parsed.node_id(), n.node_id());
        let bad = format!("{{\"secret_key\": \"{}\", \"node_id\": \"{}\"}}", "09".repeat(32), "00".repeat(32));
        assert!(matches!(NodeKeyFile::parse(&bad), Err(TrustError::KeyMismatch(_))));
    }

    #[test]
    fn write_new_refuses_overwrite() {
        let dir = std::env::temp_dir().join(format!("aster-trust-keys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let k = RootKeyFile::generate();
        let p = dir.join("root.key");
        let pub_path = k.write_new(&p).unwrap();
        assert_eq!(load_public_key_file(&pub_path).unwrap(), k.public_key());
        assert_eq!(RootKeyFile::load(&p).unwrap().public_key(), k.public_key());
        assert!(matches!(k.write_new(&p), Err(TrustError::Io { .. })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
