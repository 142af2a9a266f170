//! Limits applied by [`build_contract`](super::build_contract) (protocol reference §3.12,
//! `aster/limits.py` of aster-rpc 0.1.2; 0.1.2 defines them but enforces only the manifest
//! caps when reading manifests).

/// Most UTF-8 bytes of a service or method name (`MAX_SERVICE_NAME_LEN`,
/// `MAX_METHOD_NAME_LEN`): the wire limit on names, 256.
pub use crate::wire::limits::MAX_NAME_BYTES;

/// Most methods per service (`MAX_MANIFEST_METHODS`).
pub const MAX_METHODS: usize = 10_000;

/// Most fields per message type (`MAX_MANIFEST_FIELDS_PER_METHOD`, applied per type).
pub const MAX_FIELDS_PER_TYPE: usize = 1_000;

/// Most types in one contract's graph (`MAX_MANIFEST_TYPE_HASHES`).
pub const MAX_TYPES: usize = 100_000;
