#!/usr/bin/env bash
# Runs the relay soak test (benches/soak.rs) with enough file descriptors. Loopback only, bounded:
# SOAK_SECS (default 600). Loads the machine: run it alone.
set -euo pipefail
cd "$(dirname "$0")/../../.."
want=$(( ${SOAK_SUBSCRIBERS:-10000} * 3 + 20000 ))
[ "$(ulimit -n)" -ge "$want" ] || ulimit -n "$want"
exec cargo bench -p sse-relay --bench soak
