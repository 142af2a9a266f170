"""Ground truth for the XLANG user-type codec (aster-runtime/src/codec/xlang.rs) from
aster-rpc 0.1.2 / pyfory 0.16.0.

usage (from the project root):
    ../shared/interop/py aster-runtime/tests/data/xlang_gen/gen.py \
        aster-runtime/tests/data/xlang_vectors.json

Every payload is produced by aster's own `ForyCodec(SerializationMode.XLANG, types=...)`, i.e.
`pyfory.Fory(xlang=True)` with the types registered exactly as a 0.1.2 peer registers them.
Per type: the fingerprint, struct hash and field emission order pyfory computed. Per case: the
value as JSON (dataclass → object, enum → member name, bytes → list of ints, set → sorted list,
dict → object with str keys, None → null), pyfory's bytes, and `exact` (false when the bytes
depend on Python's set iteration order).
"""
import dataclasses
import enum
import json
import os
import sys
from importlib.metadata import version

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aster.codec import ForyCodec, SerializationMode  # noqa: E402
from pyfory.struct import compute_struct_fingerprint  # noqa: E402

import xtypes  # noqa: E402
from cases import cases, is_exact  # noqa: E402


def to_json(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, bytes):
        return list(v)
    if isinstance(v, (set, frozenset)):
        return [to_json(x) for x in sorted(v)]
    if isinstance(v, list):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): to_json(x) for k, x in v.items()}
    if dataclasses.is_dataclass(v):
        return {f.name: to_json(getattr(v, f.name)) for f in dataclasses.fields(v)}
    raise TypeError(f"cannot convert {v!r}")


def codec():
    return ForyCodec(SerializationMode.XLANG, types=xtypes.ROOT_TYPES)


def main(out_path):
    c = codec()
    out_cases = []
    for name, value in cases():
        data = c.encode(value)
        back = c.decode(data)
        assert back == value, (name, back, value)
        out_cases.append({
            "name": name,
            "type": type(value).__name__,
            "exact": is_exact(value),
            "value": to_json(value),
            "hex": data.hex(),
        })
    types = []
    resolver = c._fory.type_resolver
    for t in xtypes.ROOT_TYPES:
        s = resolver.get_type_info(t).serializer
        fp = compute_struct_fingerprint(resolver, s._field_names, s._serializers, s._nullable_fields, s._field_infos)
        types.append({
            "type": t.__name__,
            "tag": t.__wire_type__,
            "fingerprint": fp,
            "hash": s._hash,
            "field_order": list(s._field_names),
        })
    doc = {
        "generator": "aster-runtime/tests/data/xlang_gen/gen.py",
        "aster_rpc": version("aster-rpc"),
        "pyfory": version("pyfory"),
        "types": types,
        "cases": out_cases,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{len(out_cases)} cases, {len(types)} types -> {out_path}")


if __name__ == "__main__":
    main(sys.argv[1])
