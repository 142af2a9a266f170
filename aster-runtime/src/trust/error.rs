//! Errors of parsing and loading trust material.

use std::path::PathBuf;

/// Why trust material (a key, a key file, a credential, an identity file, a gossip envelope)
/// could not be parsed, built or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Not valid JSON, or JSON of the wrong shape (missing key, wrong value type).
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Not valid TOML, or TOML of the wrong shape.
    #[error("malformed TOML: {0}")]
    Toml(String),
    /// A field is present but its value is not acceptable.
    #[error("invalid field `{field}`: {reason}")]
    Field {
        /// The field name as written in the file / on the wire.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A key, nonce or signature has the wrong number of bytes.
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        /// What was being decoded.
        what: &'static str,
        /// The required length in bytes.
        expected: usize,
        /// The length found.
        got: usize,
    },
    /// A key file's `public_key` (or `node_id`) does not belong to its private key.
    #[error("{0}: public key does not match the private key")]
    KeyMismatch(&'static str),
    /// An unknown credential type (`credential_type` / `type`).
    #[error("unknown credential type {0:?}")]
    UnknownCredentialType(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl TrustError {
    pub(crate) fn field(field: &'static str, reason: impl Into<String>) -> Self {
        TrustError::Field { field, reason: reason.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrustError::Io { path: path.into(), source }
    }
}
