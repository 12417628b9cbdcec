"""A reader that delays its ACKs, against sse-relay and nchan: run by `BENCH_DELAYED_ACK=1 make
bench-nchan` (tests/e2e/bench-nchan.sh starts the servers and sets RELAY_URL and NCHAN_URL, and
RELAY_B_URL with BENCH_RELAY_B).

Windows delays a TCP ACK up to 200 ms by default; Linux does too once a connection looks
interactive. This reader keeps its socket in that mode (TCP_QUICKACK 0 before every read; Linux
then waits up to 40 ms) while reading an EventSource or WebSocket stream, and a publisher posts a
burst of BENCH_BURST messages, one POST after another as fast as answered. A server that sends
each event at once (TCP_NODELAY) delivers the burst as it comes; one that runs its subscribers with
Nagle's algorithm holds each event written while the previous one is unacknowledged until the ACK
comes.
Prints publish -> read latency per server and round (servers alternate); asserts nothing.
  BENCH_BURST (50)  BENCH_ROUNDS (3)  BENCH_TRANSPORTS (eventsource,websocket)
"""

import base64
import http.client
import json
import os
import socket
import statistics
import threading
import time
from urllib.parse import urlparse

BURST = int(os.environ.get("BENCH_BURST", "50"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SERVERS = {"relay": os.environ["RELAY_URL"], "nchan": os.environ["NCHAN_URL"]}
TRANSPORTS = os.environ.get("BENCH_TRANSPORTS", "eventsource,websocket").split(",")
if os.environ.get("RELAY_B_URL"):
    SERVERS["relay-b"] = os.environ["RELAY_B_URL"]


def target(server, url, transport):
    """(host, port, subscribe path, publish function) for a fresh channel on `server`."""
    u = urlparse(url)
    if server == "nchan":
        name = f"d{time.time_ns()}"
        path = f"/pub/{name}"
        return u.hostname, u.port, f"/sub/{name}", lambda c, m: c.request(
            "POST", path, json.dumps(m), {"content-type": "application/json"}
        )
    c = http.client.HTTPConnection(u.hostname, u.port)
    c.request("POST", "/v1/channels", "{}", {"content-type": "application/json"})
    ch = json.loads(c.getresponse().read())
    c.close()
    path = f"/v1/channels/{ch['channelId']}/messages"
    headers = {
        "authorization": f"Bearer {ch['publishToken']}",
        "content-type": "application/json",
    }
    stream = "ws" if transport == "websocket" else "events"
    sub = f"/v1/channels/{ch['channelId']}/{stream}?token={ch['subscribeToken']}"
    return u.hostname, u.port, sub, lambda c, m: c.request(
        "POST", path, json.dumps({"data": m}), headers
    )


def sse_messages(buf):
    """The `data:` payloads of the complete lines in `buf`, and the bytes left."""
    *lines, rest = buf.split(b"\n")
    return [line[5:] for line in lines if line.startswith(b"data:")], rest


def ws_messages(buf):
    """The text frames' payloads complete in `buf` (server frames: final, unmasked), and the rest."""
    out = []
    while len(buf) >= 2:
        n, at = buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, at = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, at = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < at + n:
            break
        if buf[0] & 0x0F == 1:
            out.append(buf[at : at + n])
        buf = buf[at + n :]
    return out, buf


def burst(server, url, transport):
    host, port, sub, post = target(server, url, transport)
    s = socket.create_connection((host, port))
    s.settimeout(10)
    if transport == "websocket":
        key = base64.b64encode(os.urandom(16)).decode()
        head = f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        parse = ws_messages
    else:
        head, parse = "Accept: text/event-stream\r\n", sse_messages
    s.sendall(f"GET {sub} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
    lat = []

    def read():
        buf, in_body = b"", False
        while len(lat) < BURST:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            try:
                data = s.recv(65536)
            except OSError:
                return
            now = time.time()
            if not data:
                return
            buf += data
            if not in_body:
                if b"\r\n\r\n" not in buf:
                    continue
                buf, in_body = buf.split(b"\r\n\r\n", 1)[1], True
            payloads, buf = parse(buf)
            for payload in payloads:
                try:
                    m = json.loads(payload)
                except ValueError:
                    continue  # a chunk-size line or a frame that is not a message
                m = m.get("data", m) if isinstance(m, dict) else None
                if isinstance(m, dict) and "t" in m:
                    lat.append((now - m["t"]) * 1000)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.3)
    c = http.client.HTTPConnection(host, port)
    for i in range(BURST):
        post(c, {"i": i, "t": time.time()})
        c.getresponse().read()
    reader.join(10)
    c.close()
    s.close()
    return lat


print(f"\n## a reader that delays its ACKs: bursts of {BURST} POSTs, {ROUNDS} rounds, publish -> read ms\n")
print("| round | transport | server | read | p50 | p90 | max | events later than 10 ms |")
print("|---|---|---|---|---|---|---|---|")
for r in range(1, ROUNDS + 1):
    for transport in TRANSPORTS:
        order = list(SERVERS) if r % 2 else list(reversed(SERVERS))
        for server in order:
            lat = sorted(burst(server, SERVERS[server], transport))
            if not lat:
                print(f"| {r} | {transport} | {server} | 0 of {BURST} | | | | |")
                continue
            p90 = lat[min(len(lat) - 1, int(len(lat) * 0.9))]
            print(
                f"| {r} | {transport} | {server} | {len(lat)} of {BURST} | {statistics.median(lat):.2f} "
                f"| {p90:.1f} | {lat[-1]:.1f} | {sum(x > 10 for x in lat)} |"
            )
