#!/usr/bin/env bash
# `make demo`: build what is missing, start sse-relay and the demo's function runner, print the URL.
# Ctrl-C stops both. DEVELOPMENT ONLY: the relay runs with a fixed secret and --test-hooks.
#
# Environment:
#   DEMO_PORT        port of the demo page on 127.0.0.1 (default 8080; 0 = any free port)
#   DEMO_RELAY_PORT  port of the relay on 127.0.0.1 (default 0 = any free port)
#   DEMO_SKIP_SETUP  1 = don't run scripts/setup.sh (make demo runs it first)
#   SSE_RELAY_BIN    use this relay binary instead of building <cargo target dir>/debug/sse-relay
#   CARGO_TARGET_DIR cargo's target directory (default target/, or .cargo/config.toml's)
#   SSE_CHANNEL_PKG  use this built package directory instead of pkg/ (then nothing is built)
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/cargo.sh
log() { printf '[demo] %s\n' "$*" >&2; }

if [ "${NODE_ENV:-}" = production ]; then
  log "refusing to start: NODE_ENV=production. The demo (fixed secret, --test-hooks, a function runner"
  log "without authentication) is for local development only."
  exit 1
fi

DEMO_PORT=${DEMO_PORT:-8080}
DEMO_RELAY_PORT=${DEMO_RELAY_PORT:-0}
# A fixed secret is fine for a local demo; a real relay gets its own random secret.
DEMO_SECRET=${DEMO_SECRET:-sse-channel-demo-secret-for-local-development-only}

[ "${DEMO_SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh

# ---- build what is missing -----------------------------------------------------------------------
if [ -n "${SSE_RELAY_BIN:-}" ]; then
  relay_bin=$SSE_RELAY_BIN
else
  relay_bin=$(cargo_target_dir)/debug/sse-relay
  log "building sse-relay (cargo build -p sse-relay --features test-hooks; quick when up to date)"
  cargo build -q -p sse-relay --features test-hooks
fi
[ -x "$relay_bin" ] || { log "no relay binary at $relay_bin"; exit 1; }

if [ -z "${SSE_CHANNEL_PKG:-}" ]; then
  stale=
  if [ ! -f pkg/package.json ]; then
    stale="pkg/ is missing"
  elif [ -n "$(find src crates/protocol/src pkg-template Cargo.toml -newer pkg/package.json -type f -print -quit 2>/dev/null)" ]; then
    stale="sources changed since pkg/ was built"
  fi
  if [ -n "$stale" ]; then
    if [ ! -f scripts/build-pkg.sh ]; then
      log "$stale and scripts/build-pkg.sh does not exist yet: cannot build the npm package"
      exit 1
    fi
    log "$stale: building the npm package (scripts/build-pkg.sh)"
    bash scripts/build-pkg.sh
  fi
fi

# ---- start the relay, then the runner; stop both on exit ------------------------------------------
tmp=$(mktemp -d -t sse-demo.XXXXXX)
relay_pid=
runner_pid=
stop() {
  trap - INT TERM EXIT
  [ -n "$runner_pid" ] && kill "$runner_pid" 2>/dev/null || true
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
  [ -n "$runner_pid" ] && wait "$runner_pid" 2>/dev/null || true
  [ -n "$relay_pid" ] && wait "$relay_pid" 2>/dev/null || true
  rm -rf "$tmp"
  log "stopped"
}
trap stop EXIT
interrupted=
trap 'interrupted=130' INT
trap 'interrupted=143' TERM

if [ "$DEMO_PORT" = 0 ]; then
  # The page's origin is known only once the runner is bound: let any origin subscribe.
  origins=(--allow-origin '*')
else
  origins=(--allow-origin "http://127.0.0.1:$DEMO_PORT" --allow-origin "http://localhost:$DEMO_PORT")
fi

"$relay_bin" --listen "127.0.0.1:$DEMO_RELAY_PORT" --secret "$DEMO_SECRET" "${origins[@]}" --test-hooks \
  >"$tmp/relay.out" 2>"$tmp/relay.err" &
relay_pid=$!
relay_url=
for _ in $(seq 1 100); do
  relay_url=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$tmp/relay.out" | head -n1)
  [ -n "$relay_url" ] && break
  kill -0 "$relay_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$relay_url" ]; then
  log "sse-relay did not start:"
  cat "$tmp/relay.out" "$tmp/relay.err" >&2
  exit 1
fi
log "relay listening on $relay_url (development: fixed secret, --test-hooks on)"

SSE_RELAY_URL=$relay_url DEMO_PORT=$DEMO_PORT DEMO_TEST_HOOKS=1 node www/server/runner.mjs &
runner_pid=$!
# Whichever stops first ends the demo (or Ctrl-C); the EXIT trap stops the other.
set +e
wait -n "$relay_pid" "$runner_pid"
status=$?
[ -n "$interrupted" ] && exit "$interrupted"
# A graceful stop (Ctrl-C reaches the whole process group) exits 0; anything else is shown.
if [ "$status" != 0 ] && ! kill -0 "$relay_pid" 2>/dev/null; then
  log "sse-relay exited with status $status; its log:"
  tail -n 20 "$tmp/relay.err" >&2
fi
exit "$status"
