#!/usr/bin/env bash
# Interop tests against the Python reference peer (aster-rpc 0.1.2): tests/interop_smoke.rs and
# tests/interop_matrix.rs (the matrix of docs/interop.md).
#
#   scripts/interop-smoke.sh [test binary args, e.g. a test name filter]
#
# 1. ../shared/interop/setup.sh   (idempotent; installs aster-rpc 0.1.2 from the package index
#                                  into ${ASTER_PY_VENV:-$HOME/.cache/aster-py-venv}). When it
#                                  fails (e.g. the package index is unreachable) this script
#                                  fails: the interop tests never pass by being skipped.
# 2. cargo test --test interop_smoke --test interop_matrix --no-run   (build; finds both binaries)
# 3. runs each binary with --ignored --test-threads=1 inside a loopback-only network namespace
#    (unshare -n; needs root), so neither peer can reach anything but 127.0.0.1 (the Python
#    peer otherwise sends DNS queries for dns.iroh.link). Falls back to the normal loopback,
#    with a warning, when a namespace cannot be created or ASTER_NO_NETNS=1.
# Exit status: non-zero if setup, the build or any test binary failed (all binaries run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aster-target}"
INTEROP="$ROOT/../shared/interop"
TESTS=(interop_smoke interop_matrix)

echo "== Python reference peer: $INTEROP/setup.sh"
if [ ! -x "$INTEROP/setup.sh" ]; then
  echo "ERROR: $INTEROP/setup.sh not found: the interop tests need ../shared/interop/" >&2
  exit 1
fi
if ! "$INTEROP/setup.sh"; then
  echo "ERROR: installing the Python reference peer (aster-rpc 0.1.2) failed -- is the package" \
    "index reachable? The interop tests cannot run and count as FAILED." >&2
  exit 1
fi

echo "== build: cargo test ${TESTS[*]/#/--test } --no-run"
MSGS="$(mktemp)"
trap 'rm -f "$MSGS"' EXIT
# json-render-diagnostics: compiler messages still go to stderr in human form.
BUILD_ARGS=()
for t in "${TESTS[@]}"; do BUILD_ARGS+=(--test "$t"); done
cargo test "${BUILD_ARGS[@]}" --no-run --message-format=json-render-diagnostics > "$MSGS"
BINS=()
for t in "${TESTS[@]}"; do
  bin="$(grep '"reason":"compiler-artifact"' "$MSGS" | grep "\"name\":\"$t\"" \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1 || true)"
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "could not find the $t test binary in cargo's output" >&2
    exit 1
  fi
  echo "test binary: $bin"
  BINS+=("$bin")
done
rm -f "$MSGS"
trap - EXIT

ARGS=(--ignored --test-threads=1 "$@")
NETNS=0
if [ "${ASTER_NO_NETNS:-0}" != 1 ] && unshare -n sh -c 'ip link set lo up' 2>/dev/null; then
  NETNS=1
else
  echo "WARNING: cannot create a private network namespace (not root, no unshare/ip, or" \
    "ASTER_NO_NETNS=1); running on the normal loopback. The Python peer may send DNS queries." >&2
fi

FAILED=()
for bin in "${BINS[@]}"; do
  if [ "$NETNS" = 1 ]; then
    echo "== run $(basename "$bin") in a loopback-only network namespace (unshare -n)"
    # "$0" inside sh -c is the binary, "$@" its arguments.
    unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' "$bin" "${ARGS[@]}" || FAILED+=("$(basename "$bin")")
  else
    echo "== run $(basename "$bin") on the normal loopback"
    "$bin" "${ARGS[@]}" || FAILED+=("$(basename "$bin")")
  fi
done
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "interop tests FAILED: ${FAILED[*]}" >&2
  exit 1
fi
echo "== interop tests passed (${TESTS[*]})"
"$ROOT/scripts/interop-trust.sh" --skip-setup  # the trust-model interop tests (tests/interop_trust.rs)
