//! Relay settings. Every field has the documented default of
//! [`sse_channel_protocol::limits`]; `sse-relay --help` lists the flag for each.

use sse_channel_protocol::limits;

mod fit;

/// Everything the relay can be told. Build one with [`Config::default`] and
/// change the fields you need:
///
/// ```
/// let config = sse_relay::Config { heartbeat_ms: 200, ..Default::default() };
/// assert_eq!(config.max_message_bytes, 64 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Key that signs and verifies tokens. `None` (the default): a random key per
    /// process, so tokens of one process are refused by another.
    pub secret: Option<Vec<u8>>,
    /// Origins allowed by CORS. Empty (the default): no CORS headers; `"*"`: any.
    /// Each entry is compared in the form [`normalize_origin`] gives (lowercase
    /// scheme and host, no default port); an entry it refuses matches nothing.
    pub allow_origins: Vec<String>,
    /// Request header that carries the client's address when the relay sits
    /// behind [`Config::trusted_proxy_hops`] proxies (e.g. `x-real-ip`);
    /// lowercase. `None` (the default): `x-forwarded-for`. Ignored without
    /// `trusted_proxy_hops`.
    pub client_ip_header: Option<String>,
    /// Enables the `/v1/test/...` fault-injection routes. Default `false`.
    /// Only a build with the cargo feature `test-hooks` has them;
    /// [`Config::validate`] refuses `true` in any other build.
    pub test_hooks: bool,
    /// Heartbeat interval on every stream, in ms. Default 15,000.
    pub heartbeat_ms: u64,
    /// Replay buffer per channel, in events. Default 4,096.
    pub replay_buffer_events: usize,
    /// Replay buffer per channel, in bytes of payload. Default 4 MiB.
    pub replay_buffer_bytes: usize,
    /// Largest message (its JSON text), in bytes. Default 64 KiB.
    pub max_message_bytes: usize,
    /// Largest request body, in bytes. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Most messages in one batch. Default 1,000.
    pub max_batch_messages: usize,
    /// Channel lifetime when the creator asks for none, in seconds. Default 3,600.
    pub channel_ttl_secs: u64,
    /// Longest lifetime a creator may ask for, in seconds. Default 86,400.
    pub max_channel_ttl_secs: u64,
    /// How long an ended channel is kept for late reconnects, in seconds. Default 300.
    pub ended_retention_secs: u64,
    /// Live channels per client address. Default 100.
    pub channels_per_address: usize,
    /// Channel creations per second per client address. Default 10.
    pub create_rate_per_sec: u32,
    /// Channel creation burst per client address. Default 20.
    pub create_burst: u32,
    /// Channels per relay. Default 100,000.
    pub max_channels: usize,
    /// Subscriber connections per channel. Default 8.
    pub connections_per_channel: usize,
    /// Idempotency keys remembered per channel. Default 1,024.
    pub idempotency_keys: usize,
    /// Backpressure high-water mark, in percent of the replay buffer (events
    /// and bytes, 1 to 100): a publish answer waits while a reader on this
    /// node is further behind. Default 50.
    pub backpressure_high_water_percent: u8,
    /// Longest time one publish answer waits for readers behind the high-water
    /// mark, in ms; 0 turns backpressure off. Default 5,000.
    pub backpressure_max_wait_ms: u64,
    /// Time a client has to send its request headers, in ms. Default 10,000.
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request body once its headers are in, in ms.
    /// Default 30,000.
    pub body_read_timeout_ms: u64,
    /// How often expired and ended channels are swept, in ms. Default 1,000.
    pub cleanup_interval_ms: u64,
    /// On shutdown, how long open connections get to finish, in ms. Default 5,000.
    pub shutdown_grace_ms: u64,

    // Hardening: key rotation, budgets and caps (docs/relay.md, "Limits and budgets").
    /// The signing key before a rollover: tokens it signed still verify, new
    /// tokens are signed with [`Config::secret`] only. At least
    /// [`MIN_SECRET_BYTES`] bytes, and only together with `secret`. Default `None`.
    pub previous_secret: Option<Vec<u8>>,
    /// How many reverse proxies in front of the relay append to
    /// [`Config::client_ip_header`]: the client's address for the per-address
    /// limits is that header's `N`th entry from the right (the one the
    /// outermost proxy appended; what a client writes itself stays to its
    /// left). 0 (the default): the TCP peer address, the header is ignored.
    pub trusted_proxy_hops: usize,
    /// Per-address limits count IPv6 clients by this prefix length: one host
    /// usually holds a whole /64. 128: every address alone. Default 64.
    pub ipv6_prefix_len: u8,
    /// Open HTTP connections (streams, requests, idle keep-alive) at most; the
    /// process's open-files limit may lower it. Over it, a connection is
    /// answered once and closed: `/healthz` and `/metrics` as usual, anything
    /// else `429 TOO_MANY_CONNECTIONS`. Default 10,000.
    pub max_connections: usize,
    /// A write to a client that makes no progress for this long (the client
    /// stopped reading) closes its connection, releasing its stream and the
    /// events in flight, in ms. Every connection: requests, EventSource,
    /// WebSocket. Default 30,000.
    pub write_timeout_ms: u64,
    /// Bytes the channels may hold for buffered events (payload and both
    /// frames) and idempotency keys ([`crate::broker::event_cost`],
    /// [`crate::broker::key_cost`]); a publish beyond it is refused with
    /// `503 BUFFER_FULL` and nothing stored is dropped. A publish is charged
    /// what it grows the channel by (less what it pushes out of a full replay
    /// buffer). With the Redis broker: what they hold in Redis, one budget for
    /// every node. At least [`Config::channel_cost_max`]. Default 1 GiB.
    pub max_buffered_bytes: u64,
    /// The same for the channels created from one client address (IPv6 by
    /// [`Config::ipv6_prefix_len`]; with Redis, across nodes): beyond it
    /// `429 RATE_LIMITED`. 0: no per-address budget. Default 64 MiB.
    pub max_buffered_bytes_per_address: u64,
}

/// Shortest accepted [`Config::secret`] (and previous secret), in bytes: an
/// HS256 key shorter than the hash (32 bytes) is easier to guess than the
/// signature is to forge.
pub const MIN_SECRET_BYTES: usize = 32;

impl Config {
    /// Checks settings that no single value can get wrong alone; the error names
    /// the `sse-relay` flag. [`crate::run`] and [`crate::app`] call it.
    ///
    /// ```
    /// let weak = sse_relay::Config { secret: Some(b"abc".to_vec()), ..Default::default() };
    /// assert!(weak.validate().unwrap_err().contains("--secret"));
    /// assert!(sse_relay::Config::default().validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), String> {
        let strong = |flag: &str, s: &[u8]| {
            if s.len() < MIN_SECRET_BYTES {
                Err(format!(
                    "{flag} must be at least {MIN_SECRET_BYTES} bytes (got {}): tokens signed \
                     with a short key can be forged; e.g. `openssl rand -base64 48`",
                    s.len()
                ))
            } else {
                Ok(())
            }
        };
        if self.test_hooks && !cfg!(feature = "test-hooks") {
            return Err(
                "test hooks are not in this build (cargo feature `test-hooks`, never in production)"
                    .into(),
            );
        }
        if self.client_ip_header.is_some() && self.trusted_proxy_hops == 0 {
            return Err(
                "--client-ip-header needs --trusted-proxy-hops N (how many proxies \
                        in front of the relay append to it)"
                    .into(),
            );
        }
        if self.write_timeout_ms == 0 {
            return Err("--write-timeout-ms must be at least 1".into());
        }
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        if self.ipv6_prefix_len > 128 {
            return Err("--ipv6-prefix-len must be at most 128".into());
        }
        self.check_channel_fits_budgets()?;
        if let Some(s) = &self.secret {
            strong("--secret", s)?;
        }
        if let Some(p) = &self.previous_secret {
            if self.secret.is_none() {
                return Err("--previous-secret needs --secret (the key that signs)".into());
            }
            strong("--previous-secret", p)?;
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            secret: None,
            allow_origins: Vec::new(),
            client_ip_header: None,
            test_hooks: false,
            heartbeat_ms: limits::HEARTBEAT_MS,
            replay_buffer_events: limits::REPLAY_BUFFER_EVENTS,
            replay_buffer_bytes: limits::REPLAY_BUFFER_BYTES,
            max_message_bytes: limits::MAX_MESSAGE_BYTES,
            max_body_bytes: limits::MAX_BODY_BYTES,
            max_batch_messages: limits::MAX_BATCH_MESSAGES,
            channel_ttl_secs: limits::DEFAULT_CHANNEL_TTL_SECS,
            max_channel_ttl_secs: limits::MAX_CHANNEL_TTL_SECS,
            ended_retention_secs: limits::ENDED_RETENTION_SECS,
            channels_per_address: limits::CHANNELS_PER_ADDRESS,
            create_rate_per_sec: limits::CREATE_RATE_PER_SEC,
            create_burst: limits::CREATE_BURST,
            max_channels: limits::MAX_CHANNELS,
            connections_per_channel: limits::CONNECTIONS_PER_CHANNEL,
            idempotency_keys: limits::IDEMPOTENCY_KEYS_PER_CHANNEL,
            backpressure_high_water_percent: limits::BACKPRESSURE_HIGH_WATER_PERCENT,
            backpressure_max_wait_ms: limits::BACKPRESSURE_MAX_WAIT_MS,
            header_read_timeout_ms: limits::HEADER_READ_TIMEOUT_MS,
            body_read_timeout_ms: 30_000,
            cleanup_interval_ms: 1000,
            shutdown_grace_ms: 5000,
            previous_secret: None,
            trusted_proxy_hops: 0,
            ipv6_prefix_len: 64,
            max_connections: limits::MAX_CONNECTIONS,
            write_timeout_ms: limits::WRITE_TIMEOUT_MS,
            max_buffered_bytes: limits::MAX_BUFFERED_BYTES,
            max_buffered_bytes_per_address: limits::MAX_BUFFERED_BYTES_PER_ADDRESS,
        }
    }
}

impl Config {
    /// The backpressure rule of these settings. A disconnected reader counts
    /// at its last position for 2.5 × [`Config::heartbeat_ms`], a client's
    /// default heartbeat timeout (it is expected to reconnect within it).
    ///
    /// ```
    /// let rule = sse_relay::Config::default().flow_rule();
    /// assert_eq!(rule.high_water_events, 2048);
    /// assert_eq!(rule.max_wait.as_millis(), 5000);
    /// assert_eq!(rule.grace.as_millis(), 37_500);
    /// ```
    pub fn flow_rule(&self) -> crate::flow::Rule {
        crate::flow::Rule::new(
            self.replay_buffer_events.max(1),
            self.replay_buffer_bytes,
            self.backpressure_high_water_percent,
            std::time::Duration::from_millis(self.backpressure_max_wait_ms),
            std::time::Duration::from_millis(self.heartbeat_ms.saturating_mul(5) / 2),
        )
    }

    /// Why the backpressure settings cannot keep a held reader inside the
    /// replay buffer, if so: the high-water mark plus one whole batch
    /// (`max_batch_messages`, `max_body_bytes`), stored before the answer
    /// waits, must fit in the buffer. `None` when they fit (the defaults do).
    ///
    /// ```
    /// assert!(sse_relay::Config::default().backpressure_misfit().is_none());
    /// let old = sse_relay::Config { replay_buffer_events: 1000, ..Default::default() };
    /// assert!(old.backpressure_misfit().unwrap().contains("--replay-buffer-events"));
    /// ```
    pub fn backpressure_misfit(&self) -> Option<String> {
        if self.backpressure_max_wait_ms == 0 {
            return None;
        }
        let rule = self.flow_rule();
        let events = rule.high_water_events + self.max_batch_messages as u64;
        if events > self.replay_buffer_events as u64 {
            return Some(format!(
                "--replay-buffer-events {} is below the backpressure high-water mark ({}) plus \
                 --max-batch-messages ({}): a held reader can still lose events; give at least {events}",
                self.replay_buffer_events, rule.high_water_events, self.max_batch_messages
            ));
        }
        let bytes = rule.high_water_bytes + self.max_body_bytes as u64;
        if bytes > self.replay_buffer_bytes as u64 {
            return Some(format!(
                "--replay-buffer-bytes {} is below the backpressure high-water mark ({}) plus \
                 --max-body-bytes ({}): a held reader can still lose events; give at least {bytes}",
                self.replay_buffer_bytes, rule.high_water_bytes, self.max_body_bytes
            ));
        }
        None
    }
}

/// An allowed CORS origin in the form a browser sends in its `Origin` header:
/// `*` as is, else `scheme://host[:port]` with the scheme and host lowercased
/// and the default port (80, 443) dropped; one trailing `/` is tolerated.
/// A value that could never equal an `Origin` header (a path, query, fragment,
/// credentials, a scheme other than http(s)) is refused with the reason.
///
/// ```
/// use sse_relay::config::normalize_origin;
/// assert_eq!(normalize_origin("HTTP://LocalHost:5173").unwrap(), "http://localhost:5173");
/// assert_eq!(normalize_origin("https://App.Example.com:443/").unwrap(), "https://app.example.com");
/// assert_eq!(normalize_origin("*").unwrap(), "*");
/// assert!(normalize_origin("http://localhost:5173/app").is_err());
/// assert!(normalize_origin("https://user@app.example.com").is_err());
/// ```
pub fn normalize_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value == "*" {
        return Ok(value.to_owned());
    }
    let form = "`*` or an origin scheme://host[:port] (http or https)";
    let Some((_, rest)) = value.split_once("://") else {
        return Err(format!("must be {form}"));
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(format!("must be {form}, without credentials (user@)"));
    }
    if !tail.is_empty() && tail != "/" {
        return Err(format!(
            "must be {form}, without path, query or fragment: browsers send the origin alone"
        ));
    }
    sse_channel_protocol::descriptor::relay_origin(value).map_err(|_| format!("must be {form}"))
}
