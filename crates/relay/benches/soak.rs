//! Soak test of the real `sse-relay` binary (release build) over loopback,
//! bounded in time: `SOAK_SUBSCRIBERS` idle SSE subscribers (one per channel)
//! held for `SOAK_SECS`, while a publisher posts `SOAK_PUBLISH_PER_SEC`
//! messages to random ones of them and `SOAK_CHURN_PER_SEC` short channels a
//! second are created, subscribed, published to, ended, read to their end and
//! dropped. Prints RSS and open file descriptors of the relay every minute,
//! then the errors seen (client side and the relay's `sse_relay_errors_total`).
//! Asserts nothing: the numbers go to BENCHMARKS.md.
//!
//! Run: `crates/relay/benches/run-soak.sh` (raises `ulimit -n`). Defaults:
//! 10,000 subscribers, 600 s, 100 messages/s, 10 channels/s of churn.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod common;
use common::{env_num, report, rss_kib};

/// (RSS in KiB, open file descriptors) of a process, from /proc.
fn proc_stats(pid: u32) -> (u64, usize) {
    let rss = rss_kib(pid);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

/// One request on its own connection; (status, body). `None` on a transport error.
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: Bearer {a}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_string(&mut out))
        .await
        .ok()?
        .ok()?;
    let status = out.get(9..12)?.parse().ok()?;
    Some((status, out.split_once("\r\n\r\n")?.1.to_owned()))
}

struct Created {
    id: String,
    sub: String,
    publ: String,
}

async fn create(addr: &str) -> Option<Created> {
    let (status, body) = http(addr, "POST", "/v1/channels", None, "").await?;
    if status != 201 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    Some(Created {
        id: s("channelId")?,
        sub: s("subscribeToken")?,
        publ: s("publishToken")?,
    })
}

/// Opens an SSE stream and waits for its `ready` frame.
async fn subscribe(addr: &str, c: &Created) -> Option<BufReader<TcpStream>> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!(
        "GET /v1/channels/{}/events?token={} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n",
        c.id, c.sub
    );
    s.write_all(req.as_bytes()).await.ok()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line.starts_with("event: ready") {
            return Some(r);
        }
    }
}

#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    published: AtomicU64,
    publish_errors: AtomicU64,
    streams_lost: AtomicU64,
    churned: AtomicU64,
    churn_errors: AtomicU64,
}

/// One short channel: create, subscribe, publish 3, end, read to the end.
async fn churn_one(addr: &str) -> bool {
    let Some(c) = create(addr).await else {
        return false;
    };
    let Some(mut r) = subscribe(addr, &c).await else {
        return false;
    };
    let body = r#"{"messages":["a","b","c"]}"#;
    let path = format!("/v1/channels/{}/messages", c.id);
    if http(addr, "POST", &path, Some(&c.publ), body)
        .await
        .map(|x| x.0)
        != Some(200)
    {
        return false;
    }
    let path = format!("/v1/channels/{}/end", c.id);
    if http(addr, "POST", &path, Some(&c.publ), r#"{"data":"done"}"#)
        .await
        .map(|x| x.0)
        != Some(200)
    {
        return false;
    }
    let mut line = String::new();
    let mut messages = 0;
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            line.clear();
            if r.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            if line == "event: message\n" {
                messages += 1;
            }
            if line == "event: end\n" {
                return Some(());
            }
        }
    })
    .await;
    matches!(read, Ok(Some(()))) && messages == 3
}

#[tokio::main]
async fn main() {
    let n = env_num("SOAK_SUBSCRIBERS", 10_000);
    let secs = env_num("SOAK_SECS", 600) as u64;
    let rate = env_num("SOAK_PUBLISH_PER_SEC", 100) as u64;
    let churn = env_num("SOAK_CHURN_PER_SEC", 10) as u64;
    let bin = env!("CARGO_BIN_EXE_sse-relay");
    let big = (n * 4 + 100_000).to_string();
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--log", "warn"])
        .args(["--secret", "soak-benchmark-secret-of-32-bytes-or-more"])
        .args(["--channels-per-address", &big, "--create-burst", &big])
        .args(["--create-rate-per-sec", &big, "--max-connections", &big])
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
    let addr: &'static str = Box::leak(addr.into_boxed_str());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle_rss, idle_fds) = proc_stats(pid);
    report(&format!(
        "relay binary: {bin} (pid {pid}); idle: RSS {idle_rss} KiB, {idle_fds} fds"
    ));

    let counts = Arc::new(Counts::default());
    let mut chans = Vec::with_capacity(n);
    for _ in 0..n {
        chans.push(create(addr).await.expect("create"));
    }
    for c in &chans {
        let r = subscribe(addr, c).await.expect("subscribe");
        let counts = counts.clone();
        tokio::spawn(async move {
            let mut r = r;
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line).await {
                    Ok(0) | Err(_) => {
                        counts.streams_lost.fetch_add(1, Relaxed);
                        break;
                    }
                    Ok(_) if line == "event: message\n" => {
                        counts.delivered.fetch_add(1, Relaxed);
                    }
                    Ok(_) => {}
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (start_rss, start_fds) = proc_stats(pid);
    report(&format!(
        "{n} SSE subscribers open: RSS {start_rss} KiB, {start_fds} fds ({:.1} KiB per subscriber over idle)",
        (start_rss - idle_rss) as f64 / n as f64
    ));

    let chans = Arc::new(chans);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let publisher = {
        let (counts, chans) = (counts.clone(), chans.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            let mut i = 0usize;
            while Instant::now() < deadline {
                tick.tick().await;
                // A fixed stride walks every channel in turn.
                let c = &chans[(i * 7919) % chans.len()];
                i += 1;
                let (counts, path, auth) = (
                    counts.clone(),
                    format!("/v1/channels/{}/messages", c.id),
                    c.publ.clone(),
                );
                tokio::spawn(async move {
                    let body = format!(r#"{{"data":{{"n":{i},"pad":"{}"}}}}"#, "x".repeat(200));
                    match http(addr, "POST", &path, Some(&auth), &body).await {
                        Some((200, _)) => counts.published.fetch_add(1, Relaxed),
                        _ => counts.publish_errors.fetch_add(1, Relaxed),
                    };
                });
            }
        })
    };
    let churner = {
        let counts = counts.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / churn.max(1)));
            while Instant::now() < deadline {
                tick.tick().await;
                let counts = counts.clone();
                tokio::spawn(async move {
                    if churn_one(addr).await {
                        counts.churned.fetch_add(1, Relaxed);
                    } else {
                        counts.churn_errors.fetch_add(1, Relaxed);
                    }
                });
            }
        })
    };
    let mut max_rss = start_rss;
    let began = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(60).min(deadline - Instant::now())).await;
        let (rss, fds) = proc_stats(pid);
        max_rss = max_rss.max(rss);
        report(&format!(
            "t={:>4} s: RSS {rss} KiB, {fds} fds, published {}, delivered {}, churned {}, errors: publish {}, churn {}, streams lost {}",
            began.elapsed().as_secs(),
            counts.published.load(Relaxed),
            counts.delivered.load(Relaxed),
            counts.churned.load(Relaxed),
            counts.publish_errors.load(Relaxed),
            counts.churn_errors.load(Relaxed),
            counts.streams_lost.load(Relaxed),
        ));
    }
    let _ = publisher.await;
    let _ = churner.await;
    // Requests in flight finish; the churned channels' sockets close.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (end_rss, end_fds) = proc_stats(pid);
    let metrics = http(addr, "GET", "/metrics", None, "")
        .await
        .map(|x| x.1)
        .unwrap_or_default();
    let relay_errors: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("sse_relay_errors_total{") || l.starts_with("sse_relay_connections{")
        })
        .collect();
    report(&format!(
        "end: RSS {end_rss} KiB (start {start_rss}, max {max_rss}, growth {:+} KiB), {end_fds} fds (start {start_fds})",
        end_rss as i64 - start_rss as i64
    ));
    report(&format!(
        "totals: published {}, delivered {}, churned channels {}; errors: publish {}, churn {}, subscriber streams lost {}",
        counts.published.load(Relaxed),
        counts.delivered.load(Relaxed),
        counts.churned.load(Relaxed),
        counts.publish_errors.load(Relaxed),
        counts.churn_errors.load(Relaxed),
        counts.streams_lost.load(Relaxed),
    ));
    report(&format!("relay metrics: {}", relay_errors.join("; ")));
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
}
