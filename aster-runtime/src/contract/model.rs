//! The canonical contract data model (protocol reference §6.2/§6.3; `core/src/contract.rs`,
//! `aster/contract/identity.py`) and its canonical encoding.
//!
//! Field numbers are the order in which fields are written (ascending). Under
//! [`Profile::V0_1`] a [`FieldDef`] has 12 fields and a [`ServiceContract`] ends after
//! `requires` (no `producer_language`).
//!
//! What the encoder does on its own (callers need not pre-sort):
//! * [`TypeDef`] fields are written sorted by `id`, enum values by `value`, union variants
//!   by `id` (stable sorts, ties keep the given order);
//! * [`ServiceContract`] methods are written sorted by their NFC-normalized name
//!   (code-point order);
//! * [`CapabilityRequirement`] roles are NFC-normalized, then sorted by code point.
//!
//! Names (service, method, type, field, package) are written **as given**: only the sort
//! keys and the role strings are normalized (vectors `micro.nfc.nfc_name` and
//! `micro.nfc.nfd_name` hash differently).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::Profile;
use super::canonical::CanonicalWriter;
use super::ids::TypeHash;

/// NFC normalization of `s` (borrowed when already normalized).
pub fn nfc(s: &str) -> Cow<'_, str> {
    icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(s)
}

/// A contract value with a canonical encoding: the one mechanism behind every `TypeDef`,
/// `MethodDef`, `ServiceContract` … and the enumerations (bring it into scope to call
/// `canonical_bytes`).
pub trait Canonical {
    /// Writes the canonical fields, in ascending field-number order, for `profile`.
    fn write_canonical(&self, w: &mut CanonicalWriter, profile: Profile);

    /// The canonical bytes (what is hashed for type hashes and contract ids).
    fn canonical_bytes(&self, profile: Profile) -> Vec<u8> {
        let mut w = CanonicalWriter::new();
        self.write_canonical(&mut w, profile);
        w.into_bytes()
    }
}

macro_rules! canonical_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $(
                $(#[$vdoc])*
                $variant = $code,
            )+
        }

        impl $name {
            /// The fixed numeric value written on the wire.
            pub fn code(self) -> u64 {
                self as u64
            }

            /// The value with this numeric code, if any.
            pub fn from_code(code: u64) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl Canonical for $name {
            /// Writes the discriminant as an unsigned varint.
            fn write_canonical(&self, w: &mut CanonicalWriter, _profile: Profile) {
                w.write_varint(self.code());
            }
        }
    };
}

canonical_enum!(
    /// How a field's (element) type is given. JSON: `primitive|ref|self_ref|any`.
    TypeKind {
        /// A primitive, named in `type_primitive`.
        #[default]
        Primitive = 0,
        /// A message type, by hash in `type_ref`.
        Ref = 1,
        /// A back-edge of a cycle, by FQN in `self_ref_name`.
        SelfRef = 2,
        /// Anything else (Fory `Any`); 0.1.2 uses it for enums, unions, nested containers, …
        Any = 3,
    }
);

canonical_enum!(
    /// The container around a field's type. JSON: `none|list|set|map`.
    ContainerKind {
        /// A plain value.
        #[default]
        None = 0,
        /// `list[T]`.
        List = 1,
        /// `set[T]` / `frozenset[T]`.
        Set = 2,
        /// `dict[K, V]`.
        Map = 3,
    }
);

canonical_enum!(
    /// The kind of a [`TypeDef`]. JSON: `message|enum|union`.
    TypeDefKind {
        /// A struct-like message.
        #[default]
        Message = 0,
        /// An enumeration (never produced by the 0.1.2 graph walker).
        Enum = 1,
        /// A tagged union (never produced by the 0.1.2 graph walker).
        Union = 2,
    }
);

canonical_enum!(
    /// The call pattern of a method. JSON: `unary|server_stream|client_stream|bidi_stream`.
    MethodPattern {
        /// One request, one response.
        #[default]
        Unary = 0,
        /// One request, a stream of responses.
        ServerStream = 1,
        /// A stream of requests, one response.
        ClientStream = 2,
        /// Streams both ways.
        BidiStream = 3,
    }
);

canonical_enum!(
    /// The kind of a [`CapabilityRequirement`]. JSON: `role|any_of|all_of`.
    CapabilityKind {
        /// Exactly one role.
        #[default]
        Role = 0,
        /// At least one of the roles.
        AnyOf = 1,
        /// All of the roles.
        AllOf = 2,
    }
);

canonical_enum!(
    /// The dispatch scope of a service. JSON: `shared|session` (`stream` accepted on input).
    ScopeKind {
        /// One instance for all callers, one stream per call.
        #[default]
        Shared = 0,
        /// One instance per session stream (legacy name `STREAM`).
        #[serde(alias = "stream")]
        Session = 1,
    }
);

impl MethodPattern {
    /// The snake_case name used in JSON and manifests (`"unary"`, `"server_stream"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ServerStream => "server_stream",
            Self::ClientStream => "client_stream",
            Self::BidiStream => "bidi_stream",
        }
    }
}

impl ScopeKind {
    /// The lowercase name used in manifests (`"shared"` / `"session"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Session => "session",
        }
    }
}

fn write_opt_hash(w: &mut CanonicalWriter, h: &Option<TypeHash>) {
    match h {
        Some(h) => w.write_bytes(h.as_bytes()),
        None => w.write_bytes(&[]),
    }
}

/// One field of a MESSAGE [`TypeDef`] (12 canonical fields under [`Profile::V0_1`]).
///
/// For containers, the element type (the value type of a map) is in `type_*` and a map's key
/// type in `container_key_*`. Unused companions keep their zero values (`""`, `None` = empty
/// bytes, `false`, kind 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldDef {
    /// 1: field id (zigzag i32); 0.1.2 numbers fields 1..n in declaration order.
    pub id: i32,
    /// 2: field name.
    pub name: String,
    /// 3: kind of the (element) type.
    pub type_kind: TypeKind,
    /// 4: primitive name when `type_kind` is PRIMITIVE, else `""`.
    pub type_primitive: String,
    /// 5: type hash when `type_kind` is REF (written as 32 bytes), else `None` (empty bytes).
    pub type_ref: Option<TypeHash>,
    /// 6: FQN of the back-edge target when `type_kind` is SELF_REF, else `""`.
    pub self_ref_name: String,
    /// 7: `Optional[T]`.
    pub optional: bool,
    /// 8: Fory ref tracking (always false in 0.1.2).
    pub ref_tracked: bool,
    /// 9: container kind.
    pub container: ContainerKind,
    /// 10: kind of a map's key type (PRIMITIVE with `""` when unused).
    pub container_key_kind: TypeKind,
    /// 11: primitive name of a map's key type.
    pub container_key_primitive: String,
    /// 12: type hash of a map's key type (empty when not REF).
    pub container_key_ref: Option<TypeHash>,
}

impl Canonical for FieldDef {
    /// Writes the canonical fields.
    fn write_canonical(&self, w: &mut CanonicalWriter, profile: Profile) {
        w.write_i32(self.id);
        w.write_string(&self.name);
        self.type_kind.write_canonical(w, profile);
        w.write_string(&self.type_primitive);
        write_opt_hash(w, &self.type_ref);
        w.write_string(&self.self_ref_name);
        w.write_bool(self.optional);
        w.write_bool(self.ref_tracked);
        self.container.write_canonical(w, profile);
        self.container_key_kind.write_canonical(w, profile);
        w.write_string(&self.container_key_primitive);
        write_opt_hash(w, &self.container_key_ref);
        match profile {
            // v0.2 (HEAD) would add 13 `required` and 14 `default_value` here.
            Profile::V0_1 => {}
        }
    }
}

/// One value of an ENUM [`TypeDef`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnumValueDef {
    /// 1: value name.
    pub name: String,
    /// 2: numeric value (zigzag i32).
    pub value: i32,
}

impl Canonical for EnumValueDef {
    /// Writes the canonical fields.
    fn write_canonical(&self, w: &mut CanonicalWriter, _profile: Profile) {
        w.write_string(&self.name);
        w.write_i32(self.value);
    }
}

/// One variant of a UNION [`TypeDef`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnionVariantDef {
    /// 1: variant name.
    pub name: String,
    /// 2: variant id (zigzag i32).
    pub id: i32,
    /// 3: hash of the variant's type.
    pub type_ref: TypeHash,
}

impl Canonical for UnionVariantDef {
    /// Writes the canonical fields.
    fn write_canonical(&self, w: &mut CanonicalWriter, _profile: Profile) {
        w.write_string(&self.name);
        w.write_i32(self.id);
        w.write_bytes(self.type_ref.as_bytes());
    }
}

/// A user-defined type: message, enum or union. Its hash is [`TypeHash::of`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypeDef {
    /// 1: kind.
    pub kind: TypeDefKind,
    /// 2: package = wire-tag namespace (`"taskmgr"` for `taskmgr/TaskAck`).
    pub package: String,
    /// 3: name = wire-tag type name.
    pub name: String,
    /// 4: fields (MESSAGE), written sorted by id.
    pub fields: Vec<FieldDef>,
    /// 5: values (ENUM), written sorted by value.
    pub enum_values: Vec<EnumValueDef>,
    /// 6: variants (UNION), written sorted by id.
    pub union_variants: Vec<UnionVariantDef>,
}

impl Canonical for TypeDef {
    /// Writes the canonical fields. All three lists are always written (empty = `00 0c`).
    fn write_canonical(&self, w: &mut CanonicalWriter, profile: Profile) {
        self.kind.write_canonical(w, profile);
        w.write_string(&self.package);
        w.write_string(&self.name);
        let mut fields: Vec<&FieldDef> = self.fields.iter().collect();
        fields.sort_by_key(|f| f.id);
        w.write_list_header(fields.len());
        for f in fields {
            f.write_canonical(w, profile);
        }
        let mut values: Vec<&EnumValueDef> = self.enum_values.iter().collect();
        values.sort_by_key(|v| v.value);
        w.write_list_header(values.len());
        for v in values {
            v.write_canonical(w, profile);
        }
        let mut variants: Vec<&UnionVariantDef> = self.union_variants.iter().collect();
        variants.sort_by_key(|v| v.id);
        w.write_list_header(variants.len());
        for v in variants {
            v.write_canonical(w, profile);
        }
    }
}

/// A role requirement. Never emitted by the 0.1.2 Python builder (it always writes "absent"),
/// but part of the canonical format.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CapabilityRequirement {
    /// 1: kind.
    pub kind: CapabilityKind,
    /// 2: roles; written NFC-normalized and sorted by code point.
    pub roles: Vec<String>,
}

impl Canonical for CapabilityRequirement {
    /// Writes the canonical fields.
    fn write_canonical(&self, w: &mut CanonicalWriter, profile: Profile) {
        self.kind.write_canonical(w, profile);
        let mut roles: Vec<Cow<'_, str>> = self.roles.iter().map(|r| nfc(r)).collect();
        roles.sort();
        w.write_string_list(&roles);
    }
}

fn write_requires(w: &mut CanonicalWriter, r: &Option<CapabilityRequirement>, profile: Profile) {
    match r {
        Some(r) => {
            w.write_present();
            r.write_canonical(w, profile);
        }
        None => w.write_absent(),
    }
}

/// One method of a [`ServiceContract`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MethodDef {
    /// 1: method name.
    pub name: String,
    /// 2: call pattern.
    pub pattern: MethodPattern,
    /// 3: request type (element type for client/bidi streams).
    pub request_type: TypeHash,
    /// 4: response type (element type for server/bidi streams).
    pub response_type: TypeHash,
    /// 5: idempotent flag.
    pub idempotent: bool,
    /// 6: default timeout in seconds (0.0 = none), float64.
    pub default_timeout: f64,
    /// 7: capability requirement (optional).
    pub requires: Option<CapabilityRequirement>,
}

impl Canonical for MethodDef {
    /// Writes the canonical fields.
    fn write_canonical(&self, w: &mut CanonicalWriter, profile: Profile) {
        w.write_string(&self.name);
        self.pattern.write_canonical(w, profile);
        w.write_bytes(self.request_type.as_bytes());
        w.write_bytes(self.response_type.as_bytes());
        w.write_bool(self.idempotent);
        w.write_f64(self.default_timeout);
        write_requires(w, &self.requires, profile);
    }
}

/// The top-level contract; [`ContractId::of`](super::ContractId::of) hashes its canonical bytes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceContract {
    /// 1: service name.
    pub name: String,
    /// 2: service version (zigzag i32).
    pub version: i32,
    /// 3: methods; written sorted by NFC-normalized name.
    pub methods: Vec<MethodDef>,
    /// 4: serialization mode names in producer order (`"xlang"`, `"native"`, `"row"`, `"json"`).
    pub serialization_modes: Vec<String>,
    /// 5: scope.
    pub scoped: ScopeKind,
    /// 6: service-level capability requirement (optional).
    pub requires: Option<CapabilityRequirement>,
}

impl Canonical for ServiceContract {
    /// Writes the canonical fields.
    fn write_canonical(&self, w: &mut CanonicalWriter, profile: Profile) {
        w.write_string(&self.name);
        w.write_i32(self.version);
        let mut methods: Vec<(Cow<'_, str>, &MethodDef)> = self.methods.iter().map(|m| (nfc(&m.name), m)).collect();
        methods.sort_by(|a, b| a.0.cmp(&b.0));
        w.write_list_header(methods.len());
        for (_, m) in methods {
            m.write_canonical(w, profile);
        }
        w.write_string_list(&self.serialization_modes);
        self.scoped.write_canonical(w, profile);
        write_requires(w, &self.requires, profile);
        match profile {
            // v0.2 (HEAD) would add 7 `producer_language` here.
            Profile::V0_1 => {}
        }
    }
}
