//! Vector tests: every v0.1 canonical vector of the reference repository (at the 0.1.2
//! release commit), the golden TaskManager/TaskSession contracts, and extra ground truth
//! produced with the real aster-rpc 0.1.2 package (`tests/data/contract_py012.json`, written by
//! `tests/data/contract_py012_gen/gen.py` run with `shared/interop/py`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::test_vectors::{hex, read};

const P: Profile = Profile::V0_1;

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn h(byte: u8) -> TypeHash {
    TypeHash([byte; 32])
}

// ── descriptor helpers ─────────────────────────────────────────────────────────────────

fn msg(package: &str, name: &str, fqn: &str, fields: Vec<(&str, FieldType)>) -> TypeDesc {
    TypeDesc {
        package: package.into(),
        name: name.into(),
        fqn: fqn.into(),
        kind: TypeDescKind::Message(fields.into_iter().map(|(n, ty)| FieldDesc { name: n.into(), ty }).collect()),
    }
}

fn enum_desc(package: &str, name: &str, fqn: &str, values: &[(&str, i32)]) -> TypeDesc {
    TypeDesc {
        package: package.into(),
        name: name.into(),
        fqn: fqn.into(),
        kind: TypeDescKind::Enum(values.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect()),
    }
}

fn p(name: &'static str) -> FieldType {
    FieldType::Primitive(name)
}
fn r(fqn: &str, describe: fn() -> TypeDesc) -> FieldType {
    FieldType::Ref { fqn: fqn.into(), describe }
}
fn list(t: FieldType) -> FieldType {
    FieldType::List(Box::new(t))
}
fn set(t: FieldType) -> FieldType {
    FieldType::Set(Box::new(t))
}
fn map(k: FieldType, v: FieldType) -> FieldType {
    FieldType::Map(Box::new(k), Box::new(v))
}
fn opt(t: FieldType) -> FieldType {
    FieldType::Optional(Box::new(t))
}

fn method(name: &str, pattern: MethodPattern, request: MethodType, response: MethodType) -> MethodDesc {
    MethodDesc { name: name.into(), pattern, request, response, idempotent: false, timeout_secs: 0.0 }
}

fn service(name: &str, version: i32, scope: ScopeKind, modes: &[&str], methods: Vec<MethodDesc>) -> ServiceDesc {
    ServiceDesc {
        name: name.into(),
        version,
        scope,
        serialization: modes.iter().map(|s| (*s).to_owned()).collect(),
        methods,
    }
}

fn field(id: i32, name: &str) -> FieldDef {
    FieldDef { id, name: name.into(), ..FieldDef::default() }
}
fn prim_field(id: i32, name: &str, prim: &str) -> FieldDef {
    FieldDef { type_primitive: prim.into(), ..field(id, name) }
}
fn self_ref_field(id: i32, name: &str, target: &str, optional: bool) -> FieldDef {
    FieldDef { type_kind: TypeKind::SelfRef, self_ref_name: target.into(), optional, ..field(id, name) }
}

// ── canonical_test_vectors.json (0972ac9 = 0.1.2 release), hashes.json, .bin files ──────

/// The Rust value for each of the 41 vector ids, encoded.
fn encode_vector(id: &str) -> Vec<u8> {
    let mut w = CanonicalWriter::new();
    let contract = |name: &str, scoped| ServiceContract {
        name: name.into(),
        version: 1,
        methods: vec![],
        serialization_modes: vec!["xlang".into()],
        scoped,
        requires: None,
    };
    let do_work = MethodDef {
        name: "do_work".into(),
        pattern: MethodPattern::Unary,
        request_type: h(0x11),
        response_type: h(0x22),
        idempotent: true,
        default_timeout: 30.0,
        requires: None,
    };
    let message = |name: &str, fields: Vec<FieldDef>| TypeDef {
        kind: TypeDefKind::Message,
        package: "example".into(),
        name: name.into(),
        fields,
        ..TypeDef::default()
    };
    match id {
        "A.2" => return contract("EmptyService", ScopeKind::Shared).canonical_bytes(P),
        "A.3" => {
            return TypeDef {
                kind: TypeDefKind::Enum,
                package: "test".into(),
                name: "Color".into(),
                // Given out of order: the encoder sorts by value.
                enum_values: vec![
                    EnumValueDef { name: "BLUE".into(), value: 2 },
                    EnumValueDef { name: "RED".into(), value: 0 },
                    EnumValueDef { name: "GREEN".into(), value: 1 },
                ],
                ..TypeDef::default()
            }
            .canonical_bytes(P);
        }
        "A.4" => {
            return TypeDef {
                kind: TypeDefKind::Message,
                package: "test".into(),
                name: "Wrapper".into(),
                fields: vec![FieldDef { type_kind: TypeKind::Ref, type_ref: Some(h(0xaa)), ..field(1, "inner") }],
                ..TypeDef::default()
            }
            .canonical_bytes(P);
        }
        "A.5" => {
            return MethodDef {
                requires: Some(CapabilityRequirement {
                    kind: CapabilityKind::AnyOf,
                    roles: vec!["Operator".into(), "Admin".into()],
                }),
                ..do_work
            }
            .canonical_bytes(P);
        }
        "A.6" => return MethodDef { idempotent: false, default_timeout: 0.0, ..do_work }.canonical_bytes(P),
        "B.1" => {
            return message(
                "TreeNode",
                vec![
                    prim_field(1, "value", "string"),
                    self_ref_field(2, "left", "example.TreeNode", true),
                    self_ref_field(3, "right", "example.TreeNode", true),
                ],
            )
            .canonical_bytes(P);
        }
        "B.2" => {
            return message(
                "Book",
                vec![prim_field(1, "title", "string"), self_ref_field(2, "written_by", "example.Author", false)],
            )
            .canonical_bytes(P);
        }
        "B.2-author" => {
            // Author REFs Book by Book's real hash: HEAD's hash order. 0.1.2's graph walker
            // writes zeros here instead (see `example_graphs_from_python_012`).
            let book = TypeHash::digest(&encode_vector("B.2"));
            return message(
                "Author",
                vec![
                    prim_field(1, "name", "string"),
                    FieldDef {
                        type_kind: TypeKind::Ref,
                        type_ref: Some(book),
                        container: ContainerKind::List,
                        ..field(2, "books")
                    },
                ],
            )
            .canonical_bytes(P);
        }
        "B.3" => return message("Gamma", vec![self_ref_field(1, "next", "example.Alpha", false)]).canonical_bytes(P),
        "B.4" => return message("C", vec![self_ref_field(1, "a_field", "example.A", false)]).canonical_bytes(P),
        "micro.bytes_field.len0" => w.write_bytes(&[]),
        "micro.bytes_field.len32" => w.write_bytes(&[0xab; 32]),
        "micro.optional.absent" => w.write_absent(),
        "micro.optional.present_prefix" => w.write_present(),
        "micro.scope.shared" => return contract("ScopeTest", ScopeKind::Shared).canonical_bytes(P),
        "micro.scope.session" => return contract("ScopeTest", ScopeKind::Session).canonical_bytes(P),
        "micro.nfc.nfc_name" => return contract("caf\u{e9}", ScopeKind::Shared).canonical_bytes(P),
        "micro.nfc.nfd_name" => return contract("cafe\u{301}", ScopeKind::Shared).canonical_bytes(P),
        _ => {
            let (kind, arg) = id.split_once('.').and_then(|(_, rest)| rest.split_once('.')).unwrap();
            match kind {
                "varint" => w.write_varint(arg.parse().unwrap()),
                "zigzag_i32" => w.write_i32(arg.parse().unwrap()),
                "zigzag_i64" => w.write_i64(arg.parse().unwrap()),
                "string" => w.write_string(arg.trim_matches('\'')),
                "list_header" => w.write_list_header(arg.parse().unwrap()),
                _ => panic!("no Rust value for vector {id}"),
            }
        }
    }
    w.into_bytes()
}

#[test]
fn canonical_test_vectors_v0_1() {
    let fixture: Value =
        serde_json::from_slice(&read("reference/tests/python/fixtures/canonical_test_vectors.json")).unwrap();
    let hashes: BTreeMap<String, String> =
        serde_json::from_slice(&read("reference/tests/python/conformance/canonical/hashes.json")).unwrap();
    let vectors = fixture["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 41);
    assert_eq!(hashes.len(), 41);
    for v in vectors {
        let id = v["id"].as_str().unwrap();
        let bytes = encode_vector(id);
        assert_eq!(to_hex(&bytes), v["bytes_hex"].as_str().unwrap(), "bytes of {id}");
        let digest = TypeHash::digest(&bytes).to_string();
        assert_eq!(digest, v["hash_hex"].as_str().unwrap(), "hash of {id}");
        // The .bin files and hashes.json still use the legacy id `micro.scope.stream`.
        let legacy = if id == "micro.scope.session" { "micro.scope.stream" } else { id };
        assert_eq!(&digest, &hashes[legacy], "hashes.json of {id}");
        let file = legacy.replace('/', "%2F");
        let bin = read(&format!("reference/tests/python/conformance/canonical/vectors/{file}.bin"));
        assert_eq!(bin, bytes, ".bin of {id}");
    }
}

// ── contract-identity.json ─────────────────────────────────────────────────────────────

fn contract_from_json(c: &Value) -> ServiceContract {
    let requires = |r: &Value| -> Option<CapabilityRequirement> {
        (!r.is_null()).then(|| CapabilityRequirement {
            kind: CapabilityKind::from_code(r["kind"].as_u64().unwrap()).unwrap(),
            roles: r["roles"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
        })
    };
    ServiceContract {
        name: c["name"].as_str().unwrap().into(),
        version: c["version"].as_i64().unwrap() as i32,
        methods: c["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| MethodDef {
                name: m["name"].as_str().unwrap().into(),
                pattern: MethodPattern::from_code(m["pattern"].as_u64().unwrap()).unwrap(),
                request_type: m["request_type"].as_str().unwrap().parse().unwrap(),
                response_type: m["response_type"].as_str().unwrap().parse().unwrap(),
                idempotent: m["idempotent"].as_bool().unwrap(),
                default_timeout: m["default_timeout"].as_f64().unwrap(),
                requires: requires(&m["requires"]),
            })
            .collect(),
        serialization_modes: c["serialization_modes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
        scoped: ScopeKind::from_code(c["scoped"].as_u64().unwrap()).unwrap(),
        requires: requires(&c["requires"]),
    }
}

#[test]
fn contract_identity_json() {
    let doc: Value = serde_json::from_slice(&read("reference/conformance/vectors/contract-identity.json")).unwrap();
    let vectors = doc["golden_vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4);
    for v in vectors {
        let contract = contract_from_json(&v["contract"]);
        let bytes = contract.canonical_bytes(P);
        let name = v["name"].as_str().unwrap();
        assert_eq!(to_hex(&bytes), v["expected_canonical_hex"].as_str().unwrap(), "{name}");
        assert_eq!(bytes.len() as u64, v["expected_canonical_length"].as_u64().unwrap(), "{name}");
        assert_eq!(ContractId::of(&contract, P).to_string(), v["expected_blake3"].as_str().unwrap(), "{name}");
    }
    // The NFC examples of the same file (identifier normalization).
    for n in doc["identifier_normalization"]["vectors"].as_array().unwrap() {
        assert_eq!(nfc(n["input"].as_str().unwrap()), n["normalized"].as_str().unwrap());
    }
}

// ── EchoService (§6.4) ─────────────────────────────────────────────────────────────────

fn echo_request() -> TypeDesc {
    msg("echo", "EchoRequest", &type_fqn("echo", "EchoRequest"), vec![("message", p("string"))])
}
fn echo_response() -> TypeDesc {
    msg("echo", "EchoResponse", "echo.EchoResponse", vec![("reply", p("string"))])
}

#[test]
fn echo_service_v0_1() {
    let desc = service(
        "EchoService",
        1,
        ScopeKind::Shared,
        &["xlang"],
        vec![method(
            "echo",
            MethodPattern::Unary,
            MethodType::Message(echo_request),
            MethodType::Message(echo_response),
        )],
    );
    let built = build_contract(&desc, P).unwrap();
    assert_eq!(type_fqn("", "Bare"), "Bare");
    assert!(built.type_hash("echo.EchoRequest").unwrap().to_string().starts_with("8b001c85"));
    assert!(built.type_hash("echo.EchoRequest").unwrap().to_string().ends_with("6e9e5"));
    assert!(built.type_hash("echo.EchoResponse").unwrap().to_string().starts_with("6f6bd0b2"));
    assert!(built.type_hash("echo.EchoResponse").unwrap().to_string().ends_with("42727"));
    assert!(to_hex(&built.contract_bytes()).ends_with("010c16786c616e6700fd"));
    assert_eq!(built.contract_id.to_string(), "8267a4fb1b48fe4cc68e82a4e842b595a9328985714d89c7a25c061e83fddb20");
    assert_eq!(built.contract_id, ContractId::digest(&built.contract_bytes()));
    // Empty serialization list = the 0.1.2 default ["xlang"].
    let default_modes = ServiceDesc { serialization: vec![], ..desc };
    assert_eq!(build_contract(&default_modes, P).unwrap().contract_id, built.contract_id);
}

// ── taskmanager.py (golden/) ───────────────────────────────────────────────────────────

fn task_assignment() -> TypeDesc {
    msg(
        "taskmgr",
        "TaskAssignment",
        "taskmanager.TaskAssignment",
        vec![("task_id", p("string")), ("title", p("string")), ("priority", p("int64")), ("tags", list(p("string")))],
    )
}
fn task_ack() -> TypeDesc {
    msg(
        "taskmgr",
        "TaskAck",
        "taskmanager.TaskAck",
        vec![("task_id", p("string")), ("accepted", p("bool")), ("worker", p("string"))],
    )
}
fn progress_request() -> TypeDesc {
    msg(
        "taskmgr",
        "ProgressRequest",
        "taskmanager.ProgressRequest",
        vec![("task_id", p("string")), ("steps", p("int64"))],
    )
}
fn progress_update() -> TypeDesc {
    msg(
        "taskmgr",
        "ProgressUpdate",
        "taskmanager.ProgressUpdate",
        vec![("task_id", p("string")), ("step", p("int64")), ("percent", p("float64")), ("note", p("string"))],
    )
}
fn step_upload() -> TypeDesc {
    msg(
        "taskmgr",
        "StepUpload",
        "taskmanager.StepUpload",
        vec![("task_id", p("string")), ("step", p("int64")), ("data", p("binary"))],
    )
}
fn upload_summary() -> TypeDesc {
    msg(
        "taskmgr",
        "UploadSummary",
        "taskmanager.UploadSummary",
        vec![("task_id", p("string")), ("steps_received", p("int64")), ("total_bytes", p("int64"))],
    )
}
fn chat_message() -> TypeDesc {
    msg(
        "taskmgr",
        "ChatMessage",
        "taskmanager.ChatMessage",
        vec![("sender", p("string")), ("text", p("string")), ("seq", p("int64"))],
    )
}

fn task_service(name: &str, scope: ScopeKind, names: [&str; 4]) -> ServiceDesc {
    use MethodType::Message as M;
    service(
        name,
        1,
        scope,
        &["xlang"],
        vec![
            method(names[0], MethodPattern::Unary, M(task_assignment), M(task_ack)),
            method(names[1], MethodPattern::ServerStream, M(progress_request), M(progress_update)),
            method(names[2], MethodPattern::ClientStream, M(step_upload), M(upload_summary)),
            method(names[3], MethodPattern::BidiStream, M(chat_message), M(chat_message)),
        ],
    )
}

fn task_manager() -> ServiceDesc {
    task_service("TaskManager", ScopeKind::Shared, ["assign_task", "watch_progress", "upload_steps", "chat"])
}
fn task_session() -> ServiceDesc {
    task_service("TaskSession", ScopeKind::Session, ["open_task", "history", "add_steps", "chat"])
}

#[test]
fn golden_task_manager_and_session() {
    for (desc, id) in [
        (task_manager(), "564f108daa850392179f626568b5c919cad3bf5996d3a41ec13229ee2b65120e"),
        (task_session(), "ada0e1fe5cded36e3151dd4c0f7820ae1e662d4e3bda5dfccd834808a80c609f"),
    ] {
        let built = build_contract(&desc, P).unwrap();
        assert_eq!(built.contract_id.to_string(), id);
        assert_eq!(built.contract_bytes(), read(&format!("golden/contract_{}.bin", desc.name)));
        assert_eq!(built.types.len(), 7);
        let summary = String::from_utf8(read("golden/contract_summary.txt")).unwrap();
        for (hash, bytes) in built.type_bytes() {
            let def = &built.types.iter().find(|(h, _)| *h == hash).unwrap().1;
            let golden = read(&format!("golden/contract_typedef_{}.{}.bin", def.package, def.name));
            assert_eq!(bytes, golden, "{}", def.name);
            assert!(summary.contains(&format!(
                "TypeDef {}.{}: {} bytes, blake3={hash}",
                def.package,
                def.name,
                bytes.len()
            )));
        }
        // Hash order.
        assert!(built.types.windows(2).all(|w| w[0].0 < w[1].0));
    }
}

#[test]
fn golden_typedef_json_matches_model() {
    // The JSON the 0.1.2 Python peer handed to its Rust canonicalizer, field by field.
    let built = build_contract(&task_manager(), P).unwrap();
    let (_, def) = built.types.iter().find(|(_, d)| d.name == "TaskAssignment").unwrap();
    let json: Value = serde_json::from_slice(&read("golden/contract_typedef_taskmgr.TaskAssignment.json")).unwrap();
    assert_eq!(json["kind"], "message");
    assert_eq!(json["package"], def.package.as_str());
    let fields = json["fields"].as_array().unwrap();
    assert_eq!(fields.len(), def.fields.len());
    for (j, f) in fields.iter().zip(&def.fields) {
        assert_eq!(j["id"], f.id);
        assert_eq!(j["name"], f.name.as_str());
        assert_eq!(j["type_kind"], serde_json::to_value(f.type_kind).unwrap());
        assert_eq!(j["type_primitive"], f.type_primitive.as_str());
        assert_eq!(j["container"], serde_json::to_value(f.container).unwrap());
        assert_eq!(j["optional"], f.optional);
    }
}

// ── ground truth generated with aster-rpc 0.1.2 ────────────────────────────────────────

const PY012: &str = include_str!("../../tests/data/contract_py012.json");

fn py_case(service: &str) -> Value {
    let doc: Value = serde_json::from_str(PY012).unwrap();
    assert_eq!(doc["aster_rpc"], "0.1.2");
    doc["cases"].as_array().unwrap().iter().find(|c| c["service"] == service).unwrap().clone()
}

/// Compares every TypeDef (by FQN), the contract bytes and the id with a Python 0.1.2 case.
fn assert_matches_python(desc: &ServiceDesc) -> BuiltContract {
    let case = py_case(&desc.name);
    let built = build_contract(desc, P).unwrap();
    let types = case["types"].as_array().unwrap();
    assert_eq!(built.type_hashes_by_fqn.len(), types.len(), "{}: type count", desc.name);
    let bytes_by_hash: BTreeMap<TypeHash, Vec<u8>> = built.type_bytes().into_iter().collect();
    for t in types {
        let fqn = t["fqn"].as_str().unwrap();
        let hash = built.type_hash(fqn).unwrap_or_else(|| panic!("{fqn} missing"));
        assert_eq!(to_hex(&bytes_by_hash[&hash]), t["bytes_hex"].as_str().unwrap(), "{fqn} bytes");
        assert_eq!(hash.to_string(), t["hash"].as_str().unwrap(), "{fqn} hash");
    }
    assert_eq!(to_hex(&built.contract_bytes()), case["contract_hex"].as_str().unwrap(), "{} contract", desc.name);
    assert_eq!(built.contract_id.to_string(), case["contract_id"].as_str().unwrap());
    built
}

#[test]
fn task_services_match_python_012() {
    for desc in [task_manager(), task_session()] {
        let built = assert_matches_python(&desc);
        // manifest.json as 0.1.2's build_collection writes it.
        let case = py_case(&desc.name);
        let manifest = ContractManifest::new(&built, &desc);
        let ours: Value = serde_json::to_value(&manifest).unwrap();
        assert_eq!(ours, case["manifest"], "{} manifest", desc.name);
        let text = manifest.to_json_pretty().unwrap();
        assert_eq!(ContractManifest::from_json(&text).unwrap(), manifest);
        assert!(manifest.matches(&built.contract_id));
    }
}

// example.py: module "example", tags "example/<Name>" → FQN "example.<Name>".
fn tree_node() -> TypeDesc {
    msg(
        "example",
        "TreeNode",
        "example.TreeNode",
        vec![
            ("value", p("string")),
            ("left", opt(r("example.TreeNode", tree_node))),
            ("right", opt(r("example.TreeNode", tree_node))),
        ],
    )
}
fn author() -> TypeDesc {
    msg("example", "Author", "example.Author", vec![("name", p("string")), ("books", list(r("example.Book", book)))])
}
fn book() -> TypeDesc {
    msg("example", "Book", "example.Book", vec![("title", p("string")), ("written_by", r("example.Author", author))])
}
fn alpha() -> TypeDesc {
    msg("example", "Alpha", "example.Alpha", vec![("next", r("example.Beta", beta))])
}
fn beta() -> TypeDesc {
    msg("example", "Beta", "example.Beta", vec![("next", r("example.Gamma", gamma))])
}
fn gamma() -> TypeDesc {
    msg("example", "Gamma", "example.Gamma", vec![("next", r("example.Alpha", alpha))])
}
fn a() -> TypeDesc {
    msg("example", "A", "example.A", vec![("b_field", r("example.B", b)), ("c_field", r("example.C", c))])
}
fn b() -> TypeDesc {
    msg("example", "B", "example.B", vec![("c_field", r("example.C", c))])
}
fn c() -> TypeDesc {
    msg("example", "C", "example.C", vec![("a_field", r("example.A", a))])
}
fn forest() -> TypeDesc {
    msg(
        "example",
        "Forest",
        "example.Forest",
        vec![
            ("root", opt(r("example.TreeNode", tree_node))),
            ("library", list(r("example.Author", author))),
            ("alpha", r("example.Alpha", alpha)),
            ("a", r("example.A", a)),
        ],
    )
}

fn example_graphs() -> ServiceDesc {
    use MethodType::Message as M;
    service(
        "ExampleGraphs",
        1,
        ScopeKind::Shared,
        &["json"],
        vec![
            method("tree", MethodPattern::Unary, M(tree_node), M(book)),
            method("cycle3", MethodPattern::Unary, M(alpha), M(a)),
            MethodDesc {
                idempotent: true,
                timeout_secs: 2.5,
                ..method("forest", MethodPattern::Unary, M(forest), M(forest))
            },
        ],
    )
}

#[test]
fn example_graphs_from_python_012() {
    let built = assert_matches_python(&example_graphs());
    let fixture: Value =
        serde_json::from_slice(&read("reference/tests/python/fixtures/canonical_test_vectors.json")).unwrap();
    let vector = |id: &str| {
        fixture["vectors"].as_array().unwrap().iter().find(|v| v["id"] == id).unwrap()["hash_hex"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // B.1 (self recursion), B.2 (Book), B.3 (Gamma), B.4 (C) come out of the graph walk.
    for (fqn, id) in
        [("example.TreeNode", "B.1"), ("example.Book", "B.2"), ("example.Gamma", "B.3"), ("example.C", "B.4")]
    {
        assert_eq!(built.type_hash(fqn).unwrap().to_string(), vector(id), "{id}");
    }
    // B.2-author is HEAD's hash order; 0.1.2 hashes Author before Book and writes zeros.
    assert_ne!(built.type_hash("example.Author").unwrap().to_string(), vector("B.2-author"));
    let author_def = &built.types.iter().find(|(_, d)| d.name == "Author").unwrap().1;
    assert_eq!(author_def.fields[1].type_ref, Some(TypeHash::ZERO));
    // A.c_field is a forward edge to an already visited member → SELF_REF("example.C").
    let a_def = &built.types.iter().find(|(_, d)| d.name == "A").unwrap().1;
    assert_eq!(a_def.fields[1].type_kind, TypeKind::SelfRef);
    assert_eq!(a_def.fields[1].self_ref_name, "example.C");
}

// richmod.py: module "richmod", tags "rich/<Name>".
fn color() -> TypeDesc {
    enum_desc("richmod", "Color", "richmod.Color", &[("RED", 1), ("GREEN", 2)])
}
fn level() -> TypeDesc {
    enum_desc("richmod", "Level", "richmod.Level", &[("LOW", 0), ("HIGH", 5)])
}
fn leaf() -> TypeDesc {
    msg("rich", "Leaf", "richmod.Leaf", vec![("id", p("string"))])
}
fn hidden() -> TypeDesc {
    msg("rich", "Hidden", "richmod.Hidden", vec![("n", p("int64"))])
}
fn key_type() -> TypeDesc {
    msg("rich", "KeyType", "richmod.KeyType", vec![("k", p("string"))])
}
fn empty() -> TypeDesc {
    msg("rich", "Empty", "richmod.Empty", vec![])
}
fn rich() -> TypeDesc {
    let leaf_ref = || r("richmod.Leaf", leaf);
    let color_ref = || r("richmod.Color", color);
    let me = || r("richmod.Rich", rich);
    msg(
        "rich",
        "Rich",
        "richmod.Rich",
        vec![
            ("s", p("string")),
            ("i", p("int64")),
            ("f", p("float64")),
            ("b", p("bool")),
            ("by", p("binary")),
            ("ba", p("binary")),
            ("o_s", opt(p("string"))),
            ("o_ref", opt(leaf_ref())),
            ("pipe_opt", FieldType::Any), // `int | None`: 0.1.2 does not see PEP 604 unions
            ("l_i", list(p("int64"))),
            ("l_ref", list(leaf_ref())),
            ("typing_list", list(p("float64"))),
            ("set_s", set(p("string"))),
            ("fs", set(p("int64"))),
            ("m_si", map(p("string"), p("int64"))),
            ("m_s_ref", map(p("string"), leaf_ref())),
            ("m_ref_b", map(r("richmod.KeyType", key_type), p("bool"))),
            ("m_i_opt", map(p("int64"), opt(p("string")))),
            ("color", color_ref()),
            ("level", r("richmod.Level", level)),
            ("o_color", opt(color_ref())),
            ("l_color", list(color_ref())),
            ("m_color", map(p("string"), color_ref())),
            ("opt_list", opt(list(p("string")))),
            ("list_opt", list(opt(p("string")))),
            ("nested", list(list(p("int64")))),
            ("nested_hidden", list(list(r("richmod.Hidden", hidden)))),
            ("any_", FieldType::Any),
            ("i32", p("int32")),
            ("i8", p("int8")),
            ("i16", p("int16")),
            ("i64", FieldType::Any), // pyfory.int64 is a TypeVar → ANY (plain `int` is "int64")
            ("f32", p("float32")),
            ("f64", FieldType::Any), // pyfory.float64 likewise
            ("tup", FieldType::Any),
            ("uni", FieldType::Any),
            ("dt", FieldType::Any),
            ("me", opt(me())),
            ("m_me", map(p("string"), me())),
            ("k_me", map(me(), p("int64"))),
            ("l_me", list(me())),
        ],
    )
}
fn x() -> TypeDesc {
    msg("rich", "X", "richmod.X", vec![("ys", list(list(r("richmod.Y", y))))])
}
fn y() -> TypeDesc {
    msg("rich", "Y", "richmod.Y", vec![("x", opt(r("richmod.X", x)))])
}

fn rich_service() -> ServiceDesc {
    use MethodType::{Message as M, Primitive as Prim};
    service(
        "RichService",
        3,
        ScopeKind::Session,
        &["json", "native"],
        vec![
            method("rich", MethodPattern::Unary, M(rich), M(empty)),
            MethodDesc { timeout_secs: 10.0, ..method("xy", MethodPattern::ServerStream, M(x), M(y)) },
            MethodDesc { idempotent: true, ..method("enum_in", MethodPattern::ClientStream, M(color), M(leaf)) },
            method("prim", MethodPattern::BidiStream, Prim("string"), Prim("int64")),
            method("prim2", MethodPattern::Unary, Prim("float64"), Prim("binary")),
            // `@rpc(name="Renamed")` in Python: 0.1.2 keeps the function name.
            method("prim3", MethodPattern::Unary, Prim("bool"), M(level)),
        ],
    )
}

#[test]
fn rich_mapping_from_python_012() {
    let built = assert_matches_python(&rich_service());
    assert!(built.type_hash("richmod.Color").is_none(), "enums are not TypeDefs");
    assert!(built.type_hash("richmod.Hidden").is_some(), "reachable through an ANY slot");
    let by_name: BTreeMap<&str, &MethodDef> = built.contract.methods.iter().map(|m| (m.name.as_str(), m)).collect();
    assert_eq!(by_name["enum_in"].request_type, TypeHash::ZERO);
    assert_eq!(by_name["prim3"].response_type, TypeHash::ZERO);
    assert_eq!(by_name["prim"].request_type, TypeHash::digest(b"string"));
    // Widths Python cannot express in a method slot give zeros.
    let i32_slot = service(
        "S",
        1,
        ScopeKind::Shared,
        &[],
        vec![method("m", MethodPattern::Unary, MethodType::Primitive("int32"), MethodType::None)],
    );
    let built = build_contract(&i32_slot, P).unwrap();
    assert_eq!(built.contract.methods[0].request_type, TypeHash::ZERO);
    assert_eq!(built.contract.methods[0].response_type, TypeHash::ZERO);
    // The rich manifest builds and round-trips (its field details differ from Python where
    // Python cannot classify: bytearray, tuple, unions, …).
    let manifest = ContractManifest::new(&assert_matches_python(&rich_service()), &rich_service());
    assert_eq!(manifest.type_count, 7);
    assert_eq!(ContractManifest::from_json(&manifest.to_json_pretty().unwrap()).unwrap(), manifest);
    let rich_fields = &manifest.methods.iter().find(|m| m.name == "rich").unwrap().fields;
    let color_field = rich_fields.iter().find(|f| f.name == "color").unwrap();
    assert_eq!(color_field.kind, "enum");
    assert_eq!(color_field.enum_values, Some(vec![Value::from(1), Value::from(2)]));
    let m_s_ref = rich_fields.iter().find(|f| f.name == "m_s_ref").unwrap();
    assert_eq!(m_s_ref.value_ref.as_deref(), Some("Leaf"));
}

// ── ordering, normalization, errors ─────────────────────────────────────────────────────

#[test]
fn methods_sorted_by_nfc_name_and_written_as_given() {
    let mk = |names: &[&str]| {
        let methods =
            names.iter().map(|n| method(n, MethodPattern::Unary, MethodType::None, MethodType::None)).collect();
        build_contract(&service("S", 1, ScopeKind::Shared, &[], methods), P).unwrap()
    };
    // "e\u{301}" (NFD) sorts as "é" (U+00E9) > "f".
    let built = mk(&["f", "e\u{301}x", "b"]);
    let names: Vec<&str> = built.contract.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["b", "f", "e\u{301}x"]);
    assert_ne!(mk(&["e\u{301}x"]).contract_id, mk(&["\u{e9}x"]).contract_id);
    // Encoder sorts on its own too.
    let mut reversed = built.contract.clone();
    reversed.methods.reverse();
    assert_eq!(reversed.canonical_bytes(P), built.contract.canonical_bytes(P));
}

#[test]
fn roles_normalized_and_sorted() {
    let req = |roles: &[&str]| CapabilityRequirement {
        kind: CapabilityKind::AllOf,
        roles: roles.iter().map(|s| (*s).to_owned()).collect(),
    };
    assert_eq!(req(&["cafe\u{301}", "admin"]).canonical_bytes(P), req(&["admin", "caf\u{e9}"]).canonical_bytes(P));
    assert_eq!(to_hex(&req(&[]).canonical_bytes(P)), "02000c");
    assert_eq!(ScopeKind::Session.canonical_bytes(P), [1]);
    assert_eq!(serde_json::from_str::<ScopeKind>("\"stream\"").unwrap(), ScopeKind::Session);
    assert_eq!(serde_json::to_string(&MethodPattern::BidiStream).unwrap(), "\"bidi_stream\"");
}

#[test]
fn field_mapping_details() {
    // Option<Option<T>> flattens; Option as a map key is ANY; self-ref map key drops the name.
    fn node() -> TypeDesc {
        msg(
            "t",
            "Node",
            "t.Node",
            vec![
                ("oo", opt(opt(p("string")))),
                ("k_opt", map(opt(p("string")), p("bool"))),
                ("k_self", map(r("t.Node", node), p("bool"))),
                ("u", p("uint64")),
                ("unit", p("null")),
            ],
        )
    }
    let desc = service(
        "S",
        1,
        ScopeKind::Shared,
        &[],
        vec![method("m", MethodPattern::Unary, MethodType::Message(node), MethodType::None)],
    );
    let built = build_contract(&desc, P).unwrap();
    let def = &built.types[0].1;
    assert!(def.fields[0].optional);
    assert_eq!((def.fields[0].type_kind, def.fields[0].type_primitive.as_str()), (TypeKind::Primitive, "string"));
    assert_eq!(def.fields[1].container_key_kind, TypeKind::Any);
    assert_eq!(def.fields[2].container_key_kind, TypeKind::SelfRef);
    assert_eq!(def.fields[2].container_key_ref, None);
    assert_eq!(def.fields[2].self_ref_name, "");
    assert_eq!(def.fields[3].type_kind, TypeKind::Any);
    assert_eq!(def.fields[4].type_primitive, "null");
    assert_eq!(def.fields.iter().map(|f| f.id).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
}

#[test]
fn errors() {
    let ok = || {
        service(
            "S",
            1,
            ScopeKind::Shared,
            &[],
            vec![method("m", MethodPattern::Unary, MethodType::None, MethodType::None)],
        )
    };
    let err = |d: ServiceDesc| build_contract(&d, P).unwrap_err();
    assert!(build_contract(&ok(), P).is_ok());
    assert_eq!(err(ServiceDesc { name: String::new(), ..ok() }), ContractError::EmptyName { what: "service name" });
    assert!(matches!(err(ServiceDesc { name: "x".repeat(257), ..ok() }), ContractError::NameTooLong { .. }));
    let mut dup = ok();
    dup.methods.push(method("m", MethodPattern::Unary, MethodType::None, MethodType::None));
    assert_eq!(err(dup), ContractError::DuplicateMethod("m".into()));
    let mut nfc_dup = ok();
    nfc_dup.methods = vec![
        method("caf\u{e9}", MethodPattern::Unary, MethodType::None, MethodType::None),
        method("cafe\u{301}", MethodPattern::Unary, MethodType::None, MethodType::None),
    ];
    assert!(matches!(err(nfc_dup), ContractError::DuplicateMethod(_)));
    let mut empty_method = ok();
    empty_method.methods[0].name.clear();
    assert_eq!(err(empty_method), ContractError::EmptyName { what: "method name" });
    let mut bad_timeout = ok();
    bad_timeout.methods[0].timeout_secs = f64::NAN;
    assert!(matches!(err(bad_timeout), ContractError::InvalidTimeout { .. }));
    let mut bad_prim = ok();
    bad_prim.methods[0].request = MethodType::Primitive("int");
    assert_eq!(err(bad_prim), ContractError::UnknownPrimitive("int".into()));

    let with = |f: fn() -> TypeDesc| {
        service(
            "S",
            1,
            ScopeKind::Shared,
            &[],
            vec![method("m", MethodPattern::Unary, MethodType::Message(f), MethodType::None)],
        )
    };
    fn dup_field() -> TypeDesc {
        msg("t", "D", "t.D", vec![("a", p("string")), ("a", p("bool"))])
    }
    assert!(matches!(err(with(dup_field)), ContractError::DuplicateField { .. }));
    fn empty_field() -> TypeDesc {
        msg("t", "D", "t.D", vec![("", p("string"))])
    }
    assert_eq!(err(with(empty_field)), ContractError::EmptyName { what: "field name" });
    fn bad_field_prim() -> TypeDesc {
        msg("t", "D", "t.D", vec![("a", list(p("str")))])
    }
    assert_eq!(err(with(bad_field_prim)), ContractError::UnknownPrimitive("str".into()));
    fn mismatch() -> TypeDesc {
        msg("t", "D", "t.D", vec![("a", r("t.Other", leaf))])
    }
    assert!(matches!(err(with(mismatch)), ContractError::FqnMismatch { .. }));
    fn conflict_a() -> TypeDesc {
        msg("t", "D", "t.D", vec![("a", p("string"))])
    }
    fn conflict_b() -> TypeDesc {
        msg("t", "D", "t.D", vec![("b", p("string"))])
    }
    let mut conflict = with(conflict_a);
    conflict.methods[0].response = MethodType::Message(conflict_b);
    assert_eq!(err(conflict), ContractError::ConflictingType { fqn: "t.D".into() });
    fn no_name() -> TypeDesc {
        msg("t", "", "t.D", vec![])
    }
    assert_eq!(err(with(no_name)), ContractError::EmptyName { what: "type name" });
    fn wide() -> TypeDesc {
        let fields: Vec<(String, FieldType)> = (0..1001).map(|i| (format!("f{i}"), p("bool"))).collect();
        TypeDesc {
            package: "t".into(),
            name: "W".into(),
            fqn: "t.W".into(),
            kind: TypeDescKind::Message(fields.into_iter().map(|(name, ty)| FieldDesc { name, ty }).collect()),
        }
    }
    assert!(matches!(err(with(wide)), ContractError::TooManyFields { count: 1001, .. }));
}

#[test]
fn field_def_zero_values() {
    // A FieldDef with only id/name/primitive set: every companion at its zero value.
    let f = prim_field(1, "message", "string");
    assert_eq!(f.canonical_bytes(P), hex("02 1e6d657373616765 00 1a737472696e67 00 02 00 00 00 00 02 00"));
    let v = EnumValueDef { name: "A".into(), value: -1 };
    assert_eq!(to_hex(&v.canonical_bytes(P)), "064101");
    let u = UnionVariantDef { name: "A".into(), id: 1, type_ref: h(1) };
    assert!(to_hex(&u.canonical_bytes(P)).starts_with("06410220"));
    assert_eq!(TypeKind::Any.canonical_bytes(P), [3]);
    assert_eq!(TypeKind::from_code(4), None);
}
