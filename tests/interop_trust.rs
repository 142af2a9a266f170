//! The trust model against the real Python reference (PyPI `aster-rpc` / `aster-cli` 0.1.2):
//!
//! - **files**: the Rust `aster trust` CLI and `aster-cli` read each other's key files and
//!   credentials; both sign a policy credential with the same key and expiry to the same bytes;
//!   the Python library verifies Rust-signed policy/OTT/bound/producer credentials.
//! - **Python consumers → Rust node** (`trusted` with the root of `../shared/interop/trust_setup.sh`,
//!   i.e. material made by `aster-cli`): `../shared/interop/trust_demo.py` runs its cases —
//!   no credential, policy, tampered, foreign root, expired, OTT first use and replay,
//!   `.aster-identity` files from `aster enroll node` (rejected, as by the reference: CLI bugs),
//!   an `aster/1` dial without admission (Gate 0), and producer admission (own credential,
//!   a stolen one — accepted by the reference, rejected here —, a foreign root).
//! - **Rust consumer → Python node** (`server.py --trust ROOT_PUB`, the root from the Rust CLI):
//!   a Rust-signed credential file is admitted and calls; no credential, a foreign root and an
//!   OTT replay are denied; an `aster/1` dial without admission is closed with 403.
//!
//! Ignored by default: they need the venv of `../shared/interop/setup.sh`. Run them with
//! `scripts/interop-trust.sh` (also run at the end of `scripts/interop-smoke.sh`), which runs
//! setup.sh and this binary inside a loopback-only network namespace. Everything binds to
//! 127.0.0.1; no assertion depends on timing (limits are hang guards).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "interop/harness.rs"]
mod harness;
#[path = "../examples/taskmanager/service.rs"]
mod service;

use std::fs;
use std::process::{Command, Output};
use std::time::Duration;

use aster::prelude::*;
use aster::runtime::client::request_admission;
use aster::runtime::transport::{ALPN_RPC, EndpointConfig, bind_endpoint};
use aster::runtime::trust::keys::load_public_key_file;
use aster::runtime::trust::{
    ConsumerCredential, IdentityFile, InMemoryNonceStore, RootKeyFile, SecretKey, attributes, now_secs,
};
use harness::{
    PyServer, RUST_CALLS_LIMIT, ScratchDir, interop_script, offline_env, py_command, require_peer, run_logged,
    venv_bin, venv_dir,
};
use iroh::endpoint::ConnectionError;
use service::{TaskAck, TaskAssignment};

/// How long a Python helper (trust_setup.sh, trust_demo.py, a CLI call) may take.
const PY_RUN_LIMIT: Duration = Duration::from_secs(300);

/// Fails the test (loudly) when the reference peer, its `aster-cli` or trust_demo.py is missing.
fn require_trust_peer() {
    require_peer();
    assert!(
        venv_bin("aster").is_file(),
        "aster-cli missing from the Python reference peer venv at {}: run ../shared/interop/setup.sh \
         (or scripts/interop-trust.sh, which does) before running these ignored tests.",
        venv_dir().display()
    );
    assert!(interop_script("trust_demo.py").is_file(), "../shared/interop/trust_demo.py not found");
}

/// A scratch directory with a `home` folder (`HOME` of the CLIs, so no real profile is touched).
fn scratch(name: &str) -> ScratchDir {
    let s = ScratchDir::new(&format!("trust-{name}"));
    fs::create_dir_all(s.file("home")).unwrap();
    s
}

/// Runs a CLI with `args` in the scratch directory (HOME inside it, so no real profile is
/// touched); asserts that it succeeded.
fn cli_ok(mut cmd: Command, scratch: &ScratchDir, args: &[&str]) -> Output {
    let out = cmd.args(args).current_dir(scratch.path()).env("HOME", scratch.file("home")).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The Rust CLI (`aster`).
fn rust_cli(scratch: &ScratchDir, args: &[&str]) -> Output {
    cli_ok(Command::new(env!("CARGO_BIN_EXE_aster")), scratch, args)
}

/// `aster-cli` (Python), offline.
fn python_cli(scratch: &ScratchDir, args: &[&str]) -> Output {
    let mut cmd = Command::new(venv_bin("aster"));
    offline_env(&mut cmd, scratch.path());
    cli_ok(cmd, scratch, args)
}

/// `trust sign --root-key KEY --type TYPE --out OUT` and then `extra`: arguments both CLIs take.
fn sign_args<'a>(key: &'a str, ty: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["trust", "sign", "--root-key", key, "--type", ty, "--out", out];
    args.extend_from_slice(extra);
    args
}

fn public_hex(scratch: &ScratchDir, pub_file: &str) -> String {
    load_public_key_file(scratch.file(pub_file)).unwrap().to_hex()
}

// ── files ───────────────────────────────────────────────────────────────────

/// Verifies credentials with the reference library; prints one line per file.
const PY_VERIFY: &str = r#"
import json, sys
from aster.runtime import _load_enrollment_credential
from aster.config import _load_pubkey_from_file
from aster.trust.signing import verify_signature
from aster.trust.credentials import EnrollmentCredential
root = _load_pubkey_from_file(sys.argv[1])
for path in sys.argv[2:]:
    d = json.load(open(path))
    if d.get("type") == "producer":
        c = EnrollmentCredential(endpoint_id=d["endpoint_id"], root_pubkey=bytes.fromhex(d["root_pubkey"]),
                                 expires_at=d["expires_at"], attributes=d["attributes"],
                                 signature=bytes.fromhex(d["signature"]))
        kind = "producer"
    else:
        c = _load_enrollment_credential(path)
        kind = c.credential_type
    ok = c.root_pubkey == root and verify_signature(c, root)
    print(f"{path} {kind} {'OK' if ok else 'BAD'}")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn cli_files_interoperate_with_aster_cli() {
    require_trust_peer();
    let s = scratch("cli");
    // one root key from each CLI
    rust_cli(&s, &["trust", "keygen", "--out-key", "rs/root.key"]);
    python_cli(&s, &["trust", "keygen", "--out-key", "py/root.key"]);
    let node = SecretKey::generate().public_key().to_hex();
    for k in ["rs", "py"] {
        let key = format!("{k}/root.key");
        // each CLI signs with the other's key file: same key + expiry + sorted attributes →
        // the same bytes (ed25519 is deterministic; the attribute object is written in key order)
        let attrs = r#"{"aster.name":"ünï","aster.role":"ops,admin"}"#;
        let py_out = format!("{k}/py.policy.json");
        let rs_out = format!("{k}/rs.policy.json");
        let policy = ["--attributes", attrs, "--expires", "2031-01-01T00:00:00Z"];
        python_cli(&s, &sign_args(&key, "policy", &py_out, &policy));
        rust_cli(&s, &sign_args(&key, "policy", &rs_out, &policy));
        assert_eq!(s.read(&py_out), s.read(&rs_out), "{k}: both CLIs write the same policy credential");

        // Python-signed OTT / producer / bound policy: the Rust CLI verifies them
        for (ty, extra) in
            [("ott", vec![]), ("producer", vec!["--endpoint-id", &node]), ("policy", vec!["--endpoint-id", &node])]
        {
            let out = format!("{k}/py.{ty}.{}.json", extra.len());
            let mut signed = vec!["--attributes", r#"{"aster.role":"x"}"#];
            signed.extend(extra.iter().copied());
            python_cli(&s, &sign_args(&key, ty, &out, &signed));
            let pub_file = format!("{k}/root.pub");
            let v = rust_cli(&s, &["trust", "verify", "--root-pub", &pub_file, "--endpoint-id", &node, &out]);
            let text = String::from_utf8_lossy(&v.stdout);
            assert!(text.starts_with(&format!("credential: valid ({ty})")), "{out}: {text}");
        }

        // Rust-signed OTT / producer / bound policy: the Python library verifies them
        let mut files = vec![rs_out.clone()];
        for (ty, bound) in [("ott", false), ("producer", true), ("policy", true)] {
            let out = format!("{k}/rs.{ty}.{bound}.json");
            let mut signed = vec!["-a", "aster.role=x"];
            if bound {
                signed.extend(["--endpoint-id", &node]);
            }
            rust_cli(&s, &sign_args(&key, ty, &out, &signed));
            files.push(out);
        }
        let mut cmd = Command::new(venv_bin("python"));
        cmd.arg("-c").arg(PY_VERIFY).arg(format!("{k}/root.pub")).args(&files).current_dir(s.path());
        offline_env(&mut cmd, s.path());
        let (status, out, err) = run_logged(cmd, "py-verify", &s, PY_RUN_LIMIT).await;
        assert!(status.success(), "{out}\n{err}");
        assert_eq!(out.lines().filter(|l| l.ends_with(" OK")).count(), files.len(), "{out}\n{err}");
        println!("{k}: Python verified {out}");
    }
    // the two roots are really different (and the Rust CLI tells them apart)
    assert_ne!(public_hex(&s, "rs/root.pub"), public_hex(&s, "py/root.pub"));
    let cross = Command::new(env!("CARGO_BIN_EXE_aster"))
        .args(["trust", "verify", "--root-pub", "rs/root.pub", "py/py.policy.json"])
        .current_dir(s.path())
        .output()
        .unwrap();
    assert_eq!(cross.status.code(), Some(1));
}

// ── Python consumers → Rust node ────────────────────────────────────────────

/// (case label in trust_demo.py, expected outcome prefix after `[label] `)
const DEMO_EXPECTED: &[(&str, &str)] = &[
    ("no credential", "REJECTED at admission"),
    (
        "alice policy (trust sign)",
        "ADMITTED, unary call -> TaskAck(task_id='alice policy (trust sign)', accepted=True, worker='rs-worker-1')",
    ),
    ("alice tampered attrs", "REJECTED at admission"),
    ("mallory, other root", "REJECTED at admission"),
    ("expired policy", "REJECTED at admission"),
    ("dave OTT 1st use", "ADMITTED, unary call ->"),
    ("dave OTT replay", "REJECTED at admission"),
    // aster-cli 0.1.2 bugs, rejected by the reference server too: `aster enroll node` leaves the
    // signed `aster.role` out of the file (the Python client sends the attributes as written:
    // invalid signature), and writes an OTT without a nonce.
    ("carol .aster-identity (enroll node, policy)", "REJECTED at admission"),
    ("bob .aster-identity (enroll node, ott)", "REJECTED at admission"),
    ("no-admission direct aster/1", "REJECTED by Gate 0"),
    ("producer, own cred", "node="),
    ("producer2 replaying producer's cred", "node="),
    ("producer, cred from other root", "node="),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn python_consumers_and_producers_against_a_trusted_rust_node() {
    require_trust_peer();
    let s = scratch("demo");
    // aster-cli makes the root, the consumer credentials, identity files and producer credentials
    let mut setup = Command::new(interop_script("trust_setup.sh"));
    offline_env(&mut setup, s.path());
    let (status, out, err) = run_logged(setup, "trust_setup", &s, PY_RUN_LIMIT).await;
    assert!(status.success(), "trust_setup.sh failed\n{out}\n{err}");
    let trust_dir = s.file("trust");
    let root = load_public_key_file(trust_dir.join("deploy-root.pub")).unwrap();

    let node = tokio::time::timeout(
        RUST_CALLS_LIMIT,
        service::serve(AsterNode::builder().trusted(root, InMemoryNonceStore::new())),
    )
    .await
    .unwrap()
    .unwrap();
    let info = serde_json::json!({
        "ticket": node.ticket().to_string(),
        "endpoint_id": node.id().to_string(),
        "mode": "trusted",
        "root_pubkey": root.to_hex(),
        "producer_gate": true,
    });
    let info_path = s.file("rust_node_info.json");
    fs::write(&info_path, info.to_string()).unwrap();

    let mut demo = py_command(&interop_script("trust_demo.py"), s.path());
    demo.arg("--info").arg(&info_path).arg("--trust-dir").arg(&trust_dir);
    let (status, out, err) = run_logged(demo, "trust_demo", &s, PY_RUN_LIMIT).await;
    let report = format!("trust_demo.py: {status}\n--- stdout\n{out}\n--- stderr\n{err}");
    assert!(status.success(), "{report}");
    for (label, want) in DEMO_EXPECTED {
        let prefix = format!("  [{label}] ");
        let line =
            out.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no line for {label}\n{report}"));
        assert!(line[prefix.len()..].starts_with(want), "{label}: {line}\n{report}");
    }
    // producer admission binds the credential to the QUIC peer (the reference accepts the
    // stolen credential here)
    let verdict = |label: &str| {
        let l = out.lines().find(|l| l.starts_with(&format!("  [{label}] "))).unwrap();
        l.split("-> ").nth(1).unwrap_or("").split(';').next().unwrap_or("").to_owned()
    };
    assert_eq!(verdict("producer, own cred"), "ACCEPTED", "{report}");
    assert_eq!(verdict("producer2 replaying producer's cred"), "REJECTED", "{report}");
    assert_eq!(verdict("producer, cred from other root"), "REJECTED", "{report}");
    println!("{report}");

    // The Rust client reads carol's `.aster-identity` (node key + credential) and restores the
    // `aster.role` that aster-cli left out of the file: admitted.
    let identity = IdentityFile::load(trust_dir.join("carol.aster-identity")).unwrap();
    let key = identity.secret_key.clone().expect("the identity file has a node key");
    let cfg = EndpointConfig { secret_key: Some(key.to_iroh()), ..EndpointConfig::default() };
    let ep = bind_endpoint(&cfg).await.unwrap();
    let opts = AdmissionOptions::new().credential_file(trust_dir.join("carol.aster-identity")).unwrap();
    let client = tokio::time::timeout(RUST_CALLS_LIMIT, AsterClient::connect_with(&ep, node.addr(), opts))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.admission().attributes["aster.role"], "consumer");
    client.close().await;
    ep.close().await;
    tokio::time::timeout(Duration::from_secs(30), node.shutdown()).await.unwrap().unwrap();
}

// ── Rust consumer → Python node ─────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn rust_consumer_admitted_by_a_trusted_python_server() {
    require_trust_peer();
    let s = scratch("py-server");
    // the root and a policy credential from the Rust CLI
    rust_cli(&s, &["trust", "keygen", "--out-key", "root.key"]);
    rust_cli(&s, &sign_args("root.key", "policy", "rusty.json", &["-a", "aster.role=ops", "-a", "aster.name=rusty"]));
    let root = RootKeyFile::load(s.file("root.key")).unwrap();
    let rusty = s.file("rusty.json");

    // server.py runs in the same scratch directory (its logs land next to the keys)
    let root_pub = s.file("root.pub");
    let trust = ["--trust", root_pub.to_str().expect("a UTF-8 scratch path")];
    let py = PyServer::start_in(s, &interop_script("server.py"), &trust).await;
    assert_eq!(py.info["mode"], "trusted", "{}", py.info);
    assert_eq!(py.info["root_pubkey"], root.public_key().to_hex(), "{}", py.info);
    let addr = py.addr();

    let calls = async {
        let ep = bind_endpoint(&EndpointConfig::default()).await.unwrap();
        // Gate 0 of the Python server: aster/1 without admission is closed with 403
        match ep.connect(addr.clone(), ALPN_RPC).await {
            Ok(conn) => match conn.closed().await {
                ConnectionError::ApplicationClosed(c) => {
                    assert_eq!(c.error_code, 403u32.into());
                    assert_eq!(&c.reason[..], b"not admitted");
                }
                other => panic!("expected a 403 close, got {other}"),
            },
            Err(e) => assert!(e.to_string().contains("not admitted"), "{e}"),
        }
        // no credential: denied, no reason, the server's root key
        let e = AsterClient::connect(&ep, addr.clone()).await.map(|_| ()).unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");
        let resp = request_admission(&ep, addr.clone(), &Default::default()).await.unwrap();
        assert!(!resp.admitted && resp.reason.is_empty() && resp.services.is_empty());
        assert_eq!(resp.root_pubkey, root.public_key().to_hex());
        // a credential of another root: denied
        let evil = SecretKey::generate();
        let foreign =
            ConsumerCredential::policy(evil.public_key(), now_secs() + 3600, attributes([("aster.role", "ops")]))
                .signed(&evil);
        let e = AsterClient::connect_with(&ep, addr.clone(), AdmissionOptions::new().credential(&foreign))
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");

        // the Rust CLI's credential file: admitted with its attributes, and calls work
        let opts = AdmissionOptions::new().credential_file(&rusty).unwrap();
        let client = AsterClient::connect_with(&ep, addr.clone(), opts).await.unwrap();
        let adm = client.admission();
        assert!(adm.admitted);
        assert_eq!(adm.attributes["aster.role"], "ops");
        assert_eq!(adm.attributes["aster.name"], "rusty");
        let ch = client.channel_for("TaskManager").await.unwrap();
        let req = TaskAssignment { task_id: "rusty-1".into(), title: "trusted".into(), priority: 1, tags: vec![] };
        let ack: TaskAck = ch.unary("TaskManager", 1, "assign_task", &req, CallOptions::new()).await.unwrap();
        assert_eq!(ack, TaskAck { task_id: "rusty-1".into(), accepted: true, worker: "py-worker-1".into() });
        client.close().await;

        // a Rust-signed OTT bound to this endpoint: first use admitted, replay denied
        let ott = ConsumerCredential::ott(root.public_key(), now_secs() + 3600, attributes([("aster.role", "ops")]))
            .with_endpoint_id(&ep.id().into())
            .signed(&root.secret);
        let client =
            AsterClient::connect_with(&ep, addr.clone(), AdmissionOptions::new().credential(&ott)).await.unwrap();
        client.close().await;
        let e = AsterClient::connect_with(&ep, addr.clone(), AdmissionOptions::new().credential(&ott))
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");
        ep.close().await;
    };
    tokio::time::timeout(RUST_CALLS_LIMIT, calls).await.expect("Rust client timed out");
    py.stop();
}
