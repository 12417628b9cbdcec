#!/usr/bin/env bash
# make test-e2e: the packed npm package in fresh projects against a real relay (see e2e.test.mjs).
#   E2E_ONLY=plain,vite,webpack,uniapp,flow,lifecycle,nodes   limit the projects      E2E_MESSAGES=N   messages per run (40)
# npm installs are cached in tests/out/npm-cache, keyed by each project's package.json; a fresh
# machine installs from the registry. Logs and screenshots: tests/out/e2e/.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/relay.sh

out=tests/out/e2e
mkdir -p "$out" tests/out/pack
: >"$out/e2e.log"

[ -n "${E2E_SKIP_BUILD:-}" ] && [ -f pkg/index.js ] || bash scripts/build-pkg.sh
rm -f tests/out/pack/open-sse-channel-*.tgz
(cd pkg && npm pack --silent --pack-destination ../tests/out/pack >/dev/null)
tarball=$(ls "$PWD"/tests/out/pack/open-sse-channel-*.tgz)
echo "[e2e] tarball: $tarball ($(wc -c <"$tarball") bytes)"

ensure_relay_bin
start_relay --allow-origin '*' --test-hooks
HOOKS_RELAY_URL="$RELAY_URL"
start_relay --allow-origin '*'
echo "[e2e] relay: $RELAY_URL (with --test-hooks, for lifecycle.test.mjs: $HOOKS_RELAY_URL)"

SSE_CHANNEL_TARBALL="$tarball" RELAY_URL="$RELAY_URL" HOOKS_RELAY_URL="$HOOKS_RELAY_URL" \
  node --test --test-concurrency=1 --test-reporter=spec tests/e2e/inflate.test.mjs tests/e2e/e2e.test.mjs tests/e2e/flow.test.mjs tests/e2e/lifecycle.test.mjs tests/e2e/nodes.test.mjs
