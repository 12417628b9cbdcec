#!/usr/bin/env bash
# make bench-nchan: sse-relay (release build, default settings) and nchan side by side, one Chromium
# page and one Node publisher against both in the same run (tests/e2e/bench-nchan.mjs). Installs
# nginx and its nchan module from apt when missing. Prints a Markdown table; not part of `make test`.
#   BENCH_ROUNDS (3)  BENCH_SDK (20000)  BENCH_CPU_ROUNDS (7)  BENCH_POSTS (3000)  BENCH_PACED (1500)
#   BENCH_RATE (500)
#   BENCH_NODE=1: instead of the browser page, tests/e2e/bench-post.mjs (a Node publisher and reader,
#   one POST per message, context switches per thread); BENCH_POSTS (5000), BENCH_RATE (0), rounds
#   BENCH_CPU_ROUNDS (6) there.
#   BENCH_PIN=1: both servers run on the last CPU, the browser and the publisher on the others
#   (taskset), so that every wake-up between a server and its peers crosses CPUs alike for both;
#   the relay then runs one worker thread (its default is one per CPU it may use), as nginx runs one.
#   BENCH_RELAY_B=PATH: a second relay binary (e.g. a build of another commit) runs as a third
#   server, "relay-b", in the same rounds (the CPU rounds of the browser page), so that two builds
#   compare side by side.
#   BENCH_NCHAN_NODELAY=1: nginx runs with TCP_NODELAY on every connection it accepts (a small
#   LD_PRELOAD shim built with cc), as the relay runs; by default its subscribers use Nagle's
#   algorithm (BENCHMARKS.md, "Why nchan's EventSource path costs less").
#   BENCH_DELAYED_ACK=1: instead, tests/e2e/bench-delayed-ack.py: a Python reader that delays its
#   ACKs (as Windows does) reads an EventSource or WebSocket stream during bursts of POSTs;
#   BENCH_BURST (50), BENCH_ROUNDS (3), BENCH_TRANSPORTS there.
#   BENCH_TRANSPORTS (eventsource,websocket): the browser page's transports; BENCH_ROUNDS=0 skips
#   the package writer's rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/relay.sh

module=/usr/lib/nginx/modules/ngx_nchan_module.so
if ! command -v nginx >/dev/null || [ ! -f "$module" ]; then
  echo "[bench-nchan] installing nginx and libnginx-mod-nchan" >&2
  apt-get install -y nginx libnginx-mod-nchan >/dev/null || { apt-get update >/dev/null && apt-get install -y nginx libnginx-mod-nchan >/dev/null; }
fi

[ -f pkg/index.js ] || bash scripts/build-pkg.sh
mkdir -p tests/out/pack
rm -f tests/out/pack/open-sse-channel-*.tgz
(cd pkg && npm pack --silent --pack-destination ../tests/out/pack >/dev/null)
tarball=$(ls "$PWD"/tests/out/pack/open-sse-channel-*.tgz)

ensure_relay_bin release
pinned=
if [ -n "${BENCH_PIN:-}" ]; then
  cpus=$(getconf _NPROCESSORS_ONLN)
  [ "$cpus" -ge 2 ] || { echo "[bench-nchan] BENCH_PIN needs at least 2 CPUs" >&2; exit 1; }
  server_cpu=$((cpus - 1))
  peer_cpus=0; [ "$cpus" -eq 2 ] || peer_cpus=0-$((cpus - 2))
  # The servers inherit this shell's CPU, the browser and the publisher (started below) the others.
  taskset -cp "$server_cpu" $$ >/dev/null
  pinned="servers on CPU $server_cpu, browser and publisher on CPU $peer_cpus"
fi
relay_flags=(--allow-origin '*' --create-rate-per-sec 1000 --create-burst 1000 --channels-per-address 100000)
relay_b=()
if [ -n "${BENCH_RELAY_B:-}" ]; then
  SSE_RELAY_BIN="$BENCH_RELAY_B" start_relay "${relay_flags[@]}"
  relay_b=(RELAY_B_URL="$RELAY_URL" RELAY_B_PID="$RELAY_PID")
  echo "[bench-nchan] relay-b $RELAY_URL (pid $RELAY_PID): $BENCH_RELAY_B" >&2
fi
start_relay "${relay_flags[@]}"

# nchan: one worker process (the relay's tokio runtime uses both cores), its own prefix and port.
# Its message buffer holds as many messages per channel as the relay's replay buffer at its default
# (REPLAY_BUFFER_EVENTS, 4096, crates/protocol/src/limits.rs): with fewer, nchan reuses its memory
# after that many messages while the relay keeps storing (page faults per POST 0.021 with 1000 vs
# 0.071 with 4096, against the relay's 0.08: BENCHMARKS.md).
buffer=$(sed -n 's/^pub const REPLAY_BUFFER_EVENTS: usize = \([0-9_]*\);/\1/p' crates/protocol/src/limits.rs | tr -d _)
[ -n "$buffer" ] || { echo "[bench-nchan] REPLAY_BUFFER_EVENTS not found in crates/protocol/src/limits.rs" >&2; exit 1; }
work=$(mktemp -d -t bench-nchan.XXXXXX)
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat >"$work/nginx.conf" <<CONF
load_module $module;
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events {}
http {
  access_log off;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fastcgi;
  uwsgi_temp_path $work/uwsgi;
  scgi_temp_path $work/scgi;
  server {
    listen 127.0.0.1:$port;
    nchan_access_control_allow_origin "*";
    location ~ ^/pub/(\w+)$ { nchan_publisher; nchan_channel_id \$1; nchan_message_buffer_length $buffer; }
    location ~ ^/sub/(\w+)$ { nchan_subscriber websocket eventsource; nchan_channel_id \$1; }
  }
}
CONF
preload=()
note=
if [ -n "${BENCH_NCHAN_NODELAY:-}" ]; then
  # nginx sets TCP_NODELAY when a connection turns keep-alive (its publishers'), not on a stream:
  # its subscribers run with Nagle's algorithm, where the relay sets TCP_NODELAY on every socket
  # (docs/relay.md). This shim sets it on every connection nginx accepts, so that both servers
  # send each event at once.
  cat >"$work/nodelay.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
static int nodelay(int fd) {
  int one = 1;
  if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}
int accept4(int s, struct sockaddr *a, socklen_t *l, int f) {
  static int (*real)(int, struct sockaddr *, socklen_t *, int);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
  return nodelay(real(s, a, l, f));
}
int accept(int s, struct sockaddr *a, socklen_t *l) {
  static int (*real)(int, struct sockaddr *, socklen_t *);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
  return nodelay(real(s, a, l));
}
C
  cc -O2 -shared -fPIC -o "$work/nodelay.so" "$work/nodelay.c" -ldl
  preload=(env LD_PRELOAD="$work/nodelay.so")
  note="; nchan with TCP_NODELAY on every connection"
fi
"${preload[@]}" nginx -p "$work" -c "$work/nginx.conf" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null || true; wait $nginx_pid 2>/dev/null || true; rm -rf "$work"; stop_relays' EXIT
for _ in $(seq 1 50); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done
echo "[bench-nchan] relay $RELAY_URL (pid $RELAY_PID), nchan http://127.0.0.1:$port (pid $nginx_pid)" >&2
[ -z "$pinned" ] || taskset -cp "$peer_cpus" $$ >/dev/null

if [ -n "${BENCH_DELAYED_ACK:-}" ]; then
  command -v python3 >/dev/null || apt-get install -y python3 >/dev/null || { apt-get update >/dev/null && apt-get install -y python3 >/dev/null; }
  env "${relay_b[@]}" RELAY_URL="$RELAY_URL" NCHAN_URL="http://127.0.0.1:$port" python3 tests/e2e/bench-delayed-ack.py
  exit
fi
script=tests/e2e/bench-nchan.mjs
[ -z "${BENCH_NODE:-}" ] || script=tests/e2e/bench-post.mjs
env "${relay_b[@]}" BENCH_NCHAN_BUFFER="$buffer" BENCH_PINNED="${pinned:-not pinned}$note" SSE_CHANNEL_TARBALL="$tarball" RELAY_URL="$RELAY_URL" RELAY_PID="$RELAY_PID" \
  NCHAN_URL="http://127.0.0.1:$port" NCHAN_PID="$nginx_pid" node "$script"
