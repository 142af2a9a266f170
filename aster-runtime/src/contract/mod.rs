//! Contract identity (pure, no I/O): the canonical contract model, its canonical bytes, type
//! hashes and `contract_id`, the type-graph builder and the published manifest.
//!
//! `contract_id = BLAKE3(canonical bytes of the ServiceContract)` (64 lowercase hex digits);
//! a method refers to its request/response types by `BLAKE3(canonical bytes of the TypeDef)`,
//! so the types form a Merkle DAG and a change anywhere in a request/response graph changes
//! the contract id. Protocol reference §6; the target dialect is [`Profile::V0_1`]
//! (aster-rpc 0.1.2).
//!
//! * [`canonical`]: the byte-level primitives ([`CanonicalWriter`]);
//! * [`model`]: [`ServiceContract`], [`MethodDef`], [`TypeDef`], [`FieldDef`], … and the
//!   enumerations, each with `canonical_bytes(profile)`;
//! * [`ids`]: [`TypeHash`], [`ContractId`];
//! * [`describe`]: the [`Describe`] trait and descriptors that derive macros produce, with
//!   the Rust ↔ Python 0.1.2 type-mapping table;
//! * [`build`]: [`build_contract`], reproducing 0.1.2's graph walk and cycle handling;
//! * [`manifest`]: [`ContractManifest`] (`manifest.json`).
//!
//! ```
//! # use aster_runtime::contract::*;
//! fn echo_request() -> TypeDesc {
//!     TypeDesc {
//!         package: "echo".into(),
//!         name: "EchoRequest".into(),
//!         fqn: "echo.EchoRequest".into(),
//!         kind: TypeDescKind::Message(vec![FieldDesc { name: "message".into(), ty: FieldType::Primitive("string") }]),
//!     }
//! }
//! fn echo_response() -> TypeDesc {
//!     TypeDesc {
//!         package: "echo".into(),
//!         name: "EchoResponse".into(),
//!         fqn: "echo.EchoResponse".into(),
//!         kind: TypeDescKind::Message(vec![FieldDesc { name: "reply".into(), ty: FieldType::Primitive("string") }]),
//!     }
//! }
//! let desc = ServiceDesc {
//!     name: "EchoService".into(),
//!     version: 1,
//!     scope: ScopeKind::Shared,
//!     serialization: vec!["xlang".into()],
//!     methods: vec![MethodDesc {
//!         name: "echo".into(),
//!         pattern: MethodPattern::Unary,
//!         request: MethodType::Message(echo_request),
//!         response: MethodType::Message(echo_response),
//!         idempotent: false,
//!         timeout_secs: 0.0,
//!     }],
//! };
//! let built = build_contract(&desc, Profile::V0_1)?;
//! assert_eq!(built.contract_id.to_string(), "8267a4fb1b48fe4cc68e82a4e842b595a9328985714d89c7a25c061e83fddb20");
//! # Ok::<(), ContractError>(())
//! ```

pub mod build;
pub mod canonical;
pub mod describe;
pub mod ids;
pub mod limits;
pub mod manifest;
pub mod model;

#[cfg(test)]
mod tests;

pub use build::{BuiltContract, build_contract};
pub use canonical::CanonicalWriter;
pub use describe::{
    Describe, FieldDesc, FieldType, MethodDesc, MethodType, PRIMITIVE_NAMES, ServiceDesc, TypeDesc, TypeDescKind,
    primitive, type_fqn,
};
pub use ids::{ContractId, ParseDigestError, TypeHash};
pub use manifest::{ContractManifest, ManifestField, ManifestMethod};
pub use model::{
    Canonical, CapabilityKind, CapabilityRequirement, ContainerKind, EnumValueDef, FieldDef, MethodDef, MethodPattern,
    ScopeKind, ServiceContract, TypeDef, TypeDefKind, TypeKind, UnionVariantDef, nfc,
};

/// Which canonical dialect to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// aster-rpc 0.1.2 (ALPN `aster/1`, v0.1 dialect): 12-field FieldDef, no
    /// `producer_language`, fields numbered in declaration order, 0.1.2's cycle handling
    /// (reversed hash order inside a cycle → zero hashes for forward edges).
    #[default]
    V0_1,
}

/// Invalid input to [`build_contract`].
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ContractError {
    /// A required name is empty.
    #[error("empty {what}")]
    EmptyName {
        /// Which name (`"service name"`, `"method name"`, `"type name"`, `"type fqn"`, `"field name"`).
        what: &'static str,
    },
    /// A service or method name is longer than [`limits::MAX_NAME_BYTES`].
    #[error("{what} of {len} bytes exceeds {max}")]
    NameTooLong {
        /// Which name.
        what: &'static str,
        /// Its length in UTF-8 bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Two methods have the same (NFC-normalized) name.
    #[error("duplicate method name {0:?}")]
    DuplicateMethod(String),
    /// Two fields of one type have the same name.
    #[error("duplicate field {field:?} in {fqn}")]
    DuplicateField {
        /// The type.
        fqn: String,
        /// The field name.
        field: String,
    },
    /// More than [`limits::MAX_METHODS`] methods.
    #[error("{count} methods exceed {max}")]
    TooManyMethods {
        /// Number of methods.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A type has more than [`limits::MAX_FIELDS_PER_TYPE`] fields.
    #[error("{fqn} has {count} fields, more than {max}")]
    TooManyFields {
        /// The type.
        fqn: String,
        /// Number of fields.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The type graph has more than [`limits::MAX_TYPES`] types.
    #[error("type graph exceeds {max} types")]
    TooManyTypes {
        /// The limit.
        max: usize,
    },
    /// A primitive name outside [`PRIMITIVE_NAMES`].
    #[error("unknown primitive type name {0:?}")]
    UnknownPrimitive(String),
    /// Two different descriptions use the same FQN.
    #[error("two different types share the FQN {fqn:?}")]
    ConflictingType {
        /// The FQN.
        fqn: String,
    },
    /// A `FieldType::Ref` names a different FQN than its `describe()` returns.
    #[error("reference to {expected:?} describes {found:?}")]
    FqnMismatch {
        /// The FQN in the reference.
        expected: String,
        /// The FQN the description reports.
        found: String,
    },
    /// A method timeout that is negative, NaN or infinite.
    #[error("invalid timeout {value} for method {method:?}")]
    InvalidTimeout {
        /// The method.
        method: String,
        /// The timeout in seconds.
        value: f64,
    },
}
