#!/usr/bin/env python3
"""Interop probe: the `InteropProbe` / `InteropSession` services on the Python reference
(aster-rpc 0.1.2), as a client driver and as a server.

Used by tests/interop_matrix.rs (run by scripts/interop-smoke.sh inside a loopback-only network
namespace). The Rust side declares the same services and types in tests/interop/probe.rs
(`#[aster(tag = "interop/...")]`), so the contract ids agree.

usage:
  py_probe.py contracts
      prints `CONTRACT <service> <contract_id hex>` for both services
  py_probe.py client --address ADDR [--json] [--expect-impl rs|py] [--cases LIST]
      calls a server of the probe services through AsterClient (admission, then
      channels.rpc); XLANG through the typed stubs (default) or JSON (`--json`, dicts on
      IrohTransport + JsonProxyCodec, proxy sessions). Prints one `OK <case> ...` or
      `FAIL <case>: ...` line per case, `WIRE ...` lines with the frame flags it saw, and
      `RESULT passed=<n> failed=<m>`; exit status 0 only when every case passed.
  py_probe.py serve --info FILE
      serves the probe services from Python (open gate, loopback), writes FILE (endpoint_id,
      rpc_addr, ticket, contract ids) atomically and prints an ASTER_READY line; runs until
      SIGTERM/SIGINT.

Cases of `client` (default: all):
  meta             echo_meta with two metadata entries (one non-ASCII) and a timeout: the
                   server answers the metadata and deadline it saw; then without either
  deadline         slow (never answers) with timeout=0.5: DEADLINE_EXCEEDED (code only)
  deadline_expired slow with a deadlineEpochMs 60 s in the past: DEADLINE_EXCEEDED on receipt
  fail             fail(code, message): the error trailer carries that code and message
  big              6000-char request, 10000-char response: COMPRESSED frames both ways in
                   XLANG, never in JSON (checked on the wire through asterpeer's wiretap); then
                   a 200 000-char random request and a 300 000-char response
  errors           unknown method (12) and unknown service (5), with their messages
  session          InteropSession: state across calls, an error that keeps the session, an
                   endless server stream CANCELled mid-stream (CANCELLED trailer), state kept
                   after it, close (and whether the server then ends its side)

The server implementations: `echo_meta` answers `<impl>:<text>` plus the metadata keys/values
and deadline (ms since the epoch, 0 = none) it saw; `slow` waits (the deadline ends it); `fail`
raises the requested status; `big` answers `"y" * n` with n = len(request text); session `add`
adds n (negative n: INVALID_ARGUMENT "negative n: <n>", state unchanged) and answers the total;
session `ticks` streams `Text(text, total + i)` for i = 1, 2, … until cancelled.
"""
# NOTE: deliberately NO `from __future__ import annotations`: aster 0.1.2 hashes unresolved
# (string) return annotations as zeros, which would change the contract ids.

import argparse
import asyncio
import contextvars
import json
import logging
import os
import random
import signal
import string
import sys
import tempfile
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from typing import AsyncIterator, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP_DIR = os.environ.get("ASTER_INTEROP_DIR") or os.path.normpath(
    os.path.join(HERE, "..", "..", "..", "shared", "interop"))
sys.path.insert(0, INTEROP_DIR)
sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

import asterpeer  # noqa: E402  (patches must precede AsterServer/AsterClient use)
from aster import AsterClient, AsterServer, RpcError, rpc, server_stream, service  # noqa: E402
from aster.codec import wire_type  # noqa: E402
from aster.contract.identity import contract_id_from_service  # noqa: E402
from aster.framing import CALL, CANCEL, COMPRESSED, TRAILER, read_frame, write_frame  # noqa: E402
from aster.interceptors.base import Interceptor  # noqa: E402
from aster.interceptors.deadline import DeadlineInterceptor  # noqa: E402
from aster.protocol import CallHeader, RpcStatus  # noqa: E402
from aster.status import StatusCode  # noqa: E402


# ── message types (Rust: tests/interop/probe.rs, same tags, fields and order) ──

@wire_type("interop/Text")
@dataclass
class Text:
    text: str = ""
    n: int = 0


@wire_type("interop/MetaEcho")
@dataclass
class MetaEcho:
    text: str = ""
    keys: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    deadline_ms: int = 0


@wire_type("interop/FailRequest")
@dataclass
class FailRequest:
    code: int = 0
    message: str = ""


# The CallContext of the call being served (set by CaptureContext): 0.1.2 handlers get only
# the request, interceptors see the context.
_CALL_CTX: contextvars.ContextVar = contextvars.ContextVar("interop_call_ctx", default=None)


class CaptureContext(Interceptor):
    async def on_request(self, ctx, request):
        _CALL_CTX.set(ctx)
        return request


def _deadline_ms(ctx) -> int:
    if ctx is None or ctx.deadline is None:
        return 0
    return int(round(ctx.deadline * 1000))


@service(name="InteropProbe", version=1, public=True)
class InteropProbe:
    """Shared-scope probe: metadata echo, deadline, error, big payloads."""

    @rpc
    async def echo_meta(self, req: Text) -> MetaEcho:
        ctx = _CALL_CTX.get()
        md = dict(ctx.metadata) if ctx is not None else {}
        return MetaEcho(text=f"py:{req.text}", keys=list(md.keys()), values=list(md.values()),
                        deadline_ms=_deadline_ms(ctx))

    @rpc
    async def slow(self, req: Text) -> Text:
        await asyncio.sleep(600)   # the call's deadline ends it
        return Text(text=req.text, n=req.n)

    @rpc
    async def fail(self, req: FailRequest) -> Text:
        raise RpcError(StatusCode(req.code), req.message)

    @rpc
    async def big(self, req: Text) -> Text:
        return Text(text="y" * max(req.n, 0), n=len(req.text))


@service(name="InteropSession", version=1, scoped="session", public=True)
class InteropSession:
    """Session-scoped probe: a running total per session."""

    def __init__(self, peer: Optional[str] = None) -> None:
        self.peer = peer
        self.total = 0

    @rpc
    async def add(self, req: Text) -> Text:
        if req.n < 0:
            raise RpcError(StatusCode.INVALID_ARGUMENT, f"negative n: {req.n}")
        self.total += req.n
        return Text(text=f"py:{req.text}", n=self.total)

    @server_stream
    async def ticks(self, req: Text) -> AsyncIterator[Text]:
        i = 0
        while True:
            i += 1
            yield Text(text=req.text, n=self.total + i)
            await asyncio.sleep(0.005)


SERVICES = (InteropProbe, InteropSession)


# ── client driver ────────────────────────────────────────────────────────────

class CheckFailed(Exception):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


def fld(obj, name):
    """A field of a dataclass (XLANG) or a dict (JSON)."""
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def now_ms() -> int:
    return int(time.time() * 1000)


class TypedCalls:
    """XLANG through the generated stubs."""

    mode = "xlang"

    def __init__(self, client: AsterClient):
        self.client = client
        self.svc = None

    async def setup(self):
        self.svc = await self.client.client(InteropProbe)

    async def unary(self, method, req: dict, metadata=None, timeout=None):
        typ = FailRequest if method == "fail" else Text
        kw = {}
        if metadata is not None:
            kw["metadata"] = metadata
        if timeout is not None:
            kw["timeout"] = timeout
        return await getattr(self.svc, method)(typ(**req), **kw)

    async def raw_unary(self, service_name, method, req: dict, deadline_epoch_ms=0):
        return await self.svc._transport.unary(service=service_name, method=method, request=Text(**req),
                                               deadline_epoch_ms=deadline_epoch_ms)

    async def open_session(self):
        return TypedSession(await self.client.client(InteropSession))


class JsonCalls:
    """JSON mode (serializationMode 3): dicts on IrohTransport with the JSON codec."""

    mode = "json"

    def __init__(self, client: AsterClient):
        self.client = client
        self.t = None
        self.conn = None

    async def setup(self):
        from aster.json_codec import JsonProxyCodec
        from aster.transport.iroh import IrohTransport
        summary = next(s for s in self.client.services if s.name == "InteropProbe")
        self.conn = await self.client._rpc_conn_for(summary.channels["rpc"])
        self.t = IrohTransport(self.conn, codec=JsonProxyCodec())

    async def unary(self, method, req: dict, metadata=None, timeout=None):
        deadline = int((time.time() + timeout) * 1000) if timeout else 0
        return await self.t.unary("InteropProbe", method, req, metadata=metadata, deadline_epoch_ms=deadline)

    async def raw_unary(self, service_name, method, req: dict, deadline_epoch_ms=0):
        return await self.t.unary(service_name, method, req, deadline_epoch_ms=deadline_epoch_ms)

    async def open_session(self):
        return JsonSession(await self.client.session("InteropSession"))


class TypedSession:
    def __init__(self, stub):
        self.s = stub

    async def add(self, text, n):
        return await self.s.add(Text(text=text, n=n))

    def frames(self):
        return self.s._send, self.s._recv, self.s._codec

    def request(self, req: dict):
        return Text(**req)

    async def close(self):
        await self.s.close()


class JsonSession:
    def __init__(self, proxy):
        self.s = proxy

    async def add(self, text, n):
        return await self.s.call("add", {"text": text, "n": n})

    def frames(self):
        return self.s._send, self.s._recv, self.s._codec

    def request(self, req: dict):
        return req

    async def close(self):
        await self.s.close()


async def stream_then_cancel(sess, method: str, req: dict, items: int):
    """Starts a session server-stream call at the frame level (the 0.1.2 session stubs
    collect whole streams), reads `items` responses, sends CANCEL and discards frames up to
    the trailer. Returns (responses, trailer status, discarded frame count)."""
    send, recv, codec = sess.frames()
    hdr = CallHeader(method=method, callId=str(uuid.uuid4()), deadlineEpochMs=0,
                     metadataKeys=[], metadataValues=[])
    await write_frame(send, codec.encode(hdr), flags=CALL)
    payload, compressed = codec.encode_compressed(sess.request(req))
    await write_frame(send, payload, flags=COMPRESSED if compressed else 0)
    got = []
    while len(got) < items:
        frame = await read_frame(recv)
        check(frame is not None, "session stream ended during the server stream")
        payload, flags = frame
        if flags & TRAILER:
            st = codec.decode(payload, RpcStatus)
            raise CheckFailed(f"server stream ended early: code={st.code} {st.message!r}")
        got.append(codec.decode_compressed(payload, bool(flags & COMPRESSED), Text))
    await write_frame(send, b"", flags=CANCEL)
    discarded = 0
    while True:
        frame = await read_frame(recv)
        check(frame is not None, "session stream ended before the CANCELLED trailer")
        payload, flags = frame
        if flags & TRAILER:
            return got, codec.decode(payload, RpcStatus), discarded
        discarded += 1


async def expect_error(coro, what: str) -> RpcError:
    try:
        r = await coro
    except RpcError as e:
        return e
    raise CheckFailed(f"{what}: expected an error, got {r!r}")


class Driver:
    def __init__(self, calls, tap, impl: str):
        self.calls, self.tap, self.impl = calls, tap, impl

    def last_rpc_stream(self):
        logs = [log for log in self.tap.logs if log.alpn == b"aster/1"]
        check(bool(logs), "wiretap saw no aster/1 stream")
        return logs[-1]

    async def case_meta(self):
        meta = {"x-trace-id": "abc123", "x-interop": "ünïcødé ✓"}
        r = await self.calls.unary("echo_meta", {"text": "m", "n": 1}, metadata=meta, timeout=30.0)
        check(fld(r, "text") == f"{self.impl}:m", f"text {fld(r, 'text')!r}")
        check(list(fld(r, "keys")) == list(meta.keys()), f"keys {fld(r, 'keys')!r}")
        check(list(fld(r, "values")) == list(meta.values()), f"values {fld(r, 'values')!r}")
        check(fld(r, "deadline_ms") > 0, "the server saw no deadline")
        r2 = await self.calls.unary("echo_meta", {"text": "plain", "n": 0})
        check(fld(r2, "keys") == [] and fld(r2, "values") == [], f"no metadata expected: {r2!r}")
        check(fld(r2, "deadline_ms") == 0, f"no deadline expected: {r2!r}")
        return (f"keys={json.dumps(fld(r, 'keys'), ensure_ascii=False)} "
                f"values={json.dumps(fld(r, 'values'), ensure_ascii=False)} deadline_seen=true")

    async def case_deadline(self):
        e = await expect_error(self.calls.unary("slow", {"text": "zz", "n": 0}, timeout=0.5), "slow")
        check(int(e.code) == 4, f"code {int(e.code)} {e.message!r}")
        return f"code={int(e.code)}"

    async def case_deadline_expired(self):
        e = await expect_error(self.calls.raw_unary("InteropProbe", "slow", {"text": "late", "n": 0},
                                                    deadline_epoch_ms=now_ms() - 60_000), "slow")
        check(int(e.code) == 4, f"code {int(e.code)} {e.message!r}")
        return f"code={int(e.code)} message={json.dumps(e.message, ensure_ascii=False)}"

    async def case_fail(self):
        out = []
        for code, msg in ((9, "precondition failed: ünïcødé ✓ \"quoted\""), (16, "")):
            e = await expect_error(self.calls.unary("fail", {"code": code, "message": msg}), "fail")
            check(int(e.code) == code and e.message == msg, f"got code={int(e.code)} {e.message!r}")
            out.append(f"{code}={json.dumps(e.message, ensure_ascii=False)}")
        return " ".join(out)

    async def case_big(self):
        r = await self.calls.unary("big", {"text": "x" * 6000, "n": 10000})
        check(fld(r, "text") == "y" * 10000 and fld(r, "n") == 6000,
              f"big answer: {len(fld(r, 'text'))} chars, n={fld(r, 'n')}")
        log = self.last_rpc_stream()
        c2s = asterpeer.parse_frames(log.c2s)
        s2c = asterpeer.parse_frames(log.s2c)
        check(len(c2s) >= 2 and len(s2c) >= 2, f"frames c2s={len(c2s)} s2c={len(s2c)}")
        req_flags, resp_flags = c2s[1][2], s2c[0][2]
        print(f"WIRE big mode={self.calls.mode} request_flags=0x{req_flags:02x} "
              f"request_len={c2s[1][1]} response_flags=0x{resp_flags:02x} response_len={s2c[0][1]}")
        want = COMPRESSED if self.calls.mode == "xlang" else 0
        check(req_flags == want, f"request flags 0x{req_flags:02x}, want 0x{want:02x}")
        check(resp_flags == want, f"response flags 0x{resp_flags:02x}, want 0x{want:02x}")
        # a large, poorly compressible request (frames spanning many QUIC reads)
        noisy = "".join(random.Random(7).choices(string.ascii_letters, k=200_000))
        r = await self.calls.unary("big", {"text": noisy, "n": 300_000})
        check(fld(r, "text") == "y" * 300_000 and fld(r, "n") == 200_000,
              f"large answer: {len(fld(r, 'text'))} chars, n={fld(r, 'n')}")
        return (f"request_compressed={bool(req_flags & COMPRESSED)} "
                f"response_compressed={bool(resp_flags & COMPRESSED)} large=ok")

    async def case_errors(self):
        e1 = await expect_error(self.calls.raw_unary("InteropProbe", "no_such_method", {"text": "x", "n": 0}),
                                "unknown method")
        check(int(e1.code) == 12, f"unknown method: code {int(e1.code)} {e1.message!r}")
        e2 = await expect_error(self.calls.raw_unary("NoSuchService", "x", {"text": "x", "n": 0}),
                                "unknown service")
        check(int(e2.code) == 5, f"unknown service: code {int(e2.code)} {e2.message!r}")
        return (f"unknown_method={int(e1.code)} {json.dumps(e1.message)} "
                f"unknown_service={int(e2.code)} {json.dumps(e2.message)}")

    async def case_session(self):
        sess = await self.calls.open_session()
        r = await sess.add("a", 5)
        check(fld(r, "n") == 5 and fld(r, "text") == f"{self.impl}:a", f"add 5: {r!r}")
        r = await sess.add("b", 7)
        check(fld(r, "n") == 12, f"add 7: {r!r}")
        e = await expect_error(sess.add("neg", -1), "add -1")
        check(int(e.code) == 3 and e.message == "negative n: -1", f"add -1: {int(e.code)} {e.message!r}")
        r = await sess.add("c", 0)
        check(fld(r, "n") == 12, f"state after an error: {r!r}")
        got, st, discarded = await stream_then_cancel(sess, "ticks", {"text": "tick", "n": 0}, 3)
        check([fld(g, "n") for g in got] == [13, 14, 15], f"ticks {got!r}")
        check(int(st.code) == 1, f"trailer after CANCEL: code={st.code} {st.message!r}")
        r = await sess.add("after", 1)
        check(fld(r, "n") == 13, f"state after CANCEL: {r!r}")
        await sess.close()
        _, recv, _ = sess.frames()
        try:
            end = await asyncio.wait_for(read_frame(recv), 10)
            server_fin = end is None
        except asyncio.TimeoutError:
            server_fin = False
        return (f"totals=5,12,12 error=3 ticks=13,14,15 cancel_trailer={int(st.code)} "
                f"{json.dumps(st.message)} discarded={discarded} after_cancel=13 server_fin={server_fin}")


ALL_CASES = ["meta", "deadline", "deadline_expired", "fail", "big", "errors", "session"]


async def run_client(args) -> int:
    asterpeer.patch_offline_runtime()
    tap = asterpeer.Wiretap(tempfile.mkdtemp(prefix="py-probe-tap-"))
    tap.install_client()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()] if args.cases else ALL_CASES
    bad = [c for c in cases if c not in ALL_CASES]
    if bad:
        sys.exit(f"unknown case(s) {bad}; choose from {ALL_CASES}")

    client = AsterClient(address=args.address, config=asterpeer.offline_aster_config())
    try:
        await asyncio.wait_for(client.connect(), args.connect_timeout)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL connect: {type(e).__name__}: {e}")
        print("RESULT passed=0 failed=1", flush=True)
        return 1
    for s in client.services:
        print(f"ADMITTED {s.name} v{s.version} {s.contract_id} {s.pattern} modes={list(s.serialization_modes)}")
    calls = JsonCalls(client) if args.json else TypedCalls(client)
    await calls.setup()
    driver = Driver(calls, tap, args.expect_impl)

    passed = failed = 0
    for name in cases:
        try:
            detail = await asyncio.wait_for(getattr(driver, f"case_{name}")(), 60)
            print(f"OK {name} {detail}", flush=True)
            passed += 1
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc()
    try:
        await client.close()
    except Exception:  # noqa: BLE001
        pass
    print(f"RESULT passed={passed} failed={failed}", flush=True)
    return 0 if failed == 0 else 1


# ── server ───────────────────────────────────────────────────────────────────

async def run_server(args) -> int:
    asterpeer.patch_offline_runtime()
    info_path = os.path.abspath(args.info)
    warnings.simplefilter("ignore", UserWarning)   # "no authorization configured"
    srv = AsterServer(
        services=[InteropProbe(), InteropSession],   # session service: the class
        config=asterpeer.offline_aster_config(bind="127.0.0.1:0"),
        allow_all_consumers=True,
        allow_all_producers=True,
        interceptors=[DeadlineInterceptor(), CaptureContext()],
    )
    await srv.start()
    ai = srv.node.node_addr_info()
    direct = list(ai.direct_addresses or [])
    v4 = [a for a in direct if a.startswith("127.")]
    info = {
        "endpoint_id": srv.endpoint_id,
        "direct_addresses": direct,
        "rpc_addr": v4[0] if v4 else None,
        "ticket": srv.address,
        "services": [{"name": s.name, "version": s.version, "contract_id": s.contract_id,
                      "scoped": s.pattern} for s in srv.services],
        "contracts": {cls.__name__: contract_id_from_service(cls) for cls in SERVICES},
        "pid": os.getpid(),
    }
    tmp = info_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f, indent=2)
    os.replace(tmp, info_path)
    print(f"ASTER_READY endpoint_id={info['endpoint_id']} addr={info['rpc_addr']} info={info_path}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serve_task = srv.serve()
    await stop.wait()
    serve_task.cancel()
    await srv.close()
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("contracts")
    c = sub.add_parser("client")
    c.add_argument("--address", required=True, help="aster1 ticket, base64 NodeAddr or 64-hex EndpointId")
    c.add_argument("--json", action="store_true")
    c.add_argument("--expect-impl", default="rs", choices=["rs", "py"])
    c.add_argument("--cases", default=None)
    c.add_argument("--connect-timeout", type=float, default=30.0)
    s = sub.add_parser("serve")
    s.add_argument("--info", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    if args.cmd == "contracts":
        for cls in SERVICES:
            print(f"CONTRACT {cls.__name__} {contract_id_from_service(cls)}")
        rc = 0
    elif args.cmd == "client":
        rc = asyncio.run(run_client(args))
    else:
        rc = asyncio.run(run_server(args))
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: skip interpreter finalization, which can race with the native module's
    # runtime threads (as client.py does).
    os._exit(rc)


if __name__ == "__main__":
    main()
