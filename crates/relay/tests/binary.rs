//! The `sse-relay` binary itself: its stdout line, `--help`, SIGTERM, logs.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_sse-relay");
/// A `--secret` of the shortest accepted length (32 bytes).
const SECRET_ARG: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn help_documents_every_flag_with_its_default() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--secret",
        "--previous-secret",
        "--allow-origin",
        "--client-ip-header",
        "--broker",
        "--test-hooks",
        "--heartbeat-ms",
        "--replay-buffer-events",
        "--replay-buffer-bytes",
        "--max-message-bytes",
        "--max-body-bytes",
        "--max-batch-messages",
        "--channel-ttl-secs",
        "--max-channel-ttl-secs",
        "--ended-retention-secs",
        "--channels-per-address",
        "--create-rate-per-sec",
        "--create-burst",
        "--max-channels",
        "--connections-per-channel",
        "--idempotency-keys",
        "--header-read-timeout-ms",
        "--body-read-timeout-ms",
        "--cleanup-interval-ms",
        "--shutdown-grace-ms",
        "--log",
        "--log-format",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    for default in [
        "[default: 127.0.0.1:8080]",
        "[default: 15000]",
        "[default: 65536]",
        "[env: SSE_RELAY_LISTEN=",
    ] {
        assert!(help.contains(default), "{default} missing from --help");
    }
}

/// Runs the binary (`--log trace`, no `--secret`, then `extra`) through a smoke session and
/// SIGTERM's drain; returns the session's channel and all it logged (stderr, and stdout after
/// its address line).
async fn logged_session(extra: &[&str]) -> (Channel, String) {
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log",
            "trace",
            "--heartbeat-ms",
            "60000",
        ])
        .args(extra)
        .env_remove("SSE_RELAY_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let rest = line
        .strip_prefix("listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let port: u16 = rest.trim_end().parse().unwrap();
    assert!(port > 0);
    // Drive it with the test clients (a TestRelay without its own server task).
    let relay = TestRelay::remote(format!("127.0.0.1:{port}").parse().unwrap());
    let (ch, mut subs) = smoke_session(&relay).await;
    sigterm_drains(&child.id().to_string(), &mut subs).await;
    let code = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(code.status.success(), "{:?}", code.status);
    let mut logs = String::from_utf8_lossy(&code.stderr).into_owned();
    let _ = stdout.read_to_string(&mut logs);
    (ch, logs)
}

/// No token, in any form, in `logs`.
fn assert_no_tokens(ch: &Channel, logs: &str) {
    assert!(
        !logs.contains(&ch.sub) && !logs.contains(&ch.publ),
        "a token was logged:\n{logs}"
    );
    assert!(
        !logs.contains("token="),
        "a query string was logged:\n{logs}"
    );
}

#[tokio::test]
async fn binary_prints_its_address_serves_and_stops_on_sigterm_without_logging_tokens() {
    let (ch, logs) = logged_session(&[]).await;
    assert!(
        logs.contains("no --secret given"),
        "warns about the random key:\n{logs}"
    );
    assert!(logs.contains("shutting down"), "{logs}");
    assert_no_tokens(&ch, &logs);
}

#[tokio::test]
async fn journal_logs_lead_each_line_with_its_syslog_priority() {
    let (ch, logs) = logged_session(&["--log-format", "journal"]).await;
    let leads = ["<3>ERROR", "<4> WARN", "<6> INFO", "<7>DEBUG", "<7>TRACE"];
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            leads.iter().any(|p| line.starts_with(p)),
            "no priority matching the level: {line}"
        );
    }
    assert!(
        logs.contains("<4> WARN sse_relay: no --secret given"),
        "{logs}"
    );
    assert!(
        logs.contains("<6> INFO sse_relay: sse-relay started"),
        "{logs}"
    );
    assert!(logs.contains("code=\"BAD_REQUEST\""), "{logs}");
    assert_no_tokens(&ch, &logs);
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_without_tokens() {
    let (ch, logs) = logged_session(&["--log-format", "json"]).await;
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for v in &lines {
        assert!(
            v["timestamp"].is_string()
                && v["level"].is_string()
                && v["fields"]["message"].is_string(),
            "{v}"
        );
    }
    let said = |m: &str| lines.iter().any(|v| v["fields"]["message"] == m);
    assert!(said("sse-relay started"), "{logs}");
    assert!(said("stopped"), "{logs}");
    assert!(
        lines
            .iter()
            .any(|v| v["level"] == "DEBUG" && v["fields"]["code"] == "BAD_REQUEST"),
        "the refused publish is logged with its code:\n{logs}"
    );
    assert_no_tokens(&ch, &logs);
}

/// Starts the binary on `127.0.0.1:0` with a 32-byte `--secret`, `args` and `env`, stderr
/// discarded, and returns it with its first stdout line (the address line).
fn spawn_with_address(args: &[&str], env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--secret", SECRET_ARG])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}

#[test]
fn sigint_stops_the_binary_cleanly() {
    let (mut child, line) = spawn_with_address(&[], &[]);
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(child.wait().unwrap().success());
}

#[test]
fn unsupported_broker_and_bad_origin_are_refused_at_start() {
    for args in [
        ["--broker", "postgres://127.0.0.1:5432"],
        ["--allow-origin", "not an origin"],
    ] {
        let out = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "nothing on stdout: {args:?}");
    }
}

#[test]
fn an_unreachable_redis_is_refused_at_start_without_printing_the_password() {
    let port = common::redis_server::free_port();
    let url = format!("redis://user:hunter2@127.0.0.1:{port}/0");
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--broker", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "no address line before the broker is up"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Redis"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// Runs the binary with `args` (and `env`), expects it to refuse to start
/// (exit 2, nothing on stdout) and returns its stderr.
fn refused_at_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A relay that accepted the value would serve forever: stop it and fail.
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} {env:?} was accepted: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {args:?} {env:?}");
    stderr
}

/// Starts the binary with `args`, waits for its address line, stops it with
/// SIGTERM and returns the address.
fn starts(args: &[&str]) -> std::net::SocketAddr {
    let (mut child, line) = spawn_with_address(args, &[]);
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(child.wait().unwrap().success(), "{args:?}");
    line.trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{args:?}: unexpected first line {line:?}"))
        .parse()
        .unwrap()
}

#[test]
fn heartbeat_below_100_ms_is_refused_at_start() {
    for v in ["0", "99"] {
        let err = refused_at_start(&["--heartbeat-ms", v], &[]);
        assert!(
            err.contains("--heartbeat-ms") && err.contains("at least 100"),
            "{v}: {err}"
        );
    }
    let err = refused_at_start(&[], &[("SSE_RELAY_HEARTBEAT_MS", "0")]);
    assert!(err.contains("at least 100"), "{err}");
    starts(&["--heartbeat-ms", "100"]);
}

/// The `Access-Control-Allow-Origin` answered to a request from `origin`.
async fn allowed_origin(relay: &TestRelay, origin: &str) -> Option<String> {
    let r = relay
        .request(
            "GET",
            "/healthz",
            &[("origin", origin)],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 200);
    r.headers
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Kills the child on drop, so a failed assertion leaves no relay running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn allow_origin_is_normalized_like_the_browser_sends_it() {
    let (child, line) = spawn_with_address(
        &[
            "--allow-origin",
            "HTTP://LocalHost:5173",
            "--allow-origin",
            "https://App.Example.com:443/",
        ],
        &[("SSE_RELAY_ALLOW_ORIGIN", "http://ignored.example")],
    );
    let mut child = KillOnDrop(child);
    let addr = line
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let relay = TestRelay::remote(addr.parse().unwrap());
    for origin in ["http://localhost:5173", "https://app.example.com"] {
        assert_eq!(
            allowed_origin(&relay, origin).await.as_deref(),
            Some(origin)
        );
    }
    for other in [
        "http://localhost:5174",
        "https://localhost:5173",
        "http://ignored.example",
    ] {
        assert_eq!(allowed_origin(&relay, other).await, None, "{other}");
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || child.0.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
}

#[test]
fn allow_origin_that_can_never_match_is_refused_at_start() {
    for bad in [
        "http://localhost:5173/app",
        "http://localhost:5173/?x=1",
        "http://localhost:5173#top",
        "http://user:pw@localhost:5173",
        "ftp://localhost",
        "localhost:5173",
    ] {
        let err = refused_at_start(&["--allow-origin", bad], &[]);
        assert!(err.contains("--allow-origin"), "{bad}: {err}");
        assert!(err.contains("scheme://host[:port]"), "{bad}: {err}");
    }
    let err = refused_at_start(
        &[],
        &[(
            "SSE_RELAY_ALLOW_ORIGIN",
            "https://app.example.com,https://app.example.com/path",
        )],
    );
    assert!(err.contains("--allow-origin"), "{err}");
    starts(&["--allow-origin", "*"]);
    starts(&["--allow-origin", "http://[::1]:8080", "--allow-origin", "*"]);
}

#[test]
fn max_message_bytes_that_cannot_fit_in_a_body_is_refused_at_start() {
    // The default body limit (1 MiB) is smaller than this message limit.
    let err = refused_at_start(&["--max-message-bytes", "2000000"], &[]);
    assert!(
        err.contains("--max-message-bytes") && err.contains("--max-body-bytes"),
        "{err}"
    );
    // `{"data":…}` adds 9 bytes: with a 1,000-byte body, 991 is the largest
    // message that can be sent.
    let err = refused_at_start(
        &["--max-body-bytes", "1000", "--max-message-bytes", "992"],
        &[],
    );
    assert!(err.contains("at most 991"), "{err}");
    let err = refused_at_start(
        &["--max-body-bytes", "1000"],
        &[("SSE_RELAY_MAX_MESSAGE_BYTES", "1000")],
    );
    assert!(err.contains("--max-message-bytes"), "{err}");
    starts(&["--max-body-bytes", "1000", "--max-message-bytes", "991"]);
}

#[test]
fn weak_or_empty_secrets_are_refused_at_start_naming_the_flag() {
    let short = &SECRET_ARG[..31];
    let err = refused_at_start(&["--secret", short], &[]);
    assert!(
        err.contains("--secret must be at least 32 bytes (got 31)"),
        "{err}"
    );
    let err = refused_at_start(&["--secret", "abc"], &[]);
    assert!(err.contains("--secret"), "{err}");
    // An empty variable is not "no secret": it names the flag and refuses.
    let err = refused_at_start(&[], &[("SSE_RELAY_SECRET", "")]);
    assert!(err.contains("--secret is empty"), "{err}");
    let err = refused_at_start(&[], &[("SSE_RELAY_SECRET", "short")]);
    assert!(err.contains("--secret must be at least 32 bytes"), "{err}");
    // The previous key: as strong, and only beside a signing key.
    let err = refused_at_start(&["--secret", SECRET_ARG, "--previous-secret", short], &[]);
    assert!(
        err.contains("--previous-secret must be at least 32"),
        "{err}"
    );
    let err = refused_at_start(
        &["--previous-secret", SECRET_ARG],
        &[("SSE_RELAY_SECRET", "")],
    );
    assert!(err.contains("--secret is empty"), "{err}");
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--previous-secret", SECRET_ARG])
        .env_remove("SSE_RELAY_SECRET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--previous-secret needs --secret"), "{err}");
    starts(&["--previous-secret", "fedcba9876543210fedcba9876543210"]);
}

#[tokio::test]
async fn a_panic_in_one_request_leaves_the_process_and_its_streams_running() {
    let (child, line) = spawn_with_address(&["--test-hooks"], &[]);
    let _child = KillOnDrop(child);
    let addr = line
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let relay = TestRelay::remote(addr.parse().unwrap());
    let ch = relay.create().await;
    let mut sub = relay.live(T::Sse, &ch, "").await;
    for _ in 0..3 {
        let r = relay.post("/v1/test/panic", &[], "").await;
        assert_eq!((r.status, r.code().as_str()), (500, "INTERNAL"));
    }
    assert_eq!(relay.get("/healthz").await.status, 200);
    relay.publish(&ch, r#"{"data":"after"}"#).await;
    sub.expect_message(1, json!("after")).await;
    let metrics = relay.get("/metrics").await.body;
    assert!(
        metrics.contains("sse_relay_errors_total{code=\"INTERNAL\"} 3"),
        "{metrics}"
    );
}

/// Tests run the debug profile, which always unwinds: this keeps the release
/// profile (what `cargo build --release -p sse-relay` ships) from going back to
/// `panic = "abort"`, under which the panic above would end the process.
#[test]
fn the_release_profile_unwinds_and_the_wasm_profile_stays_small() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml")).unwrap();
    let section = |name: &str| -> Vec<String> {
        manifest
            .split("\n[")
            .find(|s| s.starts_with(&format!("{name}]")))
            .unwrap_or_else(|| panic!("no [{name}] in the workspace Cargo.toml"))
            .lines()
            .map(|l| l.replace(' ', ""))
            .collect()
    };
    let release = section("profile.release");
    assert!(
        release.contains(&"panic=\"unwind\"".to_owned()),
        "{release:?}"
    );
    assert!(release.contains(&"opt-level=3".to_owned()), "{release:?}");
    let wasm = section("profile.wasm-release");
    assert!(wasm.contains(&"opt-level=\"z\"".to_owned()), "{wasm:?}");
}

/// Kills the child on drop, so that a failed assertion leaves no relay behind.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A WebSocket subscriber whose peer stopped reading sits in the middle of a
/// send when shutdown begins: the relay process still exits at once, not
/// after the write timeout, the dead-peer timeout or the grace period (10
/// minutes each here).
#[tokio::test]
async fn sigterm_releases_a_websocket_writer_blocked_mid_send() {
    let (child, line) = spawn_with_address(
        &[
            "--write-timeout-ms",
            "600000",
            "--shutdown-grace-ms",
            "600000",
            "--backpressure-max-wait-ms",
            "0",
            "--max-message-bytes",
            "614400",
            // The dead-peer timeout (2 heartbeats) is 10 minutes too.
            "--heartbeat-ms",
            "300000",
        ],
        &[],
    );
    let mut child = Reaped(child);
    let addr: std::net::SocketAddr = line
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    let relay = TestRelay::remote(addr);
    let ch = relay.create().await;
    // A raw WebSocket client with a small receive buffer that never reads
    // past the handshake.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut raw = socket.connect(addr).await.unwrap();
    let req = format!(
        "GET /v1/channels/{}/ws?{} HTTP/1.1\r\nhost: {addr}\r\nupgrade: websocket\r\n\
         connection: Upgrade\r\nsec-websocket-version: 13\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        ch.id,
        ch.q()
    );
    tokio::io::AsyncWriteExt::write_all(&mut raw, req.as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut raw, &mut head)
        .await
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 101", "the upgrade is accepted");
    // 20 MiB for a reader that reads nothing: far more than the socket
    // buffers, so the relay's writer is left waiting in the middle of a send.
    let big = json!({ "data": "x".repeat(512 * 1024) }).to_string();
    for _ in 0..40 {
        assert_eq!(relay.publish(&ch, &big).await.status, 200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let stopped = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    // Far below the 10 minutes of the write timeout and the grace period.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the relay still runs 60 s after SIGTERM: the blocked writer holds the drain"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    drop(raw);
}
