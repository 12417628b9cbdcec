#!/usr/bin/env bash
# Browser tests of the SDK (tests/browser.rs, wasm-bindgen-test in headless Chromium and Firefox) against a real
# sse-relay on 127.0.0.1 (port 0), plus a "black hole" TCP listener that accepts and never answers
# (for OPEN_TIMEOUT). Every scenario runs over both transports.
#   SSE_TEST_BROWSERS the engines to run the suite in (default "chromium firefox")
#   BENCH=1           run the delivery benchmark (tests/browser_bench.rs, Chromium) instead of the tests
#   SSE_RELAY_BIN     use this relay binary (default: <target dir>/debug/sse-relay, built here;
#                     release/sse-relay with BENCH=1)
#   CARGO_TARGET_DIR  cargo's target dir (default target/)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/relay.sh

log() { printf '[test-wasm] %s\n' "$*" >&2; }

if [ -n "${BENCH:-}" ]; then ensure_relay_bin release; else ensure_relay_bin; fi

# 1 s heartbeats so the heartbeat watchdog is exercised within a test's time; no per-address channel
# or byte limits (the suite creates a few hundred channels per browser, all from 127.0.0.1, and the
# benchmark's channels keep up to 10,000 events each).
start_relay --allow-origin '*' --test-hooks --heartbeat-ms 1000 --channels-per-address 100000 --create-rate-per-sec 100000 --create-burst 100000 \
  --max-buffered-bytes-per-address 0
MAIN_URL="$RELAY_URL"
# A second relay with a small replay buffer, so a test can outrun it (MESSAGES_LOST), and that
# forgets ended channels at once, so a client that missed `end` meets CHANNEL_NOT_FOUND.
start_relay --allow-origin '*' --test-hooks --heartbeat-ms 1000 --replay-buffer-events 16 \
  --ended-retention-secs 0 --cleanup-interval-ms 100
SMALL_URL="$RELAY_URL"
log "relays at $MAIN_URL and (replay buffer 16, no retention) $SMALL_URL"

# Accepts TCP connections and never answers: requests to it hang until the client gives up.
hole_log=$(mktemp -t sse-hole.XXXXXX)
node -e '
  const net = require("net"); const held = [];
  const s = net.createServer((c) => held.push(c)).listen(0, "127.0.0.1", () => console.log(s.address().port));
  setTimeout(() => process.exit(0), 15 * 60 * 1000).unref();
  process.on("SIGTERM", () => process.exit(0));
' >"$hole_log" &
HOLE_PID=$!
trap 'kill $HOLE_PID 2>/dev/null; rm -f "$hole_log"; stop_relays' EXIT
for _ in $(seq 1 50); do [ -s "$hole_log" ] && break; sleep 0.1; done
HOLE_URL="http://127.0.0.1:$(head -n1 "$hole_log")"
log "black hole at $HOLE_URL"

# A proxy in front of the main relay that injects faults by path prefix (tests/support/fault-proxy.cjs):
# refused or hanging or silent WebSocket upgrades, altered tokens, cut or refused channel creations,
# streams that drop right after `ready`.
proxy_log=$(mktemp -t sse-proxy.XXXXXX)
node tests/support/fault-proxy.cjs "$MAIN_URL" >"$proxy_log" &
PROXY_PID=$!
trap 'kill $HOLE_PID $PROXY_PID 2>/dev/null; rm -f "$hole_log" "$proxy_log"; stop_relays' EXIT
for _ in $(seq 1 50); do [ -s "$proxy_log" ] && break; sleep 0.1; done
PROXY_URL="http://127.0.0.1:$(head -n1 "$proxy_log")"
log "fault proxy at $PROXY_URL"

export SSE_RELAY_URL="$MAIN_URL" SSE_PROXY_URL="$PROXY_URL" SSE_SMALL_RELAY_URL="$SMALL_URL" SSE_BLACKHOLE_URL="$HOLE_URL"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-400}"
if [ -n "${BENCH:-}" ]; then
  # A Node publisher, as a cloud function would be: POST /run (text/plain JSON
  # {url, auth, n, rate}) publishes n messages, one request each, at `rate` per second, each
  # {"seq": i, "t": <epoch ms when its request started>}, sequentially over one keep-alive
  # connection (so ids follow seq); answers when done.
  pub_log=$(mktemp -t sse-pub.XXXXXX)
  node -e '
    const http = require("http"); const { performance } = require("perf_hooks");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const nowMs = () => performance.timeOrigin + performance.now();
    const post = (url, auth, body) => new Promise((ok, fail) => {
      const r = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json", authorization: auth } },
        (res) => { res.resume(); res.on("end", () => res.statusCode === 200 ? ok() : fail(new Error("status " + res.statusCode))); });
      r.on("error", fail); r.end(body);
    });
    const s = http.createServer((req, res) => {
      res.setHeader("access-control-allow-origin", "*");
      let text = ""; req.on("data", (c) => text += c);
      req.on("end", async () => {
        if (req.method !== "POST") return res.end();
        const { url, auth, n, rate } = JSON.parse(text);
        const start = nowMs(); const inflight = [];
        for (let i = 0; i < n; i++) {
          const due = start + (i * 1000) / rate;
          const wait = due - nowMs();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          inflight.push(post(url, auth, JSON.stringify({ data: { seq: i, t: nowMs() } })));
          await inflight.shift();
        }
        await Promise.all(inflight);
        res.end("done");
      });
    });
    s.listen(0, "127.0.0.1", () => console.log(s.address().port));
    setTimeout(() => process.exit(0), 15 * 60 * 1000).unref();
    process.on("SIGTERM", () => process.exit(0));
  ' >"$pub_log" &
  PUB_PID=$!
  trap 'kill $HOLE_PID $PROXY_PID $PUB_PID 2>/dev/null; rm -f "$hole_log" "$proxy_log" "$pub_log"; stop_relays' EXIT
  for _ in $(seq 1 50); do [ -s "$pub_log" ] && break; sleep 0.1; done
  export SSE_PUBLISHER_URL="http://127.0.0.1:$(head -n1 "$pub_log")"
  # tests/browser_bench.rs: prints delivery numbers (the package's wasm-release profile); asserts
  # nothing about time.
  env -u GECKODRIVER CHROMEDRIVER="$(command -v chromedriver)" \
    cargo test --profile wasm-release --target wasm32-unknown-unknown -p sse-channel --test browser_bench -- --nocapture "$@" \
    | grep -E '^(bench |test result|test )'
else
  # The same suite in each browser engine (SSE_TEST_BROWSERS, default both). The runner picks its
  # WebDriver from the first of GECKODRIVER / CHROMEDRIVER that is set, so each run sets one only.
  ff_caps=$(mktemp -t sse-ff-caps.XXXXXX.json)
  trap 'kill $HOLE_PID $PROXY_PID 2>/dev/null; rm -f "$hole_log" "$proxy_log" "$ff_caps"; stop_relays' EXIT
  # Debian's Firefox is firefox-esr; the runner adds -headless.
  printf '{"moz:firefoxOptions": {"binary": "%s"}}\n' "$(command -v firefox-esr || command -v firefox)" >"$ff_caps"
  for browser in ${SSE_TEST_BROWSERS:-chromium firefox}; do
    log "tests/browser.rs in $browser"
    case "$browser" in
      chromium) env -u GECKODRIVER CHROMEDRIVER="$(command -v chromedriver)" \
        cargo test --target wasm32-unknown-unknown -p sse-channel --test browser "$@" ;;
      firefox) env -u CHROMEDRIVER GECKODRIVER="$(command -v geckodriver)" WASM_BINDGEN_TEST_WEBDRIVER_JSON="$ff_caps" \
        cargo test --target wasm32-unknown-unknown -p sse-channel --test browser "$@" ;;
      *) log "unknown browser $browser (chromium, firefox)"; exit 1 ;;
    esac
  done
fi
