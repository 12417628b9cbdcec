#!/usr/bin/env bash
# Node tests (node --test) of the cloud-function writer and installUniCloud, against a real sse-relay
# on 127.0.0.1 (port 0), loading the package's Node build.
#   scripts/test-node.sh          run the tests (tests/node/*.test.mjs)
#   scripts/test-node.sh bench    print the writer benchmark (tests/node/bench-writer.mjs; release relay)
#   SSE_CHANNEL_NODE_MODULE  use this built module instead of building pkg/ (scripts/build-pkg.sh)
#   SSE_RELAY_BIN            use this relay binary (default: <target dir>/debug/sse-relay, built here)
#   CARGO_TARGET_DIR         cargo's target dir (default target/)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/relay.sh

log() { printf '[test-node] %s\n' "$*" >&2; }

if [ -z "${SSE_CHANNEL_NODE_MODULE:-}" ]; then
  log "building the npm package (scripts/build-pkg.sh)"
  bash scripts/build-pkg.sh
  SSE_CHANNEL_NODE_MODULE="$(pwd)/${PKG_OUT:-pkg}/node.cjs"
fi
[ -f "$SSE_CHANNEL_NODE_MODULE" ] || { log "missing $SSE_CHANNEL_NODE_MODULE"; exit 1; }

mode=${1:-test}
if [ "$mode" = bench ]; then ensure_relay_bin release; else ensure_relay_bin; fi

# A known secret lets a test mint its own tokens (as integrators may, see docs/protocol.md); no sweeping
# keeps an expired channel answering CHANNEL_EXPIRED (410) instead of CHANNEL_NOT_FOUND once swept.
SSE_RELAY_SECRET="node-tests-$(od -An -tx1 -N24 /dev/urandom | tr -d " \n")"
start_relay --allow-origin '*' --secret "$SSE_RELAY_SECRET" --cleanup-interval-ms 3600000
log "relay at $RELAY_URL; module $SSE_CHANNEL_NODE_MODULE"

# The tests build their own allow-lists; an inherited one must not leak in.
unset SSE_CHANNEL_ALLOWED_RELAYS
export SSE_RELAY_URL="$RELAY_URL" SSE_RELAY_SECRET SSE_CHANNEL_NODE_MODULE
if [ "$mode" = bench ]; then
  node tests/node/bench-writer.mjs
  exit 0
fi
node --test --test-concurrency=1 --test-timeout=120000 tests/node/*.test.mjs
