#!/usr/bin/env bash
# The side-by-side bench (benches/side_by_side/): raw iroh, Aster, tonic gRPC and the Python
# reference server, every number measured in this run.
#
#   [ASTER_BENCH_ONLY=raw,tonic,python] [ASTER_BENCH_SCALE=0.1] scripts/bench.sh
#
# 1. when the `python` section is selected (ASTER_BENCH_ONLY unset or listing it; spaces
#    around the names are ignored, as the bench ignores them):
#    ../shared/interop/setup.sh (idempotent; installs aster-rpc 0.1.2 into
#    ${ASTER_PY_VENV:-$HOME/.cache/aster-py-venv}). If that fails the run goes on and the
#    bench skips the section, saying so.
# 2. cargo bench --bench side_by_side --no-run   (release build; finds the executable; a
#    failed build ends the script with cargo's exit status)
# 3. runs it inside a loopback-only network namespace (unshare -n; needs root), so nothing it
#    starts can reach anything but 127.0.0.1 (the Python peer otherwise sends DNS queries for
#    dns.iroh.link), and, where unshare supports it, in its own PID namespace
#    (--fork --pid --kill-child), so that a killed bench (or script) takes its children
#    (server.py, the memory server) with it. Falls back to the network namespace alone, then to
#    the normal loopback with a warning, when a namespace cannot be created or ASTER_NO_NETNS=1.
# The environment (ASTER_BENCH_*, ASTER_PY_VENV, CARGO_TARGET_DIR) passes through.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aster-target}"
SETUP="$ROOT/../shared/interop/setup.sh"

ONLY="${ASTER_BENCH_ONLY:-python}"
if [[ ",${ONLY//[[:space:]]/}," == *",python,"* ]]; then
  echo "== Python reference peer: $SETUP"
  if [ ! -x "$SETUP" ]; then
    echo "WARNING: $SETUP not found; the python section will be skipped." >&2
  elif ! "$SETUP"; then
    echo "WARNING: installing the Python reference peer failed (package index unreachable?);" \
      "the python section will be skipped." >&2
  fi
fi

echo "== build: cargo bench --bench side_by_side --no-run"
MSGS="$(mktemp)"
trap 'rm -f "$MSGS"' EXIT
# The executable is in cargo's JSON messages, kept in a file so cargo's exit status counts
# (compiler messages still go to stderr, rendered).
cargo bench --bench side_by_side --no-run --message-format=json-render-diagnostics > "$MSGS" || {
  status=$?
  echo "build failed (cargo exit status $status)" >&2
  exit "$status"
}
BIN="$(grep '"reason":"compiler-artifact"' "$MSGS" | grep '"name":"side_by_side"' \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1 || true)"
rm -f "$MSGS"
trap - EXIT
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "no side_by_side executable in cargo's output" >&2
  exit 1
fi
echo "bench executable: $BIN"

if [ "${ASTER_NO_NETNS:-0}" != 1 ] && unshare -n sh -c 'ip link set lo up' 2>/dev/null; then
  if unshare -n --fork --pid --kill-child true 2>/dev/null; then
    echo "== run in a loopback-only network namespace and a PID namespace (unshare -n --pid)"
    # sh is the namespace's init and the bench its child ("$0" inside sh -c; not exec'd, so
    # the bench keeps its normal signal handling). When the bench ends, however it ends, sh
    # exits with its status and the kernel kills whatever is left in the namespace. unshare
    # blocks INT and TERM while its child runs, so it runs in the background and this shell
    # answers them by killing it: --kill-child then SIGKILLs sh, which empties the namespace.
    unshare -n --fork --pid --kill-child sh -c 'ip link set lo up && "$0"; exit $?' "$BIN" &
    RUN_PID=$!
    stop_bench() {
      kill -KILL "$RUN_PID" 2>/dev/null || true
      wait "$RUN_PID" 2>/dev/null || true
      exit "$1"
    }
    trap 'stop_bench 130' INT
    trap 'stop_bench 143' TERM
    trap 'stop_bench 129' HUP
    wait "$RUN_PID" # under set -e, a failed bench ends the script with its status
    exit 0
  fi
  echo "== run in a loopback-only network namespace (unshare -n; no PID namespace)"
  # "$0" inside sh -c is the executable.
  exec unshare -n sh -c 'ip link set lo up && exec "$0"' "$BIN"
fi
echo "WARNING: cannot create a private network namespace (not root, no unshare/ip, or" \
  "ASTER_NO_NETNS=1); running on the normal loopback. The Python peer may send DNS queries." >&2
echo "== run on the normal loopback"
exec "$BIN"
