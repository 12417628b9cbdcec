#!/usr/bin/env bash
# Runs the broker comparison benchmark (memory vs Redis, one and two nodes) with enough file
# descriptors. Needs redis-server (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/../../.."
want=$(( ${SUBSCRIBERS:-1000} * 4 + 256 ))
[ "$(ulimit -n)" -ge "$want" ] || ulimit -n "$want"
exec cargo bench -p sse-relay --bench nodes
