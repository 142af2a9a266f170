"""Checks that pyfory 0.16.0 (through aster-rpc 0.1.2's ForyCodec) decodes the bytes the Rust
codec writes.

usage (from the project root, after `ASTER_XLANG_REGEN=1 cargo test -p aster-runtime codec::xlang`):
    ../shared/interop/py aster-runtime/tests/data/xlang_gen/check_rust.py \
        aster-runtime/tests/data/xlang_vectors.json \
        aster-runtime/tests/data/xlang_rust_encoded.json \
        aster-runtime/tests/data/xlang_py_check.json

For every case: decode Rust's bytes (its `hex`, or pyfory's own bytes where Rust wrote the
same), compare with the value `cases.py` defines, re-encode with pyfory and say whether that
gives Rust's bytes back. The Rust test asserts the recorded result (all ok, same blake3).
"""
import json
import os
import sys
from importlib.metadata import version

import blake3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import cases, is_exact  # noqa: E402
from gen import codec  # noqa: E402


def main(vectors_path, rust_path, out_path):
    with open(vectors_path, encoding="utf-8") as f:
        vectors = {c["name"]: c for c in json.load(f)["cases"]}
    with open(rust_path, encoding="utf-8") as f:
        rust = json.load(f)["cases"]
    values = dict(cases())
    c = codec()
    results = []
    for entry in rust:
        name = entry["name"]
        data = bytes.fromhex(entry.get("hex") or vectors[name]["hex"])
        r = {"name": name, "blake3": blake3.blake3(data).hexdigest(), "len": len(data),
             "same_as_pyfory": "hex" not in entry}
        assert r["blake3"] == entry["blake3"], name
        try:
            back = c.decode(data)
            expected = values[name]
            r["ok"] = back == expected and type(back) is type(expected)
            if not r["ok"]:
                r["error"] = f"decoded {back!r:.300}"
            r["pyfory_reencodes_identically"] = c.encode(back) == data if is_exact(expected) else None
        except Exception as e:  # noqa: BLE001
            r["ok"] = False
            r["error"] = f"{type(e).__name__}: {e}"
        results.append(r)
    ok = sum(r["ok"] for r in results)
    doc = {
        "generator": "aster-runtime/tests/data/xlang_gen/check_rust.py",
        "aster_rpc": version("aster-rpc"),
        "pyfory": version("pyfory"),
        "checked": len(results),
        "ok": ok,
        "results": results,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{ok}/{len(results)} decoded by pyfory -> {out_path}")
    for r in results:
        if not r["ok"]:
            print("FAIL", r["name"], r.get("error"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
