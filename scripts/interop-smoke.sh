#!/usr/bin/env bash
# Smoke tests against the Python reference peer (aster-rpc 0.1.2): tests/interop_smoke.rs.
#
#   scripts/interop-smoke.sh [test binary args, e.g. a test name filter]
#
# 1. ../shared/interop/setup.sh   (idempotent; installs aster-rpc 0.1.2 from the package index
#                                  into ${ASTER_PY_VENV:-$HOME/.cache/aster-py-venv})
# 2. cargo test --test interop_smoke --no-run   (build only; finds the test binary)
# 3. runs the binary with --ignored --test-threads=1 inside a loopback-only network namespace
#    (unshare -n; needs root), so neither peer can reach anything but 127.0.0.1 (the Python
#    peer otherwise sends DNS queries for dns.iroh.link). Falls back to the normal loopback,
#    with a warning, when a namespace cannot be created or ASTER_NO_NETNS=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aster-target}"
INTEROP="$ROOT/../shared/interop"

echo "== Python reference peer: $INTEROP/setup.sh"
"$INTEROP/setup.sh"

echo "== build: cargo test --test interop_smoke --no-run"
MSGS="$(mktemp)"
trap 'rm -f "$MSGS"' EXIT
# json-render-diagnostics: compiler messages still go to stderr in human form.
cargo test --test interop_smoke --no-run --message-format=json-render-diagnostics > "$MSGS"
BIN="$(grep '"reason":"compiler-artifact"' "$MSGS" | grep '"name":"interop_smoke"' \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1 || true)"
rm -f "$MSGS"
trap - EXIT
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "could not find the interop_smoke test binary in cargo's output" >&2
  exit 1
fi
echo "test binary: $BIN"

ARGS=(--ignored --test-threads=1 "$@")
if [ "${ASTER_NO_NETNS:-0}" != 1 ] && unshare -n sh -c 'ip link set lo up' 2>/dev/null; then
  echo "== run in a loopback-only network namespace (unshare -n)"
  # "$0" inside sh -c is the binary, "$@" its arguments.
  exec unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' "$BIN" "${ARGS[@]}"
fi
echo "WARNING: cannot create a private network namespace (not root, no unshare/ip, or" \
  "ASTER_NO_NETNS=1); running on the normal loopback. The Python peer may send DNS queries." >&2
exec "$BIN" "${ARGS[@]}"
