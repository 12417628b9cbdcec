//! What the relay benchmarks (`rss`, `nodes`, `soak`) share: environment numbers, printing,
//! a process's RSS and CPU time from /proc, and a plain HTTP/1.1 client for creating channels.
//! Each benchmark uses a part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A number from the environment, or `default`.
pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prints one line of results.
#[allow(clippy::print_stdout)]
pub fn report(s: &str) {
    println!("{s}");
}

/// RSS of a process in KiB, from /proc (0 when unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// (RSS in KiB, CPU seconds) of a process, from /proc.
pub fn proc_stats(pid: u32) -> (u64, f64) {
    let rss = rss_kib(pid);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (rss, ticks / 100.0)
}

/// One request on a fresh connection (`Connection: close`); returns the answer's body.
pub async fn http(addr: &str, method: &str, path: &str, auth: Option<&str>, body: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: Bearer {a}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out.split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default()
}

/// A created channel: id, subscribe token, publish token.
pub struct Created {
    pub id: String,
    pub sub: String,
    pub publ: String,
}

/// Creates a channel.
pub async fn create(addr: &str) -> Created {
    let body = http(addr, "POST", "/v1/channels", None, "").await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("create answer");
    let s = |k: &str| v[k].as_str().expect("field").to_owned();
    Created {
        id: s("channelId"),
        sub: s("subscribeToken"),
        publ: s("publishToken"),
    }
}

/// Waits until `count` reaches `want`; false after `limit`.
pub async fn wait_for(count: &AtomicU64, want: u64, limit: Duration) -> bool {
    let start = Instant::now();
    while count.load(Relaxed) < want {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}
