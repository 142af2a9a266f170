//! `#[service]` and `#[derive(AsterType)]`: contract ids equal to aster-rpc 0.1.2's for the
//! TaskManager example, what the derive describes and registers, the generated descriptors,
//! and the generated clients over real endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use aster::AsterField;
use aster::prelude::*;
use aster::runtime::codec::PayloadCodec;
use aster::runtime::contract::{
    CapabilityKind, ContractManifest, Describe, FieldDesc, FieldType, MethodPattern, ScopeKind, TypeDescKind,
};
use common::taskmanager::*;
use common::*;
use serde::{Deserialize, Serialize};

const TASK_MANAGER_ID: &str = "564f108daa850392179f626568b5c919cad3bf5996d3a41ec13229ee2b65120e";
const TASK_SESSION_ID: &str = "ada0e1fe5cded36e3151dd4c0f7820ae1e662d4e3bda5dfccd834808a80c609f";

// ── contract ids of the example (golden values from aster-rpc 0.1.2) ────────

#[test]
fn task_manager_contract_id_matches_python() {
    let id = TaskManagerService::<TaskManager>::contract_id().expect("TaskManager has a contract");
    assert_eq!(id.to_hex(), TASK_MANAGER_ID);
    let built = TaskManagerService::<TaskManager>::contract().unwrap();
    assert_eq!(built.contract_id.to_string(), TASK_MANAGER_ID);
    // computed once
    assert!(std::ptr::eq(built, TaskManagerService::<TaskManager>::contract().unwrap()));
    // the seven message types of the golden summary
    assert_eq!(built.types.len(), 7);
}

#[test]
fn task_session_contract_id_matches_python() {
    let id = TaskSessionService::<TaskSession>::contract_id().expect("TaskSession has a contract");
    assert_eq!(id.to_hex(), TASK_SESSION_ID);
}

#[test]
fn contract_matches_the_golden_json() {
    let golden = include_str!("../../shared/vectors/golden/contract_TaskManager.json");
    let golden: serde_json::Value = serde_json::from_str(golden).unwrap();
    let built = TaskManagerService::<TaskManager>::contract().unwrap();
    let c = &built.contract;
    assert_eq!(c.name, golden["name"].as_str().unwrap());
    assert_eq!(c.serialization_modes, vec!["xlang".to_owned()]);
    let names: Vec<&str> = c.methods.iter().map(|m| m.name.as_str()).collect();
    let golden_names: Vec<&str> =
        golden["methods"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, golden_names);
    for (m, g) in c.methods.iter().zip(golden["methods"].as_array().unwrap()) {
        assert_eq!(m.request_type.to_hex(), g["request_type"].as_str().unwrap(), "{}", m.name);
        assert_eq!(m.response_type.to_hex(), g["response_type"].as_str().unwrap(), "{}", m.name);
    }
}

#[test]
fn service_desc_reflects_the_declaration() {
    let d = TaskManagerService::<TaskManager>::service_desc();
    assert_eq!((d.name.as_str(), d.version, d.scope), ("TaskManager", 1, ScopeKind::Shared));
    assert_eq!(d.serialization, vec!["xlang".to_owned()]);
    let m: Vec<(&str, MethodPattern)> = d.methods.iter().map(|m| (m.name.as_str(), m.pattern)).collect();
    assert_eq!(
        m,
        vec![
            ("assign_task", MethodPattern::Unary),
            ("watch_progress", MethodPattern::ServerStream),
            ("upload_steps", MethodPattern::ClientStream),
            ("chat", MethodPattern::BidiStream),
        ]
    );
    assert_eq!(TaskSessionService::<TaskSession>::service_desc().scope, ScopeKind::Session);
    assert_eq!(
        (TaskManagerService::<TaskManager>::NAME, TaskManagerService::<TaskManager>::VERSION),
        ("TaskManager", 1)
    );
    assert!(TaskManagerService::<TaskManager>::requires().is_none());
}

#[test]
fn runtime_descriptor_accepts_native_and_json_besides_the_declared_modes() {
    let d = <TaskManagerService<TaskManager> as ServiceDef>::descriptor();
    assert_eq!(d.serialization, vec![SerializationMode::Xlang, SerializationMode::Native]);
    assert!(d.accepts_mode(SerializationMode::Native));
    assert!(d.accepts_mode(SerializationMode::Json));
    assert!(!d.accepts_mode(SerializationMode::Row));
    let names: Vec<&str> = d.methods.iter().map(|m| m.name).collect();
    assert_eq!(names, ["assign_task", "watch_progress", "upload_steps", "chat"]);
    assert_eq!(d.scope, Scope::Shared);
    let s = <TaskSessionService<TaskSession> as ServiceDef>::descriptor();
    assert_eq!(s.scope, Scope::Session);
}

#[test]
fn manifest_of_the_example() {
    let built = TaskManagerService::<TaskManager>::contract().unwrap();
    let manifest = ContractManifest::new(built, &TaskManagerService::<TaskManager>::service_desc());
    assert!(manifest.matches(&built.contract_id));
    let json = manifest.to_json_pretty().unwrap();
    assert!(json.contains("assign_task"), "{json}");
}

// ── a service with every option ─────────────────────────────────────────────

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[aster(tag = "opts/Ping")]
pub struct Ping {
    pub n: i64,
}

/// A handler trait without the `Handler` suffix: the prefix is the trait name itself.
#[aster::service(name = "Options", version = 3, serialization = [native, json], requires = role("ops"))]
pub trait Options {
    #[unary(timeout = 2.5, idempotent, requires = any_of("b", "a"))]
    async fn get(&self, ctx: CallContext, req: Ping) -> Result<Ping, Status>;

    #[rpc(name = "renamedPut", serialization = [json], requires = all_of("w"))]
    async fn put(&self, ctx: CallContext, req: Ping) -> Result<Ping, Status>;

    /// A method with a default body.
    #[server_stream(timeout = 1)]
    async fn count(&self, ctx: CallContext, req: Ping, mut sink: ServerSink<Ping>) -> Result<(), Status> {
        let _ = ctx;
        for n in 0..req.n {
            sink.send(Ping { n }).await?;
        }
        Ok(())
    }
}

struct OptionsImpl;

impl Options for OptionsImpl {
    async fn get(&self, _ctx: CallContext, req: Ping) -> Result<Ping, Status> {
        Ok(Ping { n: req.n + 1 })
    }

    async fn put(&self, _ctx: CallContext, req: Ping) -> Result<Ping, Status> {
        Ok(req)
    }
}

#[test]
fn method_options_reach_the_descriptor_and_contract() {
    let d = <OptionsService<OptionsImpl> as ServiceDef>::descriptor();
    assert_eq!((d.name, d.version), ("Options", 3));
    assert_eq!(d.serialization, vec![SerializationMode::Native, SerializationMode::Json]);
    let get = &d.methods[0];
    assert_eq!(get.timeout, Some(std::time::Duration::from_millis(2500)));
    assert!(get.idempotent);
    let r = get.requires.as_ref().unwrap();
    assert_eq!((r.kind, r.roles.clone()), (CapabilityKind::AnyOf, vec!["b".to_owned(), "a".to_owned()]));
    assert_eq!(get.serialization, None);
    let put = &d.methods[1];
    assert_eq!(put.name, "renamedPut");
    assert_eq!(put.serialization, Some(vec![SerializationMode::Json]));
    assert_eq!(put.requires.as_ref().unwrap().kind, CapabilityKind::AllOf);
    assert_eq!(d.methods[2].timeout, Some(std::time::Duration::from_secs(1)));
    let svc = OptionsService::<OptionsImpl>::requires().unwrap();
    assert_eq!((svc.kind, svc.roles), (CapabilityKind::Role, vec!["ops".to_owned()]));

    let desc = OptionsService::<OptionsImpl>::service_desc();
    assert_eq!(desc.serialization, vec!["native".to_owned(), "json".to_owned()]);
    assert_eq!(desc.methods[0].timeout_secs, 2.5);
    assert!(desc.methods[0].idempotent);
    assert_eq!(desc.methods[1].name, "renamedPut");
    // requirements never reach the 0.1.2 contract
    let built = OptionsService::<OptionsImpl>::contract().unwrap();
    assert!(built.contract.requires.is_none());
    assert!(built.contract.methods.iter().all(|m| m.requires.is_none()));
}

/// Admits everyone with the roles `Options` requires (`ops` for the service, `a` / `w` for
/// its methods).
struct OptionsRoles;

impl AdmissionGate for OptionsRoles {
    fn name(&self) -> &str {
        "options-roles"
    }

    fn is_open(&self) -> bool {
        true
    }

    fn admit<'a>(
        &'a self,
        _ctx: &'a aster::actors::AdmissionContext,
    ) -> aster::actors::admission::BoxFuture<'a, aster::actors::AdmissionDecision> {
        let roles = BTreeMap::from([("aster.role".to_owned(), "ops,a,w".to_owned())]);
        Box::pin(async move { aster::actors::AdmissionDecision::admit_with(roles) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_client_calls_renamed_and_default_methods() {
    let node = spawn(AsterNode::builder().admission_gate(OptionsRoles).serve(OptionsService(OptionsImpl))).await;
    let summary = &node.services()[0];
    assert_eq!(summary.contract_id, OptionsService::<OptionsImpl>::contract_id().map(|c| c.to_hex()));
    let (ep, ch) = connect(&node).await;
    let client = OptionsClient::new(ch.clone());
    // `requires` is enforced (Gate 3): without admission the caller has no roles
    let denied = guard("denied", client.get(&Ping { n: 1 }, CallOptions::new())).await;
    assert_eq!(expect_code(denied, Code::PermissionDenied).message(), "capability check failed for service 'Options'");
    let admitted = guard("admission", AsterClient::connect(&ep, node.addr())).await.unwrap();
    assert_eq!(admitted.admission().attributes["aster.role"], "ops,a,w");
    for mode in [SerializationMode::Native, SerializationMode::Json] {
        let opts = || CallOptions::new().mode(mode);
        assert_eq!(guard("get", client.get(&Ping { n: 1 }, opts())).await.unwrap(), Ping { n: 2 });
        // `put` declares `serialization = [json]`: the per-method list overrides the service's
        let put = guard("put", client.put(&Ping { n: 7 }, opts())).await;
        if mode == SerializationMode::Json {
            assert_eq!(put.unwrap(), Ping { n: 7 });
        } else {
            let st = expect_code(put, Code::InvalidArgument);
            assert!(st.message().contains("method 'Options.renamedPut'"), "{st}");
            assert!(st.message().contains("accepts: json"), "{st}");
        }
        let all =
            guard("count", async { client.count(&Ping { n: 3 }, opts()).await?.collect_all().await }).await.unwrap();
        assert_eq!(all, vec![Ping { n: 0 }, Ping { n: 1 }, Ping { n: 2 }]);
    }
    // the wire name is "renamedPut", not "put"
    let err = ch.unary::<Ping, Ping>("Options", 3, "put", &Ping { n: 1 }, CallOptions::new()).await;
    expect_code(err, Code::Unimplemented);
    ch.close();
    ep.close().await;
    guard("shutdown", node.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_summaries_carry_contract_ids_and_session_client_works() {
    let node = spawn(
        AsterNode::builder()
            .serve(TaskManagerService(TaskManager::default()))
            .serve_sessions(|info: &SessionInfo| TaskSessionService(TaskSession::new(info))),
    )
    .await;
    let ids: HashMap<&str, Option<&str>> =
        node.services().iter().map(|s| (s.name.as_str(), s.contract_id.as_deref())).collect();
    assert_eq!(ids["TaskManager"], Some(TASK_MANAGER_ID));
    assert_eq!(ids["TaskSession"], Some(TASK_SESSION_ID));

    let (ep, ch) = connect(&node).await;
    let session = guard("open", TaskSessionSessionClient::open(&ch)).await.unwrap();
    for id in ["a", "b"] {
        let task = TaskAssignment { task_id: id.into(), ..Default::default() };
        guard("open_task", session.open_task(&task, CallOptions::new())).await.unwrap();
    }
    let history = guard("history", async {
        session.history(&ProgressRequest::default(), CallOptions::new()).await?.collect_all().await
    })
    .await
    .unwrap();
    assert_eq!(history.iter().map(|u| u.task_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let mut up = guard("add_steps", session.add_steps(CallOptions::new())).await.unwrap();
    up.send(&StepUpload { task_id: "a".into(), step: 1, data: vec![1, 2] }).await.unwrap();
    assert_eq!(guard("finish", up.finish()).await.unwrap().total_bytes, 2);
    let (mut tx, mut rx) = guard("chat", session.chat(CallOptions::new())).await.unwrap();
    tx.send(&ChatMessage { sender: "me".into(), text: "hi".into(), seq: 1 }).await.unwrap();
    tx.close().await.unwrap();
    let reply = guard("reply", rx.message()).await.unwrap().unwrap();
    assert_eq!((reply.text.as_str(), reply.sender.as_str()), ("HI", "session(2 tasks)"));
    assert!(guard("end", rx.message()).await.unwrap().is_none());
    guard("close", session.close()).await.unwrap();

    ch.close();
    ep.close().await;
    guard("shutdown", node.shutdown()).await.unwrap();
}

// ── the derive ──────────────────────────────────────────────────────────────

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyEnum, AsterType)]
#[aster(tag = "derive/Color")]
pub enum Color {
    #[default]
    Red,
    Green = 5,
    Blue,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[aster(tag = "derive/Leaf")]
pub struct Leaf {
    pub label: String,
    pub weight: f64,
}

/// Self-referential through `Vec<_>`; nests Leaf, Color and containers. (fory 1.7.7 cannot
/// encode a self-referential `Option<Box<Self>>` field: its size estimate recurses forever.)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(default)]
#[aster(tag = "derive/Tree", fqn = "trees.Tree")]
pub struct Tree {
    pub name: String,
    pub leaf: Leaf,
    pub leaves: Vec<Leaf>,
    pub by_name: HashMap<String, Leaf>,
    pub first: Option<Leaf>,
    pub color: Color,
    pub children: Vec<Tree>,
    pub boxed: Option<Box<Leaf>>,
    pub blob: Vec<u8>,
    pub small: i32,
    pub tags: HashSet<String>,
    pub sorted: BTreeMap<i64, bool>,
}

mod inner {
    #[derive(
        Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, fory::ForyStruct, aster::AsterType,
    )]
    #[aster(untagged)]
    pub(crate) struct Anonymous {
        pub x: i64,
    }

    #[derive(
        Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, fory::ForyStruct, aster::AsterType,
    )]
    #[aster(tag = "derive/HoldsAnonymous")]
    pub(crate) struct HoldsAnonymous {
        pub name: String,
        pub anon: Vec<Anonymous>,
    }

    #[derive(
        Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, fory::ForyEnum, aster::AsterType,
    )]
    #[aster(untagged)]
    pub(crate) enum Shade {
        #[default]
        Light,
        Dark,
    }

    #[derive(
        Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, fory::ForyStruct, aster::AsterType,
    )]
    #[aster(tag = "derive/WithShade")]
    pub(crate) struct WithShade {
        pub shade: Shade,
    }
}

fn tree() -> Tree {
    let leaf = Leaf { label: "l".into(), weight: 0.5 };
    Tree {
        name: "root".into(),
        leaf: leaf.clone(),
        leaves: vec![leaf.clone(), Leaf::default()],
        by_name: HashMap::from([("k".to_owned(), leaf.clone())]),
        first: Some(leaf),
        color: Color::Blue,
        children: vec![Tree { name: "child".into(), color: Color::Green, ..Default::default() }],
        boxed: Some(Box::new(Leaf { label: "boxed".into(), weight: 2.0 })),
        blob: vec![1, 2, 3],
        small: -4,
        tags: HashSet::from(["t".to_owned()]),
        sorted: BTreeMap::from([(1, true)]),
    }
}

#[test]
fn nested_and_recursive_types_round_trip_in_every_mode() {
    for mode in [SerializationMode::Native, SerializationMode::Json, SerializationMode::Xlang] {
        let codec = PayloadCodec::new(mode);
        let (flags, payload) = codec.encode(&tree()).unwrap();
        let back: Tree = codec.decode(flags, &payload).unwrap();
        assert_eq!(back, tree(), "{mode}");
    }
    // XLANG: the enum travels as its declaration index (Blue = 6 is ordinal 2), not its value
    let mut out = Vec::new();
    Leaf::default().encode_payload(SerializationMode::Xlang, &mut out).unwrap();
    assert_eq!(&out[..3], [0x02, 0xff, 0x1d], "pyfory header, not null, NAMED_STRUCT");
    assert_eq!(<Color as aster::__private::XlangEnum>::to_ordinal(&Color::Blue), 2);
    assert_eq!(<Color as aster::__private::XlangEnum>::from_ordinal(1), Some(Color::Green));
    assert_eq!(<Color as aster::__private::XlangEnum>::from_ordinal(3), None);
}

#[test]
fn xlang_field_types() {
    let x = |t: aster::runtime::codec::xlang::XlangType| t.to_string();
    assert_eq!(x(<Vec<u8> as AsterField>::XLANG), "binary");
    assert_eq!(x(<Vec<Vec<u8>> as AsterField>::XLANG), "list<binary>");
    assert_eq!(x(<Vec<u16> as AsterField>::XLANG), "list<int64>");
    assert_eq!(x(<i32 as AsterField>::XLANG), "int32");
    assert_eq!(x(<Option<Box<Leaf>> as AsterField>::XLANG), "optional<struct derive/Leaf>");
    assert_eq!(x(<HashMap<String, Vec<Color>> as AsterField>::XLANG), "map<string, list<enum derive/Color>>");
    assert_eq!(x(<HashSet<i64> as AsterField>::XLANG), "set<int64>");
    assert_eq!(x(<f32 as AsterField>::XLANG), "float64");
    assert!(x(<inner::Anonymous as AsterField>::XLANG).starts_with("unsupported (Anonymous is #[aster(untagged)]"));
    // an untagged struct (and anything holding one) refuses XLANG; JSON and NATIVE still work
    let err = PayloadCodec::new(SerializationMode::Xlang).encode(&inner::Anonymous { x: 1 }).unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("macros.inner/Anonymous has no XLANG codec"), "{err}");
    let err = PayloadCodec::new(SerializationMode::Xlang).decode::<inner::Anonymous>(0, b"\x02").unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    let holder = inner::HoldsAnonymous::default();
    let err = PayloadCodec::new(SerializationMode::Xlang).encode(&holder).unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(
        err.message().contains("derive/HoldsAnonymous.anon: no XLANG form: Anonymous is #[aster(untagged)]"),
        "{err}"
    );
    let (f, p) = PayloadCodec::new(SerializationMode::Native).encode(&holder).unwrap();
    assert_eq!(PayloadCodec::new(SerializationMode::Native).decode::<inner::HoldsAnonymous>(f, &p).unwrap(), holder);
    // an untagged enum is named after its module path (compile-time `::` → `.`)
    assert_eq!(<inner::Shade as aster::__private::XlangEnum>::NAMESPACE, "macros.inner");
    assert_eq!(<inner::Shade as aster::__private::XlangEnum>::TYPENAME, "Shade");
    let v = inner::WithShade { shade: inner::Shade::Dark };
    let (f, p) = PayloadCodec::new(SerializationMode::Xlang).encode(&v).unwrap();
    assert_eq!(PayloadCodec::new(SerializationMode::Xlang).decode::<inner::WithShade>(f, &p).unwrap(), v);
    assert_eq!(*p.last().unwrap(), 1, "ordinal of Dark");
    assert_eq!(aster::__private::dotted_path_len("a::bc::d"), 6);
    assert_eq!(&aster::__private::dotted_path::<6>("a::bc::d"), b"a.bc.d");
}

#[test]
fn wire_tags() {
    assert_eq!(<Tree as Message>::wire_tag(), "derive/Tree");
    assert_eq!(<inner::Anonymous as Message>::wire_tag(), "macros.inner/Anonymous");
    let d = inner::Anonymous::describe();
    assert_eq!(
        (d.package.as_str(), d.name.as_str(), d.fqn.as_str()),
        ("macros.inner", "Anonymous", "macros.inner.Anonymous")
    );
    let codec = PayloadCodec::new(SerializationMode::Native);
    let (f, p) = codec.encode(&inner::Anonymous { x: 9 }).unwrap();
    assert_eq!(codec.decode::<inner::Anonymous>(f, &p).unwrap().x, 9);
}

#[test]
fn describe_maps_field_types() {
    let d = Tree::describe();
    assert_eq!((d.package.as_str(), d.name.as_str(), d.fqn.as_str()), ("derive", "Tree", "trees.Tree"));
    let TypeDescKind::Message(fields) = d.kind else { panic!("a message") };
    let leaf = || FieldType::Ref { fqn: "derive.Leaf".into(), describe: Leaf::describe };
    let tree_ref = || FieldType::Ref { fqn: "trees.Tree".into(), describe: Tree::describe };
    let expected = vec![
        ("name", FieldType::Primitive("string")),
        ("leaf", leaf()),
        ("leaves", FieldType::List(Box::new(leaf()))),
        ("by_name", FieldType::Map(Box::new(FieldType::Primitive("string")), Box::new(leaf()))),
        ("first", FieldType::Optional(Box::new(leaf()))),
        ("color", FieldType::Ref { fqn: "derive.Color".into(), describe: Color::describe }),
        ("children", FieldType::List(Box::new(tree_ref()))),
        ("boxed", FieldType::Optional(Box::new(leaf()))),
        ("blob", FieldType::Primitive("binary")),
        ("small", FieldType::Primitive("int32")),
        ("tags", FieldType::Set(Box::new(FieldType::Primitive("string")))),
        ("sorted", FieldType::Map(Box::new(FieldType::Primitive("int64")), Box::new(FieldType::Primitive("bool")))),
    ];
    let expected: Vec<FieldDesc> = expected.into_iter().map(|(name, ty)| FieldDesc { name: name.into(), ty }).collect();
    assert_eq!(fields, expected);

    let c = Color::describe();
    assert_eq!(c.fqn, "derive.Color");
    assert_eq!(c.kind, TypeDescKind::Enum(vec![("Red".into(), 0), ("Green".into(), 5), ("Blue".into(), 6)]));
    assert_eq!(<Vec<u8> as AsterField>::field_type(), FieldType::Primitive("binary"));
    assert_eq!(<Vec<u16> as AsterField>::field_type(), FieldType::List(Box::new(FieldType::Primitive("uint16"))));
}

/// A recursive request type builds a contract (self references are cut, not followed).
#[aster::service(name = "Forest")]
pub trait ForestHandler {
    #[unary]
    async fn plant(&self, ctx: CallContext, req: Tree) -> Result<Leaf, Status>;
}

#[test]
fn recursive_types_build_a_contract() {
    struct F;
    impl ForestHandler for F {
        async fn plant(&self, _ctx: CallContext, req: Tree) -> Result<Leaf, Status> {
            Ok(req.leaf)
        }
    }
    let built = ForestService::<F>::contract().unwrap();
    assert_eq!(built.contract.serialization_modes, vec!["xlang".to_owned()], "Python's default");
    // Tree and Leaf become TypeDefs; the enum Color is ANY and has none
    assert_eq!(built.types.len(), 2);
    assert!(ForestService::<F>::contract_id().is_some());
}

/// Every generated public item is documented: this module denies `missing_docs`.
#[deny(missing_docs)]
pub mod documented {
    use aster::prelude::*;
    use serde::{Deserialize, Serialize};

    /// A documented message.
    #[derive(Clone, Debug, Default, Serialize, Deserialize, fory::ForyStruct, AsterType)]
    #[aster(tag = "doc/Note")]
    pub struct Note {
        /// Its text.
        pub text: String,
    }

    /// A documented shared service.
    #[service(name = "Documented")]
    pub trait DocumentedHandler {
        /// Echoes.
        #[unary]
        async fn echo(&self, ctx: CallContext, req: Note) -> Result<Note, Status>;
    }

    /// A documented session service.
    #[service(name = "DocumentedSession", scope = session)]
    pub trait DocumentedSessionHandler {
        /// Streams back.
        #[bidi_stream]
        async fn echo(&mut self, ctx: CallContext, reqs: Streaming<Note>, sink: ServerSink<Note>)
        -> Result<(), Status>;
    }
}
