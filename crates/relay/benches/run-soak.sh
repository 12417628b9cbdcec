#!/usr/bin/env bash
# Runs the relay soak test (benches/soak.rs) with enough file descriptors. Loopback only, bounded:
# SOAK_SECS (default 600). Loads the machine: run it alone.
set -euo pipefail
cd "$(dirname "$0")/../../.."
# Each side (relay, clients) needs a descriptor per subscriber plus the churn; the hard limit caps it.
want=$(( ${SOAK_SUBSCRIBERS:-10000} + 5000 ))
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$want" -le "$hard" ] || want=$hard
[ "$(ulimit -n)" -ge "$want" ] || ulimit -n "$want"
exec cargo bench -p sse-relay --bench soak
