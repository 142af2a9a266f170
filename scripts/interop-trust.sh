#!/usr/bin/env bash
# Trust-model interop tests against the Python reference (aster-rpc / aster-cli 0.1.2):
# tests/interop_trust.rs (CLI files both ways, trust_demo.py against a trusted Rust node, a Rust
# consumer against `server.py --trust`). Also run at the end of scripts/interop-smoke.sh.
#
#   scripts/interop-trust.sh [--skip-setup] [test binary args, e.g. a test name filter]
#
# 1. ../shared/interop/setup.sh (idempotent; skipped with --skip-setup). A failing setup fails
#    this script: the tests never pass by being skipped.
# 2. cargo test --test interop_trust --no-run (build; finds the binary)
# 3. runs it with --ignored --test-threads=1 inside a loopback-only network namespace (unshare -n;
#    needs root); falls back to the normal loopback, with a warning, when that is not possible
#    or ASTER_NO_NETNS=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aster-target}"
INTEROP="$ROOT/../shared/interop"

if [ "${1:-}" = "--skip-setup" ]; then
  shift
else
  echo "== Python reference peer: $INTEROP/setup.sh"
  if [ ! -x "$INTEROP/setup.sh" ] || ! "$INTEROP/setup.sh"; then
    echo "ERROR: installing the Python reference peer (aster-rpc 0.1.2) failed; the trust" \
      "interop tests cannot run and count as FAILED." >&2
    exit 1
  fi
fi

echo "== build: cargo test --test interop_trust --no-run"
MSGS="$(mktemp)"
trap 'rm -f "$MSGS"' EXIT
cargo test --test interop_trust --no-run --message-format=json-render-diagnostics > "$MSGS"
BIN="$(grep '"reason":"compiler-artifact"' "$MSGS" | grep '"name":"interop_trust"' \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1 || true)"
rm -f "$MSGS"
trap - EXIT
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "could not find the interop_trust test binary in cargo's output" >&2
  exit 1
fi
echo "test binary: $BIN"

ARGS=(--ignored --test-threads=1 "$@")
if [ "${ASTER_NO_NETNS:-0}" != 1 ] && unshare -n sh -c 'ip link set lo up' 2>/dev/null; then
  echo "== run interop_trust in a loopback-only network namespace (unshare -n)"
  exec unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' "$BIN" "${ARGS[@]}"
fi
echo "WARNING: cannot create a private network namespace (not root, no unshare/ip, or" \
  "ASTER_NO_NETNS=1); running on the normal loopback. The Python peer may send DNS queries." >&2
exec "$BIN" "${ARGS[@]}"
