//! `sse-relay`: parses flags (or their `SSE_RELAY_*` environment variables),
//! binds, prints `listening on http://ADDR`, and serves until SIGTERM or SIGINT.

use std::net::SocketAddr;

use clap::Parser;
use sse_channel_protocol::limits;
use sse_relay::Config;

/// The sse-channel relay: channels, resumable replay, signed tokens, limits, metrics.
///
/// Every flag has an environment variable equivalent (shown in brackets).
#[derive(Debug, Parser)]
#[command(name = "sse-relay", version, about, long_about = None)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "SSE_RELAY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Token signing key, at least 32 bytes (e.g. `openssl rand -base64 48`); shorter or
    /// empty is refused. When absent, a random key per process (tokens then do not verify
    /// on other nodes or after a restart) and a warning: for development only.
    #[arg(long, env = "SSE_RELAY_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Origin allowed by CORS, e.g. https://app.example.com; repeatable; `*` allows any.
    /// Scheme and host are compared case-insensitively, a default port is dropped; a path,
    /// query or credentials are refused. Default: none (no cross-origin access). The env
    /// variable takes a comma-separated list.
    #[arg(
        long = "allow-origin",
        env = "SSE_RELAY_ALLOW_ORIGIN",
        value_delimiter = ',',
        value_parser = sse_relay::config::normalize_origin
    )]
    allow_origin: Vec<String>,
    /// With --trusted-proxy-hops: the request header the proxies append the client's address
    /// to (e.g. x-real-ip). Default: x-forwarded-for.
    #[arg(long, env = "SSE_RELAY_CLIENT_IP_HEADER")]
    client_ip_header: Option<String>,
    /// Broker: `memory` (embedded, one node) or `redis://[user:password@]host:port[/db]`
    /// (several nodes sharing one Redis; see docs/relay.md, "Several nodes").
    #[arg(
        long,
        env = "SSE_RELAY_BROKER",
        default_value = "memory",
        hide_env_values = true
    )]
    broker: String,
    /// Enable the /v1/test/... fault-injection routes (never in production; only builds with
    /// the cargo feature `test-hooks` have this flag).
    #[cfg(feature = "test-hooks")]
    #[arg(long, env = "SSE_RELAY_TEST_HOOKS")]
    test_hooks: bool,
    /// Heartbeat interval on every stream, in ms; at least 100.
    #[arg(
        long,
        env = "SSE_RELAY_HEARTBEAT_MS",
        default_value_t = limits::HEARTBEAT_MS,
        value_parser = parse_heartbeat_ms
    )]
    heartbeat_ms: u64,
    /// Replay buffer per channel, in events.
    #[arg(long, env = "SSE_RELAY_REPLAY_BUFFER_EVENTS", default_value_t = limits::REPLAY_BUFFER_EVENTS)]
    replay_buffer_events: usize,
    /// Replay buffer per channel, in payload bytes.
    #[arg(long, env = "SSE_RELAY_REPLAY_BUFFER_BYTES", default_value_t = limits::REPLAY_BUFFER_BYTES)]
    replay_buffer_bytes: usize,
    /// Largest message (its JSON text), in bytes; larger → 413 MESSAGE_TOO_LARGE.
    /// At most --max-body-bytes minus 9 (the `{"data":…}` around it).
    #[arg(long, env = "SSE_RELAY_MAX_MESSAGE_BYTES", default_value_t = limits::MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// Largest request body, in bytes; larger → 413 MESSAGE_TOO_LARGE.
    #[arg(long, env = "SSE_RELAY_MAX_BODY_BYTES", default_value_t = limits::MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Most messages in one batch.
    #[arg(long, env = "SSE_RELAY_MAX_BATCH_MESSAGES", default_value_t = limits::MAX_BATCH_MESSAGES)]
    max_batch_messages: usize,
    /// Channel lifetime when the creator asks for none, in seconds.
    #[arg(long, env = "SSE_RELAY_CHANNEL_TTL_SECS", default_value_t = limits::DEFAULT_CHANNEL_TTL_SECS)]
    channel_ttl_secs: u64,
    /// Longest channel lifetime a creator may ask for, in seconds.
    #[arg(long, env = "SSE_RELAY_MAX_CHANNEL_TTL_SECS", default_value_t = limits::MAX_CHANNEL_TTL_SECS)]
    max_channel_ttl_secs: u64,
    /// How long an ended channel is kept so a late reconnect still gets `end`, in seconds.
    #[arg(long, env = "SSE_RELAY_ENDED_RETENTION_SECS", default_value_t = limits::ENDED_RETENTION_SECS)]
    ended_retention_secs: u64,
    /// Live channels per client address; more → 429 RATE_LIMITED.
    #[arg(long, env = "SSE_RELAY_CHANNELS_PER_ADDRESS", default_value_t = limits::CHANNELS_PER_ADDRESS)]
    channels_per_address: usize,
    /// Channel creations per second per client address; faster → 429 RATE_LIMITED.
    #[arg(long, env = "SSE_RELAY_CREATE_RATE_PER_SEC", default_value_t = limits::CREATE_RATE_PER_SEC)]
    create_rate_per_sec: u32,
    /// Channel creation burst per client address.
    #[arg(long, env = "SSE_RELAY_CREATE_BURST", default_value_t = limits::CREATE_BURST)]
    create_burst: u32,
    /// Channels per relay; more → 503 TOO_MANY_CHANNELS.
    #[arg(long, env = "SSE_RELAY_MAX_CHANNELS", default_value_t = limits::MAX_CHANNELS)]
    max_channels: usize,
    /// Subscriber connections per channel; more → 429 TOO_MANY_CONNECTIONS.
    #[arg(long, env = "SSE_RELAY_CONNECTIONS_PER_CHANNEL", default_value_t = limits::CONNECTIONS_PER_CHANNEL)]
    connections_per_channel: usize,
    /// Idempotency keys remembered per channel.
    #[arg(long, env = "SSE_RELAY_IDEMPOTENCY_KEYS", default_value_t = limits::IDEMPOTENCY_KEYS_PER_CHANNEL)]
    idempotency_keys: usize,
    /// Backpressure: a publish is answered only once every reader of the channel on this
    /// node is within this share of the replay buffer (events and bytes), in percent
    /// (1 to 100), or the longest wait passed. Readers that disconnected count at their
    /// last position for 2.5 × --heartbeat-ms.
    #[arg(
        long,
        env = "SSE_RELAY_BACKPRESSURE_HIGH_WATER_PERCENT",
        default_value_t = limits::BACKPRESSURE_HIGH_WATER_PERCENT,
        value_parser = clap::value_parser!(u8).range(1..=100)
    )]
    backpressure_high_water_percent: u8,
    /// Backpressure: longest time one publish answer waits for readers behind the
    /// high-water mark, in ms; then they are released (they get MESSAGES_LOST if they
    /// fall out of the replay buffer). 0 turns backpressure off. Keep it below the
    /// writer's request timeout (10000).
    #[arg(long, env = "SSE_RELAY_BACKPRESSURE_MAX_WAIT_MS", default_value_t = limits::BACKPRESSURE_MAX_WAIT_MS)]
    backpressure_max_wait_ms: u64,
    /// Time a client has to send its request headers, in ms (slow-client protection).
    #[arg(long, env = "SSE_RELAY_HEADER_READ_TIMEOUT_MS", default_value_t = limits::HEADER_READ_TIMEOUT_MS)]
    header_read_timeout_ms: u64,
    /// Time a client has to send a request body once its headers are in, in ms.
    #[arg(long, env = "SSE_RELAY_BODY_READ_TIMEOUT_MS", default_value_t = 30_000)]
    body_read_timeout_ms: u64,
    /// How often expired and ended channels are swept, in ms.
    #[arg(long, env = "SSE_RELAY_CLEANUP_INTERVAL_MS", default_value_t = 1000)]
    cleanup_interval_ms: u64,
    /// On SIGTERM/SIGINT, how long open connections get to finish, in ms.
    #[arg(long, env = "SSE_RELAY_SHUTDOWN_GRACE_MS", default_value_t = 5000)]
    shutdown_grace_ms: u64,
    /// Threads that serve connections; 0 = one per CPU core. 1 runs the relay on one event
    /// loop (no wake-ups between threads, like nginx with one worker); more spread
    /// connections over cores.
    #[arg(long, env = "SSE_RELAY_WORKER_THREADS", default_value_t = 0)]
    worker_threads: usize,
    /// Log level: error, warn, info, debug or trace. Logs go to stderr and never contain tokens.
    #[arg(long, env = "SSE_RELAY_LOG", default_value = "info")]
    log: tracing::Level,
    /// Log format: `text` (a line per event), `journal` (text without time or colour, each line
    /// led by its syslog priority, `<3>` error to `<7>` debug, which the systemd journal keeps as
    /// the entry's priority) or `json` (a JSON object per line: timestamp, level, fields, target;
    /// for log collectors).
    #[arg(long, env = "SSE_RELAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    // Hardening: key rotation, budgets and caps (docs/relay.md, "Limits and budgets").
    /// Key rotation: the previous --secret, accepted to verify tokens (never to sign) while
    /// those it signed are still in use; at least 32 bytes. Default: none.
    #[arg(long, env = "SSE_RELAY_PREVIOUS_SECRET", hide_env_values = true)]
    previous_secret: Option<String>,
    /// Behind reverse proxies: how many of them append to --client-ip-header (a CDN and a
    /// balancer: 2). The client's address for the per-address limits is that header's Nth
    /// entry from the right; entries a client sends itself stay further left. Default 0: the
    /// TCP peer address, the header is ignored. Only the proxies may reach the relay then.
    #[arg(long, env = "SSE_RELAY_TRUSTED_PROXY_HOPS", default_value_t = 0)]
    trusted_proxy_hops: usize,
    /// Per-address limits count IPv6 clients by this prefix (a host usually holds a /64);
    /// 128 counts every address alone.
    #[arg(long, env = "SSE_RELAY_IPV6_PREFIX_LEN", default_value_t = 64,
          value_parser = clap::value_parser!(u8).range(0..=128))]
    ipv6_prefix_len: u8,
    /// Open HTTP connections at most (streams, requests, idle keep-alive); lowered to what
    /// `ulimit -n` leaves room for. Over it a connection gets one answer and is closed:
    /// /healthz and /metrics as usual, anything else 429 TOO_MANY_CONNECTIONS.
    #[arg(long, env = "SSE_RELAY_MAX_CONNECTIONS", default_value_t = limits::MAX_CONNECTIONS)]
    max_connections: usize,
    /// A write that makes no progress for this long (the client stopped reading) closes the
    /// connection and releases its stream, in ms: EventSource, WebSocket and plain requests.
    #[arg(long, env = "SSE_RELAY_WRITE_TIMEOUT_MS", default_value_t = limits::WRITE_TIMEOUT_MS)]
    write_timeout_ms: u64,
    /// Bytes the channels may hold for buffered events (payload and both frames) and
    /// idempotency keys; a publish beyond → 503 BUFFER_FULL, nothing stored is dropped.
    /// With --broker redis: what they hold in Redis, one budget for every node.
    #[arg(long, env = "SSE_RELAY_MAX_BUFFERED_BYTES", default_value_t = limits::MAX_BUFFERED_BYTES)]
    max_buffered_bytes: u64,
    /// The same for the channels created from one client address (IPv6 by --ipv6-prefix-len;
    /// with Redis, across nodes); beyond → 429 RATE_LIMITED; 0 = none.
    #[arg(
        long,
        env = "SSE_RELAY_MAX_BUFFERED_BYTES_PER_ADDRESS",
        default_value_t = limits::MAX_BUFFERED_BYTES_PER_ADDRESS
    )]
    max_buffered_bytes_per_address: u64,
}

/// Lowest `--heartbeat-ms`: every heartbeat is a frame on every open stream,
/// so a tiny interval (0 sent pings without pause) floods clients.
const MIN_HEARTBEAT_MS: u64 = 100;

fn parse_heartbeat_ms(v: &str) -> Result<u64, String> {
    let ms: u64 = v
        .parse()
        .map_err(|_| "must be a whole number of milliseconds".to_owned())?;
    if ms < MIN_HEARTBEAT_MS {
        return Err(format!(
            "must be at least {MIN_HEARTBEAT_MS} ms (a heartbeat is a frame on every open stream)"
        ));
    }
    Ok(ms)
}

/// Bytes `{"data":…}` adds around a message in the smallest publish body.
const DATA_WRAPPER_BYTES: usize = r#"{"data":}"#.len();

impl Cli {
    /// Checks between flags that clap cannot express; the error names them.
    fn check(&self) -> Result<(), String> {
        // An empty key is never "no key": without this an empty SSE_RELAY_SECRET
        // would read as a random development key, or as a zero-length one.
        for (var, flag, value) in [
            ("SSE_RELAY_SECRET", "--secret", &self.secret),
            (
                "SSE_RELAY_PREVIOUS_SECRET",
                "--previous-secret",
                &self.previous_secret,
            ),
        ] {
            let empty_env = || std::env::var_os(var).is_some_and(|v| v.is_empty());
            if value.as_deref().map_or_else(empty_env, str::is_empty) {
                return Err(format!(
                    "{flag} is empty ({var} may be set to \"\"): give a key of at least {} \
                     bytes, or unset {var} for a random development key",
                    sse_relay::config::MIN_SECRET_BYTES
                ));
            }
        }
        let fits = self.max_body_bytes.saturating_sub(DATA_WRAPPER_BYTES);
        if self.max_message_bytes > fits {
            return Err(format!(
                "--max-message-bytes {} can never be sent: a publish body ({{\"data\":…}}, \
                 {DATA_WRAPPER_BYTES} bytes more) is limited by --max-body-bytes {}; \
                 give --max-message-bytes at most {fits} or raise --max-body-bytes",
                self.max_message_bytes, self.max_body_bytes
            ));
        }
        Ok(())
    }

    fn config(&self) -> Config {
        Config {
            secret: self.secret.clone().map(String::into_bytes),
            allow_origins: self.allow_origin.clone(),
            client_ip_header: self
                .client_ip_header
                .as_ref()
                .map(|h| h.to_ascii_lowercase()),
            #[cfg(feature = "test-hooks")]
            test_hooks: self.test_hooks,
            #[cfg(not(feature = "test-hooks"))]
            test_hooks: false,
            heartbeat_ms: self.heartbeat_ms,
            replay_buffer_events: self.replay_buffer_events,
            replay_buffer_bytes: self.replay_buffer_bytes,
            max_message_bytes: self.max_message_bytes,
            max_body_bytes: self.max_body_bytes,
            max_batch_messages: self.max_batch_messages,
            channel_ttl_secs: self.channel_ttl_secs,
            max_channel_ttl_secs: self.max_channel_ttl_secs,
            ended_retention_secs: self.ended_retention_secs,
            channels_per_address: self.channels_per_address,
            create_rate_per_sec: self.create_rate_per_sec,
            create_burst: self.create_burst,
            max_channels: self.max_channels,
            connections_per_channel: self.connections_per_channel,
            idempotency_keys: self.idempotency_keys,
            backpressure_high_water_percent: self.backpressure_high_water_percent,
            backpressure_max_wait_ms: self.backpressure_max_wait_ms,
            header_read_timeout_ms: self.header_read_timeout_ms,
            body_read_timeout_ms: self.body_read_timeout_ms,
            cleanup_interval_ms: self.cleanup_interval_ms,
            shutdown_grace_ms: self.shutdown_grace_ms,
            previous_secret: self.previous_secret.clone().map(String::into_bytes),
            trusted_proxy_hops: self.trusted_proxy_hops,
            ipv6_prefix_len: self.ipv6_prefix_len,
            max_connections: self.max_connections,
            write_timeout_ms: self.write_timeout_ms,
            max_buffered_bytes: self.max_buffered_bytes,
            max_buffered_bytes_per_address: self.max_buffered_bytes_per_address,
        }
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called (before the address is printed), so a signal sent as soon as the
/// address is known is never the default action (killing the process).
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One line of text per event.
    Text,
    /// Text led by the syslog priority, for the systemd journal.
    Journal,
    /// One JSON object per line.
    Json,
}

/// Text lines led by their syslog priority (`<3>` error, `<4>` warn, `<6>` info, `<7>` debug
/// and trace): the systemd journal reads the prefix as the entry's priority, so `journalctl -p
/// warning` shows the relay's warnings and errors.
struct Journal<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for Journal<F>
where
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Err(msg) = cli.check().and_then(|()| cli.config().validate()) {
        use clap::CommandFactory as _;
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, msg)
            .exit();
    }
    let runtime = match cli.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    match runtime {
        Ok(rt) => rt.block_on(serve(cli)),
        Err(e) => {
            eprintln!("sse-relay: cannot start the runtime: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn serve(cli: Cli) -> std::process::ExitCode {
    let logs = tracing_subscriber::fmt()
        .with_max_level(cli.log)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Journal => logs
            .with_ansi(false)
            .event_format(Journal(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_ansi(false),
            ))
            .init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
    // --broker: the embedded broker, or a Redis shared by several nodes.
    let broker_url = cli.broker.clone();
    let redis = if broker_url == "memory" {
        false
    } else if broker_url.starts_with("redis://") || broker_url.starts_with("rediss://") {
        true
    } else {
        tracing::error!("unsupported --broker: give `memory` or redis://host:port[/db]");
        return std::process::ExitCode::from(2);
    };
    let shutdown = match shutdown_signal() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return std::process::ExitCode::from(1);
        }
    };
    let listen = cli.listen;
    let config = cli.config();
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %listen, error = %e, "cannot listen");
            return std::process::ExitCode::from(1);
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "no local address");
            return std::process::ExitCode::from(1);
        }
    };
    // Connected before the address is printed: whoever waits for that line
    // may use the relay at once.
    let broker = if redis {
        match sse_relay::redis_broker(&broker_url, &config).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot use the Redis broker");
                return std::process::ExitCode::from(1);
            }
        }
    } else {
        sse_relay::memory_broker(&config)
    };
    {
        // The one line scripts wait for. Written without `println!`, which
        // would panic if whoever started us already closed our stdout.
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    }
    tracing::info!(%addr, broker = broker.status().kind, "sse-relay started");
    match sse_relay::run_with_broker(listener, config, broker, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            std::process::ExitCode::from(1)
        }
    }
}
