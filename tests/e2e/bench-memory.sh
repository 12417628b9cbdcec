#!/usr/bin/env bash
# make bench-memory: the JS heap over many channels in one page, SDK vs bare WebSocket + fetch
# (tests/e2e/bench-memory.mjs). BENCH_CHANNELS (default 2000) channels per loop; BENCH_SNAPSHOTS=a,b:
# heap snapshots after a and b channels instead, and the live objects that changed between them.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/relay.sh
[ -n "${BENCH_SKIP_BUILD:-}" ] && [ -f pkg/index.js ] || bash scripts/build-pkg.sh
ensure_relay_bin
start_relay --allow-origin '*' --channels-per-address 100000 --create-rate-per-sec 100000 --create-burst 100000 \
  --ended-retention-secs 0 --cleanup-interval-ms 1000
RELAY_URL="$RELAY_URL" node tests/e2e/bench-memory.mjs
