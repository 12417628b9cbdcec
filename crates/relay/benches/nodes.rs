//! The brokers side by side: the in-memory broker (one node), the Redis broker
//! on one node, and the Redis broker across two nodes (publishes to node B,
//! subscribers on node A). Real `sse-relay` processes (release build) and a
//! real `redis-server` (no persistence) on loopback. Prints numbers; asserts
//! nothing about time.
//!
//! Run: `crates/relay/benches/run-nodes.sh` (= `cargo bench -p sse-relay
//! --bench nodes` with `ulimit -n` raised). Environment: `SUBSCRIBERS`
//! (default 1000), `FANOUT_MESSAGES` (default 200).
//!
//! For each setup:
//! 1. RSS per idle SSE subscriber on node A (`SUBSCRIBERS` channels, one each);
//! 2. fan-out: `SUBSCRIBERS` SSE subscribers of one channel on A,
//!    `FANOUT_MESSAGES` 64 B messages published back to back: deliveries per
//!    second, CPU per delivery (node A, and node B when there are two); then
//!    100 messages at 50 msg/s (one event per wake-up): CPU per delivery;
//! 3. publish → subscriber latency p50 / p99 at 100 and 1,000 msg/s;
//! 4. writer throughput: one keep-alive publisher, 64 B messages, one per
//!    request and in batches of 100.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod common;
use common::{create, env_num, proc_stats, report, wait_for};

const SECRET: &str = "benchmark-secret-of-32-bytes-or-more";

/// A process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn start_redis() -> (Proc, String) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (Proc(child), format!("redis://127.0.0.1:{port}/0"))
}

async fn start_node(broker: &str, n: usize) -> (Proc, String) {
    let limit = (n * 4 + 100).to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sse-relay"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--broker",
            broker,
            "--log",
            "warn",
        ])
        .args(["--channels-per-address", &limit, "--create-burst", &limit])
        .args(["--create-rate-per-sec", &limit])
        .args(["--connections-per-channel", &limit])
        .env("SSE_RELAY_SECRET", SECRET)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sse-relay");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines =
        BufReader::new(tokio::process::ChildStdout::from_std(stdout).expect("pipe")).lines();
    let first = lines.next_line().await.expect("read").expect("a line");
    let addr = first
        .strip_prefix("listening on http://")
        .expect("listening line")
        .to_owned();
    (Proc(child), addr)
}

/// Opens an SSE stream and waits for its `ready` frame.
async fn subscribe(addr: String, id: String, token: String) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    let req = format!(
        "GET /v1/channels/{id}/events?token={token} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.expect("read") == 0 {
            panic!("stream closed before ready");
        }
        if line.starts_with("event: ready") {
            return r;
        }
    }
}

async fn subscribe_many(addr: &str, chans: &[(String, String)]) -> Vec<BufReader<TcpStream>> {
    let mut opens = Vec::with_capacity(chans.len());
    for (id, sub) in chans {
        opens.push(tokio::spawn(subscribe(
            addr.to_owned(),
            id.clone(),
            sub.clone(),
        )));
    }
    let mut out = Vec::with_capacity(opens.len());
    for o in opens {
        out.push(o.await.expect("subscriber"));
    }
    out
}

/// Reads a stream in the background, counting `event: message` lines.
fn count_messages(mut r: BufReader<TcpStream>, count: Arc<AtomicU64>) {
    tokio::spawn(async move {
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line == "event: message\n" {
                        count.fetch_add(1, Relaxed);
                    }
                }
            }
        }
    });
}

/// A keep-alive HTTP/1.1 POST; returns the status line.
async fn post_keep_alive(
    conn: &mut BufReader<TcpStream>,
    addr: &str,
    path: &str,
    auth: &str,
    body: &str,
) -> String {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {auth}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.get_mut()
        .write_all(req.as_bytes())
        .await
        .expect("write");
    let mut status = String::new();
    conn.read_line(&mut status).await.expect("status");
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.expect("header");
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().expect("length");
        }
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await.expect("body");
    status
}

async fn keep_alive(addr: &str) -> BufReader<TcpStream> {
    let conn = TcpStream::connect(addr).await.expect("connect");
    let _ = conn.set_nodelay(true);
    BufReader::new(conn)
}

const PAYLOAD_64: &str = r#"{"data":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;

/// p50 and p99 (µs) from a publish on `pub_addr` to receipt by a subscriber on
/// `sub_addr`, publishing `count` messages at `rate`/s.
async fn latency(pub_addr: &str, sub_addr: &str, rate: u64, count: usize) -> (f64, f64) {
    let ch = create(pub_addr).await;
    let mut stream = subscribe(sub_addr.to_owned(), ch.id.clone(), ch.sub.clone()).await;
    let received = Arc::new(std::sync::Mutex::new(vec![None::<Instant>; count + 1]));
    let rx = received.clone();
    let reader = tokio::spawn(async move {
        let mut line = String::new();
        let mut seen = 0;
        while seen < count {
            line.clear();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            if let Some(id) = line.strip_prefix("id: ") {
                let id: usize = id.trim().parse().expect("id");
                if let Some(slot) = rx.lock().expect("lock").get_mut(id) {
                    *slot = Some(Instant::now());
                }
                seen += 1;
            }
        }
    });
    let mut conn = keep_alive(pub_addr).await;
    let path = format!("/v1/channels/{}/messages", ch.id);
    let period = Duration::from_micros(1_000_000 / rate);
    let start = Instant::now();
    let mut sent = vec![start; count + 1];
    for (i, slot) in sent.iter_mut().enumerate().skip(1) {
        let due = start + period * (i as u32);
        tokio::time::sleep_until(due.into()).await;
        *slot = Instant::now();
        let status = post_keep_alive(&mut conn, pub_addr, &path, &ch.publ, PAYLOAD_64).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
    let got = received.lock().expect("lock");
    let mut lat: Vec<f64> = (1..=count)
        .filter_map(|i| got[i].map(|r| r.duration_since(sent[i]).as_secs_f64() * 1e6))
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| {
        lat.get(((lat.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    (pick(0.5), pick(0.99))
}

/// Messages per second one keep-alive publisher gets stored, `per_request`
/// 64 B messages per POST, `total` messages (a fresh channel per 1,000
/// requests, under the replay buffer's bounds it makes no difference).
async fn writer_throughput(addr: &str, per_request: usize, total: usize) -> f64 {
    let item = r#""xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx""#;
    let body = if per_request == 1 {
        PAYLOAD_64.to_owned()
    } else {
        format!(r#"{{"messages":[{}]}}"#, vec![item; per_request].join(","))
    };
    let mut conn = keep_alive(addr).await;
    let start = Instant::now();
    let mut ch = create(addr).await;
    let mut path = format!("/v1/channels/{}/messages", ch.id);
    for r in 0..total / per_request {
        if r % 1000 == 999 {
            ch = create(addr).await;
            path = format!("/v1/channels/{}/messages", ch.id);
        }
        let status = post_keep_alive(&mut conn, addr, &path, &ch.publ, &body).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

async fn run_setup(label: &str, brokers: &[String], n: usize, fan_msgs: u64) {
    let mut nodes = Vec::new();
    for b in brokers {
        nodes.push(start_node(b, n).await);
    }
    let sub_addr = nodes[0].1.clone();
    let pub_addr = nodes[nodes.len() - 1].1.clone();
    let pids: Vec<u32> = nodes.iter().map(|(p, _)| p.0.id()).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    report(&format!("## {label}"));

    // 1. Idle subscribers, one per channel, on node A (opened 50 at a time).
    let (empty, _) = proc_stats(pids[0]);
    let mut chans = Vec::with_capacity(n);
    for _ in 0..n {
        let c = create(&pub_addr).await;
        chans.push((c.id, c.sub));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (before, _) = proc_stats(pids[0]);
    let mut idle = Vec::with_capacity(n);
    for chunk in chans.chunks(50) {
        idle.extend(subscribe_many(&sub_addr, chunk).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (with_subs, _) = proc_stats(pids[0]);
    report(&format!(
        "node A RSS: {empty} KiB before, {before} KiB with {n} channels, {with_subs} KiB with one idle SSE subscriber each: {:.1} KiB per subscriber, {:.1} KiB per channel + subscriber",
        with_subs.saturating_sub(before) as f64 / n as f64,
        with_subs.saturating_sub(empty) as f64 / n as f64
    ));
    drop(idle);

    // 2. Fan-out.
    let hub = create(&pub_addr).await;
    let subs = subscribe_many(&sub_addr, &vec![(hub.id.clone(), hub.sub.clone()); n]).await;
    let fan = Arc::new(AtomicU64::new(0));
    for s in subs {
        count_messages(s, fan.clone());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu0: Vec<f64> = pids.iter().map(|p| proc_stats(*p).1).collect();
    let start = Instant::now();
    let path = format!("/v1/channels/{}/messages", hub.id);
    let mut conn = keep_alive(&pub_addr).await;
    for _ in 0..fan_msgs {
        post_keep_alive(&mut conn, &pub_addr, &path, &hub.publ, PAYLOAD_64).await;
    }
    let want = fan_msgs * n as u64;
    let ok = wait_for(&fan, want, Duration::from_secs(120)).await;
    let secs = start.elapsed().as_secs_f64();
    let cpu: Vec<String> = pids
        .iter()
        .zip(&cpu0)
        .zip(["A", "B"])
        .map(|((p, c0), name)| {
            format!(
                "node {name} {:.2} us",
                (proc_stats(*p).1 - c0) * 1e6 / want as f64
            )
        })
        .collect();
    report(&format!(
        "fan-out: {fan_msgs} x 64 B to {n} subscribers of one channel: all delivered={ok}, {:.0} deliveries/s; CPU per delivery: {}",
        want as f64 / secs,
        cpu.join(", ")
    ));
    // The same subscribers, one message every 20 ms: each wake-up carries
    // one event, so this is the cost of a delivery without batching.
    let paced = 100u64;
    let before = fan.load(Relaxed);
    let cpu0: Vec<f64> = pids.iter().map(|p| proc_stats(*p).1).collect();
    let start = Instant::now();
    for i in 1..=paced {
        tokio::time::sleep_until((start + Duration::from_millis(20 * i)).into()).await;
        post_keep_alive(&mut conn, &pub_addr, &path, &hub.publ, PAYLOAD_64).await;
    }
    let want = before + paced * n as u64;
    let ok = wait_for(&fan, want, Duration::from_secs(120)).await;
    let cpu: Vec<String> = pids
        .iter()
        .zip(&cpu0)
        .zip(["A", "B"])
        .map(|((p, c0), name)| {
            format!(
                "node {name} {:.2} us",
                (proc_stats(*p).1 - c0) * 1e6 / (paced * n as u64) as f64
            )
        })
        .collect();
    report(&format!(
        "fan-out, paced: {paced} x 64 B at 50 msg/s to {n} subscribers: all delivered={ok}; CPU per delivery: {}",
        cpu.join(", ")
    ));
    drop(conn);

    // 3. Latency.
    for (rate, count) in [(100u64, 500usize), (1000, 2000)] {
        let (p50, p99) = latency(&pub_addr, &sub_addr, rate, count).await;
        report(&format!(
            "publish -> SSE subscriber at {rate} msg/s ({count} x 64 B): p50 {p50:.0} us, p99 {p99:.0} us"
        ));
    }

    // 4. Writer throughput.
    let single = writer_throughput(&pub_addr, 1, 5_000).await;
    let batched = writer_throughput(&pub_addr, 100, 100_000).await;
    report(&format!(
        "writer throughput (one keep-alive publisher, 64 B messages): {single:.0} msg/s one per request, {batched:.0} msg/s in batches of 100"
    ));
}

#[tokio::main]
async fn main() {
    let n = env_num("SUBSCRIBERS", 1000);
    let fan_msgs = env_num("FANOUT_MESSAGES", 200) as u64;
    run_setup(
        "memory broker, one node",
        &["memory".to_owned()],
        n,
        fan_msgs,
    )
    .await;
    {
        let (_redis, url) = start_redis().await;
        run_setup("Redis broker, one node", &[url], n, fan_msgs).await;
    }
    {
        let (_redis, url) = start_redis().await;
        run_setup(
            "Redis broker, two nodes (publish on B, subscribers on A)",
            &[url.clone(), url],
            n,
            fan_msgs,
        )
        .await;
    }
}
