# Sourced by test scripts: start a real sse-relay on 127.0.0.1 port 0 and stop it on exit.
#   start_relay [extra sse-relay flags...]   sets RELAY_URL and RELAY_PID
# The relay prints "listening on http://127.0.0.1:PORT" on stdout once bound.
start_relay() {
  local bin="${SSE_RELAY_BIN:-$(pwd)/target/debug/sse-relay}"
  [ -x "$bin" ] || cargo build -q -p sse-relay
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
