//! Counters behind `GET /metrics` (Prometheus text format).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sse_channel_protocol::ErrorCode;

/// The two stream transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// EventSource (`/events`).
    Sse,
    /// WebSocket (`/ws`).
    Ws,
}

impl Transport {
    fn index(self) -> usize {
        match self {
            Self::Sse => 0,
            Self::Ws => 1,
        }
    }
}

/// Process-wide counters; all updates are relaxed atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Channels created since start.
    pub channels_created: AtomicU64,
    /// Messages stored (publish and end).
    pub messages: AtomicU64,
    /// Payload bytes stored.
    pub bytes_in: AtomicU64,
    /// Events written to subscribers.
    pub deliveries: AtomicU64,
    /// Frame bytes written to subscribers.
    pub bytes_out: AtomicU64,
    /// Publish answers that waited for a reader behind the high-water mark.
    pub publish_holds: AtomicU64,
    /// Milliseconds publish answers waited in all.
    pub publish_hold_ms: AtomicU64,
    /// Readers released because a publish waited the longest wait for them.
    pub readers_released: AtomicU64,
    connections: [AtomicU64; 2],
    http_connections: AtomicU64,
    connections_refused: AtomicU64,
    connections_total: [AtomicU64; 2],
    errors: Vec<AtomicU64>,
}

impl Metrics {
    /// Zeroed counters.
    pub fn new() -> Self {
        Self {
            errors: ErrorCode::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            ..Default::default()
        }
    }

    /// Counts an error answered or sent in band.
    pub fn error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|&c| c == code) {
            if let Some(c) = self.errors.get(i) {
                c.fetch_add(1, Relaxed);
            }
        }
    }

    /// A subscriber stream opened; the guard counts it closed on drop.
    pub fn connection(self: &std::sync::Arc<Self>, t: Transport) -> ConnectionGauge {
        self.connections[t.index()].fetch_add(1, Relaxed);
        self.connections_total[t.index()].fetch_add(1, Relaxed);
        ConnectionGauge {
            metrics: self.clone(),
            transport: t,
        }
    }

    /// Open HTTP connections (of any kind), as counted by the accept loop.
    pub fn set_http_connections(&self, n: usize) {
        self.http_connections.store(n as u64, Relaxed);
    }

    /// A connection closed unanswered: over `--max-connections` and its overflow.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Relaxed);
    }

    /// Open subscriber streams of a transport.
    pub fn open_connections(&self, t: Transport) -> u64 {
        self.connections[t.index()].load(Relaxed)
    }

    /// The Prometheus text exposition. `channels` is the broker's current count.
    pub fn render(&self, channels: usize) -> String {
        let mut s = String::with_capacity(2048);
        let g = |s: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        g(
            &mut s,
            "sse_relay_channels",
            "gauge",
            "Channels currently held.",
        );
        let _ = writeln!(s, "sse_relay_channels {channels}");
        g(
            &mut s,
            "sse_relay_channels_created_total",
            "counter",
            "Channels created.",
        );
        let _ = writeln!(
            s,
            "sse_relay_channels_created_total {}",
            self.channels_created.load(Relaxed)
        );
        g(
            &mut s,
            "sse_relay_http_connections",
            "gauge",
            "Open HTTP connections (streams, requests, idle keep-alive).",
        );
        let _ = writeln!(
            s,
            "sse_relay_http_connections {}",
            self.http_connections.load(Relaxed)
        );
        g(
            &mut s,
            "sse_relay_connections_refused_total",
            "counter",
            "Connections closed unanswered: over --max-connections and its overflow.",
        );
        let _ = writeln!(
            s,
            "sse_relay_connections_refused_total {}",
            self.connections_refused.load(Relaxed)
        );
        g(
            &mut s,
            "sse_relay_connections",
            "gauge",
            "Open subscriber streams.",
        );
        for (i, t) in ["sse", "ws"].iter().enumerate() {
            let _ = writeln!(
                s,
                "sse_relay_connections{{transport=\"{t}\"}} {}",
                self.connections[i].load(Relaxed)
            );
        }
        g(
            &mut s,
            "sse_relay_connections_total",
            "counter",
            "Subscriber streams opened.",
        );
        for (i, t) in ["sse", "ws"].iter().enumerate() {
            let _ = writeln!(
                s,
                "sse_relay_connections_total{{transport=\"{t}\"}} {}",
                self.connections_total[i].load(Relaxed)
            );
        }
        g(
            &mut s,
            "sse_relay_messages_total",
            "counter",
            "Messages stored (publish and end).",
        );
        let _ = writeln!(
            s,
            "sse_relay_messages_total {}",
            self.messages.load(Relaxed)
        );
        g(
            &mut s,
            "sse_relay_message_bytes_total",
            "counter",
            "Payload bytes stored.",
        );
        let _ = writeln!(
            s,
            "sse_relay_message_bytes_total {}",
            self.bytes_in.load(Relaxed)
        );
        g(
            &mut s,
            "sse_relay_deliveries_total",
            "counter",
            "Events written to subscribers.",
        );
        let _ = writeln!(
            s,
            "sse_relay_deliveries_total {}",
            self.deliveries.load(Relaxed)
        );
        g(
            &mut s,
            "sse_relay_sent_bytes_total",
            "counter",
            "Frame bytes written to subscribers.",
        );
        let _ = writeln!(
            s,
            "sse_relay_sent_bytes_total {}",
            self.bytes_out.load(Relaxed)
        );
        for (name, help, v) in [
            (
                "sse_relay_publish_holds_total",
                "Publish answers that waited for a reader behind the high-water mark.",
                &self.publish_holds,
            ),
            (
                "sse_relay_publish_hold_ms_total",
                "Milliseconds publish answers waited for readers, in all.",
                &self.publish_hold_ms,
            ),
            (
                "sse_relay_readers_released_total",
                "Readers released because a publish waited the longest wait for them.",
                &self.readers_released,
            ),
        ] {
            g(&mut s, name, "counter", help);
            let _ = writeln!(s, "{name} {}", v.load(Relaxed));
        }
        g(
            &mut s,
            "sse_relay_errors_total",
            "counter",
            "Errors answered or sent in band, by code.",
        );
        for (c, n) in ErrorCode::ALL.iter().zip(&self.errors) {
            let n = n.load(Relaxed);
            if n > 0 {
                let _ = writeln!(s, "sse_relay_errors_total{{code=\"{}\"}} {n}", c.as_str());
            }
        }
        s
    }
}

/// The broker's lines of `/metrics`: whether it is up, its failed calls and
/// the round-trip time of its last health check (Redis only).
pub fn render_broker(status: &crate::broker::BrokerStatus) -> String {
    let mut s = String::with_capacity(512);
    let _ = writeln!(
        s,
        "# HELP sse_relay_broker_up Whether the broker answers (1) or not (0).\n\
         # TYPE sse_relay_broker_up gauge\n\
         sse_relay_broker_up{{broker=\"{}\"}} {}",
        status.kind,
        u8::from(status.up)
    );
    let _ = writeln!(
        s,
        "# HELP sse_relay_broker_errors_total Failed calls to the broker's storage.\n\
         # TYPE sse_relay_broker_errors_total counter\n\
         sse_relay_broker_errors_total {}",
        status.errors
    );
    if let Some(us) = status.round_trip_us {
        let _ = writeln!(
            s,
            "# HELP sse_relay_broker_round_trip_seconds Round trip of the last health check.\n\
             # TYPE sse_relay_broker_round_trip_seconds gauge\n\
             sse_relay_broker_round_trip_seconds {:.6}",
            us as f64 / 1e6
        );
    }
    s
}

/// Decrements the open-connection gauge when dropped.
#[derive(Debug)]
pub struct ConnectionGauge {
    metrics: std::sync::Arc<Metrics>,
    transport: Transport,
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.metrics.connections[self.transport.index()].fetch_sub(1, Relaxed);
    }
}

/// The memory budget: bytes held for buffered events and idempotency keys
/// (`--max-buffered-bytes` counts them), and the budget itself.
pub fn render_budget(held: u64, max: u64) -> String {
    format!(
        "# HELP sse_relay_buffered_bytes Bytes held for buffered events (payloads and frames) and idempotency keys.\n\
         # TYPE sse_relay_buffered_bytes gauge\n\
         sse_relay_buffered_bytes {held}\n\
         # HELP sse_relay_buffered_bytes_max The budget of sse_relay_buffered_bytes (--max-buffered-bytes).\n\
         # TYPE sse_relay_buffered_bytes_max gauge\n\
         sse_relay_buffered_bytes_max {max}\n"
    )
}
