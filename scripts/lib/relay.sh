# Sourced by test scripts: start a real sse-relay on 127.0.0.1 port 0 and stop it on exit.
#   start_relay [extra sse-relay flags...]   sets RELAY_URL and RELAY_PID
# The relay prints "listening on http://127.0.0.1:PORT" on stdout once bound. Without SSE_RELAY_BIN
# it runs the debug build in cargo's target directory (CARGO_TARGET_DIR respected), built first.
# Test relays are built with the cargo feature test-hooks (the --test-hooks flag; production builds
# lack it), always, so that every script shares one binary instead of rebuilding it.
source "$(dirname "${BASH_SOURCE[0]}")/cargo.sh"
start_relay() {
  [ -n "${SSE_RELAY_BIN:-}" ] || ensure_relay_bin
  local bin="$SSE_RELAY_BIN"
  [ -x "$bin" ] || { echo "no relay binary at $bin" >&2; return 1; }
  local log
  log=$(mktemp -t sse-relay.XXXXXX)
  "$bin" --listen 127.0.0.1:0 "$@" >"$log" 2>"$log.err" &
  RELAY_PID=$!
  RELAY_LOGS+=("$log" "$log.err")
  RELAY_PIDS+=("$RELAY_PID")
  trap stop_relays EXIT
  local i
  for i in $(seq 1 100); do
    RELAY_URL=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$log" | head -n1)
    [ -n "$RELAY_URL" ] && return 0
    kill -0 "$RELAY_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "sse-relay did not start:" >&2
  cat "$log" "$log.err" >&2
  return 1
}

# Sets and exports SSE_RELAY_BIN unless the caller did: builds the relay, the release
# profile when the first argument is "release" (benchmarks), else the debug profile.
ensure_relay_bin() {
  [ -n "${SSE_RELAY_BIN:-}" ] && { export SSE_RELAY_BIN; return 0; }
  local profile=debug flag=
  [ "${1:-}" = release ] && profile=release flag=--release
  printf '[relay] cargo build %s -p sse-relay --features test-hooks\n' "$flag" >&2
  cargo build -q $flag -p sse-relay --features test-hooks
  SSE_RELAY_BIN="$(cargo_target_dir)/$profile/sse-relay"
  export SSE_RELAY_BIN
}

stop_relays() {
  local p
  for p in "${RELAY_PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  RELAY_PIDS=()
  rm -f "${RELAY_LOGS[@]:-}" 2>/dev/null || true
}
RELAY_PIDS=()
RELAY_LOGS=()
