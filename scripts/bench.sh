#!/usr/bin/env bash
# The side-by-side bench (benches/side_by_side/): raw iroh, Aster, tonic gRPC and the Python
# reference server, every number measured in this run.
#
#   [ASTER_BENCH_ONLY=raw,tonic,python] [ASTER_BENCH_SCALE=0.1] scripts/bench.sh
#
# 1. when the `python` section is selected (ASTER_BENCH_ONLY unset or listing it):
#    ../shared/interop/setup.sh (idempotent; installs aster-rpc 0.1.2 into
#    ${ASTER_PY_VENV:-$HOME/.cache/aster-py-venv}). If that fails the run goes on and the
#    bench skips the section, saying so.
# 2. cargo bench --bench side_by_side --no-run   (release build; finds the executable)
# 3. runs it inside a loopback-only network namespace (unshare -n; needs root), so nothing it
#    starts can reach anything but 127.0.0.1 (the Python peer otherwise sends DNS queries for
#    dns.iroh.link). Falls back to the normal loopback, with a warning, when a namespace
#    cannot be created or ASTER_NO_NETNS=1.
# The environment (ASTER_BENCH_*, ASTER_PY_VENV, CARGO_TARGET_DIR) passes through.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aster-target}"
SETUP="$ROOT/../shared/interop/setup.sh"

if [[ ",${ASTER_BENCH_ONLY:-python}," == *",python,"* ]]; then
  echo "== Python reference peer: $SETUP"
  if [ ! -x "$SETUP" ]; then
    echo "WARNING: $SETUP not found; the python section will be skipped." >&2
  elif ! "$SETUP"; then
    echo "WARNING: installing the Python reference peer failed (package index unreachable?);" \
      "the python section will be skipped." >&2
  fi
fi

echo "== build: cargo bench --bench side_by_side --no-run"
# The executable is in cargo's JSON messages (compiler messages still go to stderr, rendered).
BIN="$(cargo bench --bench side_by_side --no-run --message-format=json-render-diagnostics \
  | grep '"name":"side_by_side"' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -n 1 || true)"
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "build failed, or no side_by_side executable in cargo's output" >&2
  exit 1
fi
echo "bench executable: $BIN"

if [ "${ASTER_NO_NETNS:-0}" != 1 ] && unshare -n sh -c 'ip link set lo up' 2>/dev/null; then
  echo "== run in a loopback-only network namespace (unshare -n)"
  # "$0" inside sh -c is the executable.
  exec unshare -n sh -c 'ip link set lo up && exec "$0"' "$BIN"
fi
echo "WARNING: cannot create a private network namespace (not root, no unshare/ip, or" \
  "ASTER_NO_NETNS=1); running on the normal loopback. The Python peer may send DNS queries." >&2
echo "== run on the normal loopback"
exec "$BIN"
