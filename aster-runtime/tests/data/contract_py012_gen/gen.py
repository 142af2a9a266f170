"""Ground truth from aster-rpc 0.1.2 for the Rust contract module tests
(aster-runtime/src/contract/tests.rs).

usage (from the project root):
    ../shared/interop/py aster-runtime/tests/data/contract_py012_gen/gen.py \
        aster-runtime/tests/data/contract_py012.json

For each service: every TypeDef the 0.1.2 graph walker produces (FQN, canonical bytes, hash),
the canonical ServiceContract bytes and contract_id, and (TaskManager/TaskSession) the
manifest.json 0.1.2's build_collection writes. `example.py` mirrors the B.* canonical vectors
(module "example" so FQN == "example.<Name>"); `richmod.py` covers the field-type mapping.
XLANG services with recursive types hit a RecursionError in 0.1.2's decorator-time tag
validation, so the recursive services here declare JSON (and NATIVE) only.
"""
import json, sys, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blake3
import aster
from importlib.metadata import version
from typing import AsyncIterator
from aster import rpc, server_stream, client_stream, bidi_stream, service
from aster.rpc_types import SerializationMode
from aster.contract.identity import (ServiceContract, build_type_graph, canonical_xlang_bytes,
                                     compute_type_hash, contract_id_from_service, resolve_with_cycles)
from aster.contract.publication import build_collection
import example as ex
import richmod as rm
SHARED = os.environ.get("ASTER_SHARED_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../../../shared"))
sys.path.insert(0, os.path.join(SHARED, "interop"))
import taskmanager as tm

JSON = SerializationMode.JSON


@service(name="ExampleGraphs", serialization=[JSON])
class ExampleGraphs:
    @rpc
    async def tree(self, req: ex.TreeNode) -> ex.Book: ...
    @rpc
    async def cycle3(self, req: ex.Alpha) -> ex.A: ...
    @rpc(timeout=2.5, idempotent=True)
    async def forest(self, req: ex.Forest) -> ex.Forest: ...


@service(name="RichService", version=3, serialization=[JSON, SerializationMode.NATIVE], scoped="session")
class RichService:
    def __init__(self, peer=None): ...
    @rpc
    async def rich(self, req: rm.Rich) -> rm.Empty: ...
    @server_stream(timeout=10.0)
    async def xy(self, req: rm.X) -> AsyncIterator[rm.Y]:
        yield None
    @client_stream(idempotent=True)
    async def enum_in(self, reqs: AsyncIterator[rm.Color]) -> rm.Leaf: ...
    @bidi_stream
    async def prim(self, reqs: AsyncIterator[str]) -> AsyncIterator[int]:
        yield None
    @rpc
    async def prim2(self, req: float) -> bytes: ...
    @rpc(name="Renamed")
    async def prim3(self, req: bool) -> rm.Level: ...


def dump(svc, with_manifest=False):
    info = svc.__aster_service_info__
    roots = []
    for mi in info.methods.values():
        if mi.request_type is not None:
            roots.append(mi.request_type)
        if mi.response_type is not None:
            roots.append(mi.response_type)
    tdefs = resolve_with_cycles(build_type_graph(roots))
    types, hashes = [], {}
    for fqn, td in tdefs.items():
        b = canonical_xlang_bytes(td)
        h = compute_type_hash(b)
        hashes[fqn] = h
        types.append({"fqn": fqn, "package": td.package, "name": td.name, "hash": h.hex(), "bytes_hex": b.hex()})
    contract = ServiceContract.from_service_info(info, hashes)
    cb = canonical_xlang_bytes(contract)
    cid = blake3.blake3(cb).hexdigest()
    assert cid == contract_id_from_service(svc)
    manifest = None
    for name, data in build_collection(contract, tdefs, service_info=info):
        if name == "manifest.json":
            manifest = json.loads(data)
    return {"service": info.name, "hash_order": [t["fqn"] for t in types],
            "types": sorted(types, key=lambda t: t["fqn"]),
            "contract_hex": cb.hex(), "contract_id": cid, "manifest": manifest if with_manifest else None}


def main():
    out = {"generator": "aster-runtime/tests/data/contract_py012_gen/gen.py",
           "aster_rpc": version("aster-rpc"), "pyfory": version("pyfory"),
           "cases": [dump(ExampleGraphs), dump(RichService), dump(tm.TaskManager, True), dump(tm.TaskSession, True)]}
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


main()
