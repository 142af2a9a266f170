#!/usr/bin/env python3
"""Checks the Rust-written trust material (../rust_written/) with the reference
(aster-rpc 0.1.2 / aster-cli 0.1.2) and records the verdicts in ../py_check.json.

  * key files: the CLI's signer loads rust-root.key, the server's root_pubkey_file loader
    loads rust-root.pub, rust-node.key's node_id is the public key of its secret_key;
  * `aster trust sign` and `aster authorize` run with the Rust-written rust-root.key (their
    output is recorded; the Rust test verifies it);
  * every Rust-signed consumer credential: the client's credential-file loader + signature
    check, the server's wire parser, and the full server admission handler
    (handle_consumer_admission_rpc) -> admitted;
  * the Rust-signed producer credential: check_offline and the producer admission handler;
  * the Rust-signed gossip envelopes: signed bytes, verify_producer_message, and
    handle_producer_message (LeaseUpdate reaches the registry callback, Introduce/Depart
    update the accepted set); the topic derivation.

usage: ../shared/interop/py aster-runtime/tests/data/trust/gen/check_rust.py
"""
import asyncio
import json
import os
import subprocess
import sys
import tempfile

import blake3

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.dirname(HERE)
RW = os.path.join(DATA, "rust_written")
FILES = ("rust-root.key", "rust-root.pub", "rust-node.key", "rust_signed.json")
ASTER = os.path.join(os.path.dirname(sys.executable), "aster")


def main():
    tmp = tempfile.mkdtemp(prefix="aster-trust-check-")
    os.environ["HOME"] = tmp  # keep the CLI profile and ~/.aster out of the real home
    os.environ["ASTER_MESH_STATE_DIR"] = os.path.join(tmp, "mesh")

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from aster.config import _load_pubkey_from_file
    from aster.runtime import _load_enrollment_credential
    from aster.trust import gossip as gossip_mod
    from aster.trust.admission import check_offline
    from aster.trust.bootstrap import handle_admission_rpc
    from aster.trust.consumer import (ConsumerAdmissionRequest, consumer_cred_from_json,
                                      handle_consumer_admission_rpc)
    from aster.trust.credentials import EnrollmentCredential
    from aster.trust.gossip import derive_gossip_topic, handle_producer_message, verify_producer_message
    from aster.trust.mesh import ClockDriftConfig, MeshState, ProducerMessage
    from aster.trust.nonces import InMemoryNonceStore
    from aster.trust.signing import verify_signature
    from aster_cli.signer import LocalSigner

    texts = {n: open(os.path.join(RW, n), encoding="utf-8").read() for n in FILES}
    h = blake3.blake3()
    for n in FILES:
        h.update(n.encode() + b"\0" + texts[n].encode() + b"\0")
    results = {}

    def record(name, ok):
        results[name] = bool(ok)
        print(("ok  " if ok else "FAIL"), name)

    # ── key files ──
    rk = json.loads(texts["rust-root.key"])
    root_pub = bytes.fromhex(rk["public_key"])
    signer = LocalSigner("default", root_key_file=os.path.join(RW, "rust-root.key"))
    record("cli_signer_loads_rust_root_key", signer.root_pubkey == root_pub)
    record("server_loads_rust_root_pub", _load_pubkey_from_file(os.path.join(RW, "rust-root.pub")) == root_pub)
    nk = json.loads(texts["rust-node.key"])
    node_id = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(nk["secret_key"])).public_key().public_bytes_raw().hex()
    record("rust_node_key_node_id", node_id == nk["node_id"])

    # ── the CLI signs with the Rust-written root key file ──
    def cli(*args):
        out = os.path.join(tmp, f"cli-{len(results)}.json")
        subprocess.run(["timeout", "60", ASTER, *args, "--out", out], check=True, capture_output=True)
        return open(out).read()

    cli_policy = cli("trust", "sign", "--root-key", os.path.join(RW, "rust-root.key"), "--type", "policy",
                     "--attributes", '{"aster.role":"consumer","aster.name":"via-cli"}')
    d = json.loads(cli_policy)
    p = os.path.join(tmp, "cli_policy.json")
    open(p, "w").write(cli_policy)
    c = _load_enrollment_credential(p)
    record("cli_trust_sign_with_rust_key", d["root_pubkey"] == root_pub.hex() and verify_signature(c))
    cli_prod = cli("authorize", "--root-key", os.path.join(RW, "rust-root.key"), "--producer-id", node_id)
    d = json.loads(cli_prod)
    pc = EnrollmentCredential(d["endpoint_id"], bytes.fromhex(d["root_pubkey"]), int(d["expires_at"]),
                              d["attributes"], bytes.fromhex(d["signature"]))
    record("cli_authorize_with_rust_key", pc.root_pubkey == root_pub and verify_signature(pc))

    # ── Rust-signed credentials ──
    signed = json.loads(texts["rust_signed.json"])
    deploy_pub = bytes.fromhex(json.load(open(os.path.join(DATA, "cli", "deploy-root.pub")))["public_key"])
    for entry in signed["credentials"]:
        name = entry["name"]
        if name == "producer":
            d = json.loads(entry["cli_json"])
            cred = EnrollmentCredential(d["endpoint_id"], bytes.fromhex(d["root_pubkey"]), int(d["expires_at"]),
                                        d["attributes"], bytes.fromhex(d["signature"]))
            record(f"{name}: file verifies", verify_signature(cred))
            res = asyncio.run(check_offline(cred, node_id))
            record(f"{name}: check_offline admits (peer = bound node)", res.admitted)
            state = MeshState(salt=bytes(32))
            resp = asyncio.run(handle_admission_rpc(entry["wire_json"], state, root_pub))
            record(f"{name}: producer admission handler accepts", resp.accepted and node_id in resp.accepted_producers)
            continue
        p = os.path.join(tmp, f"{name}.json")
        open(p, "w", encoding="utf-8").write(entry["cli_json"])
        cred = _load_enrollment_credential(p)
        record(f"{name}: client file loader + signature", verify_signature(cred))
        wire = consumer_cred_from_json(entry["wire_json"])
        record(f"{name}: server wire parser + signature", verify_signature(wire))
        record(f"{name}: file and wire forms agree", wire == cred)
        trusted = deploy_pub if name == "policy_deploy_root" else root_pub
        req = ConsumerAdmissionRequest(credential_json=entry["wire_json"]).to_json()
        resp = asyncio.run(handle_consumer_admission_rpc(req, trusted, None, node_id,
                                                         nonce_store=InMemoryNonceStore()))
        record(f"{name}: consumer admission handler admits", resp.admitted and resp.attributes == cred.attributes)

    # ── Rust-signed gossip ──
    cfg = ClockDriftConfig()
    state = MeshState(accepted_producers={node_id})
    events = []
    msgs = [json.loads(w) for w in signed["gossip"]]
    # Apply LeaseUpdate, Introduce, then Depart; the reference reads the wall clock, so pin it.
    order = sorted(msgs, key=lambda m: {4: 0, 1: 1, 2: 2}[m["type"]])
    real_time = gossip_mod.time.time
    try:
        for m in order:
            msg = ProducerMessage(m["type"], bytes.fromhex(m["payload"]), m["sender"], m["epoch_ms"],
                                  bytes.fromhex(m["signature"]))
            t = m["type"]
            record(f"gossip type {t}: verify_producer_message", verify_producer_message(msg, bytes.fromhex(m["sender"])))
            gossip_mod.time.time = lambda m=m: m["epoch_ms"] / 1000.0
            asyncio.run(handle_producer_message(msg, state, cfg, {node_id: bytes.fromhex(node_id)},
                                                registry_callback=lambda kind, p: events.append(kind)))
            if t == 4:
                record("gossip LeaseUpdate reaches the registry callback", events == ["lease_update"])
            if t == 1:
                record("gossip Introduce keeps the sender accepted", node_id in state.accepted_producers)
            if t == 2:
                record("gossip Depart removes the sender", node_id not in state.accepted_producers)
    finally:
        gossip_mod.time.time = real_time
    record("topic derivation", derive_gossip_topic(root_pub, bytes([9] * 32)).hex() == signed["topic"])

    import importlib.metadata as md
    out = {
        "rust_written_blake3": h.hexdigest(),
        "checked_with": {"aster-rpc": md.version("aster-rpc"), "aster-cli": md.version("aster-cli")},
        "results": results,
        "all_ok": all(results.values()),
        "cli_sign_policy": cli_policy,
        "cli_authorize_producer": cli_prod,
    }
    dst = os.path.join(DATA, "py_check.json")
    with open(dst, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", dst, "all_ok =", out["all_ok"])
    return 0 if out["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
