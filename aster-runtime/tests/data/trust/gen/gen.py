#!/usr/bin/env python3
"""Ground truth for aster-runtime/src/trust from the reference (aster-rpc 0.1.2).

Reads the aster-cli material in ../cli (made by ../../../../../shared/interop/trust_setup.sh,
see ../README.md) and writes ../vectors.json:

  cli          per CLI-written credential file: kind, exact signed bytes, whether the
               reference verifies it, and (consumers) the reference's wire JSON
  extra        credentials built and signed here with deploy-root.key through the reference's
               own signing code: endpoint-bound OTT/policy, empty/tricky attributes
  canonical    canonical_json(attributes) for tricky attribute maps
  topics       derive_gossip_topic vectors
  gossip       envelopes signed with producer.key by sign_producer_message, wire JSON as
               run_lease_heartbeat writes it
  admission_request   ConsumerAdmissionRequest(...).to_json() for alice's credential

usage: ../shared/interop/py aster-runtime/tests/data/trust/gen/gen.py
"""
import json
import os
import sys
import time

from aster.trust.consumer import ConsumerAdmissionRequest, consumer_cred_from_json, consumer_cred_to_json
from aster.trust.credentials import ConsumerEnrollmentCredential, EnrollmentCredential
from aster.trust.gossip import (derive_gossip_topic, encode_contract_published_payload,
                                encode_depart_payload, encode_lease_update_payload,
                                producer_message_signing_bytes, sign_producer_message)
from aster.trust.signing import _canonical_json, _canonical_signing_bytes, sign_credential, verify_signature

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.dirname(HERE)
CLI = os.path.join(DATA, "cli")


def load(name):
    with open(os.path.join(CLI, name)) as f:
        return json.load(f)


def consumer_from_cli_doc(d):
    # What the reference client loader does (runtime._load_enrollment_credential).
    nonce_hex = d.get("nonce")
    return ConsumerEnrollmentCredential(
        credential_type=d.get("credential_type") or d.get("type", "policy"),
        root_pubkey=bytes.fromhex(d["root_pubkey"]),
        expires_at=int(d["expires_at"]),
        attributes=d.get("attributes", {}),
        endpoint_id=d.get("endpoint_id"),
        nonce=bytes.fromhex(nonce_hex) if nonce_hex else None,
        signature=bytes.fromhex(d.get("signature", "")),
    )


def producer_from_doc(d):
    # What the reference producer admission does (bootstrap.handle_admission_rpc).
    return EnrollmentCredential(
        endpoint_id=d["endpoint_id"],
        root_pubkey=bytes.fromhex(d["root_pubkey"]),
        expires_at=int(d["expires_at"]),
        attributes=d.get("attributes", {}),
        signature=bytes.fromhex(d.get("signature", "")),
    )


def cli_doc(cred):
    # aster_cli.trust._sign_command's file document.
    if isinstance(cred, EnrollmentCredential):
        return {"type": "producer", "endpoint_id": cred.endpoint_id, "root_pubkey": cred.root_pubkey.hex(),
                "expires_at": cred.expires_at, "attributes": cred.attributes, "signature": cred.signature.hex()}
    return {"type": cred.credential_type, "root_pubkey": cred.root_pubkey.hex(), "expires_at": cred.expires_at,
            "attributes": cred.attributes, "endpoint_id": cred.endpoint_id,
            "nonce": cred.nonce.hex() if cred.nonce else None, "signature": cred.signature.hex()}


def cli_text(cred):
    return json.dumps(cli_doc(cred), indent=2) + "\n"


def main():
    root = load("deploy-root.key")
    root_priv, root_pub = bytes.fromhex(root["private_key"]), bytes.fromhex(root["public_key"])
    producer = load("producer.key")
    producer2 = load("producer2.key")
    now = int(time.time())

    out = {"generated_at": now, "root_pubkey": root_pub.hex(), "cli": {}, "extra": [], "canonical": [],
           "topics": [], "gossip": []}

    for name in ("alice.policy.json", "alice.tampered.json", "mallory.evilroot.json", "expired.policy.json",
                 "dave.ott.json"):
        d = load(name)
        cred = consumer_from_cli_doc(d)
        out["cli"][name] = {
            "kind": cred.credential_type,
            "signing_bytes": _canonical_signing_bytes(cred).hex(),
            "verifies": verify_signature(cred),
            "wire_json": consumer_cred_to_json(cred),
            # The wire JSON must also parse on the server side.
            "wire_roundtrip": consumer_cred_to_json(consumer_cred_from_json(consumer_cred_to_json(cred)))
            == consumer_cred_to_json(cred),
        }
    for name in ("producer.cred.json", "producer.evilroot.json"):
        cred = producer_from_doc(load(name))
        out["cli"][name] = {"kind": "producer", "signing_bytes": _canonical_signing_bytes(cred).hex(),
                            "verifies": verify_signature(cred)}

    # Extra credentials signed by the reference's signing code with deploy-root.key.
    exp = 1893456000  # 2030-01-01
    tricky = {
        "aster.name": "Zoë \"quoted\" \\ back",
        "aster.role": "ops.status,ops.logs",
        "ctl": "\b\f\n\r\t\x01\x1f\x7f",
        "emoji": "😀",
        "ls": "\u2028\u2029",
        "\uff61": "bmp-high key",
        "\U0001F600": "astral key",
        "": "",
    }
    extras = [
        ("policy_bound", ConsumerEnrollmentCredential(
            credential_type="policy", root_pubkey=root_pub, expires_at=exp,
            attributes={"aster.name": "erin", "aster.role": "consumer"}, endpoint_id=producer2["node_id"])),
        ("ott_bound", ConsumerEnrollmentCredential(
            credential_type="ott", root_pubkey=root_pub, expires_at=exp,
            attributes={"aster.role": "ops.admin"}, endpoint_id=producer2["node_id"], nonce=bytes(range(32)))),
        ("policy_empty_attrs", ConsumerEnrollmentCredential(
            credential_type="policy", root_pubkey=root_pub, expires_at=exp, attributes={})),
        ("policy_tricky_attrs", ConsumerEnrollmentCredential(
            credential_type="policy", root_pubkey=root_pub, expires_at=exp, attributes=tricky)),
        ("ott_unsorted_attrs", ConsumerEnrollmentCredential(
            credential_type="ott", root_pubkey=root_pub, expires_at=exp,
            attributes={"z": "1", "a": "2", "M": "3"}, nonce=bytes([0xab] * 32))),
        ("producer_p2", EnrollmentCredential(
            endpoint_id=producer2["node_id"], root_pubkey=root_pub, expires_at=exp,
            attributes={"aster.name": "p2", "aster.role": "producer"})),
    ]
    for name, cred in extras:
        cred.signature = sign_credential(cred, root_priv)
        assert verify_signature(cred)
        e = {"name": name, "kind": "producer" if isinstance(cred, EnrollmentCredential) else cred.credential_type,
             "signing_bytes": _canonical_signing_bytes(cred).hex(), "signature": cred.signature.hex(),
             "cli_json": cli_text(cred),
             "sorted_attrs": list(cred.attributes) == sorted(cred.attributes)}
        if not isinstance(cred, EnrollmentCredential):
            e["wire_json"] = consumer_cred_to_json(cred)
        out["extra"].append(e)

    for attrs in ({}, {"b": "2", "a": "1"}, tricky, {"k": "ü", "K": "ß", "é": "e"}):
        out["canonical"].append({"attributes": attrs, "canonical_hex": _canonical_json(attrs).hex()})

    zero = bytes(32)
    for r, salt in ((root_pub, bytes(range(32))), (zero, zero), (root_pub, b""), (root_pub, bytes([7] * 16))):
        out["topics"].append({"root_pubkey": r.hex(), "salt": salt.hex(), "topic": derive_gossip_topic(r, salt).hex()})

    sk = bytes.fromhex(producer["secret_key"])
    sender = producer["node_id"]
    p_cred = producer_from_doc(load("producer.cred.json"))
    intro_payload = json.dumps({"endpoint_id": p_cred.endpoint_id, "root_pubkey": p_cred.root_pubkey.hex(),
                                "expires_at": p_cred.expires_at, "attributes": p_cred.attributes,
                                "signature": p_cred.signature.hex()}, separators=(",", ":")).encode()
    epoch = 1795000000123
    msgs = [
        ("introduce", 1, intro_payload),
        ("depart", 2, encode_depart_payload("maintenance")),
        ("contract_published", 3, encode_contract_published_payload("TaskManager", 1, "ab" * 32)),
        ("lease_update", 4, encode_lease_update_payload("TaskManager", 1, "cd" * 32, "SERVING",
                                                         {"rpc": "127.0.0.1:7000"})),
        ("extension", 200, b"\x00\x01opaque"),
    ]
    for name, t, payload in msgs:
        m = sign_producer_message(t, payload, sender, epoch, sk)
        wire = json.dumps({"type": m.type, "payload": m.payload.hex(), "sender": m.sender, "epoch_ms": m.epoch_ms,
                           "signature": m.signature.hex()}, separators=(",", ":"))
        out["gossip"].append({"name": name, "type": t, "payload_hex": payload.hex(), "sender": sender,
                              "epoch_ms": epoch,
                              "signing_bytes": producer_message_signing_bytes(t, payload, sender, epoch).hex(),
                              "signature": m.signature.hex(), "wire_json": wire})

    alice = consumer_from_cli_doc(load("alice.policy.json"))
    out["admission_request"] = ConsumerAdmissionRequest(credential_json=consumer_cred_to_json(alice)).to_json()

    dst = os.path.join(DATA, "vectors.json")
    with open(dst, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", dst)


if __name__ == "__main__":
    sys.exit(main())
