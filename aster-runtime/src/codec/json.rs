//! JSON mode (`serializationMode` 3): the payload encoding every Aster server accepts.
//!
//! Encoding matches the Python reference, `json.dumps(dataclasses.asdict(obj),
//! separators=(",", ":"))`, byte for byte for the usual field types: no whitespace, fields in
//! declaration order (serde's order), non-ASCII escaped as `\uXXXX` (Python's default
//! `ensure_ascii=True`; `U+007F` too), floats in Python `repr` form (`1.0`, `1e-05`, `1e+16`).
//! Differences: non-finite floats become `null` (Python writes `NaN`/`Infinity`, which is not
//! JSON), and map key order is the map's own iteration order.
//!
//! Decoding is strict like the reference: a key the Rust type does not declare, at any depth,
//! is a `CONTRACT_VIOLATION` (101) with the reference's details `unexpected_fields`,
//! `location` and `expected_class`. User types need no `#[serde(deny_unknown_fields)]`:
//! unknown keys are found with `serde_ignored`. Malformed JSON, wrong value types, missing
//! fields, trailing data and nesting deeper than [`MAX_JSON_DEPTH`] are `INVALID_ARGUMENT`.

use std::cell::Cell;
use std::io::{self, Write};

use serde::Serialize;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use crate::wire::Status;

/// Largest accepted nesting depth of a JSON payload (objects and arrays; `{}` is depth 1).
pub const MAX_JSON_DEPTH: usize = 50;

/// How many unexpected keys a contract violation names (the rest are counted).
const MAX_REPORTED_KEYS: usize = 5;
/// Longest key text (in characters) reported before truncation.
const MAX_REPORTED_KEY_CHARS: usize = 80;

/// Appends the compact, Python-compatible JSON encoding of `value` to `out`.
///
/// Fails (`INTERNAL`) only for values JSON cannot express, such as maps with non-string keys.
pub fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Status> {
    let start = out.len();
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, PyFormatter);
    if let Err(e) = value.serialize(&mut ser) {
        out.truncate(start);
        return Err(Status::internal(format!("cannot encode {} as JSON: {e}", std::any::type_name::<T>())));
    }
    Ok(())
}

/// Decodes a JSON object into `T`, strictly (see the module docs).
///
/// `type_name` names `T` in errors and in the `expected_class`/`location` details: a wire tag
/// (`"taskmgr/TaskAssignment"`) or a plain name; only the part after the last `/` is used.
pub fn decode_strict<T: DeserializeOwned>(bytes: &[u8], type_name: &str) -> Result<T, Status> {
    let class = short_name(type_name);
    check_depth(bytes, class)?;
    let mut unknown: Option<Unknown> = None;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, serde_json::Error> =
        serde_ignored::deserialize(&mut de, |path| note_ignored(&path, &mut unknown));
    let value = result.and_then(|v| de.end().map(|()| v));
    if let Some(unknown) = unknown {
        return Err(violation::<T>(class, unknown));
    }
    value.map_err(|e| Status::invalid_argument(format!("invalid JSON payload for {class}: {e}")))
}

/// The part of a type name after the last `/` and the last `::`.
fn short_name(type_name: &str) -> &str {
    let tail = type_name.rsplit('/').next().unwrap_or(type_name);
    tail.rsplit("::").next().unwrap_or(tail)
}

/// Rejects nesting deeper than [`MAX_JSON_DEPTH`] before the parser recurses.
fn check_depth(bytes: &[u8], class: &str) -> Result<(), Status> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(Status::invalid_argument(format!(
                        "invalid JSON payload for {class}: nesting depth exceeds \
                         {MAX_JSON_DEPTH}"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Unknown-key bookkeeping

/// One step of a path into the JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The unexpected keys of the object that will be reported. The reference checks an
/// object's own keys before descending into its fields, so an enclosing object wins over
/// anything inside it; between unrelated objects the first one in the document wins.
#[derive(Debug)]
struct Unknown {
    object: Vec<Seg>,
    keys: Vec<String>,
    total: usize,
}

fn note_ignored(path: &serde_ignored::Path<'_>, best: &mut Option<Unknown>) {
    use serde_ignored::Path;
    // Find the object (or array) that held the ignored entry, and the entry's name.
    let mut p = path;
    let (parent, key) = loop {
        match p {
            Path::Map { parent, key } => break (*parent, key.clone()),
            Path::Seq { parent, index } => break (*parent, format!("[{index}]")),
            Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => p = parent,
            Path::Root => return,
        }
    };
    let object = segments(parent);
    match best {
        Some(b) if b.object == object => {
            b.total += 1;
            if b.keys.len() < MAX_REPORTED_KEYS {
                b.keys.push(key);
            }
        }
        Some(b) if !b.object.starts_with(&object) => {}
        _ => *best = Some(Unknown { object, keys: vec![key], total: 1 }),
    }
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Seg> {
    use serde_ignored::Path;
    let mut out = Vec::new();
    let mut p = path;
    loop {
        match p {
            Path::Root => break,
            Path::Map { parent, key } => {
                out.push(Seg::Key(key.clone()));
                p = parent;
            }
            Path::Seq { parent, index } => {
                out.push(Seg::Index(*index));
                p = parent;
            }
            Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => p = parent,
        }
    }
    out.reverse();
    out
}

/// Builds the `CONTRACT_VIOLATION` status the reference sends.
fn violation<T: DeserializeOwned>(root_class: &str, unknown: Unknown) -> Status {
    let mut location = root_class.to_owned();
    for seg in &unknown.object {
        match seg {
            Seg::Key(k) => {
                location.push('.');
                location.push_str(k);
            }
            Seg::Index(i) => location.push_str(&format!("[{i}]")),
        }
    }
    // The root is named by its wire tag (like `location`); nested structs by their serde
    // name. An unknown class (a map, an enum, a hand-written impl) is reported as "".
    let found = probe_struct::<T>(&unknown.object);
    let mut expected: Vec<&str> = found.map(|f| f.fields.to_vec()).unwrap_or_default();
    let class = match found {
        _ if unknown.object.is_empty() => root_class.to_owned(),
        Some(f) => f.name.to_owned(),
        None => String::new(),
    };
    expected.sort_unstable();

    let mut shown: Vec<String> = unknown.keys.iter().map(|k| py_repr(&truncate_key(k))).collect();
    if unknown.total > shown.len() {
        shown.push(format!("...(+{} more)", unknown.total - shown.len()));
    }
    let message = format!(
        "contract violation at {location}: unexpected JSON field(s) {} (expected: {})",
        py_list(shown.iter().map(String::as_str)),
        py_list(expected.iter().copied()),
    );
    Status::contract_violation(message)
        .with_detail("unexpected_fields", shown.join(","))
        .with_detail("location", location)
        .with_detail("expected_class", class)
}

fn truncate_key(key: &str) -> String {
    match key.char_indices().nth(MAX_REPORTED_KEY_CHARS) {
        Some((cut, _)) => format!("{}...(truncated)", &key[..cut]),
        None => key.to_owned(),
    }
}

/// Python's `repr()` of a list of strings.
fn py_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let parts: Vec<String> = items.map(py_repr).collect();
    format!("[{}]", parts.join(", "))
}

/// Python's `repr()` of a `str` (quote choice and escapes; printable non-ASCII kept).
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !py_printable(c) => {
                let v = c as u32;
                if v <= 0xff {
                    out.push_str(&format!("\\x{v:02x}"));
                } else if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// An approximation of Python's `str.isprintable()` for one character.
fn py_printable(c: char) -> bool {
    let v = c as u32;
    !(v < 0x20
        || (0x7f..=0xa0).contains(&v)
        || v == 0xad
        || v == 0x1680
        || (0x2000..=0x200f).contains(&v)
        || (0x2028..=0x202f).contains(&v)
        || (0x205f..=0x206f).contains(&v)
        || v == 0x3000
        || (0xd800..=0xf8ff).contains(&v)
        || v == 0xfeff
        || (0xfff9..=0xfffb).contains(&v)
        || (0xf0000..).contains(&v))
}

// ---------------------------------------------------------------------------------------------
// Finding the struct at a path (only when a violation is reported)

/// Name and declared fields of a struct, as serde's derive passes them to the deserializer.
#[derive(Clone, Copy, Debug)]
struct StructInfo {
    name: &'static str,
    fields: &'static [&'static str],
}

/// Walks `T`'s `Deserialize` impl along `path` with a deserializer that feeds only the keys of
/// the path, and captures the struct found at its end. `None` for maps, enums, flattened or
/// hand-written impls.
fn probe_struct<T: DeserializeOwned>(path: &[Seg]) -> Option<StructInfo> {
    let found = Cell::new(None);
    let _ = T::deserialize(Probe { rest: path, found: &found });
    found.get()
}

type ProbeError = de::value::Error;

fn stop() -> ProbeError {
    de::Error::custom("probe finished")
}

struct Probe<'p> {
    rest: &'p [Seg],
    found: &'p Cell<Option<StructInfo>>,
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ProbeError> {
        Err(stop())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        match self.rest.split_first() {
            None => {
                self.found.set(Some(StructInfo { name, fields }));
                Err(stop())
            }
            Some((Seg::Key(key), rest)) => visitor.visit_map(OneEntry { key: Some(key), rest, found: self.found }),
            Some((Seg::Index(_), _)) => Err(stop()),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        match self.rest.split_first() {
            Some((Seg::Key(key), rest)) => visitor.visit_map(OneEntry { key: Some(key), rest, found: self.found }),
            _ => Err(stop()),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        match self.rest.split_first() {
            // Sequences are homogeneous: the element type does not depend on the index.
            Some((Seg::Index(_), rest)) => visitor.visit_seq(OneElement { rest: Some(rest), found: self.found }),
            _ => Err(stop()),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct tuple tuple_struct enum identifier ignored_any
    }
}

struct OneEntry<'p> {
    key: Option<&'p str>,
    rest: &'p [Seg],
    found: &'p Cell<Option<StructInfo>>,
}

impl<'de> de::MapAccess<'de> for OneEntry<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ProbeError> {
        match self.key.take() {
            Some(key) => seed.deserialize(key.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ProbeError> {
        seed.deserialize(Probe { rest: self.rest, found: self.found })
    }
}

struct OneElement<'p> {
    rest: Option<&'p [Seg]>,
    found: &'p Cell<Option<StructInfo>>,
}

impl<'de> de::SeqAccess<'de> for OneElement<'_> {
    type Error = ProbeError;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, ProbeError> {
        match self.rest.take() {
            Some(rest) => seed.deserialize(Probe { rest, found: self.found }).map(Some),
            None => Ok(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Python-compatible output

/// serde_json formatter: compact, `ensure_ascii`, Python float `repr`.
struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut buf = [0u8; 40];
        let len = {
            let mut cursor = io::Cursor::new(&mut buf[..]);
            write!(cursor, "{value:e}")?;
            cursor.position() as usize
        };
        write_py_float(writer, &buf[..len])
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        let mut buf = [0u8; 40];
        let len = {
            let mut cursor = io::Cursor::new(&mut buf[..]);
            write!(cursor, "{value:e}")?;
            cursor.position() as usize
        };
        write_py_float(writer, &buf[..len])
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        if !bytes.iter().any(|&b| b >= 0x7f) {
            return writer.write_all(bytes);
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (c as u32) >= 0x7f {
                writer.write_all(&bytes[start..i])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&bytes[start..])
    }
}

/// Writes a finite float given in Rust's shortest `{:e}` form (`-1.5e-7`) the way Python's
/// `repr(float)` does: positional for decimal exponents −4 < e ≤ 16, else `d.ddde±XX`.
fn write_py_float<W: ?Sized + Write>(w: &mut W, sci: &[u8]) -> io::Result<()> {
    let (negative, body) = match sci.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, sci),
    };
    let e_at = body.iter().position(|&b| b == b'e').unwrap_or(body.len());
    let (mantissa, exp_text) = body.split_at(e_at);
    let exp: i32 =
        std::str::from_utf8(exp_text.get(1..).unwrap_or_default()).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
    let mut digits = [0u8; 40];
    let mut n = 0;
    for &b in mantissa.iter().filter(|b| b.is_ascii_digit()) {
        if n < digits.len() {
            digits[n] = b;
            n += 1;
        }
    }
    let digits = &digits[..n.max(1)];
    let n = digits.len() as i32;
    let decpt = exp + 1;
    if negative {
        w.write_all(b"-")?;
    }
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            w.write_all(b"0.")?;
            for _ in 0..(-decpt) {
                w.write_all(b"0")?;
            }
            w.write_all(digits)
        } else if decpt < n {
            let (int, frac) = digits.split_at(decpt as usize);
            w.write_all(int)?;
            w.write_all(b".")?;
            w.write_all(frac)
        } else {
            w.write_all(digits)?;
            for _ in 0..(decpt - n) {
                w.write_all(b"0")?;
            }
            w.write_all(b".0")
        }
    } else {
        w.write_all(&digits[..1])?;
        if n > 1 {
            w.write_all(b".")?;
            w.write_all(&digits[1..])?;
        }
        let sign = if exp < 0 { '-' } else { '+' };
        write!(w, "e{sign}{:02}", exp.unsigned_abs())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::Code;
    use serde::Deserialize;
    use std::collections::{BTreeMap, HashMap};

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct TaskAssignment {
        task_id: String,
        title: String,
        priority: i32,
        tags: Vec<String>,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct Leaf {
        v: i64,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct Mid {
        leaf: Leaf,
        leaves: Vec<Leaf>,
        maybe: Option<Leaf>,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct Top {
        name: String,
        mid: Mid,
        map: BTreeMap<String, Leaf>,
    }

    fn enc<T: Serialize>(v: &T) -> String {
        let mut out = Vec::new();
        encode(v, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_like_python_json_dumps() {
        let t = TaskAssignment {
            task_id: "json-1".into(),
            title: "from raw client".into(),
            priority: 5,
            tags: vec!["raw".into()],
        };
        assert_eq!(enc(&t), r#"{"task_id":"json-1","title":"from raw client","priority":5,"tags":["raw"]}"#);
        // ensure_ascii, with surrogate pairs and DEL; controls as Python writes them
        assert_eq!(enc(&"é€😀\u{7f}"), r#""\u00e9\u20ac\ud83d\ude00\u007f""#);
        assert_eq!(enc(&"a\"\\\n\t\u{1}/"), r#""a\"\\\n\t\u0001/""#);
        let mut m = BTreeMap::new();
        m.insert("ключ", None::<i32>);
        assert_eq!(enc(&m), r#"{"\u043a\u043b\u044e\u0447":null}"#);
    }

    #[test]
    fn encode_failure_leaves_the_buffer_untouched() {
        let mut m = std::collections::HashMap::new();
        m.insert((1, 2), 3);
        let mut out = b"keep".to_vec();
        let err = encode(&vec![Some(m)], &mut out).unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        assert_eq!(out, b"keep");
    }

    #[test]
    fn floats_like_python_repr() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456789.125, "123456789.125"),
            (1e15, "1000000000000000.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e22, "1e+22"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "null"),
        ];
        for (v, want) in cases {
            assert_eq!(enc(v), *want, "{v:e}");
        }
        assert_eq!(enc(&0.1f32), "0.1");
        assert_eq!(enc(&vec![1.0f64, 2.5]), "[1.0,2.5]");
    }

    #[test]
    fn decodes_the_golden_json_request() {
        let bin = crate::test_vectors::read("golden/json_mode_unary.c2s.bin");
        // frame 1: HEADER (JSON StreamHeader), frame 2: request
        let len1 = u32::from_le_bytes(bin[0..4].try_into().unwrap()) as usize;
        assert_eq!(bin[4], 0x04);
        let rest = &bin[4 + len1..];
        let len2 = u32::from_le_bytes(rest[0..4].try_into().unwrap()) as usize;
        assert_eq!(rest[4], 0x00);
        let payload = &rest[5..4 + len2];
        assert_eq!(4 + len2, rest.len());
        let t: TaskAssignment = decode_strict(payload, "taskmgr/TaskAssignment").unwrap();
        assert_eq!(
            t,
            TaskAssignment {
                task_id: "json-1".into(),
                title: "from raw client".into(),
                priority: 5,
                tags: vec!["raw".into()],
            }
        );
        // our encoding of it is Python's compact form
        assert_eq!(enc(&t), r#"{"task_id":"json-1","title":"from raw client","priority":5,"tags":["raw"]}"#);
    }

    #[test]
    fn unknown_top_level_keys_are_contract_violations() {
        let err = decode_strict::<TaskAssignment>(
            br#"{"task_id":"a","title":"b","priority":1,"tags":[],"bogus":1,"x y":{"deep":[1]}}"#,
            "taskmgr/TaskAssignment",
        )
        .unwrap_err();
        assert_eq!(err.code(), Code::ContractViolation);
        assert_eq!(err.code().as_i64(), 101);
        assert_eq!(err.detail("unexpected_fields"), Some("'bogus','x y'"));
        assert_eq!(err.detail("location"), Some("TaskAssignment"));
        assert_eq!(err.detail("expected_class"), Some("TaskAssignment"));
        assert_eq!(
            err.message(),
            "contract violation at TaskAssignment: unexpected JSON field(s) \
             [\"'bogus'\", \"'x y'\"] (expected: ['priority', 'tags', 'task_id', 'title'])"
        );
        let keys: Vec<&str> = err.details().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["unexpected_fields", "location", "expected_class"]);
    }

    #[test]
    fn unknown_nested_keys_name_the_nested_struct() {
        let err = decode_strict::<Top>(
            br#"{"name":"n","mid":{"leaf":{"v":1,"extra":true},"leaves":[],"maybe":null},"map":{}}"#,
            "t/Top",
        )
        .unwrap_err();
        assert_eq!(err.code(), Code::ContractViolation);
        assert_eq!(err.detail("location"), Some("Top.mid.leaf"));
        assert_eq!(err.detail("expected_class"), Some("Leaf"));
        assert_eq!(err.detail("unexpected_fields"), Some("'extra'"));
        assert!(err.message().ends_with("(expected: ['v'])"), "{err}");

        let err = decode_strict::<Top>(
            br#"{"name":"n","mid":{"leaf":{"v":1},"leaves":[{"v":1},{"v":2,"w":3}],"maybe":{"v":1,"z":0}},"map":{}}"#,
            "Top",
        )
        .unwrap_err();
        // unrelated objects: the first one (in the document) is reported
        assert_eq!(err.detail("location"), Some("Top.mid.leaves[1]"));
        assert_eq!(err.detail("expected_class"), Some("Leaf"));
        assert_eq!(err.detail("unexpected_fields"), Some("'w'"));

        let err = decode_strict::<Top>(
            br#"{"name":"n","mid":{"leaf":{"v":1},"leaves":[],"maybe":{"v":1,"z":0},"m2":1},"map":{}}"#,
            "Top",
        )
        .unwrap_err();
        // an enclosing object wins, like the reference's top-down check
        assert_eq!(err.detail("location"), Some("Top.mid"));
        assert_eq!(err.detail("expected_class"), Some("Mid"));
        assert_eq!(err.detail("unexpected_fields"), Some("'m2'"));

        let err = decode_strict::<Top>(
            br#"{"name":"n","mid":{"leaf":{"v":1},"leaves":[],"maybe":{"v":1,"z":0}},"map":{}}"#,
            "Top",
        )
        .unwrap_err();
        assert_eq!(err.detail("location"), Some("Top.mid.maybe"));
        assert_eq!(err.detail("expected_class"), Some("Leaf"));

        let err = decode_strict::<Top>(
            br#"{"name":"n","mid":{"leaf":{"v":1},"leaves":[],"maybe":null},"map":{"k":{"v":1,"q":2}}}"#,
            "Top",
        )
        .unwrap_err();
        assert_eq!(err.detail("location"), Some("Top.map.k"));
        assert_eq!(err.detail("expected_class"), Some("Leaf"));
    }

    #[test]
    fn root_is_named_by_the_wire_tag() {
        let err = decode_strict::<Leaf>(br#"{"v":1,"x":2}"#, "ns/LeafV1").unwrap_err();
        assert_eq!(err.detail("location"), Some("LeafV1"));
        assert_eq!(err.detail("expected_class"), Some("LeafV1"));
        assert!(err.message().ends_with("(expected: ['v'])"), "{err}");
    }

    #[test]
    fn enclosing_object_wins_even_when_seen_later() {
        let err = decode_strict::<Top>(
            br#"{"mid":{"leaf":{"v":1,"deep":0},"leaves":[],"maybe":null},"name":"n","map":{},"top":1}"#,
            "Top",
        )
        .unwrap_err();
        assert_eq!(err.detail("location"), Some("Top"));
        assert_eq!(err.detail("unexpected_fields"), Some("'top'"));
        assert_eq!(err.detail("expected_class"), Some("Top"));
    }

    #[test]
    fn many_and_long_unknown_keys_are_capped() {
        let long = "k".repeat(100);
        let json = format!(r#"{{"v":1,"a":1,"b":2,"c\n":3,"it's":4,"{long}":5,"f":6,"g":7}}"#);
        let err = decode_strict::<Leaf>(json.as_bytes(), "Leaf").unwrap_err();
        let want = format!(r#"'a','b','c\n',"it's",'{}...(truncated)',...(+2 more)"#, "k".repeat(80));
        assert_eq!(err.detail("unexpected_fields"), Some(want.as_str()));
    }

    #[test]
    fn contract_violation_wins_over_later_type_errors() {
        let err = decode_strict::<Leaf>(br#"{"zz":1,"v":"not a number"}"#, "Leaf").unwrap_err();
        assert_eq!(err.code(), Code::ContractViolation);
    }

    #[test]
    fn malformed_and_mistyped_json_is_invalid_argument() {
        for bad in [
            &b""[..],
            b"{",
            b"[1,2]",
            b"{\"v\":\"x\"}",
            b"{\"v\":1} {}",
            b"{\"v\":1,\"v\":2}",
            b"{}",
            b"null",
            b"\xff\xfe",
            b"{\"v\":1}x",
        ] {
            let err = decode_strict::<Leaf>(bad, "Leaf").unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{:?}: {err}", bad);
            assert!(err.message().starts_with("invalid JSON payload for Leaf"), "{err}");
        }
        assert_eq!(decode_strict::<Leaf>(b" {\"v\":7}\n", "Leaf").unwrap(), Leaf { v: 7 });
    }

    #[test]
    fn depth_limit_is_fifty() {
        let nested = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
        assert!(check_depth(nested(50).as_bytes(), "X").is_ok());
        let err = check_depth(nested(51).as_bytes(), "X").unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("depth exceeds 50"));
        // brackets inside strings do not count
        let in_string = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(60), "{".repeat(60));
        assert!(check_depth(in_string.as_bytes(), "X").is_ok());
        // through decode_strict, for any target type
        let deep = format!(r#"{{"v":1,"x":{}}}"#, nested(50));
        let err = decode_strict::<Leaf>(deep.as_bytes(), "Leaf").unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let v: serde_json::Value = decode_strict(nested(50).as_bytes(), "Any").unwrap();
        assert!(v.is_array());
    }

    #[test]
    fn maps_and_values_are_not_strict_where_they_cannot_be() {
        let m: HashMap<String, i32> = decode_strict(br#"{"a":1,"b":2}"#, "M").unwrap();
        assert_eq!(m.len(), 2);
        let v: serde_json::Value = decode_strict(br#"{"anything":[1,{"x":null}]}"#, "V").unwrap();
        assert!(v.is_object());
    }

    #[test]
    fn repr_matches_python() {
        assert_eq!(py_repr("abc"), "'abc'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_repr("\u{0}\u{7f}\u{a0}é\u{200b}😀"), "'\\x00\\x7f\\xa0é\\u200b😀'");
        assert_eq!(py_list(["'x'"].into_iter()), "[\"'x'\"]");
        assert_eq!(py_list(std::iter::empty()), "[]");
    }
}
