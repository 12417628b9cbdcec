//! Memory and fan-out benchmark of the real `sse-relay` binary (release build),
//! over loopback. Prints numbers; asserts nothing about time.
//!
//! Run: `cargo bench -p sse-relay --bench rss` (or `crates/relay/benches/run-rss.sh`,
//! which also raises `ulimit -n`). Environment: `SUBSCRIBERS` (default 1000),
//! `FANOUT_MESSAGES` (default 200), `RELAY_BIN` (another `sse-relay` binary to
//! measure instead of this build's, e.g. to compare two commits side by side).
//!
//! Measures, in a separate relay process:
//! 1. idle RSS;
//! 2. RSS with `SUBSCRIBERS` channels, then with one open SSE subscriber on each;
//! 3. RSS with one WebSocket subscriber more on each channel;
//! 4. fan-out: `SUBSCRIBERS` SSE subscribers of one channel, `FANOUT_MESSAGES`
//!    64-byte messages, deliveries per second and relay CPU per delivery.
//! 5. latency from a keep-alive publish to a subscriber reading the SSE frame,
//!    p50 and p99, at 100 and 1,000 messages per second, and the relay's CPU
//!    time per publish meanwhile (both connections included).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod common;
use common::{create, env_num, http, proc_stats, report, wait_for};

/// Opens an SSE stream and waits for its `ready` frame.
async fn subscribe(addr: String, id: String, token: String) -> TcpStream {
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
            break;
        }
    }
    r.into_inner()
}

/// Reads a stream in the background, counting `event: message` lines.
fn count_messages(s: TcpStream, count: Arc<AtomicU64>) {
    tokio::spawn(async move {
        let mut r = BufReader::new(s);
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

#[tokio::main]
async fn main() {
    let n = env_num("SUBSCRIBERS", 1000);
    let fan_msgs = env_num("FANOUT_MESSAGES", 200) as u64;
    let bin =
        std::env::var("RELAY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sse-relay").to_owned());
    let limit = (n * 4 + 100).to_string();
    let mut child = Command::new(&bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--secret",
            "benchmark-secret-of-32-bytes-or-more",
            "--log",
            "warn",
        ])
        .args(["--channels-per-address", &limit, "--create-burst", &limit])
        .args([
            "--create-rate-per-sec",
            &limit,
            "--connections-per-channel",
            &limit,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sse-relay");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let mut lines =
        BufReader::new(tokio::process::ChildStdout::from_std(stdout).expect("pipe")).lines();
    let first = lines.next_line().await.expect("read").expect("a line");
    let addr = first
        .strip_prefix("listening on http://")
        .expect("listening line")
        .to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle, _) = proc_stats(pid);
    report(&format!("relay binary: {bin} (pid {pid})"));
    report(&format!("idle RSS: {idle} KiB"));

    // 1. n channels, one subscriber each.
    let mut chans = Vec::with_capacity(n);
    for _ in 0..n {
        chans.push(create(&addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (with_channels, _) = proc_stats(pid);
    let count = Arc::new(AtomicU64::new(0));
    let mut opens = Vec::with_capacity(n);
    for c in &chans {
        opens.push(tokio::spawn(subscribe(
            addr.clone(),
            c.id.clone(),
            c.sub.clone(),
        )));
    }
    let mut streams = Vec::with_capacity(n);
    for o in opens {
        streams.push(o.await.expect("subscriber"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (with_subs, _) = proc_stats(pid);
    report(&format!("RSS with {n} channels: {with_channels} KiB"));
    report(&format!(
        "RSS with {n} channels and {n} open SSE subscribers: {with_subs} KiB ({:.1} KiB per subscriber, {:.1} KiB per channel+subscriber over idle)",
        (with_subs.saturating_sub(with_channels)) as f64 / n as f64,
        (with_subs.saturating_sub(idle)) as f64 / n as f64
    ));
    for s in streams {
        count_messages(s, count.clone());
    }
    let payload = format!("{{\"data\":\"{}\"}}", "x".repeat(54));
    let start = Instant::now();
    for c in &chans {
        http(
            &addr,
            "POST",
            &format!("/v1/channels/{}/messages", c.id),
            Some(&c.publ),
            &payload,
        )
        .await;
    }
    let ok = wait_for(&count, n as u64, Duration::from_secs(30)).await;
    report(&format!(
        "one 64 B message to each of {n} channels: all delivered={ok} in {:.1} ms (sequential publishes, new connection each)",
        start.elapsed().as_secs_f64() * 1000.0
    ));

    // 2. The same channels, one WebSocket subscriber each.
    let mut sockets = Vec::with_capacity(n);
    for c in &chans {
        let url = format!("ws://{addr}/v1/channels/{}/ws?token={}", c.id, c.sub);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
        use futures_util::StreamExt as _;
        let _ready = ws.next().await.expect("ready frame").expect("ready frame");
        sockets.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (with_ws, _) = proc_stats(pid);
    report(&format!(
        "RSS with {n} more WebSocket subscribers (one per channel): {with_ws} KiB ({:.1} KiB per WebSocket subscriber)",
        (with_ws.saturating_sub(with_subs)) as f64 / n as f64
    ));
    drop(sockets);

    // 3. Fan-out: n subscribers of one channel.
    let hub = create(&addr).await;
    let fan = Arc::new(AtomicU64::new(0));
    let mut opens = Vec::with_capacity(n);
    for _ in 0..n {
        opens.push(tokio::spawn(subscribe(
            addr.clone(),
            hub.id.clone(),
            hub.sub.clone(),
        )));
    }
    for o in opens {
        count_messages(o.await.expect("subscriber"), fan.clone());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss_fan, cpu0) = proc_stats(pid);
    let start = Instant::now();
    let path = format!("/v1/channels/{}/messages", hub.id);
    for _ in 0..fan_msgs {
        http(&addr, "POST", &path, Some(&hub.publ), &payload).await;
    }
    let want = fan_msgs * n as u64;
    let ok = wait_for(&fan, want, Duration::from_secs(60)).await;
    let secs = start.elapsed().as_secs_f64();
    let (_, cpu1) = proc_stats(pid);
    report(&format!(
        "RSS with {n} more subscribers on one channel: {rss_fan} KiB"
    ));
    report(&format!(
        "fan-out: {fan_msgs} x 64 B messages to {n} subscribers of one channel: all delivered={ok}, {want} deliveries in {:.1} ms = {:.0} deliveries/s, relay CPU {:.2} us per delivery",
        secs * 1000.0,
        want as f64 / secs,
        (cpu1 - cpu0) * 1e6 / want as f64
    ));
    // 5. Latency: publish (keep-alive POST) -> SSE frame read by a subscriber.
    for (rate, count) in [(100u64, 500usize), (1000, 2000)] {
        let cpu0 = cpu_ns(pid);
        let (p50, p99) = latency(&addr, rate, count).await;
        let cpu1 = cpu_ns(pid);
        report(&format!(
            "publish -> SSE subscriber latency at {rate} msg/s ({count} messages, 64 B, one keep-alive publisher): p50 {p50:.0} us, p99 {p99:.0} us, relay CPU {:.1} us per publish",
            cpu1.saturating_sub(cpu0) as f64 / 1e3 / count as f64
        ));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// On-CPU time of all of a process's threads, in ns (`/proc/PID/task/*/schedstat`,
/// finer than the 10 ms ticks of `/proc/PID/stat`).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
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

/// p50 and p99 (µs) from publish to receipt, publishing `count` messages at `rate`/s.
async fn latency(addr: &str, rate: u64, count: usize) -> (f64, f64) {
    let ch = create(addr).await;
    let stream = subscribe(addr.to_owned(), ch.id.clone(), ch.sub.clone()).await;
    let received = Arc::new(std::sync::Mutex::new(vec![None::<Instant>; count + 1]));
    let rx = received.clone();
    let reader = tokio::spawn(async move {
        let mut r = BufReader::new(stream);
        let mut line = String::new();
        let mut seen = 0;
        while seen < count {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
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
    let mut conn = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    let _ = conn.get_ref().set_nodelay(true);
    let path = format!("/v1/channels/{}/messages", ch.id);
    let payload = format!("{{\"data\":\"{}\"}}", "x".repeat(54));
    let period = Duration::from_micros(1_000_000 / rate);
    let start = Instant::now();
    let mut sent = vec![start; count + 1];
    for (i, slot) in sent.iter_mut().enumerate().skip(1) {
        let due = start + period * (i as u32);
        tokio::time::sleep_until(due.into()).await;
        *slot = Instant::now();
        let status = post_keep_alive(&mut conn, addr, &path, &ch.publ, &payload).await;
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
