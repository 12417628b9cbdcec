#!/usr/bin/env bash
# Runs the relay memory / fan-out benchmark with enough file descriptors.
set -euo pipefail
cd "$(dirname "$0")/../../.."
want=$(( ${SUBSCRIBERS:-1000} * 4 + 256 ))
[ "$(ulimit -n)" -ge "$want" ] || ulimit -n "$want"
exec cargo bench -p sse-relay --bench rss
