//! The `aster` binary (`src/bin/aster.rs`): `trust keygen`, `trust sign`, `trust verify`, run
//! as a process; its files are parsed back with the trust module (the formats `aster-cli`
//! 0.1.2 reads and writes; `tests/interop_trust.rs` checks them against the Python CLI).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aster::runtime::trust::keys::load_public_key_file;
use aster::runtime::trust::{
    ConsumerCredential, ConsumerCredentialType, EnrollmentCredential, RootKeyFile, SecretKey, now_secs,
};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("aster-cli-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p)).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs `aster <args>` in `dir` with `HOME` pointing into it.
fn aster(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aster"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir.join("home"))
        .output()
        .expect("runs the aster binary")
}

fn ok(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{:?}\nstdout: {text}\nstderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
    text
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

#[test]
fn keygen_writes_the_cli_key_files() {
    let s = Scratch::new("keygen");
    let stdout = ok(&aster(&s.0, &["trust", "keygen", "--out-key", "keys/deploy-root.key"]));
    let key = RootKeyFile::load(s.path("keys/deploy-root.key")).unwrap();
    let public = load_public_key_file(s.path("keys/deploy-root.pub")).unwrap();
    assert_eq!(key.public_key(), public);
    assert!(stdout.contains(&format!("Public key:  {}", public.to_hex())), "{stdout}");
    // the CLI's layout, byte for byte
    assert_eq!(s.read("keys/deploy-root.key"), key.to_json().unwrap());
    assert_eq!(s.read("keys/deploy-root.pub"), format!("{{\n  \"public_key\": \"{}\"\n}}\n", public.to_hex()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(s.path("keys/deploy-root.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // never overwritten
    let again = aster(&s.0, &["trust", "keygen", "--out-key", "keys/deploy-root.key"]);
    assert_eq!(code(&again), 1);
    assert!(String::from_utf8_lossy(&again.stderr).contains("key file already exists"));
    assert_eq!(RootKeyFile::load(s.path("keys/deploy-root.key")).unwrap().public_key(), public);
    // a `.pub` of another key: refused before anything is written (no key next to a wrong .pub)
    std::fs::write(s.path("keys/stale.pub"), s.read("keys/deploy-root.pub")).unwrap();
    let stale = aster(&s.0, &["trust", "keygen", "--out-key", "keys/stale.key"]);
    assert_eq!(code(&stale), 1);
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert!(stderr.contains("public key file already exists") && stderr.contains("stale.pub"), "{stderr}");
    assert!(!s.path("keys/stale.key").exists());
    assert_eq!(load_public_key_file(s.path("keys/stale.pub")).unwrap(), public);
    // default location: ~/.aster/root.key
    ok(&aster(&s.0, &["trust", "keygen"]));
    assert!(RootKeyFile::load(s.path("home/.aster/root.key")).is_ok());
    assert!(load_public_key_file(s.path("home/.aster/root.pub")).is_ok());
}

#[test]
fn sign_writes_credentials_the_trust_module_verifies() {
    let s = Scratch::new("sign");
    ok(&aster(&s.0, &["trust", "keygen", "--out-key", "root.key"]));
    let root = RootKeyFile::load(s.path("root.key")).unwrap();
    let node = SecretKey::generate().public_key();

    // policy: -a pairs override --attributes, ISO expiry
    let stdout = ok(&aster(
        &s.0,
        &[
            "trust",
            "sign",
            "--root-key",
            "root.key",
            "--type",
            "policy",
            "--attributes",
            r#"{"aster.role":"guest","aster.name":"alice"}"#,
            "-a",
            "aster.role=ops,admin",
            "--expires",
            "2031-01-01T00:00:00Z",
            "--out",
            "creds/alice.json",
        ],
    ));
    assert!(stdout.contains("Expires at: 2031-01-01T00:00:00+00:00"), "{stdout}");
    let text = s.read("creds/alice.json");
    let policy = ConsumerCredential::from_json(&text).unwrap();
    assert_eq!(policy.credential_type, ConsumerCredentialType::Policy);
    assert_eq!(policy.root_pubkey, root.public_key());
    assert_eq!(policy.expires_at, 1_924_992_000);
    assert_eq!(policy.attributes["aster.role"], "ops,admin");
    assert_eq!(policy.attributes["aster.name"], "alice");
    assert!(policy.endpoint_id.is_none() && policy.nonce.is_none());
    assert!(policy.verify_signature());
    assert_eq!(text, policy.to_cli_json(), "the CLI file form, byte for byte");
    assert!(text.starts_with("{\n  \"type\": \"policy\",\n"), "{text}");

    // ott bound to a node, default expiry (30 days)
    let node_hex = node.to_hex();
    ok(&aster(
        &s.0,
        &["trust", "sign", "--root-key", "root.key", "--type", "ott", "--endpoint-id", &node_hex, "--out", "ott.json"],
    ));
    let ott = ConsumerCredential::from_json(&s.read("ott.json")).unwrap();
    assert_eq!(ott.credential_type, ConsumerCredentialType::Ott);
    assert!(ott.nonce.is_some());
    assert_eq!(ott.endpoint_id.as_deref(), Some(node_hex.as_str()));
    let in_30_days = now_secs() + 30 * 24 * 3600;
    assert!(ott.expires_at.abs_diff(in_30_days) < 600, "{}", ott.expires_at);
    assert!(ott.verify_signature());

    // producer (the default type) needs an endpoint id
    let missing = aster(&s.0, &["trust", "sign", "--root-key", "root.key", "--out", "p.json"]);
    assert_eq!(code(&missing), 1);
    ok(&aster(
        &s.0,
        &[
            "trust",
            "sign",
            "--root-key",
            "root.key",
            "--endpoint-id",
            &node_hex,
            "-a",
            "aster.role=producer",
            "--out",
            "p.json",
        ],
    ));
    let text = s.read("p.json");
    let producer = EnrollmentCredential::from_json(&text).unwrap();
    assert_eq!(producer.endpoint_id, node_hex);
    assert_eq!(producer.attributes["aster.role"], "producer");
    assert!(producer.verify_signature());
    assert_eq!(text, producer.to_cli_json());

    // usage errors
    for bad in [
        &["trust", "sign", "--type", "policy"][..],
        &["trust", "sign", "--root-key", "root.key", "--type", "bogus"],
        &["trust", "sign", "--root-key", "root.key", "--type", "policy", "-a", "novalue"],
        &["trust", "sign", "--root-key", "root.key", "--bogus", "x"],
        &["trust", "frobnicate"],
    ] {
        assert_eq!(code(&aster(&s.0, bad)), 2, "{bad:?}");
    }
    let bad_expiry = aster(&s.0, &["trust", "sign", "--root-key", "root.key", "--type", "policy", "--expires", "soon"]);
    assert_eq!(code(&bad_expiry), 1);
}

#[test]
fn verify_checks_root_signature_expiry_and_binding() {
    let s = Scratch::new("verify");
    ok(&aster(&s.0, &["trust", "keygen", "--out-key", "root.key"]));
    ok(&aster(&s.0, &["trust", "keygen", "--out-key", "other.key"]));
    let node = SecretKey::generate().public_key().to_hex();
    let sign = |args: &[&str], out: &str| {
        let mut a = vec!["trust", "sign", "--root-key", "root.key", "--out", out];
        a.extend_from_slice(args);
        ok(&aster(&s.0, &a));
    };
    sign(&["--type", "policy", "-a", "aster.role=ops"], "policy.json");
    sign(&["--type", "ott"], "ott.json");
    sign(&["--type", "policy", "--endpoint-id", &node], "bound.json");
    sign(&["--endpoint-id", &node], "producer.json");
    sign(&["--type", "policy", "--expires", "2021-01-01T00:00:00Z"], "expired.json");

    let verify = |file: &str, extra: &[&str]| {
        let mut a = vec!["trust", "verify", "--root-pub", "root.pub"];
        a.extend_from_slice(extra);
        a.push(file);
        aster(&s.0, &a)
    };
    for f in ["policy.json", "ott.json", "bound.json", "producer.json"] {
        let out = ok(&verify(f, &[]));
        assert!(out.starts_with("credential: valid ("), "{f}: {out}");
    }
    let out = ok(&verify("policy.json", &[]));
    assert!(out.contains(r#"attributes:  {"aster.role":"ops"}"#), "{out}");
    // the presenting node is checked when given
    ok(&verify("bound.json", &["--endpoint-id", &node]));
    ok(&verify("producer.json", &["--endpoint-id", &node]));
    let stranger = SecretKey::generate().public_key().to_hex();
    for f in ["bound.json", "producer.json"] {
        let out = verify(f, &["--endpoint-id", &stranger]);
        assert_eq!(code(&out), 1, "{f}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("endpoint_id mismatch"), "{f}");
    }
    // expired, now and at a given time
    let out = verify("expired.json", &[]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("credential expired"));
    ok(&verify("expired.json", &["--now", "1600000000"]));
    // foreign root; the private key file works as the root too
    let out = aster(&s.0, &["trust", "verify", "--root-pub", "other.pub", "policy.json"]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("untrusted root key"));
    ok(&aster(&s.0, &["trust", "verify", "--root-pub", "root.key", "policy.json"]));
    // `--root-key` belongs to `sign`, not `verify`
    assert_eq!(code(&aster(&s.0, &["trust", "verify", "--root-key", "root.key", "policy.json"])), 2);
    // tampered
    let tampered = s.read("policy.json").replace("\"ops\"", "\"admin\"");
    std::fs::write(s.path("tampered.json"), tampered).unwrap();
    let out = verify("tampered.json", &[]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("invalid signature"));
    // not a credential; no file argument
    std::fs::write(s.path("junk.json"), "{\"type\":\"policy\"}").unwrap();
    assert_eq!(code(&verify("junk.json", &[])), 1);
    assert_eq!(code(&aster(&s.0, &["trust", "verify", "--root-pub", "root.pub"])), 2);
}

#[test]
fn verify_reads_aster_identity_files() {
    let s = Scratch::new("identity");
    ok(&aster(&s.0, &["trust", "keygen", "--out-key", "root.key"]));
    let root = RootKeyFile::load(s.path("root.key")).unwrap();
    let node = SecretKey::generate();
    // `aster enroll node` leaves aster.role / aster.name out of `attributes` (they were signed)
    let cred = ConsumerCredential::policy(
        root.public_key(),
        now_secs() + 3600,
        aster::runtime::trust::attributes([("aster.role", "consumer"), ("aster.name", "carol")]),
    )
    .with_endpoint_id(&node.public_key())
    .signed(&root.secret);
    let identity = format!(
        "[node]\nendpoint_id = \"{id}\"\n\n[[peers]]\nname = \"carol\"\nrole = \"consumer\"\ntype = \"policy\"\n\
         root_pubkey = \"{root}\"\nendpoint_id = \"{id}\"\nexpires_at = {exp}\nsignature = \"{sig}\"\n",
        id = node.public_key().to_hex(),
        root = root.public_key().to_hex(),
        exp = cred.expires_at,
        sig = cred.signature.unwrap().to_hex(),
    );
    std::fs::write(s.path("carol.aster-identity"), identity).unwrap();
    let out = ok(&aster(&s.0, &["trust", "verify", "--root-pub", "root.pub", "carol.aster-identity"]));
    assert!(out.starts_with("peer \"carol\": valid (policy)"), "{out}");
    assert!(out.contains(r#"{"aster.name":"carol","aster.role":"consumer"}"#), "{out}");
}
