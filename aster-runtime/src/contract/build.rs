//! [`build_contract`]: from a [`ServiceDesc`] to the canonical contract, the way aster-rpc
//! 0.1.2 builds it (`build_type_graph` → `resolve_with_cycles` →
//! `ServiceContract.from_service_info` in `aster/contract/identity.py`).
//!
//! # The 0.1.2 graph walk
//!
//! 1. **Nodes**: every message type reachable from the methods' request/response types,
//!    through all fields, container arguments and optionals at any depth (also through slots
//!    that end up ANY, such as `Vec<Vec<T>>`). Enums are never nodes. Key = [`TypeDesc::fqn`].
//! 2. **Edges**: node → every message type named anywhere in its fields.
//! 3. **SCCs**: Tarjan, nodes and successors visited in FQN order; SCCs come out leaves
//!    first, so REFs to other SCCs always carry the final hash.
//! 4. **Singleton SCC** with a self-edge: every field naming the type itself is
//!    SELF_REF(own FQN).
//! 5. **Multi-node SCC**: DFS from the member with the smallest NFC FQN, successors in FQN
//!    order; *every* edge to an already visited member (back, forward or cross edge) is a
//!    "back-edge" and becomes SELF_REF(target FQN) in the source's fields.
//! 6. **Hash order inside the SCC** (0.1.2 bug, fixed after 0.1.2): the *reversed* DFS
//!    post-order over the remaining (tree) edges, i.e. parents before children. So a tree
//!    edge always points at a member that is not hashed yet, and 0.1.2 writes it as
//!    **REF with 32 zero bytes**. (HEAD hashes in post-order and writes real hashes.)
//! 7. Field ids are 1..n in declaration order; `ref_tracked` is always false.
//!
//! Method slots: see the table in [`describe`](super::describe). Methods are sorted by NFC
//! name, serialization modes keep their order (empty → `["xlang"]`), `requires` is always
//! absent (0.1.2 never passes capability requirements into the contract).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::describe::{
    FieldDesc, FieldType, MethodType, PRIMITIVE_NAMES, ServiceDesc, TypeDesc, TypeDescKind, primitive,
};
use super::ids::{ContractId, TypeHash};
use super::limits::{MAX_FIELDS_PER_TYPE, MAX_METHODS, MAX_NAME_BYTES, MAX_TYPES};
use super::model::Canonical;
use super::model::{ContainerKind, FieldDef, MethodDef, ServiceContract, TypeDef, TypeDefKind, TypeKind, nfc};
use super::{ContractError, Profile};

/// The result of [`build_contract`].
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltContract {
    /// The canonical contract (methods already sorted by NFC name).
    pub contract: ServiceContract,
    /// `BLAKE3(contract.canonical_bytes(profile))`.
    pub contract_id: ContractId,
    /// Every TypeDef of the type graph with its hash, sorted by hash (byte order); a TypeDef
    /// shared by two FQNs (identical bytes) appears once.
    pub types: Vec<(TypeHash, TypeDef)>,
    /// The hash of each graph node by FQN (one entry per node, so its length is the
    /// manifest's `type_count`).
    pub type_hashes_by_fqn: BTreeMap<String, TypeHash>,
    /// The profile the contract was built with.
    pub profile: Profile,
}

impl BuiltContract {
    /// The canonical ServiceContract bytes (`contract.bin` of a published collection).
    pub fn contract_bytes(&self) -> Vec<u8> {
        self.contract.canonical_bytes(self.profile)
    }

    /// The canonical bytes of every TypeDef with its hash (`types/<hash>.bin`), hash order.
    pub fn type_bytes(&self) -> Vec<(TypeHash, Vec<u8>)> {
        self.types.iter().map(|(h, t)| (*h, t.canonical_bytes(self.profile))).collect()
    }

    /// The hash of the type with this FQN, if it is part of the graph.
    pub fn type_hash(&self, fqn: &str) -> Option<TypeHash> {
        self.type_hashes_by_fqn.get(fqn).copied()
    }
}

/// Builds the type graph (a Merkle DAG, cycles cut the 0.1.2 way), the contract and its id.
pub fn build_contract(desc: &ServiceDesc, profile: Profile) -> Result<BuiltContract, ContractError> {
    validate_name("service name", &desc.name)?;
    if desc.methods.len() > MAX_METHODS {
        return Err(ContractError::TooManyMethods { count: desc.methods.len(), max: MAX_METHODS });
    }
    let mut seen_methods = BTreeSet::new();
    for m in &desc.methods {
        validate_name("method name", &m.name)?;
        if !seen_methods.insert(nfc(&m.name).into_owned()) {
            return Err(ContractError::DuplicateMethod(m.name.clone()));
        }
        if !m.timeout_secs.is_finite() || m.timeout_secs < 0.0 {
            return Err(ContractError::InvalidTimeout { method: m.name.clone(), value: m.timeout_secs });
        }
    }

    let graph = Graph::collect(desc)?;
    let hashes = match profile {
        Profile::V0_1 => graph.resolve_v0_1(),
    };

    let mut type_hashes_by_fqn = BTreeMap::new();
    let mut by_hash: BTreeMap<TypeHash, TypeDef> = BTreeMap::new();
    for (i, (hash, def)) in hashes.into_iter().enumerate() {
        type_hashes_by_fqn.insert(graph.fqns[i].clone(), hash);
        by_hash.entry(hash).or_insert(def);
    }

    let mut methods = Vec::with_capacity(desc.methods.len());
    for m in &desc.methods {
        methods.push(MethodDef {
            name: m.name.clone(),
            pattern: m.pattern,
            request_type: method_hash(&m.request, &type_hashes_by_fqn)?,
            response_type: method_hash(&m.response, &type_hashes_by_fqn)?,
            idempotent: m.idempotent,
            default_timeout: m.timeout_secs,
            requires: None,
        });
    }
    methods.sort_by(|a, b| nfc(&a.name).cmp(&nfc(&b.name)));
    let serialization_modes =
        if desc.serialization.is_empty() { vec!["xlang".to_owned()] } else { desc.serialization.clone() };
    let contract = ServiceContract {
        name: desc.name.clone(),
        version: desc.version,
        methods,
        serialization_modes,
        scoped: desc.scope,
        requires: None,
    };
    let contract_id = ContractId::of(&contract, profile);
    Ok(BuiltContract { contract, contract_id, types: by_hash.into_iter().collect(), type_hashes_by_fqn, profile })
}

fn validate_name(what: &'static str, name: &str) -> Result<(), ContractError> {
    if name.is_empty() {
        return Err(ContractError::EmptyName { what });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(ContractError::NameTooLong { what, len: name.len(), max: MAX_NAME_BYTES });
    }
    Ok(())
}

fn check_primitive(name: &'static str) -> Result<&'static str, ContractError> {
    if PRIMITIVE_NAMES.contains(&name) { Ok(name) } else { Err(ContractError::UnknownPrimitive(name.to_owned())) }
}

/// The canonical primitives of 0.1.2's `_PYTHON_TO_XLANG_PRIMITIVE` (plus `None` → "null").
fn v0_1_field_primitive(name: &str) -> Option<&'static str> {
    [primitive::STRING, primitive::INT64, primitive::FLOAT64, primitive::BOOL, primitive::BINARY, primitive::NULL]
        .into_iter()
        .find(|p| *p == name)
}

/// Method slot hash (0.1.2 `_resolve_type_hash`).
fn method_hash(t: &MethodType, hashes: &BTreeMap<String, TypeHash>) -> Result<TypeHash, ContractError> {
    Ok(match t {
        MethodType::None => TypeHash::ZERO,
        MethodType::Primitive(p) => {
            let p = check_primitive(p)?;
            match p {
                primitive::STRING | primitive::INT64 | primitive::FLOAT64 | primitive::BOOL | primitive::BINARY => {
                    TypeHash::digest(p.as_bytes())
                }
                _ => TypeHash::ZERO,
            }
        }
        MethodType::Message(f) => {
            let d = f();
            match d.kind {
                TypeDescKind::Message(_) => hashes.get(&d.fqn).copied().unwrap_or(TypeHash::ZERO),
                TypeDescKind::Enum(_) => TypeHash::ZERO,
            }
        }
    })
}

/// The message-type graph: nodes sorted by FQN, indices into `fqns`.
struct Graph {
    fqns: Vec<String>,
    descs: Vec<TypeDesc>,
    /// NFC form of each FQN (sort key of the SCC start and the 0.1.2 hash order).
    nfc_keys: Vec<String>,
    /// Successors (message types named anywhere in the fields), ascending index = FQN order.
    succ: Vec<Vec<usize>>,
    index: HashMap<String, usize>,
}

/// Visits every `Ref` anywhere inside `t`.
fn for_each_ref(
    t: &FieldType,
    f: &mut impl FnMut(&str, fn() -> TypeDesc) -> Result<(), ContractError>,
) -> Result<(), ContractError> {
    match t {
        FieldType::Primitive(p) => check_primitive(p).map(|_| ()),
        FieldType::Any => Ok(()),
        FieldType::Ref { fqn, describe } => f(fqn, *describe),
        FieldType::List(e) | FieldType::Set(e) | FieldType::Optional(e) => for_each_ref(e, f),
        FieldType::Map(k, v) => {
            for_each_ref(k, f)?;
            for_each_ref(v, f)
        }
    }
}

impl Graph {
    fn collect(desc: &ServiceDesc) -> Result<Self, ContractError> {
        // fqn → description, for messages and enums (enums only to detect conflicts).
        let mut known: BTreeMap<String, TypeDesc> = BTreeMap::new();
        let mut work: Vec<TypeDesc> = Vec::new();

        fn register(
            d: TypeDesc,
            known: &mut BTreeMap<String, TypeDesc>,
            work: &mut Vec<TypeDesc>,
        ) -> Result<(), ContractError> {
            if let Some(prev) = known.get(&d.fqn) {
                if *prev != d {
                    return Err(ContractError::ConflictingType { fqn: d.fqn });
                }
                return Ok(());
            }
            if d.fqn.is_empty() {
                return Err(ContractError::EmptyName { what: "type fqn" });
            }
            if d.name.is_empty() {
                return Err(ContractError::EmptyName { what: "type name" });
            }
            if known.len() >= MAX_TYPES {
                return Err(ContractError::TooManyTypes { max: MAX_TYPES });
            }
            known.insert(d.fqn.clone(), d.clone());
            work.push(d);
            Ok(())
        }

        for m in &desc.methods {
            for t in [&m.request, &m.response] {
                match t {
                    MethodType::Message(f) => register(f(), &mut known, &mut work)?,
                    MethodType::Primitive(p) => {
                        check_primitive(p)?;
                    }
                    MethodType::None => {}
                }
            }
        }
        while let Some(d) = work.pop() {
            let TypeDescKind::Message(fields) = &d.kind else { continue };
            if fields.len() > MAX_FIELDS_PER_TYPE {
                return Err(ContractError::TooManyFields {
                    fqn: d.fqn.clone(),
                    count: fields.len(),
                    max: MAX_FIELDS_PER_TYPE,
                });
            }
            let mut names = BTreeSet::new();
            for fd in fields {
                if fd.name.is_empty() {
                    return Err(ContractError::EmptyName { what: "field name" });
                }
                if !names.insert(fd.name.as_str()) {
                    return Err(ContractError::DuplicateField { fqn: d.fqn.clone(), field: fd.name.clone() });
                }
                for_each_ref(&fd.ty, &mut |fqn, describe| {
                    let target = describe();
                    if target.fqn != fqn {
                        return Err(ContractError::FqnMismatch { expected: fqn.to_owned(), found: target.fqn });
                    }
                    register(target, &mut known, &mut work)
                })?;
            }
        }

        let messages: Vec<TypeDesc> =
            known.into_values().filter(|d| matches!(d.kind, TypeDescKind::Message(_))).collect();
        let fqns: Vec<String> = messages.iter().map(|d| d.fqn.clone()).collect();
        let index: HashMap<String, usize> = fqns.iter().enumerate().map(|(i, f)| (f.clone(), i)).collect();
        let mut succ = Vec::with_capacity(messages.len());
        for d in &messages {
            let mut s = BTreeSet::new();
            if let TypeDescKind::Message(fields) = &d.kind {
                for fd in fields {
                    for_each_ref(&fd.ty, &mut |fqn, _| {
                        if let Some(&i) = index.get(fqn) {
                            s.insert(i);
                        }
                        Ok(())
                    })?;
                }
            }
            succ.push(s.into_iter().collect());
        }
        let nfc_keys = fqns.iter().map(|f| nfc(f).into_owned()).collect();
        Ok(Self { fqns, descs: messages, nfc_keys, succ, index })
    }

    /// Tarjan's SCCs, leaves first; roots and successors in FQN order (iterative form of the
    /// recursive 0.1.2 code, same visiting order).
    fn tarjan(&self) -> Vec<Vec<usize>> {
        let n = self.fqns.len();
        let mut index: Vec<Option<usize>> = vec![None; n];
        let mut low = vec![0usize; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut sccs = Vec::new();
        let mut counter = 0usize;
        for root in 0..n {
            if index[root].is_some() {
                continue;
            }
            // Frames: (node, next successor position).
            let mut frames: Vec<(usize, usize)> = Vec::new();
            index[root] = Some(counter);
            low[root] = counter;
            counter += 1;
            stack.push(root);
            on_stack[root] = true;
            frames.push((root, 0));
            while let Some(&mut (v, ref mut pos)) = frames.last_mut() {
                if let Some(&w) = self.succ[v].get(*pos) {
                    *pos += 1;
                    match index[w] {
                        None => {
                            index[w] = Some(counter);
                            low[w] = counter;
                            counter += 1;
                            stack.push(w);
                            on_stack[w] = true;
                            frames.push((w, 0));
                        }
                        Some(iw) if on_stack[w] => low[v] = low[v].min(iw),
                        Some(_) => {}
                    }
                    continue;
                }
                frames.pop();
                if Some(low[v]) == index[v] {
                    let mut scc = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        scc.push(w);
                        if w == v {
                            break;
                        }
                    }
                    sccs.push(scc);
                }
                if let Some(&(parent, _)) = frames.last() {
                    low[parent] = low[parent].min(low[v]);
                }
            }
        }
        sccs
    }

    /// 0.1.2 `_spanning_tree_dfs`: every edge to an already visited member is a back-edge.
    fn back_edges(&self, start: usize, members: &BTreeSet<usize>) -> BTreeSet<(usize, usize)> {
        let mut visited = BTreeSet::from([start]);
        let mut back = BTreeSet::new();
        let in_scc =
            |v: usize| -> Vec<usize> { self.succ[v].iter().copied().filter(|w| members.contains(w)).collect() };
        let mut frames: Vec<(usize, Vec<usize>, usize)> = vec![(start, in_scc(start), 0)];
        while let Some((v, succ, pos)) = frames.last_mut() {
            let v = *v;
            let Some(&w) = succ.get(*pos) else {
                frames.pop();
                continue;
            };
            *pos += 1;
            if visited.insert(w) {
                frames.push((w, in_scc(w), 0));
            } else {
                back.insert((v, w));
            }
        }
        back
    }

    /// 0.1.2 `_scc_processing_order`: reversed DFS post-order over the non-back edges,
    /// successors in NFC order.
    fn processing_order_v0_1(
        &self,
        start: usize,
        members: &BTreeSet<usize>,
        back: &BTreeSet<(usize, usize)>,
    ) -> Vec<usize> {
        let mut visited = BTreeSet::new();
        let mut post = Vec::new();
        let tree_succ = |v: usize, visited: &BTreeSet<usize>| -> Vec<usize> {
            let mut s: Vec<usize> = self.succ[v]
                .iter()
                .copied()
                .filter(|w| members.contains(w) && !back.contains(&(v, *w)) && !visited.contains(w))
                .collect();
            s.sort_by(|a, b| self.nfc_keys[*a].cmp(&self.nfc_keys[*b]).then(a.cmp(b)));
            s
        };
        visited.insert(start);
        let mut frames: Vec<(usize, Vec<usize>, usize)> = vec![(start, tree_succ(start, &visited), 0)];
        while let Some((v, succ, pos)) = frames.last_mut() {
            let v = *v;
            if let Some(&w) = succ.get(*pos) {
                *pos += 1;
                if visited.insert(w) {
                    let s = tree_succ(w, &visited);
                    frames.push((w, s, 0));
                }
                continue;
            }
            post.push(v);
            frames.pop();
        }
        post.reverse();
        post
    }

    /// Resolves every node to its TypeDef and hash, 0.1.2 rules; result indexed like `fqns`.
    fn resolve_v0_1(&self) -> Vec<(TypeHash, TypeDef)> {
        let n = self.fqns.len();
        let mut hashes: Vec<Option<TypeHash>> = vec![None; n];
        let mut defs: Vec<Option<TypeDef>> = vec![None; n];
        for scc in self.tarjan() {
            let members: BTreeSet<usize> = scc.iter().copied().collect();
            let (order, back) = if let [v] = scc[..] {
                let back = if self.succ[v].contains(&v) { BTreeSet::from([(v, v)]) } else { BTreeSet::new() };
                (vec![v], back)
            } else {
                let start = members
                    .iter()
                    .copied()
                    .min_by(|a, b| self.nfc_keys[*a].cmp(&self.nfc_keys[*b]).then(a.cmp(b)))
                    .unwrap_or(scc[0]);
                let back = self.back_edges(start, &members);
                (self.processing_order_v0_1(start, &members, &back), back)
            };
            for v in order {
                let targets: BTreeSet<usize> = back.iter().filter(|(s, _)| *s == v).map(|(_, t)| *t).collect();
                let def = self.type_def_v0_1(v, &targets, &hashes);
                let h = TypeHash::of(&def, Profile::V0_1);
                hashes[v] = Some(h);
                defs[v] = Some(def);
            }
        }
        hashes.into_iter().zip(defs).map(|(h, d)| (h.unwrap_or(TypeHash::ZERO), d.unwrap_or_default())).collect()
    }

    fn type_def_v0_1(&self, v: usize, back_targets: &BTreeSet<usize>, hashes: &[Option<TypeHash>]) -> TypeDef {
        let d = &self.descs[v];
        let fields = match &d.kind {
            TypeDescKind::Message(fields) => fields
                .iter()
                .enumerate()
                .map(|(i, f)| self.field_def_v0_1(i as i32 + 1, f, back_targets, hashes))
                .collect(),
            TypeDescKind::Enum(_) => Vec::new(),
        };
        TypeDef {
            kind: TypeDefKind::Message,
            package: d.package.clone(),
            name: d.name.clone(),
            fields,
            enum_values: Vec::new(),
            union_variants: Vec::new(),
        }
    }

    fn field_def_v0_1(
        &self,
        id: i32,
        f: &FieldDesc,
        back_targets: &BTreeSet<usize>,
        hashes: &[Option<TypeHash>],
    ) -> FieldDef {
        let mut optional = false;
        let mut ty = &f.ty;
        while let FieldType::Optional(inner) = ty {
            optional = true;
            ty = inner;
        }
        let mut fd = FieldDef { id, name: f.name.clone(), optional, ..FieldDef::default() };
        let element = match ty {
            FieldType::List(e) => {
                fd.container = ContainerKind::List;
                e
            }
            FieldType::Set(e) => {
                fd.container = ContainerKind::Set;
                e
            }
            FieldType::Map(k, val) => {
                fd.container = ContainerKind::Map;
                let key = self.slot_v0_1(k, back_targets, hashes);
                fd.container_key_kind = key.kind;
                fd.container_key_primitive = key.primitive;
                fd.container_key_ref = key.type_ref;
                // 0.1.2 drops a SELF_REF key's name.
                val
            }
            other => other,
        };
        let slot = self.slot_v0_1(element, back_targets, hashes);
        fd.type_kind = slot.kind;
        fd.type_primitive = slot.primitive;
        fd.type_ref = slot.type_ref;
        fd.self_ref_name = slot.self_ref_name;
        fd
    }

    /// 0.1.2 `_resolve_field_type` of one slot (element, value or key).
    fn slot_v0_1(&self, t: &FieldType, back_targets: &BTreeSet<usize>, hashes: &[Option<TypeHash>]) -> Slot {
        match t {
            FieldType::Primitive(p) => match v0_1_field_primitive(p) {
                Some(p) => Slot { kind: TypeKind::Primitive, primitive: p.to_owned(), ..Slot::default() },
                None => Slot::any(),
            },
            FieldType::Ref { fqn, .. } => match self.index.get(fqn.as_str()) {
                // Not a message node → an enum.
                None => Slot::any(),
                Some(&i) if back_targets.contains(&i) => {
                    Slot { kind: TypeKind::SelfRef, self_ref_name: fqn.clone(), ..Slot::default() }
                }
                Some(&i) => {
                    Slot { kind: TypeKind::Ref, type_ref: Some(hashes[i].unwrap_or(TypeHash::ZERO)), ..Slot::default() }
                }
            },
            FieldType::List(_) | FieldType::Set(_) | FieldType::Map(..) | FieldType::Optional(_) | FieldType::Any => {
                Slot::any()
            }
        }
    }
}

#[derive(Default)]
struct Slot {
    kind: TypeKind,
    primitive: String,
    type_ref: Option<TypeHash>,
    self_ref_name: String,
}

impl Slot {
    fn any() -> Self {
        Self { kind: TypeKind::Any, ..Self::default() }
    }
}
