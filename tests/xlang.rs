//! XLANG mode for `#[derive(AsterType)]` types, offline (no endpoints):
//!
//! - the pyfory 0.16 vectors of the codec (`aster-runtime/tests/data/xlang_vectors.json`) with
//!   the vector types declared through the derive: schema (fingerprint, hash, field order),
//!   `decode(python bytes) == value` and `encode(value) == python bytes`, through `Message`;
//! - every user payload of the aster-rpc 0.1.2 golden captures decodes through the derived
//!   `Message` impls of the example's types, and `PayloadCodec` re-encodes the frame (flags and
//!   bytes, compressed ones included) identically;
//! - compression above 4096 bytes, and the status conventions of malformed input.
//!
//! End-to-end XLANG calls are in `patterns.rs` and `sessions.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

#[path = "../examples/taskmanager/service.rs"]
mod service;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use aster::prelude::*;
use aster::runtime::codec::PayloadCodec;
use aster::runtime::codec::xlang::{XlangStruct, field_order, struct_fingerprint, struct_hash};
use aster::runtime::wire::flags;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ── the vector types (aster-runtime/tests/data/xlang_gen/xtypes.py), via the derive ──

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, fory::ForyEnum, AsterType,
)]
#[serde(rename_all = "UPPERCASE")]
#[aster(tag = "xtypes/Color")]
pub enum Color {
    #[default]
    Red,
    Green,
    Blue,
}

/// A Python `IntEnum` with values 10/20/30 (and an alias): only the declaration index travels,
/// so the Rust discriminants need not match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, fory::ForyEnum, AsterType)]
#[serde(rename_all = "UPPERCASE")]
#[aster(tag = "xtypes/Priority")]
pub enum Priority {
    #[default]
    Low = 10,
    High = 20,
    Urgent = 30,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(deny_unknown_fields)]
#[aster(tag = "xt/Inner")]
pub struct Inner {
    pub id: i64,
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(deny_unknown_fields)]
#[aster(tag = "xt/Scalars")]
pub struct Scalars {
    pub flag: bool,
    pub count: i64,
    pub small: i32,
    pub ratio: f64,
    pub text: String,
    pub blob: Vec<u8>,
    pub color: Color,
    pub level: Priority,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(deny_unknown_fields)]
#[aster(tag = "xt/Optionals")]
pub struct Optionals {
    pub o_flag: Option<bool>,
    pub o_count: Option<i64>,
    pub o_small: Option<i32>,
    pub o_ratio: Option<f64>,
    pub o_text: Option<String>,
    pub o_blob: Option<Vec<u8>>,
    pub o_list: Option<Vec<String>>,
    pub o_set: Option<BTreeSet<i64>>,
    pub o_map: Option<BTreeMap<String, i64>>,
    pub o_inner: Option<Inner>,
    pub o_color: Option<Color>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(deny_unknown_fields)]
#[aster(tag = "xt/Lists")]
pub struct Lists {
    pub strs: Vec<String>,
    pub ints: Vec<i64>,
    pub smalls: Vec<i32>,
    pub floats: Vec<f64>,
    pub flags: Vec<bool>,
    pub blobs: Vec<Vec<u8>>,
    pub nested: Vec<Vec<String>>,
    pub inners: Vec<Inner>,
    pub maybe_inners: Vec<Option<Inner>>,
    pub maybe_strs: Vec<Option<String>>,
    pub colors: Vec<Color>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(deny_unknown_fields)]
#[aster(tag = "xt/SetsMaps")]
pub struct SetsMaps {
    pub str_set: BTreeSet<String>,
    pub int_set: BTreeSet<i64>,
    pub counts: BTreeMap<String, i64>,
    pub names: BTreeMap<i64, String>,
    pub by_name: BTreeMap<String, Inner>,
    pub maybe: BTreeMap<String, Option<String>>,
    pub groups: BTreeMap<String, Vec<i64>>,
    pub colors: BTreeMap<String, Color>,
    pub nested: BTreeMap<String, BTreeMap<String, i64>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(deny_unknown_fields)]
#[aster(tag = "xt/Nested")]
pub struct Nested {
    pub first: Inner,
    pub second: Inner,
    pub maybe: Option<Inner>,
    pub items: Vec<Inner>,
    pub child: Option<Box<Nested>>,
    pub color: Color,
    pub label: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(deny_unknown_fields)]
#[aster(tag = "xt/Texts")]
pub struct Texts {
    pub ascii: String,
    pub latin: String,
    pub bmp: String,
    pub astral: String,
    pub mixed: String,
}

/// A tag without `/`: empty namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(deny_unknown_fields)]
#[aster(tag = "Bare")]
pub struct Bare {
    pub x: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(deny_unknown_fields)]
#[aster(tag = "xt/Empty")]
pub struct Empty {}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(deny_unknown_fields)]
#[aster(tag = "com.example.deeply_nested.namespace/Type_With_Digits2")]
pub struct LongNames {
    pub value: i64,
    pub inner: Option<Inner>,
}

// ── helpers ─────────────────────────────────────────────────────────────────

fn vectors() -> Value {
    serde_json::from_str(include_str!("../aster-runtime/tests/data/xlang_vectors.json")).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn xlang() -> PayloadCodec {
    PayloadCodec::new(SerializationMode::Xlang)
}

fn encode<T: Message>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode_payload(SerializationMode::Xlang, &mut out).unwrap();
    out
}

fn decode<T: Message>(bytes: &[u8]) -> Result<T, Status> {
    T::decode_payload(SerializationMode::Xlang, bytes)
}

/// Type-erased checks of one vector type.
struct Ops {
    /// Decodes the Python bytes through `Message`, compares with the JSON value, returns the
    /// re-encoding.
    roundtrip: fn(&[u8], &Value) -> Vec<u8>,
    /// Encodes the JSON value through `Message`.
    encode_value: fn(&Value) -> Vec<u8>,
    fingerprint: fn() -> String,
    hash: fn() -> i32,
    order: fn() -> Vec<&'static str>,
    tag: fn() -> &'static str,
}

fn ops_of<T: Message + XlangStruct + PartialEq + std::fmt::Debug + DeserializeOwned>() -> Ops {
    Ops {
        roundtrip: |bytes, value| {
            let expected: T = serde_json::from_value(value.clone()).unwrap();
            let got: T = decode(bytes).unwrap();
            assert_eq!(got, expected);
            encode(&got)
        },
        encode_value: |value| encode(&serde_json::from_value::<T>(value.clone()).unwrap()),
        fingerprint: struct_fingerprint::<T>,
        hash: struct_hash::<T>,
        order: || {
            let fields = T::fields();
            field_order(fields).into_iter().map(|i| fields[i].name).collect()
        },
        tag: T::wire_tag,
    }
}

/// The Rust type of a vector type; `None` for `Holder`, whose `nothing: Inner = None` (a
/// non-Optional struct field holding None) has no derive equivalent: a Rust `Option<Inner>`
/// is `Optional[Inner]`, which changes the struct hash.
fn ops(type_name: &str) -> Option<Ops> {
    Some(match type_name {
        "TaskAssignment" => ops_of::<service::TaskAssignment>(),
        "TaskAck" => ops_of::<service::TaskAck>(),
        "ProgressRequest" => ops_of::<service::ProgressRequest>(),
        "ProgressUpdate" => ops_of::<service::ProgressUpdate>(),
        "StepUpload" => ops_of::<service::StepUpload>(),
        "UploadSummary" => ops_of::<service::UploadSummary>(),
        "ChatMessage" => ops_of::<service::ChatMessage>(),
        "Inner" => ops_of::<Inner>(),
        "Scalars" => ops_of::<Scalars>(),
        "Optionals" => ops_of::<Optionals>(),
        "Lists" => ops_of::<Lists>(),
        "SetsMaps" => ops_of::<SetsMaps>(),
        "Nested" => ops_of::<Nested>(),
        "Texts" => ops_of::<Texts>(),
        "Bare" => ops_of::<Bare>(),
        "Empty" => ops_of::<Empty>(),
        "LongNames" => ops_of::<LongNames>(),
        "Holder" => return None,
        other => panic!("no Rust type for {other}"),
    })
}

// ── pyfory vectors through the derive ───────────────────────────────────────

#[test]
fn derived_schemas_match_pyfory() {
    let v = vectors();
    assert_eq!(v["pyfory"], "0.16.0");
    let mut checked = 0;
    for t in v["types"].as_array().unwrap() {
        let name = t["type"].as_str().unwrap();
        let Some(o) = ops(name) else { continue };
        assert_eq!((o.tag)(), t["tag"].as_str().unwrap(), "{name}");
        assert_eq!((o.fingerprint)(), t["fingerprint"].as_str().unwrap(), "{name}");
        assert_eq!(i64::from((o.hash)()), t["hash"].as_i64().unwrap(), "{name}");
        let expected: Vec<&str> = t["field_order"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        assert_eq!((o.order)(), expected, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 17, "every vector type but Holder");
    // the protocol reference's hashes of the example's types
    assert_eq!(struct_hash::<service::TaskAssignment>(), -1_879_191_321);
    assert_eq!(struct_hash::<service::ChatMessage>(), 1_048_802_372);
    assert_eq!(struct_hash::<Empty>(), 47);
}

#[test]
fn python_vectors_decode_and_reencode_identically_through_message() {
    let mut exact = 0;
    let mut total = 0;
    for case in vectors()["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let Some(o) = ops(case["type"].as_str().unwrap()) else { continue };
        let bytes = hex(case["hex"].as_str().unwrap());
        let again = (o.roundtrip)(&bytes, &case["value"]);
        assert_eq!(again, (o.encode_value)(&case["value"]), "{name}");
        if case["exact"].as_bool().unwrap() {
            assert_eq!(to_hex(&again), to_hex(&bytes), "{name}: the derive's bytes differ from pyfory's");
            exact += 1;
        } else {
            // pyfory wrote a multi-element set in hash order: same length, same value
            assert_eq!(again.len(), bytes.len(), "{name}");
            (o.roundtrip)(&again, &case["value"]);
        }
        total += 1;
    }
    assert_eq!(total, 37, "39 cases minus the two Holder ones");
    assert_eq!(exact, 36);
}

#[test]
fn nested_recursive_and_enum_values_round_trip() {
    let leaf = |id: i64| Inner { id, name: format!("n{id}") };
    let deep = Nested {
        first: leaf(1),
        second: leaf(2),
        maybe: None,
        items: vec![leaf(3), leaf(4)],
        child: Some(Box::new(Nested {
            child: Some(Box::new(Nested { label: "leaf".into(), color: Color::Blue, ..Default::default() })),
            maybe: Some(leaf(5)),
            ..Default::default()
        })),
        color: Color::Green,
        label: "root".into(),
    };
    let (f, p) = xlang().encode(&deep).unwrap();
    assert_eq!(f, 0);
    assert_eq!(xlang().decode::<Nested>(f, &p).unwrap(), deep);

    let sets = SetsMaps {
        str_set: ["b", "a"].into_iter().map(String::from).collect(),
        maybe: BTreeMap::from([("x".into(), None), ("y".into(), Some("why".into()))]),
        colors: BTreeMap::from([("sky".into(), Color::Blue)]),
        nested: BTreeMap::from([("o".into(), BTreeMap::from([("i".into(), -1)]))]),
        by_name: BTreeMap::from([("l".into(), leaf(9))]),
        ..Default::default()
    };
    assert_eq!(decode::<SetsMaps>(&encode(&sets)).unwrap(), sets);
    let opts = Optionals { o_color: Some(Color::Red), o_inner: Some(leaf(0)), o_small: Some(-3), ..Default::default() };
    assert_eq!(decode::<Optionals>(&encode(&opts)).unwrap(), opts);
    let scalars = Scalars { level: Priority::Urgent, small: i32::MIN, ..Default::default() };
    let bytes = encode(&scalars);
    assert_eq!(*bytes.last().unwrap(), 2, "Urgent (= 30) is written as its index 2");
    assert_eq!(decode::<Scalars>(&bytes).unwrap(), scalars);
}

// ── golden captures (aster-rpc 0.1.2 peers) through the derived Message impls ──

fn golden_dir() -> PathBuf {
    let shared = std::env::var_os("ASTER_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("vectors").join("golden");
    assert!(dir.is_dir(), "golden captures not found at {} (set ASTER_SHARED_DIR)", dir.display());
    dir
}

fn frames(bin: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bin;
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        out.push((rest[4], rest[5..4 + len].to_vec()));
        rest = &rest[4 + len..];
    }
    out
}

/// Decodes a DATA frame as `T` through `PayloadCodec` (decompressing if flagged); on success
/// checks that encoding the value gives the same frame flags and bytes.
fn golden_as<T: Message + std::fmt::Debug>(flags: u8, payload: &[u8]) -> Option<String> {
    let codec = xlang();
    match codec.decode::<T>(flags, payload) {
        Ok(v) => {
            let (again_flags, again) = codec.encode(&v).unwrap();
            assert_eq!(again_flags, flags, "{v:?}");
            assert_eq!(to_hex(&again), to_hex(payload), "{v:?}");
            Some(format!("{v:?}"))
        }
        Err(e) => {
            assert_eq!(e.code(), Code::InvalidArgument, "another type's payload: {e}");
            None
        }
    }
}

#[test]
fn golden_user_payloads_decode_and_reencode_through_message() {
    use service::*;
    let dir = golden_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".c2s.bin") || n.ends_with(".s2c.bin"))
        .filter(|n| !n.starts_with("json_mode") && !n.starts_with("admission"))
        .collect();
    names.sort();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut decoded: Vec<(String, String)> = Vec::new();
    let mut compressed = 0;
    for name in &names {
        for (f, payload) in frames(&std::fs::read(dir.join(name)).unwrap()) {
            // user payloads: DATA frames, plain or COMPRESSED
            if f & !flags::COMPRESSED != 0 || payload.is_empty() {
                continue;
            }
            let hits: Vec<(&str, String)> = [
                ("TaskAssignment", golden_as::<TaskAssignment>(f, &payload)),
                ("TaskAck", golden_as::<TaskAck>(f, &payload)),
                ("ProgressRequest", golden_as::<ProgressRequest>(f, &payload)),
                ("ProgressUpdate", golden_as::<ProgressUpdate>(f, &payload)),
                ("StepUpload", golden_as::<StepUpload>(f, &payload)),
                ("UploadSummary", golden_as::<UploadSummary>(f, &payload)),
                ("ChatMessage", golden_as::<ChatMessage>(f, &payload)),
            ]
            .into_iter()
            .filter_map(|(t, d)| d.map(|d| (t, d)))
            .collect();
            assert_eq!(hits.len(), 1, "{name}: exactly one example type decodes the payload: {hits:?}");
            let (t, dbg) = hits.into_iter().next().unwrap();
            *seen.entry(t).or_default() += 1;
            compressed += usize::from(f == flags::COMPRESSED);
            decoded.push((name.clone(), dbg));
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert!(decoded.len() >= 30, "{}", decoded.len());
    assert!(compressed >= 1, "the compressed capture was seen");
    let first = |file: &str| decoded.iter().find(|(n, _)| n == file).map(|(_, d)| d.clone()).unwrap();
    let expected = TaskAssignment {
        task_id: "t-1".into(),
        title: "write report".into(),
        priority: 2,
        tags: vec!["docs".into(), "urgent".into()],
    };
    assert_eq!(first("unary_assign_task.c2s.bin"), format!("{expected:?}"));
    let ack = TaskAck { task_id: "t-1".into(), accepted: true, worker: "py-worker-1".into() };
    assert_eq!(first("unary_assign_task.s2c.bin"), format!("{ack:?}"));
    let chat = ChatMessage { sender: "py-client".into(), text: "hello 0".into(), seq: 0 };
    assert_eq!(first("bidi_chat.c2s.bin"), format!("{chat:?}"));
    assert!(first("unary_assign_task_compressed.c2s.bin").contains("t-big"));
}

// ── compression ─────────────────────────────────────────────────────────────

#[test]
fn xlang_payloads_above_4096_bytes_are_compressed() {
    let with_title = |n: usize| service::TaskAssignment {
        task_id: "t-big".into(),
        title: "x".repeat(n),
        priority: 1,
        tags: vec!["a".into()],
    };
    // find the titles that make the plain payload exactly 4096 and 4097 bytes
    let base = encode(&with_title(0)).len();
    let at = |len: usize| (0..len).map(with_title).find(|v| encode(v).len() == len).unwrap();
    assert!(base < 100);
    let (edge, over) = (at(4096), at(4097));
    let (f, p) = xlang().encode(&edge).unwrap();
    assert_eq!((f, p.len()), (0, 4096), "4096 bytes stay plain");
    assert_eq!(xlang().decode::<service::TaskAssignment>(f, &p).unwrap(), edge);
    let (f, p) = xlang().encode(&over).unwrap();
    assert_eq!(f, flags::COMPRESSED, "4097 bytes are compressed");
    assert_eq!(&p[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd frame");
    assert!(p.len() < 200, "{}", p.len());
    assert_eq!(xlang().decode::<service::TaskAssignment>(f, &p).unwrap(), over);
    // thresholds are the codec's: off means plain, and a decompression cap applies
    let (f, _) = xlang().with_compression_threshold(None).encode(&over).unwrap();
    assert_eq!(f, 0);
    let (f, p) = xlang().encode(&with_title(100_000)).unwrap();
    let err = xlang().with_max_decompressed(50_000).decode::<service::TaskAssignment>(f, &p).unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
}

// ── status conventions ──────────────────────────────────────────────────────

#[test]
fn malformed_xlang_input_is_invalid_argument() {
    let ack = service::TaskAck { task_id: "t".into(), accepted: true, worker: "w".into() };
    let good = encode(&ack);
    let mut trailing = good.clone();
    trailing.push(0);
    let mut bad_ordinal = encode(&Scalars::default());
    *bad_ordinal.last_mut().unwrap() = 3; // Priority has three members
    let cases: Vec<(&str, Result<(), Status>)> = vec![
        ("empty", decode::<service::TaskAck>(b"").map(drop)),
        ("truncated", decode::<service::TaskAck>(&good[..good.len() - 1]).map(drop)),
        ("trailing byte", decode::<service::TaskAck>(&trailing).map(drop)),
        ("another type", decode::<service::TaskAssignment>(&good).map(drop)),
        ("a JSON payload", decode::<service::TaskAck>(br#"{"task_id":"t"}"#).map(drop)),
        ("unknown enum ordinal", decode::<Scalars>(&bad_ordinal).map(drop)),
        ("compressed garbage", xlang().decode::<service::TaskAck>(flags::COMPRESSED, b"nope").map(drop)),
    ];
    for (what, r) in cases {
        let e = r.expect_err(what);
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e}");
    }
    let e = decode::<Scalars>(&bad_ordinal).unwrap_err();
    assert!(e.message().contains("unknown ordinal 3 of enum xtypes/Priority"), "{e}");
    let e = decode::<service::TaskAssignment>(&good).unwrap_err();
    assert!(e.message().contains("taskmgr/TaskAssignment"), "{e}");
    // out-of-range values are refused when written, and nothing is appended
    let mut out = b"keep".to_vec();
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
    #[aster(tag = "xt/Wide")]
    struct Wide {
        big: u64,
        ratio: f32,
    }
    let e = Wide { big: u64::MAX, ratio: 0.5 }.encode_payload(SerializationMode::Xlang, &mut out).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert_eq!(out, b"keep");
    let w = Wide { big: 1 << 40, ratio: 0.25 };
    assert_eq!(decode::<Wide>(&encode(&w)).unwrap(), w);
}

#[test]
fn types_without_an_xlang_form_are_unimplemented() {
    // `()` has none; the struct still works in JSON and NATIVE
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
    #[aster(tag = "xt/Unit")]
    struct WithUnit {
        name: String,
        nothing: (),
    }
    let v = WithUnit { name: "u".into(), nothing: () };
    let e = xlang().encode(&v).unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e}");
    assert!(e.message().contains("xt/Unit.nothing: no XLANG form: () has no XLANG form"), "{e}");
    assert_eq!(xlang().decode::<WithUnit>(0, b"\x02\xff").unwrap_err().code(), Code::Unimplemented);
    for mode in [SerializationMode::Json, SerializationMode::Native] {
        let c = PayloadCodec::new(mode);
        let (f, p) = c.encode(&v).unwrap();
        assert_eq!(c.decode::<WithUnit>(f, &p).unwrap(), v, "{mode}");
    }
    // Option<Option<T>> cannot be told apart from Option<T> in Python
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
    #[aster(tag = "xt/Twice")]
    struct Twice {
        maybe: Option<Option<i64>>,
    }
    let e = xlang().encode(&Twice::default()).unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e}");
    assert!(e.message().contains("nested Optional"), "{e}");
}
