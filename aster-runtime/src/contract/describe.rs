//! How Rust types and services describe themselves for contract identity.
//!
//! `#[derive]` / service macros implement [`Describe`] and build a [`ServiceDesc`];
//! [`build_contract`](super::build_contract) turns that into the canonical
//! [`ServiceContract`](super::ServiceContract) and its [`ContractId`](super::ContractId).
//!
//! # Type mapping under [`Profile::V0_1`](super::Profile::V0_1) (aster-rpc 0.1.2)
//!
//! The descriptor vocabulary is profile-neutral; the profile decides the canonical form.
//! "Python" is the aster-rpc 0.1.2 field annotation that produces the same FieldDef, checked
//! against the real 0.1.2 package (`tests/data/contract_py012.json`).
//!
//! | Rust field type | [`FieldType`] | 0.1.2 FieldDef | Python 0.1.2 |
//! |---|---|---|---|
//! | `String`, `&str` | `Primitive("string")` | PRIMITIVE `"string"` | `str` |
//! | `bool` | `Primitive("bool")` | PRIMITIVE `"bool"` | `bool` |
//! | `i64` | `Primitive("int64")` | PRIMITIVE `"int64"` | `int` |
//! | `f64` | `Primitive("float64")` | PRIMITIVE `"float64"` | `float` |
//! | `Vec<u8>`, `bytes::Bytes` | `Primitive("binary")` | PRIMITIVE `"binary"` | `bytes`, `bytearray` |
//! | `()` | `Primitive("null")` | PRIMITIVE `"null"` | `None` |
//! | `i8`, `i16`, `i32` | `Primitive("int8" \| "int16" \| "int32")` | **ANY** | `pyfory.int8/int16/int32` (TypeVars → ANY) |
//! | `u8`, `u16`, `u32`, `u64` | `Primitive("uint8" \| …)` | **ANY** | (no marker in pyfory 0.16; ANY) |
//! | `f32` | `Primitive("float32")` | **ANY** | `pyfory.float32` |
//! | `Option<T>` | `Optional(T)` | `optional = true`, rest as for `T` | `Optional[T]` (`T \| None` gives ANY, not optional!) |
//! | `Vec<T>` | `List(T)` | container LIST, element in `type_*` | `list[T]`, `typing.List[T]` |
//! | `HashSet<T>`, `BTreeSet<T>` | `Set(T)` | container SET | `set[T]`, `frozenset[T]` |
//! | `HashMap<K, V>`, `BTreeMap<K, V>` | `Map(K, V)` | container MAP, key in `container_key_*`, value in `type_*` | `dict[K, V]` |
//! | message type (derive) | `Ref { .. }` → [`TypeDescKind::Message`] | REF(type hash); SELF_REF(FQN) on a cycle back-edge; REF(32 zero bytes) on a forward edge inside a cycle | `@wire_type` `@dataclass` |
//! | C-like enum (derive) | `Ref { .. }` → [`TypeDescKind::Enum`] | **ANY**, and no TypeDef | `enum.Enum`, `enum.IntEnum` |
//! | `Vec<Vec<T>>`, `Vec<Option<T>>`, `HashMap<K, Vec<V>>`, `Option<T>` as element/key/value | nested | **ANY** in that slot (outer container kept) | `list[list[T]]`, `list[Optional[T]]`, … |
//! | anything else | `Any` | ANY | `Any`, `datetime`, `tuple[..]`, `Union[..]` |
//!
//! Notes:
//! * `Option<Option<T>>` is the same as `Option<T>` (Python's `Optional` flattens).
//! * A map key that is a message becomes REF(hash) in `container_key_ref`; a key that is a
//!   back-edge becomes SELF_REF with **no** name (0.1.2 drops it) and empty key bytes.
//! * Message types reachable only through an ANY slot (e.g. `Vec<Vec<Leaf>>`) still become
//!   TypeDefs of the contract and still count as edges of the cycle analysis.
//! * Primitive names outside [`PRIMITIVE_NAMES`] are rejected
//!   ([`ContractError::UnknownPrimitive`](super::ContractError::UnknownPrimitive)).
//!
//! Method request/response slots ([`MethodType`]):
//!
//! | [`MethodType`] | 0.1.2 hash | Python 0.1.2 |
//! |---|---|---|
//! | `Message(f)`, `f()` a message | the TypeDef's hash | dataclass |
//! | `Message(f)`, `f()` an enum | 32 zero bytes | enum class |
//! | `Primitive("string" \| "int64" \| "float64" \| "bool" \| "binary")` | `BLAKE3(name)` | `str`, `int`, `float`, `bool`, `bytes` |
//! | `Primitive(other)` | 32 zero bytes | (`bytearray` → zeros; pyfory markers make 0.1.2 raise) |
//! | `None` | 32 zero bytes | `None` |
//!
//! # FQNs
//!
//! 0.1.2 keys the type graph by the Python `module.qualname` of each dataclass. That key is
//! visible in the bytes only as `self_ref_name` of cycle back-edges, and it decides where a
//! cycle is cut (the member with the smallest FQN is the DFS start; successors are visited in
//! FQN order). For types outside cycles it has no effect on any hash. To match a Python
//! producer's recursive types bit for bit, [`TypeDesc::fqn`] must equal the Python class's
//! `module.qualname`. The recommended default for derives is `"{package}.{name}"` from the
//! wire tag: it equals the Python FQN when the Python module is named like the tag namespace
//! (and always for untagged Python types, whose tag is `module.qualname`); macros should
//! offer an override (e.g. `fqn = "taskmanager.TaskAck"`). Rust `module_path!()` never
//! matches a Python module.

use super::model::{MethodPattern, ScopeKind};

/// The primitive names a [`FieldType::Primitive`] / [`MethodType::Primitive`] may use.
pub const PRIMITIVE_NAMES: &[&str] = &[
    primitive::STRING,
    primitive::BOOL,
    primitive::INT8,
    primitive::INT16,
    primitive::INT32,
    primitive::INT64,
    primitive::UINT8,
    primitive::UINT16,
    primitive::UINT32,
    primitive::UINT64,
    primitive::FLOAT32,
    primitive::FLOAT64,
    primitive::BINARY,
    primitive::NULL,
];

/// Names of the descriptor primitives (see the mapping table in [the module docs](self)).
pub mod primitive {
    /// UTF-8 string (`String`, `&str`).
    pub const STRING: &str = "string";
    /// `bool`.
    pub const BOOL: &str = "bool";
    /// `i8` (ANY under v0.1).
    pub const INT8: &str = "int8";
    /// `i16` (ANY under v0.1).
    pub const INT16: &str = "int16";
    /// `i32` (ANY under v0.1).
    pub const INT32: &str = "int32";
    /// `i64` (Python `int`).
    pub const INT64: &str = "int64";
    /// `u8` (ANY under v0.1).
    pub const UINT8: &str = "uint8";
    /// `u16` (ANY under v0.1).
    pub const UINT16: &str = "uint16";
    /// `u32` (ANY under v0.1).
    pub const UINT32: &str = "uint32";
    /// `u64` (ANY under v0.1).
    pub const UINT64: &str = "uint64";
    /// `f32` (ANY under v0.1).
    pub const FLOAT32: &str = "float32";
    /// `f64` (Python `float`).
    pub const FLOAT64: &str = "float64";
    /// Byte string (`Vec<u8>`, `bytes::Bytes`; Python `bytes`).
    pub const BINARY: &str = "binary";
    /// The unit type (Python `None`).
    pub const NULL: &str = "null";
}

/// The recommended [`TypeDesc::fqn`] for a type with wire tag `package/name`:
/// `"{package}.{name}"`, or `name` when the package is empty. Equals the Python 0.1.2 FQN
/// (`module.qualname`) when the Python module is named like the tag namespace; see
/// [FQNs](self#fqns).
pub fn type_fqn(package: &str, name: &str) -> String {
    if package.is_empty() { name.to_owned() } else { format!("{package}.{name}") }
}

/// How a Rust type appears in a contract.
pub trait Describe {
    /// The description of this type.
    fn describe() -> TypeDesc;
}

/// The description of one user type (message or enum).
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDesc {
    /// Wire-tag namespace (`"taskmgr"` for `taskmgr/TaskAck`; `""` for a tag without `/`).
    pub package: String,
    /// Wire-tag type name (`"TaskAck"`).
    pub name: String,
    /// Node key of the type graph: the Python `module.qualname` for 0.1.2 compatibility; see
    /// [FQNs](self#fqns). Recommended default `"{package}.{name}"`.
    pub fqn: String,
    /// Message fields or enum values.
    pub kind: TypeDescKind,
}

/// The shape of a described type.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeDescKind {
    /// A struct-like message; fields in declaration order (ids are assigned 1..n).
    Message(Vec<FieldDesc>),
    /// A C-like enum: `(name, value)` pairs. Under v0.1 enums are ANY at field level and
    /// never become TypeDefs; the values only reach the manifest.
    Enum(Vec<(String, i32)>),
}

/// One field of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDesc {
    /// Field name as written on the wire (the Python attribute name).
    pub name: String,
    /// Field type.
    pub ty: FieldType,
}

/// The type of a field (or of a container's element / key / value).
#[derive(Debug, Clone)]
pub enum FieldType {
    /// A primitive by descriptor name (one of [`PRIMITIVE_NAMES`]).
    Primitive(&'static str),
    /// A user type (message or enum).
    Ref {
        /// Must equal `describe().fqn`. Derives must write it out rather than call
        /// `describe()` (a recursive type's `describe()` would recurse forever).
        fqn: String,
        /// The referenced type's [`Describe::describe`].
        describe: fn() -> TypeDesc,
    },
    /// `Vec<T>`.
    List(Box<FieldType>),
    /// `HashSet<T>` / `BTreeSet<T>`.
    Set(Box<FieldType>),
    /// `HashMap<K, V>` / `BTreeMap<K, V>`.
    Map(Box<FieldType>, Box<FieldType>),
    /// `Option<T>`.
    Optional(Box<FieldType>),
    /// Anything without a canonical form (Fory `Any`).
    Any,
}

impl PartialEq for FieldType {
    /// Structural equality; references compare by FQN only (function pointers are not
    /// compared).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Primitive(a), Self::Primitive(b)) => a == b,
            (Self::Ref { fqn: a, .. }, Self::Ref { fqn: b, .. }) => a == b,
            (Self::List(a), Self::List(b)) | (Self::Set(a), Self::Set(b)) | (Self::Optional(a), Self::Optional(b)) => {
                a == b
            }
            (Self::Map(ak, av), Self::Map(bk, bv)) => ak == bk && av == bv,
            (Self::Any, Self::Any) => true,
            _ => false,
        }
    }
}

/// One method as the service macro describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodDesc {
    /// Method name (the Python function name; `@rpc(name=…)` does not reach 0.1.2 contracts).
    pub name: String,
    /// Call pattern.
    pub pattern: MethodPattern,
    /// Request type (the element type for client/bidi streams).
    pub request: MethodType,
    /// Response type (the element type for server/bidi streams).
    pub response: MethodType,
    /// Idempotent flag.
    pub idempotent: bool,
    /// Default timeout in seconds; `0.0` = none. Must be finite and not negative.
    pub timeout_secs: f64,
}

/// A method's request or response type.
#[derive(Debug, Clone)]
pub enum MethodType {
    /// A user type (message, or enum → zero hash under v0.1).
    Message(fn() -> TypeDesc),
    /// A primitive by descriptor name (one of [`PRIMITIVE_NAMES`]).
    Primitive(&'static str),
    /// No type (`()`); 32 zero bytes.
    None,
}

impl PartialEq for MethodType {
    /// Messages compare by the FQN their description reports.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Message(a), Self::Message(b)) => a().fqn == b().fqn,
            (Self::Primitive(a), Self::Primitive(b)) => a == b,
            (Self::None, Self::None) => true,
            _ => false,
        }
    }
}

impl MethodType {
    /// The user type `T`.
    pub fn of<T: Describe>() -> Self {
        Self::Message(T::describe)
    }
}

/// A service as the service macro describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDesc {
    /// Service name.
    pub name: String,
    /// Service version.
    pub version: i32,
    /// Scope.
    pub scope: ScopeKind,
    /// Serialization mode names in preference order (`"xlang"`, `"native"`, `"row"`, `"json"`);
    /// empty means `["xlang"]` (the 0.1.2 default).
    pub serialization: Vec<String>,
    /// Methods (any order; the contract sorts them).
    pub methods: Vec<MethodDesc>,
}
