//! [`ContractManifest`]: the `manifest.json` of a published contract collection (protocol
//! reference §8.1; `aster/contract/manifest.py` and `publication.py` of aster-rpc 0.1.2).
//!
//! The manifest is **not** canonical: nothing in it feeds the contract id. It gives dynamic
//! clients (the Python proxy, `aster shell`) method and field shapes.
//!
//! [`ContractManifest::new`] fills it the way 0.1.2's `build_collection` does: `v` = 1,
//! `canonical_encoding` = `"fory-xlang/0.15"`, `type_count` = number of graph nodes,
//! `type_hashes` = their hashes (hex, sorted), `methods` = the 0.1.2 method descriptors
//! (sorted by name). Left at their defaults, as 0.1.2 leaves them (the publisher's identity
//! and time go into the registry's ArtifactRef, not here): `deprecated` = false,
//! `semver` / `vcs_revision` / `vcs_tag` / `vcs_url` / `changelog` = null,
//! `published_by` = `""`, `published_at_epoch_ms` = 0. Callers may set them.
//!
//! Field descriptors follow 0.1.2's `_classify_type` (kinds `string`, `int`, `float`, `bool`,
//! `bytes`, `list`, `map`, `enum`, `ref`; everything else, sets included, is `string`), with
//! two deliberate differences for types Python cannot express: integer widths (`int8`…`uint64`)
//! are `int` and `float32` is `float` (Python's pyfory markers fall back to `string`).
//! Descriptions carry no defaults, so defaults assume the Rust type's `Default` is its zero
//! value (what `#[derive(Default)]` gives), written as a Python dataclass with that default
//! would write it: `""`, `0`, `0.0`, `false`, `"b''"` for bytes (Python's `str(b"")`),
//! `null` for optionals, `empty_list` / `empty_map` kinds for lists / maps, `factory` for
//! sets and messages, `"Enum.FIRST"` for enums; `required` is always false.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::build::BuiltContract;
use super::describe::{FieldDesc, FieldType, MethodType, ServiceDesc, TypeDesc, TypeDescKind, primitive};
use super::ids::ContractId;
use super::limits::{MAX_FIELDS_PER_TYPE, MAX_METHODS, MAX_TYPES};
use crate::admission::push_python_ascii;

/// Field-schema version written in `v`.
pub const FIELD_SCHEMA_VERSION: u32 = 1;

/// The `canonical_encoding` value 0.1.2 writes.
pub const CANONICAL_ENCODING: &str = "fory-xlang/0.15";

fn default_v() -> u32 {
    FIELD_SCHEMA_VERSION
}
fn default_version() -> i32 {
    1
}
fn default_encoding() -> String {
    CANONICAL_ENCODING.to_owned()
}
fn default_scoped() -> String {
    "shared".to_owned()
}
fn default_pattern() -> String {
    "unary".to_owned()
}
fn default_kind_none() -> String {
    "none".to_owned()
}
fn default_kind_string() -> String {
    "string".to_owned()
}

/// The persisted record of a contract (JSON keys and order as in 0.1.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractManifest {
    /// Field-schema version (1).
    #[serde(default = "default_v")]
    pub v: u32,
    /// Service name.
    #[serde(default)]
    pub service: String,
    /// Service version.
    #[serde(default = "default_version")]
    pub version: i32,
    /// 64 lowercase hex digits.
    #[serde(default)]
    pub contract_id: String,
    /// `"fory-xlang/0.15"`.
    #[serde(default = "default_encoding")]
    pub canonical_encoding: String,
    /// Number of TypeDefs (graph nodes).
    #[serde(default)]
    pub type_count: usize,
    /// Hex hashes of the TypeDefs, sorted.
    #[serde(default)]
    pub type_hashes: Vec<String>,
    /// Number of methods.
    #[serde(default)]
    pub method_count: usize,
    /// Method descriptors, sorted by name.
    #[serde(default)]
    pub methods: Vec<ManifestMethod>,
    /// Serialization modes in producer order.
    #[serde(default)]
    pub serialization_modes: Vec<String>,
    /// `"shared"` or `"session"`.
    #[serde(default = "default_scoped")]
    pub scoped: String,
    /// Whether this contract version is deprecated.
    #[serde(default)]
    pub deprecated: bool,
    /// Optional semantic version.
    #[serde(default)]
    pub semver: Option<String>,
    /// Optional VCS revision.
    #[serde(default)]
    pub vcs_revision: Option<String>,
    /// Optional VCS tag.
    #[serde(default)]
    pub vcs_tag: Option<String>,
    /// Optional VCS URL.
    #[serde(default)]
    pub vcs_url: Option<String>,
    /// Optional changelog entry.
    #[serde(default)]
    pub changelog: Option<String>,
    /// Publisher identity (empty in collections built by 0.1.2).
    #[serde(default)]
    pub published_by: String,
    /// Publication time, ms since the Unix epoch (0 in collections built by 0.1.2).
    #[serde(default)]
    pub published_at_epoch_ms: i64,
}

/// One method descriptor of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestMethod {
    /// Method name.
    pub name: String,
    /// `"unary"`, `"server_stream"`, `"client_stream"` or `"bidi_stream"`.
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// Display name of the request type (Python class name, or `str`/`int`/… for primitives).
    #[serde(default)]
    pub request_type: String,
    /// Display name of the response type.
    #[serde(default)]
    pub response_type: String,
    /// Wire tag of the request type (`"pkg/Name"`, `""` for primitives and enums).
    #[serde(default)]
    pub request_wire_tag: String,
    /// Wire tag of the response type.
    #[serde(default)]
    pub response_wire_tag: String,
    /// Default timeout in seconds, or null.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Idempotent flag.
    #[serde(default)]
    pub idempotent: bool,
    /// Fields of the request type.
    #[serde(default)]
    pub fields: Vec<ManifestField>,
    /// Fields of the response type.
    #[serde(default)]
    pub response_fields: Vec<ManifestField>,
}

/// One field descriptor (v1 field schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestField {
    /// Field name.
    pub name: String,
    /// `string`, `int`, `float`, `bool`, `bytes`, `list`, `map`, `enum` or `ref`.
    #[serde(default = "default_kind_string")]
    pub kind: String,
    /// `Optional[...]`.
    #[serde(default)]
    pub nullable: bool,
    /// No default value.
    #[serde(default)]
    pub required: bool,
    /// The default value (JSON-safe) or null.
    #[serde(default)]
    pub default_value: Value,
    /// `none`, `value`, `empty_list`, `empty_map`, `factory` (or `null` for upgraded legacy fields).
    #[serde(default = "default_kind_none")]
    pub default_kind: String,
    /// Referenced class name (`ref`, `enum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_name: Option<String>,
    /// Wire tag of a `ref`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_tag: Option<String>,
    /// Values of an `enum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<Value>>,
    /// Element kind of a `list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_kind: Option<String>,
    /// Element class name of a `list` of refs/enums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_ref: Option<String>,
    /// Element wire tag of a `list` of refs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_wire_tag: Option<String>,
    /// Elements of a `list` are nullable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_nullable: Option<bool>,
    /// Key kind of a `map`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_kind: Option<String>,
    /// Value kind of a `map`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_kind: Option<String>,
    /// Value class name of a `map` of refs/enums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_ref: Option<String>,
    /// Values of a `map` are nullable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_nullable: Option<bool>,
    /// Free-form properties (always `{}` from 0.1.2).
    #[serde(default)]
    pub properties: Map<String, Value>,
}

impl ContractManifest {
    /// The manifest 0.1.2 would publish for `built` (made from `desc`).
    pub fn new(built: &BuiltContract, desc: &ServiceDesc) -> Self {
        let mut type_hashes: Vec<String> = built.type_hashes_by_fqn.values().map(|h| h.to_hex()).collect();
        type_hashes.sort();
        let mut methods: Vec<ManifestMethod> = desc.methods.iter().map(method_descriptor).collect();
        methods.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            v: FIELD_SCHEMA_VERSION,
            service: built.contract.name.clone(),
            version: built.contract.version,
            contract_id: built.contract_id.to_hex(),
            canonical_encoding: CANONICAL_ENCODING.to_owned(),
            type_count: type_hashes.len(),
            type_hashes,
            method_count: built.contract.methods.len(),
            methods,
            serialization_modes: built.contract.serialization_modes.clone(),
            scoped: built.contract.scoped.as_str().to_owned(),
            deprecated: false,
            semver: None,
            vcs_revision: None,
            vcs_tag: None,
            vcs_url: None,
            changelog: None,
            published_by: String::new(),
            published_at_epoch_ms: 0,
        }
    }

    /// Parses manifest JSON, capping list sizes like 0.1.2's `from_json` (methods, type
    /// hashes, fields per method). Unknown keys (e.g. HEAD's `producer_language`) are ignored.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let mut m: Self = serde_json::from_str(text)?;
        m.methods.truncate(MAX_METHODS);
        m.type_hashes.truncate(MAX_TYPES);
        for method in &mut m.methods {
            method.fields.truncate(MAX_FIELDS_PER_TYPE);
        }
        Ok(m)
    }

    /// The JSON text as 0.1.2 writes it (`json.dumps(asdict(m), indent=2)`: two-space indent,
    /// DEL and non-ASCII escaped as `\uxxxx`).
    pub fn to_json_pretty(&self) -> Result<String, serde_json::Error> {
        Ok(ensure_ascii(&serde_json::to_string_pretty(self)?))
    }

    /// Whether the manifest records `id` (0.1.2 refuses to start a server on a mismatch).
    pub fn matches(&self, id: &ContractId) -> bool {
        self.contract_id.parse::<ContractId>().is_ok_and(|m| m == *id)
    }
}

/// Python's `ensure_ascii` applied to serde_json's text: DEL and every non-ASCII char as
/// `\uxxxx` (UTF-16 surrogate pairs above U+FFFF), the rule of
/// [`python_ascii_escapes`](crate::admission::python_ascii_escapes). Only
/// string contents can hold such chars in JSON text (structural characters are printable ASCII
/// or whitespace below DEL, and serde_json has escaped the control characters already).
fn ensure_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_python_ascii(&mut out, s);
    out
}

/// Python `__name__` of the type in a method slot.
fn display_name(t: &MethodType) -> (String, String, Option<TypeDesc>) {
    match t {
        MethodType::None => (String::new(), String::new(), None),
        MethodType::Primitive(p) => {
            let name = match *p {
                primitive::STRING => "str",
                primitive::INT64 => "int",
                primitive::FLOAT64 => "float",
                primitive::BOOL => "bool",
                primitive::BINARY => "bytes",
                primitive::NULL => "",
                other => other,
            };
            (name.to_owned(), String::new(), None)
        }
        MethodType::Message(f) => {
            let d = f();
            let tag = match d.kind {
                TypeDescKind::Message(_) => wire_tag(&d),
                TypeDescKind::Enum(_) => String::new(),
            };
            (d.name.clone(), tag, Some(d))
        }
    }
}

fn wire_tag(d: &TypeDesc) -> String {
    if d.package.is_empty() { d.name.clone() } else { format!("{}/{}", d.package, d.name) }
}

fn method_descriptor(m: &super::describe::MethodDesc) -> ManifestMethod {
    let (request_type, request_wire_tag, req) = display_name(&m.request);
    let (response_type, response_wire_tag, resp) = display_name(&m.response);
    ManifestMethod {
        name: m.name.clone(),
        pattern: m.pattern.as_str().to_owned(),
        request_type,
        response_type,
        request_wire_tag,
        response_wire_tag,
        timeout: if m.timeout_secs == 0.0 { None } else { Some(m.timeout_secs) },
        idempotent: m.idempotent,
        fields: req.map(|d| type_fields(&d)).unwrap_or_default(),
        response_fields: resp.map(|d| type_fields(&d)).unwrap_or_default(),
    }
}

fn type_fields(d: &TypeDesc) -> Vec<ManifestField> {
    match &d.kind {
        TypeDescKind::Message(fields) => fields.iter().map(field_descriptor).collect(),
        TypeDescKind::Enum(_) => Vec::new(),
    }
}

/// `_classify_type` result.
#[derive(Default)]
struct Kind {
    kind: String,
    nullable: bool,
    ref_name: Option<String>,
    wire_tag: Option<String>,
    enum_values: Option<Vec<Value>>,
}

fn is_int(p: &str) -> bool {
    matches!(
        p,
        primitive::INT8
            | primitive::INT16
            | primitive::INT32
            | primitive::INT64
            | primitive::UINT8
            | primitive::UINT16
            | primitive::UINT32
            | primitive::UINT64
    )
}

fn peel_optional(t: &FieldType) -> (bool, &FieldType) {
    let mut t = t;
    let mut nullable = false;
    while let FieldType::Optional(inner) = t {
        nullable = true;
        t = inner;
    }
    (nullable, t)
}

fn classify(t: &FieldType) -> Kind {
    let (nullable, t) = peel_optional(t);
    let mut k = Kind { nullable, ..Kind::default() };
    k.kind = match t {
        FieldType::Primitive(p) if *p == primitive::STRING => "string".into(),
        FieldType::Primitive(p) if is_int(p) => "int".into(),
        FieldType::Primitive(p) if *p == primitive::FLOAT64 || *p == primitive::FLOAT32 => "float".into(),
        FieldType::Primitive(p) if *p == primitive::BOOL => "bool".into(),
        FieldType::Primitive(p) if *p == primitive::BINARY => "bytes".into(),
        FieldType::Ref { describe, .. } => {
            let d = describe();
            match d.kind {
                TypeDescKind::Enum(values) => {
                    k.ref_name = Some(d.name.clone());
                    k.enum_values = Some(values.iter().map(|(_, v)| Value::from(*v)).collect());
                    "enum".into()
                }
                TypeDescKind::Message(_) => {
                    k.ref_name = Some(d.name.clone());
                    k.wire_tag = Some(wire_tag(&d));
                    "ref".into()
                }
            }
        }
        FieldType::List(_) => "list".into(),
        FieldType::Map(..) => "map".into(),
        _ => "string".into(),
    };
    k
}

/// The assumed zero-value default of a field (see the module docs).
fn default_of(t: &FieldType) -> (Value, &'static str) {
    let (nullable, t) = peel_optional(t);
    if nullable {
        return (Value::Null, "value");
    }
    match t {
        FieldType::Primitive(p) if *p == primitive::STRING => (Value::from(""), "value"),
        FieldType::Primitive(p) if is_int(p) => (Value::from(0), "value"),
        FieldType::Primitive(p) if *p == primitive::FLOAT64 || *p == primitive::FLOAT32 => (Value::from(0.0), "value"),
        FieldType::Primitive(p) if *p == primitive::BOOL => (Value::from(false), "value"),
        FieldType::Primitive(p) if *p == primitive::BINARY => (Value::from("b''"), "value"),
        FieldType::List(_) => (Value::Null, "empty_list"),
        FieldType::Map(..) => (Value::Null, "empty_map"),
        FieldType::Set(_) => (Value::Null, "factory"),
        FieldType::Ref { describe, .. } => {
            let d = describe();
            match &d.kind {
                TypeDescKind::Enum(values) => match values.first() {
                    Some((first, _)) => (Value::from(format!("{}.{first}", d.name)), "value"),
                    None => (Value::Null, "value"),
                },
                TypeDescKind::Message(_) => (Value::Null, "factory"),
            }
        }
        _ => (Value::Null, "value"),
    }
}

fn field_descriptor(f: &FieldDesc) -> ManifestField {
    let info = classify(&f.ty);
    let (default_value, default_kind) = default_of(&f.ty);
    let mut out = ManifestField {
        name: f.name.clone(),
        kind: info.kind,
        nullable: info.nullable,
        required: false,
        default_value,
        default_kind: default_kind.to_owned(),
        ref_name: info.ref_name,
        wire_tag: info.wire_tag,
        enum_values: info.enum_values,
        item_kind: None,
        item_ref: None,
        item_wire_tag: None,
        item_nullable: None,
        key_kind: None,
        value_kind: None,
        value_ref: None,
        value_nullable: None,
        properties: Map::new(),
    };
    let (_, inner) = peel_optional(&f.ty);
    match inner {
        FieldType::List(e) => {
            let elem = classify(e);
            out.item_kind = Some(elem.kind);
            out.item_nullable = Some(elem.nullable);
            out.item_ref = elem.ref_name.filter(|s| !s.is_empty());
            out.item_wire_tag = elem.wire_tag.filter(|s| !s.is_empty());
        }
        FieldType::Map(k, v) => {
            let key = classify(k);
            let val = classify(v);
            out.key_kind = Some(key.kind);
            out.value_kind = Some(val.kind);
            out.value_nullable = Some(val.nullable);
            out.value_ref = val.ref_name.filter(|s| !s.is_empty());
        }
        _ => {}
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// `json.dumps({"a": "\x7f\x80é😀\n"}, indent=2)` in Python 3: DEL is escaped too, the
    /// structural newlines and spaces are not.
    #[test]
    fn ensure_ascii_escapes_del_like_python() {
        let text = serde_json::to_string_pretty(&serde_json::json!({"a": "\u{7f}\u{80}é😀\n"})).unwrap();
        assert_eq!(ensure_ascii(&text), "{\n  \"a\": \"\\u007f\\u0080\\u00e9\\ud83d\\ude00\\n\"\n}");
    }
}
