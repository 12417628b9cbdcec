#!/usr/bin/env bash
# make bench-loading: builds the candidate browser entries (build/variants/{eager,lazy,async}, the slim
# entry comes with each) and measures download size and first open() time (tests/e2e/bench-loading.mjs).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/relay.sh
for mode in eager lazy async; do
  PKG_OUT=build/variants/$mode SSE_CHANNEL_LOADING=$mode bash scripts/build-pkg.sh
done
ensure_relay_bin
start_relay --allow-origin '*' --channels-per-address 100000 --create-rate-per-sec 1000 --create-burst 1000
RELAY_URL="$RELAY_URL" node tests/e2e/bench-loading.mjs
