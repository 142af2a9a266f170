//! The trust model of Aster (protocol reference §7): keys, enrollment credentials, consumer and
//! producer admission checks, OTT nonce stores, Gate-3 capability evaluation and the producer
//! mesh's signed gossip. Pure code plus file-backed stores; no networking.
//!
//! Wire- and file-compatible with `aster-rpc` / `aster-cli` 0.1.2:
//!
//! * [`keys`]: ed25519 root and node keys; the CLI's key files.
//! * [`credential`]: [`EnrollmentCredential`] (producer) and [`ConsumerCredential`]
//!   (`policy`/`ott`) with the exact signed bytes of §7.2; wire and CLI JSON forms.
//! * [`identity`]: `.aster-identity` TOML files (`aster enroll node`).
//! * [`gate`]: admission checks in the order of §7.3 with a typed [`DenyReason`] per
//!   rejection ([`ConsumerGate`], [`ProducerGate`]).
//! * [`nonce`]: the [`NonceStore`] trait, [`InMemoryNonceStore`] and [`FileNonceStore`].
//! * [`capability`]: ROLE / ANY_OF / ALL_OF against `aster.role` (Gate 3).
//! * [`mesh`]: gossip topic derivation, signed [`ProducerMessage`] envelopes, and the
//!   [`MeshState`] state machine (replay window, accepted producers, clock drift).
//!
//! Times are passed in explicitly (epoch seconds for credentials, epoch milliseconds for
//! gossip), so every check is deterministic; [`now_secs`] / [`now_ms`] read the system clock.

pub mod capability;
pub mod credential;
pub mod error;
pub mod gate;
mod hex;
pub mod identity;
mod json;
pub mod keys;
pub mod mesh;
pub mod nonce;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

pub use capability::{CapabilityDenied, caller_roles, check_call, evaluate};
pub use credential::{ConsumerCredential, ConsumerCredentialType, EnrollmentCredential, attributes};
pub use error::TrustError;
pub use gate::{AdmissionRequest, ConsumerAdmitted, ConsumerGate, ConsumerVerdict, DenyReason, ProducerGate};
pub use identity::IdentityFile;
pub use json::canonical_json;
pub use keys::{NodeKeyFile, PublicKey, RootKeyFile, SecretKey, Signature};
pub use mesh::{MeshConfig, MeshState, ProducerMessage, ProducerMessageType, derive_gossip_topic};
pub use nonce::{FileNonceStore, InMemoryNonceStore, NonceStore, StoreError};

/// Credential attributes: string keys to string values, iterated in code-point order.
pub type Attributes = BTreeMap<String, String>;

/// Reserved attribute: comma-separated roles/capabilities (`ops.status,ops.logs`; for mesh
/// nodes `producer|gateway|consumer`).
pub const ATTR_ROLE: &str = "aster.role";
/// Reserved attribute: human-readable name.
pub const ATTR_NAME: &str = "aster.name";
/// Reserved attribute: cloud instance-identity provider (`aws|gcp|azure`); its presence makes
/// admission require an IID check.
pub const ATTR_IID_PROVIDER: &str = "aster.iid_provider";
/// Reserved attribute: IID account.
pub const ATTR_IID_ACCOUNT: &str = "aster.iid_account";
/// Reserved attribute: IID region.
pub const ATTR_IID_REGION: &str = "aster.iid_region";
/// Reserved attribute: IID role ARN.
pub const ATTR_IID_ROLE_ARN: &str = "aster.iid_role_arn";

/// The system clock in epoch seconds (0 if the clock is before 1970).
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The system clock in epoch milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
