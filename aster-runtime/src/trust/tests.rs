//! Cross-checks against the reference: material written by `aster-cli` 0.1.2 and vectors
//! computed by `aster-rpc` 0.1.2 (`tests/data/trust/`, see its README), every admission
//! rejection, identity files, gossip envelopes, and the Rust-written material that the
//! reference accepted (`rust_written/`, `py_check.json`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::credential::{ConsumerCredential, ConsumerCredentialType, EnrollmentCredential};
use super::gate::{AdmissionRequest, ConsumerGate, ConsumerVerdict, DenyReason, ProducerGate};
use super::identity::{IdentityFile, consumer_credential_from_file_text};
use super::keys::{NodeKeyFile, PublicKey, RootKeyFile, SecretKey, parse_public_key_file, public_key_file_json};
use super::mesh::{
    ContractPublishedPayload, DepartPayload, GossipDrop, GossipEvent, LeaseUpdatePayload, MeshConfig, MeshState,
    ProducerAdmissionResponse, ProducerMessage, derive_gossip_topic,
};
use super::nonce::{FileNonceStore, InMemoryNonceStore, NonceStore, StoreError};
use super::{ATTR_IID_PROVIDER, Attributes, attributes, canonical_json, hex};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trust")
}

fn cli(name: &str) -> String {
    let p = data_dir().join("cli").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn vectors() -> Value {
    serde_json::from_str(&std::fs::read_to_string(data_dir().join("vectors.json")).unwrap()).unwrap()
}

/// The time of generation: every CLI credential except `expired.policy.json` is valid then.
fn now() -> u64 {
    vectors()["generated_at"].as_u64().unwrap()
}

fn root() -> RootKeyFile {
    RootKeyFile::parse(&cli("deploy-root.key")).unwrap()
}

fn node(name: &str) -> NodeKeyFile {
    NodeKeyFile::parse(&cli(name)).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(s(v)).unwrap()
}

fn request(cred_json: &str) -> Vec<u8> {
    AdmissionRequest { credential_json: cred_json.to_string(), iid_token: String::new() }.to_json().into_bytes()
}

fn extra(name: &str) -> Value {
    vectors()["extra"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap().clone()
}

fn tmpdir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "aster-trust-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ── keys ───────────────────────────────────────────────────────────────────

#[test]
fn cli_key_files_load_and_rewrite_byte_for_byte() {
    let r = root();
    let text = cli("deploy-root.key");
    assert_eq!(r.to_json().unwrap(), text, "Rust writes the CLI's root key file format exactly");
    let pubk = parse_public_key_file(&cli("deploy-root.pub")).unwrap();
    assert_eq!(pubk, r.public_key());
    assert_eq!(public_key_file_json(&pubk).unwrap(), cli("deploy-root.pub"));
    assert_eq!(pubk.to_hex(), s(&vectors()["root_pubkey"]));
    for name in ["producer.key", "producer2.key"] {
        let n = node(name);
        let text = cli(name);
        // trust_setup.sh's stand-in for `aster keygen producer` omits the CLI's final newline.
        assert_eq!(n.to_json().unwrap().trim_end(), text.trim_end());
        let j: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(n.node_id().to_hex(), s(&j["node_id"]));
    }
}

// ── signed bytes, Python-signed credentials ────────────────────────────────

#[test]
fn cli_consumer_credentials_signed_bytes_equal_reference() {
    let v = vectors();
    for (name, want) in v["cli"].as_object().unwrap() {
        let text = cli(name);
        if want["kind"] == "producer" {
            let c = EnrollmentCredential::from_json(&text).unwrap();
            assert_eq!(c.signing_bytes(), unhex(&want["signing_bytes"]), "{name}");
            assert_eq!(c.verify_signature(), want["verifies"].as_bool().unwrap(), "{name}");
            continue;
        }
        let c = ConsumerCredential::from_json(&text).unwrap();
        assert_eq!(c.credential_type.as_str(), s(&want["kind"]), "{name}");
        assert_eq!(c.signing_bytes(), unhex(&want["signing_bytes"]), "{name}: exact signed bytes");
        assert_eq!(c.verify_signature(), want["verifies"].as_bool().unwrap(), "{name}: verification");
        // The reference's wire JSON parses to the same credential, and Rust's wire JSON is the
        // same document (the reference keeps file order of attributes, Rust sorts them).
        let wire = s(&want["wire_json"]);
        assert_eq!(ConsumerCredential::from_json(wire).unwrap(), c, "{name}");
        let a: Value = serde_json::from_str(&c.to_wire_json()).unwrap();
        let b: Value = serde_json::from_str(wire).unwrap();
        assert_eq!(a, b, "{name}: wire JSON document");
        assert!(want["wire_roundtrip"].as_bool().unwrap());
    }
}

#[test]
fn python_signed_extras_verify_and_rust_signs_identically() {
    let r = root();
    for e in vectors()["extra"].as_array().unwrap() {
        let name = s(&e["name"]);
        let text = s(&e["cli_json"]);
        let sorted = e["sorted_attrs"].as_bool().unwrap();
        if e["kind"] == "producer" {
            let c = EnrollmentCredential::from_json(text).unwrap();
            assert!(c.verify_signature(), "{name}");
            assert_eq!(c.signing_bytes(), unhex(&e["signing_bytes"]), "{name}");
            let resigned = EnrollmentCredential { signature: None, ..c.clone() }.signed(&r.secret);
            assert_eq!(resigned.signature.unwrap().to_hex(), s(&e["signature"]), "{name}: deterministic ed25519");
            assert_eq!(c.to_cli_json(), text, "{name}: CLI file byte for byte");
            continue;
        }
        let c = ConsumerCredential::from_json(text).unwrap();
        assert!(c.verify_signature(), "{name}: Python-signed verifies in Rust");
        assert_eq!(c.signing_bytes(), unhex(&e["signing_bytes"]), "{name}");
        let resigned = ConsumerCredential { signature: None, ..c.clone() }.signed(&r.secret);
        assert_eq!(resigned.signature.unwrap().to_hex(), s(&e["signature"]), "{name}: deterministic ed25519");
        let wire = s(&e["wire_json"]);
        assert_eq!(ConsumerCredential::from_json(wire).unwrap(), c, "{name}");
        if sorted {
            assert_eq!(c.to_cli_json(), text, "{name}: CLI file byte for byte");
            assert_eq!(c.to_wire_json(), wire, "{name}: wire JSON byte for byte");
        } else {
            let a: Value = serde_json::from_str(&c.to_wire_json()).unwrap();
            assert_eq!(a, serde_json::from_str::<Value>(wire).unwrap(), "{name}");
        }
    }
}

#[test]
fn signed_byte_layouts() {
    let root_pk = PublicKey::from_bytes([0x11; 32]);
    let eid = PublicKey::from_bytes([0x22; 32]);
    let attrs = attributes([("b", "2"), ("a", "1")]);
    let p = ConsumerCredential::policy(root_pk, 0x0102030405060708, attrs.clone());
    let mut want = vec![0u8, 0];
    want.extend([0x11; 32]);
    want.extend([1, 2, 3, 4, 5, 6, 7, 8]);
    want.extend(br#"{"a":"1","b":"2"}"#);
    want.push(0);
    assert_eq!(p.signing_bytes(), want);

    let o = ConsumerCredential::ott(root_pk, 9, Attributes::new()).with_nonce(Some([0x33; 32])).with_endpoint_id(&eid);
    let mut want = vec![1u8, 1];
    want.extend(eid.to_hex().as_bytes());
    want.extend([0x11; 32]);
    want.extend(9u64.to_be_bytes());
    want.extend(b"{}");
    want.push(1);
    want.extend([0x33; 32]);
    assert_eq!(o.signing_bytes(), want);

    let pr = EnrollmentCredential::new(&eid, root_pk, 9, attrs);
    let mut want = eid.to_hex().into_bytes();
    want.extend([0x11; 32]);
    want.extend(9u64.to_be_bytes());
    want.extend(br#"{"a":"1","b":"2"}"#);
    assert_eq!(pr.signing_bytes(), want);
}

#[test]
fn canonical_json_vectors() {
    for c in vectors()["canonical"].as_array().unwrap() {
        let attrs: Attributes = serde_json::from_value(c["attributes"].clone()).unwrap();
        assert_eq!(canonical_json(&attrs).into_bytes(), unhex(&c["canonical_hex"]), "{attrs:?}");
    }
}

#[test]
fn admission_request_json_equals_reference() {
    let v = vectors();
    let wire = s(&v["cli"]["alice.policy.json"]["wire_json"]);
    let req = AdmissionRequest { credential_json: wire.to_string(), iid_token: String::new() };
    assert_eq!(req.to_json(), s(&v["admission_request"]));
    assert_eq!(AdmissionRequest::from_json(s(&v["admission_request"]).as_bytes()).unwrap(), req);
    let null_token = br#"{"credential_json":"","iid_token":null}"#;
    assert_eq!(AdmissionRequest::from_json(null_token).unwrap(), AdmissionRequest::default());
}

// ── consumer admission: every outcome ──────────────────────────────────────

fn gate() -> ConsumerGate {
    ConsumerGate::new(root().public_key())
}

fn check(cred_text: &str, peer: &PublicKey, store: &dyn NonceStore) -> Result<ConsumerVerdict, DenyReason> {
    gate().check_request(&request(cred_text), peer, now(), store)
}

fn admitted(v: Result<ConsumerVerdict, DenyReason>) -> Attributes {
    match v {
        Ok(ConsumerVerdict::Admitted(a)) => a.attributes,
        other => panic!("expected admission, got {other:?}"),
    }
}

fn denied(v: Result<ConsumerVerdict, DenyReason>) -> DenyReason {
    match v {
        Err(d) => {
            assert!(!d.log_message().is_empty());
            d
        }
        Ok(other) => panic!("expected denial, got {other:?}"),
    }
}

#[test]
fn admits_cli_policy_and_ott() {
    let store = InMemoryNonceStore::new();
    let peer = node("producer2.key").node_id();
    let a = admitted(check(&cli("alice.policy.json"), &peer, &store));
    assert_eq!(a, attributes([("aster.role", "consumer"), ("aster.name", "alice")]));
    let d = admitted(check(&cli("dave.ott.json"), &peer, &store));
    assert_eq!(d["aster.name"], "dave");
    assert_eq!(store.len(), 1);
    // The wire form (as the reference client sends it) is admitted as well.
    let wire = s(&vectors()["cli"]["alice.policy.json"]["wire_json"]).to_string();
    admitted(check(&wire, &peer, &store));
}

#[test]
fn rejection_reasons() {
    let store = InMemoryNonceStore::new();
    let peer = node("producer.key").node_id();
    let g = gate();

    let no_cred = request("");
    assert_eq!(denied(g.check_request(&no_cred, &peer, now(), &store)), DenyReason::NoCredential);
    match ConsumerGate::open(g.root().to_owned()).check_request(&no_cred, &peer, now(), &store) {
        Ok(ConsumerVerdict::Admitted(a)) => assert!(a.attributes.is_empty() && a.expires_at.is_none()),
        other => panic!("open gate: {other:?}"),
    }
    // An open gate still checks a credential that is presented.
    let open = ConsumerGate::open(g.root().to_owned());
    assert!(matches!(
        open.check_request(&request(&cli("alice.tampered.json")), &peer, now(), &store),
        Err(DenyReason::BadSignature)
    ));

    assert_eq!(denied(check(&cli("alice.tampered.json"), &peer, &store)), DenyReason::BadSignature);
    let foreign = denied(check(&cli("mallory.evilroot.json"), &peer, &store));
    assert!(
        matches!(foreign, DenyReason::ForeignRoot { presented } if presented == RootKeyFile::parse(&cli("evil-root.key")).unwrap().public_key())
    );
    assert!(matches!(
        denied(check(&cli("expired.policy.json"), &peer, &store)),
        DenyReason::Expired { expires_at: 1577836800, .. }
    ));

    // Endpoint binding: bound to producer2, presented by producer.
    let bound = s(&extra("policy_bound")["cli_json"]).to_string();
    assert!(matches!(
        denied(check(&bound, &peer, &store)),
        DenyReason::EndpointMismatch { ref credential, peer: p } if *credential == node("producer2.key").node_id().to_hex() && p == peer
    ));
    admitted(check(&bound, &node("producer2.key").node_id(), &store));

    // Structure: policy with nonce, OTT without nonce (re-signed so only the structure fails).
    let r = root();
    let mut pol = ConsumerCredential::from_json(&cli("alice.policy.json")).unwrap().with_nonce(Some([1; 32]));
    pol.sign(&r.secret);
    assert_eq!(denied(check(&pol.to_wire_json(), &peer, &store)), DenyReason::PolicyWithNonce);
    let mut ott = ConsumerCredential::from_json(&cli("dave.ott.json")).unwrap().with_nonce(None);
    ott.sign(&r.secret);
    assert_eq!(denied(check(&ott.to_wire_json(), &peer, &store)), DenyReason::OttWithoutNonce);

    // Missing signature.
    let unsigned =
        ConsumerCredential { signature: None, ..ConsumerCredential::from_json(&cli("alice.policy.json")).unwrap() };
    assert_eq!(denied(check(&unsigned.to_wire_json(), &peer, &store)), DenyReason::BadSignature);

    // Order: root before signature before expiry.
    let mut expired_tampered: Value = serde_json::from_str(&cli("expired.policy.json")).unwrap();
    expired_tampered["attributes"]["aster.name"] = "x".into();
    assert_eq!(denied(check(&expired_tampered.to_string(), &peer, &store)), DenyReason::BadSignature);
    let evil = RootKeyFile::parse(&cli("evil-root.key")).unwrap();
    let foreign_expired = ConsumerCredential::policy(evil.public_key(), 1, Attributes::new()).signed(&evil.secret);
    assert!(matches!(denied(check(&foreign_expired.to_wire_json(), &peer, &store)), DenyReason::ForeignRoot { .. }));
}

#[test]
fn malformed_credentials() {
    let store = InMemoryNonceStore::new();
    let peer = node("producer.key").node_id();
    let alice: Value = serde_json::from_str(&cli("alice.policy.json")).unwrap();
    let with = |k: &str, v: Value| {
        let mut j = alice.clone();
        j[k] = v;
        j.to_string()
    };
    let without = |k: &str| {
        let mut j = alice.clone();
        j.as_object_mut().unwrap().remove(k);
        j.to_string()
    };
    let cases: Vec<(&str, String)> = vec![
        ("not JSON", "{".into()),
        ("JSON array", "[]".into()),
        ("root key 31 bytes", with("root_pubkey", "ab".repeat(31).into())),
        ("root key 33 bytes", with("root_pubkey", "ab".repeat(33).into())),
        ("root key not hex", with("root_pubkey", "zz".repeat(32).into())),
        ("nonce 31 bytes", with("nonce", "ab".repeat(31).into())),
        ("signature 63 bytes", with("signature", "ab".repeat(63).into())),
        ("endpoint_id short", with("endpoint_id", "ab".into())),
        ("unknown type", with("type", "producer".into())),
        ("no type", without("type")),
        ("no root", without("root_pubkey")),
        ("negative expiry", with("expires_at", (-5).into())),
        ("string expiry", with("expires_at", "1797837259".into())),
        ("non-string attribute", with("attributes", serde_json::json!({"aster.role": 1}))),
    ];
    for (what, text) in cases {
        assert!(matches!(denied(check(&text, &peer, &store)), DenyReason::Malformed(_)), "{what}");
    }
    // A request that is not JSON, or lacks credential_json.
    for raw in [&b"nope"[..], br#"{"iid_token":""}"#, br#"{"credential_json":5}"#] {
        assert!(matches!(gate().check_request(raw, &peer, now(), &store), Err(DenyReason::Malformed(_))));
    }
    let huge = vec![b' '; super::gate::MAX_ADMISSION_PAYLOAD + 1];
    assert!(matches!(gate().check_request(&huge, &peer, now(), &store), Err(DenyReason::Malformed(_))));
}

#[test]
fn ott_replay_in_memory_and_after_file_store_restart() {
    let peer = node("producer.key").node_id();
    let dave = cli("dave.ott.json");
    let mem = InMemoryNonceStore::new();
    admitted(check(&dave, &peer, &mem));
    assert_eq!(denied(check(&dave, &peer, &mem)), DenyReason::OttReplay);

    let dir = tmpdir("replay");
    let path = dir.join("nonces.log");
    {
        let store = FileNonceStore::open(&path).unwrap();
        admitted(check(&dave, &peer, &store));
        assert_eq!(denied(check(&dave, &peer, &store)), DenyReason::OttReplay);
    }
    let store = FileNonceStore::open(&path).unwrap();
    assert_eq!(denied(check(&dave, &peer, &store)), DenyReason::OttReplay, "replay after restart");
    // Pruning at a time the credential is still valid keeps the nonce.
    assert_eq!(store.prune(now()).unwrap(), 0);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

struct BrokenStore;

impl NonceStore for BrokenStore {
    fn consume(&self, _: [u8; 32], _: u64) -> Result<bool, StoreError> {
        Err(StoreError::Failed(PathBuf::from("/broken")))
    }
    fn is_consumed(&self, _: &[u8; 32]) -> Result<bool, StoreError> {
        Err(StoreError::Failed(PathBuf::from("/broken")))
    }
    fn prune(&self, _: u64) -> Result<usize, StoreError> {
        Ok(0)
    }
}

#[test]
fn nonce_store_failure_denies_and_iid_is_explicit() {
    let peer = node("producer.key").node_id();
    assert!(matches!(denied(check(&cli("dave.ott.json"), &peer, &BrokenStore)), DenyReason::NonceStore(_)));
    // Policies never touch the store.
    admitted(check(&cli("alice.policy.json"), &peer, &BrokenStore));

    let r = root();
    let attrs = attributes([(ATTR_IID_PROVIDER, "aws"), ("aster.iid_account", "123")]);
    let c = ConsumerCredential::policy(r.public_key(), now() + 60, attrs).signed(&r.secret);
    let req = AdmissionRequest { credential_json: c.to_wire_json(), iid_token: "tok".into() };
    let v = gate().check_request(req.to_json().as_bytes(), &peer, now(), &BrokenStore).unwrap();
    let ConsumerVerdict::IidRequired(p) = v else { panic!("IID must be required") };
    assert_eq!((p.provider(), p.iid_token()), ("aws", "tok"));
    assert_eq!(p.clone().finish(Err("account mismatch".into())), Err(DenyReason::Iid("account mismatch".into())));
    assert_eq!(p.finish(Ok(())).unwrap().credential_type, Some(ConsumerCredentialType::Policy));
}

#[test]
fn deny_reason_labels_are_distinct() {
    let peer = PublicKey::from_bytes([1; 32]);
    let all = [
        DenyReason::NoCredential,
        DenyReason::Malformed("x".into()),
        DenyReason::ForeignRoot { presented: peer },
        DenyReason::OttWithoutNonce,
        DenyReason::PolicyWithNonce,
        DenyReason::BadSignature,
        DenyReason::Expired { expires_at: 1, now: 2 },
        DenyReason::EndpointMismatch { credential: "a".into(), peer },
        DenyReason::OttReplay,
        DenyReason::NonceStore("x".into()),
        DenyReason::Iid("x".into()),
    ];
    let kinds: std::collections::BTreeSet<_> = all.iter().map(DenyReason::kind).collect();
    assert_eq!(kinds.len(), all.len());
    assert_eq!(all[6].log_message(), "credential expired (expires_at=1, now=2)");
}

// ── producer admission ─────────────────────────────────────────────────────

#[test]
fn producer_admission_binds_to_quic_peer() {
    let g = ProducerGate::new(root().public_key());
    let p1 = node("producer.key").node_id();
    let p2 = node("producer2.key").node_id();
    let file = cli("producer.cred.json");
    // Bare credential JSON (CLI file form) and the wrapped wire form.
    let ok = g.check_request(file.as_bytes(), &p1, now()).unwrap();
    assert_eq!(ok.endpoint_id, p1);
    assert_eq!(ok.attributes["aster.name"], "p1");
    let wire = EnrollmentCredential::from_json(&file).unwrap().to_wire_json();
    assert!(g.check_request(&request(&wire), &p1, now()).is_ok());
    // The reference accepts this (§13 item 8); Rust binds the credential to the QUIC peer.
    assert!(matches!(g.check_request(&request(&wire), &p2, now()), Err(DenyReason::EndpointMismatch { .. })));
    assert!(matches!(
        g.check_request(cli("producer.evilroot.json").as_bytes(), &p1, now()),
        Err(DenyReason::ForeignRoot { .. })
    ));
    assert!(matches!(g.check_request(&request(&wire), &p1, u64::MAX), Err(DenyReason::Expired { .. })));
    let mut tampered: Value = serde_json::from_str(&file).unwrap();
    tampered["attributes"]["aster.role"] = "admin".into();
    assert_eq!(g.check_request(tampered.to_string().as_bytes(), &p1, now()).unwrap_err(), DenyReason::BadSignature);
    assert!(matches!(g.check_request(b"{}", &p1, now()), Err(DenyReason::Malformed(_))));
    assert_eq!(g.check_request(&request(""), &p1, now()).unwrap_err(), DenyReason::NoCredential);
    // A consumer credential is not a producer credential.
    assert!(matches!(g.check_request(cli("alice.policy.json").as_bytes(), &p1, now()), Err(DenyReason::Malformed(_))));
}

// ── identity files ─────────────────────────────────────────────────────────

#[test]
fn identity_files_from_enroll_node() {
    let store = InMemoryNonceStore::new();
    let carol = IdentityFile::parse(&cli("carol.aster-identity")).unwrap();
    let carol_id = carol.endpoint_id().unwrap();
    assert_eq!(carol.peers.len(), 1);
    let peer = carol.consumer_peer().unwrap();
    assert!(!peer.attributes.contains_key("aster.role"), "the CLI drops aster.role from the file");
    // As written the signature fails (the reference client is denied) …
    let as_written =
        ConsumerCredential { attributes: peer.attributes.clone(), ..peer.to_consumer_credential().unwrap() };
    assert!(!as_written.verify_signature());
    // … Rust restores the signed aster.role and is admitted, bound to carol's key.
    let cred = consumer_credential_from_file_text(&cli("carol.aster-identity")).unwrap();
    assert!(cred.verify_signature());
    assert_eq!(cred.attributes, attributes([("aster.role", "consumer")]));
    let v = gate().check_credential(&cred, "", &carol_id, now(), &store);
    assert_eq!(admitted(v), attributes([("aster.role", "consumer")]));
    let other = node("producer.key").node_id();
    assert!(matches!(
        gate().check_credential(&cred, "", &other, now(), &store),
        Err(DenyReason::EndpointMismatch { .. })
    ));

    // bob: `enroll node --type ott` writes no nonce.
    let bob = consumer_credential_from_file_text(&cli("bob.aster-identity")).unwrap();
    assert!(bob.verify_signature());
    let bob_id = IdentityFile::parse(&cli("bob.aster-identity")).unwrap().endpoint_id().unwrap();
    assert_eq!(gate().check_credential(&bob, "", &bob_id, now(), &store), Err(DenyReason::OttWithoutNonce));

    // JSON credential files go through the same loader.
    let alice = consumer_credential_from_file_text(&cli("alice.policy.json")).unwrap();
    assert!(alice.verify_signature());
}

#[test]
fn identity_file_errors() {
    assert!(IdentityFile::parse("[node]\nsecret_key = \"!!\"\n").is_err());
    let mismatch = "[node]\nsecret_key = \"kE8ub0ngsp+zjpR/qr+xJgLbGYheiiMwKE3NEIp5QIw=\"\nendpoint_id = \"00\"\n";
    assert!(IdentityFile::parse(mismatch).is_err());
    assert!(IdentityFile::parse("not = [toml").is_err());
    assert!(consumer_credential_from_file_text("[node]\n").is_err(), "no peers");
    let empty = IdentityFile::parse("").unwrap();
    assert!(empty.secret_key.is_none() && empty.peers.is_empty());
}

// ── gossip ─────────────────────────────────────────────────────────────────

#[test]
fn topic_vectors() {
    for t in vectors()["topics"].as_array().unwrap() {
        let root = PublicKey::from_hex(s(&t["root_pubkey"])).unwrap();
        assert_eq!(hex::encode(&derive_gossip_topic(&root, &unhex(&t["salt"]))), s(&t["topic"]));
    }
}

#[test]
fn gossip_envelopes_equal_reference() {
    let key = node("producer.key").secret;
    for g in vectors()["gossip"].as_array().unwrap() {
        let name = s(&g["name"]);
        let t = u8::try_from(g["type"].as_u64().unwrap()).unwrap();
        let payload = unhex(&g["payload_hex"]);
        let epoch = g["epoch_ms"].as_u64().unwrap();
        let m = ProducerMessage::sign(t, payload.clone(), &key, epoch);
        assert_eq!(m.sender, s(&g["sender"]));
        assert_eq!(m.signing_bytes(), unhex(&g["signing_bytes"]), "{name}");
        assert_eq!(m.signature.unwrap().to_hex(), s(&g["signature"]), "{name}: Rust signature = Python signature");
        assert_eq!(m.to_json(), s(&g["wire_json"]), "{name}: wire JSON byte for byte");
        let parsed = ProducerMessage::from_json(s(&g["wire_json"]).as_bytes()).unwrap();
        assert_eq!(parsed, m);
        assert!(parsed.verify_signature());
        // Payload encoders produce the reference's bytes.
        match name {
            "depart" => assert_eq!(DepartPayload { reason: "maintenance".into() }.encode(), payload),
            "contract_published" => assert_eq!(
                ContractPublishedPayload {
                    service_name: "TaskManager".into(),
                    version: 1,
                    contract_collection_hash: "ab".repeat(32)
                }
                .encode(),
                payload
            ),
            "lease_update" => assert_eq!(
                LeaseUpdatePayload {
                    service_name: "TaskManager".into(),
                    version: 1,
                    contract_id: "cd".repeat(32),
                    health_status: "SERVING".into(),
                    addressing_info: [("rpc".to_string(), "127.0.0.1:7000".to_string())].into(),
                }
                .encode(),
                payload
            ),
            "introduce" => {
                // The reference keeps the file's attribute order; same document.
                let c = EnrollmentCredential::from_json(std::str::from_utf8(&payload).unwrap()).unwrap();
                let a: Value = serde_json::from_str(&c.to_wire_json()).unwrap();
                assert_eq!(a, serde_json::from_slice::<Value>(&payload).unwrap());
            }
            _ => {}
        }
    }
}

fn envelope(name: &str) -> ProducerMessage {
    let g = vectors()["gossip"].as_array().unwrap().iter().find(|g| g["name"] == name).unwrap().clone();
    ProducerMessage::from_json(s(&g["wire_json"]).as_bytes()).unwrap()
}

const EPOCH: u64 = 1795000000123;

fn mesh_with(accepted: &[PublicKey]) -> MeshState {
    let me = SecretKey::from_bytes(&[0x5a; 32]).public_key();
    MeshState::with_salt(
        root().public_key(),
        me,
        vec![7; 32],
        accepted.iter().map(PublicKey::to_hex),
        EPOCH - 1000,
        MeshConfig::default(),
    )
}

#[test]
fn mesh_replay_window_membership_signature_duplicates() {
    let p1 = node("producer.key").node_id();
    let mut m = mesh_with(&[p1]);
    let lease = envelope("lease_update");
    // Replay window: ±30 s inclusive.
    for (now, ok) in [(EPOCH + 30_001, false), (EPOCH - 30_001, false)] {
        assert_eq!(m.handle_message(&lease, now).is_ok(), ok);
    }
    assert!(matches!(
        m.handle_message(&lease, EPOCH + 30_001),
        Err(GossipDrop::OutsideReplayWindow { delta_ms: 30_001 })
    ));
    assert!(
        matches!(m.handle_message(&lease, EPOCH + 30_000), Ok(GossipEvent::LeaseUpdate { sender, .. }) if sender == p1)
    );
    // The same envelope again within the window.
    assert!(matches!(m.handle_message(&lease, EPOCH + 1), Err(GossipDrop::Duplicate { .. })));
    // Signed by the sender but altered.
    let mut forged = envelope("contract_published");
    forged.payload[2] ^= 1;
    let e = m.handle_message(&forged, EPOCH).unwrap_err();
    assert!(matches!(e, GossipDrop::BadSignature { .. }) && e.is_security_alert());
    let ok = m.handle(envelope("contract_published").to_json().as_bytes(), EPOCH).unwrap();
    assert!(matches!(ok, GossipEvent::ContractPublished { ref payload, .. } if payload.service_name == "TaskManager"));
    // Extensions are delivered; malformed input is dropped.
    assert!(matches!(
        m.handle_message(&envelope("extension"), EPOCH),
        Ok(GossipEvent::Extension { msg_type: 200, .. })
    ));
    assert!(matches!(m.handle(b"{}", EPOCH), Err(GossipDrop::Malformed(_))));
    // Unknown sender.
    let mut stranger = mesh_with(&[]);
    let e = stranger.handle_message(&envelope("lease_update"), EPOCH).unwrap_err();
    assert!(matches!(e, GossipDrop::UnknownSender { .. }) && e.is_security_alert());
    // Depart removes the sender; its later messages are from an unknown sender.
    let dep = m.handle_message(&envelope("depart"), EPOCH).unwrap();
    assert_eq!(dep, GossipEvent::Departed { sender: p1, reason: "maintenance".into() });
    assert!(!m.is_accepted(&p1));
    let again = ProducerMessage::sign(4, envelope("lease_update").payload, &node("producer.key").secret, EPOCH + 5);
    assert!(matches!(m.handle_message(&again, EPOCH + 5), Err(GossipDrop::UnknownSender { .. })));
}

#[test]
fn mesh_self_certifying_introduce() {
    let p1 = node("producer.key");
    let p2 = node("producer2.key");
    let mut m = mesh_with(&[]);
    // The reference's Introduce vector carries producer.cred.json: p1 becomes accepted.
    let intro = envelope("introduce");
    assert_eq!(m.handle_message(&intro, EPOCH).unwrap(), GossipEvent::Introduced { sender: p1.node_id(), new: true });
    assert!(m.is_accepted(&p1.node_id()));
    // p2 replaying p1's credential in its own Introduce is not accepted.
    let cred = EnrollmentCredential::from_json(&cli("producer.cred.json")).unwrap();
    let stolen = ProducerMessage::introduce(&cred, &p2.secret, EPOCH);
    assert!(matches!(m.handle_message(&stolen, EPOCH), Err(GossipDrop::UnknownSender { .. })));
    // p2 with its own (Python-signed) credential is.
    let own = EnrollmentCredential::from_json(s(&extra("producer_p2")["cli_json"])).unwrap();
    let intro2 = ProducerMessage::introduce(&own, &p2.secret, EPOCH + 1);
    assert!(matches!(m.handle_message(&intro2, EPOCH + 1), Ok(GossipEvent::Introduced { new: true, .. })));
    // A credential from another root is not.
    let evil = RootKeyFile::parse(&cli("evil-root.key")).unwrap();
    let p3 = SecretKey::from_bytes(&[3; 32]);
    let evil_cred = EnrollmentCredential::new(&p3.public_key(), evil.public_key(), u64::MAX, Attributes::new())
        .signed(&evil.secret);
    let intro3 = ProducerMessage::introduce(&evil_cred, &p3, EPOCH);
    assert!(matches!(m.handle_message(&intro3, EPOCH), Err(GossipDrop::UnknownSender { .. })));
    // Nor an expired one, nor garbage.
    let r = root();
    let old = EnrollmentCredential::new(&p3.public_key(), r.public_key(), 1, Attributes::new()).signed(&r.secret);
    let intro4 = ProducerMessage::introduce(&old, &p3, EPOCH);
    assert!(matches!(m.handle_message(&intro4, EPOCH), Err(GossipDrop::InvalidIntroduce { .. })));
    let junk = ProducerMessage::sign(1, b"rcan".to_vec(), &p3, EPOCH);
    assert!(matches!(m.handle_message(&junk, EPOCH), Err(GossipDrop::InvalidIntroduce { .. })));
}

#[test]
fn mesh_clock_drift_isolation_and_self_departure() {
    let keys: Vec<SecretKey> = (1..=4u8).map(|i| SecretKey::from_bytes(&[i; 32])).collect();
    let ids: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
    let joined = 1_000_000u64;
    let me = SecretKey::from_bytes(&[0x5a; 32]).public_key();
    let mut m = MeshState::with_salt(
        root().public_key(),
        me,
        vec![1; 32],
        ids.iter().map(PublicKey::to_hex),
        joined,
        MeshConfig::default(),
    );
    let lease = |k: &SecretKey, epoch: u64| {
        let p = LeaseUpdatePayload {
            service_name: "S".into(),
            version: 1,
            contract_id: "00".repeat(32),
            health_status: "SERVING".into(),
            addressing_info: Default::default(),
        };
        ProducerMessage::sign(4, p.encode(), k, epoch)
    };
    let now = joined + 60_000; // grace period over
    // Three peers in sync, one 10 s behind (offset +10 s): the laggard is isolated.
    for k in &keys[..3] {
        assert!(m.handle_message(&lease(k, now), now).is_ok());
    }
    let e = m.handle_message(&lease(&keys[3], now - 10_000), now).unwrap_err();
    assert!(matches!(e, GossipDrop::DriftIsolated { .. }));
    assert_eq!(m.drift_isolated().collect::<Vec<_>>(), vec![ids[3].to_hex().as_str()]);
    // It recovers with a fresh in-tolerance message.
    assert!(m.handle_message(&lease(&keys[3], now + 1), now + 1).is_ok());
    assert_eq!(m.drift_isolated().count(), 0);
    // Everybody else is 8 s behind us: our clock is the outlier → self-departure, once.
    let later = now + 100;
    let mut departed = 0;
    for k in &keys {
        if m.handle_message(&lease(k, later - 8_000), later) == Ok(GossipEvent::SelfDeparture) {
            departed += 1;
        }
    }
    assert_eq!(departed, 1);
    assert!(m.is_dead());

    // In the grace period nothing is isolated.
    let mut fresh = MeshState::with_salt(
        root().public_key(),
        me,
        vec![1; 32],
        ids.iter().map(PublicKey::to_hex),
        joined,
        MeshConfig::default(),
    );
    for k in &keys[..3] {
        assert!(fresh.handle_message(&lease(k, joined + 10), joined + 10).is_ok());
    }
    assert!(fresh.handle_message(&lease(&keys[3], joined - 10_000), joined + 10).is_ok());
}

#[test]
fn mesh_producer_admission_and_join() {
    let founder_key = SecretKey::from_bytes(&[0x66; 32]);
    let mut founder = MeshState::found(root().public_key(), founder_key.public_key(), EPOCH, MeshConfig::default());
    assert_eq!(*founder.topic(), derive_gossip_topic(&root().public_key(), founder.salt()));
    let p1 = node("producer.key").node_id();
    let (resp, res) = founder.admit_producer(&request(&cli("producer.cred.json")), &p1, now());
    assert!(res.is_ok() && resp.accepted);
    let json = resp.to_json();
    assert!(json.starts_with(r#"{"accepted":true,"salt":""#) && json.ends_with(r#"],"reason":""}"#));
    let parsed = ProducerAdmissionResponse::from_json(json.as_bytes()).unwrap();
    assert_eq!(parsed, resp);
    let mut sorted = parsed.accepted_producers.clone();
    sorted.sort();
    assert_eq!(sorted, parsed.accepted_producers);
    let joiner = MeshState::join(root().public_key(), p1, &parsed, EPOCH, MeshConfig::default()).unwrap();
    assert_eq!(joiner.topic(), founder.topic());
    assert!(joiner.is_accepted(&founder_key.public_key()));
    // A stolen credential presented by another node is denied, with the empty response.
    let (resp, res) =
        founder.admit_producer(&request(&cli("producer.cred.json")), &node("producer2.key").node_id(), now());
    assert!(matches!(res, Err(DenyReason::EndpointMismatch { .. })));
    assert_eq!(resp.to_json(), r#"{"accepted":false,"salt":"","accepted_producers":[],"reason":""}"#);
    assert!(MeshState::join(root().public_key(), p1, &resp, EPOCH, MeshConfig::default()).is_err());
}

// ── Rust-written material, checked by the reference ────────────────────────

/// Deterministic keys for the Rust-written material (so regeneration is reproducible).
fn rust_key(label: &str) -> SecretKey {
    SecretKey::from_bytes(blake3::hash(format!("aster-rs trust test key: {label}").as_bytes()).as_bytes())
}

/// The Rust-written files: `rust_written/<name>` → content.
fn rust_written() -> Vec<(String, String)> {
    let rroot = RootKeyFile { secret: rust_key("root") };
    let rnode = NodeKeyFile { secret: rust_key("node") };
    let deploy = root();
    let exp = 1893456000;
    let tricky = attributes([
        ("aster.name", "Zoë \"q\" \\"),
        ("aster.role", "ops.status,ops.logs"),
        ("ctl", "\u{8}\n\t\u{1}\u{7f}"),
        ("emoji", "😀\u{2028}"),
        ("\u{ff61}", "bmp"),
        ("\u{1f600}", "astral"),
    ]);
    let creds: Vec<(&str, String, String)> = {
        let policy = ConsumerCredential::policy(rroot.public_key(), exp, tricky.clone()).signed(&rroot.secret);
        let ott = ConsumerCredential::ott(rroot.public_key(), exp, attributes([("aster.role", "consumer")]))
            .with_nonce(Some(*blake3::hash(b"nonce").as_bytes()))
            .with_endpoint_id(&rnode.node_id())
            .signed(&rroot.secret);
        let deploy_policy = ConsumerCredential::policy(
            deploy.public_key(),
            exp,
            attributes([("aster.role", "consumer"), ("aster.name", "rusty")]),
        )
        .signed(&deploy.secret);
        let producer = EnrollmentCredential::new(
            &rnode.node_id(),
            rroot.public_key(),
            exp,
            attributes([("aster.role", "producer")]),
        )
        .signed(&rroot.secret);
        vec![
            ("policy_tricky", policy.to_cli_json(), policy.to_wire_json()),
            ("ott_bound", ott.to_cli_json(), ott.to_wire_json()),
            ("policy_deploy_root", deploy_policy.to_cli_json(), deploy_policy.to_wire_json()),
            ("producer", producer.to_cli_json(), producer.to_wire_json()),
        ]
    };
    let mut signed = String::from("{\n \"credentials\": [\n");
    for (i, (name, file, wire)) in creds.iter().enumerate() {
        let entry = serde_json::json!({"name": name, "cli_json": file, "wire_json": wire});
        signed.push_str("  ");
        signed.push_str(&entry.to_string());
        signed.push_str(if i + 1 < creds.len() { ",\n" } else { "\n" });
    }
    signed.push_str(" ],\n \"gossip\": [\n");
    let payload = LeaseUpdatePayload {
        service_name: "Svc".into(),
        version: 2,
        contract_id: "ef".repeat(32),
        health_status: "SERVING".into(),
        addressing_info: Default::default(),
    };
    let msgs = [
        ProducerMessage::depart("bye", &rnode.secret, EPOCH),
        ProducerMessage::sign(4, payload.encode(), &rnode.secret, EPOCH + 1),
        ProducerMessage::introduce(&EnrollmentCredential::from_json(&creds[3].2).unwrap(), &rnode.secret, EPOCH + 2),
    ];
    for (i, m) in msgs.iter().enumerate() {
        signed.push_str("  ");
        signed.push_str(&serde_json::to_string(&m.to_json()).unwrap());
        signed.push_str(if i + 1 < msgs.len() { ",\n" } else { "\n" });
    }
    signed.push_str(" ],\n \"topic\": ");
    let topic = derive_gossip_topic(&rroot.public_key(), &[9; 32]);
    signed.push_str(&serde_json::to_string(&hex::encode(&topic)).unwrap());
    signed.push_str("\n}\n");
    vec![
        ("rust-root.key".into(), rroot.to_json().unwrap()),
        ("rust-root.pub".into(), public_key_file_json(&rroot.public_key()).unwrap()),
        ("rust-node.key".into(), rnode.to_json().unwrap()),
        ("rust_signed.json".into(), signed),
    ]
}

/// `ASTER_TRUST_REGEN=1` rewrites `rust_written/`; then run `gen/check_rust.py` (README).
#[test]
fn rust_written_material_is_current_and_accepted_by_reference() {
    let dir = data_dir().join("rust_written");
    let files = rust_written();
    if std::env::var_os("ASTER_TRUST_REGEN").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    let mut hasher = blake3::Hasher::new();
    for (name, text) in &files {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(&on_disk, text, "rust_written/{name} is stale: regenerate (README)");
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        hasher.update(text.as_bytes());
        hasher.update(&[0]);
    }
    let check: Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir().join("py_check.json")).unwrap()).unwrap();
    assert_eq!(s(&check["rust_written_blake3"]), hasher.finalize().to_hex().as_str(), "py_check.json is stale");
    assert_eq!(check["all_ok"], true, "the reference rejected Rust-written material: {check}");
    for (what, ok) in check["results"].as_object().unwrap() {
        assert_eq!(ok, &Value::Bool(true), "{what}");
    }
    // The CLI signed with the Rust-written root key file: that credential verifies in Rust.
    let rroot = RootKeyFile { secret: rust_key("root") };
    for name in ["cli_sign_policy", "cli_authorize_producer"] {
        let text = s(&check[name]);
        if name.contains("producer") {
            let c = EnrollmentCredential::from_json(text).unwrap();
            assert!(c.verify_signature() && c.root_pubkey == rroot.public_key(), "{name}");
        } else {
            let c = ConsumerCredential::from_json(text).unwrap();
            assert!(c.verify_signature() && c.root_pubkey == rroot.public_key(), "{name}");
        }
    }
}
