//! The systemd unit shipped in `crates/relay/deploy/`: it verifies, it is hardened, and the
//! relay needs no system call and no address family that the unit refuses. The last is shown by
//! running the binary under `strace` through a whole session with the example settings (a
//! channel, an EventSource and a WebSocket reader, publishes, end, a bad request, `/metrics`,
//! Redis named by host name so that name resolution runs too, then SIGTERM's drain).
//! `systemd-analyze` and `strace` are installed by `scripts/setup.sh`.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::redis_server::RedisServer;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_sse-relay");
const UNIT: &str = include_str!("../deploy/sse-relay.service");
const ENV_EXAMPLE: &str = include_str!("../deploy/sse-relay.env");
/// The highest `systemd-analyze security` exposure the unit may have (0 safest, 10 exposed;
/// the unit scores 1.1: what is left is the network, which the relay exists to use).
const MAX_EXPOSURE: f64 = 1.5;

/// A fresh directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sse-relay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a tool that `scripts/setup.sh` installs; its status, stdout and stderr.
fn tool(cmd: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (scripts/setup.sh installs it)"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The values of `key=` in the unit, in order (a key may repeat).
fn directive(key: &str) -> Vec<&'static str> {
    UNIT.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_unit_verifies_and_is_hardened() {
    let dir = scratch("unit");
    let unit = dir.join("sse-relay.service");
    assert_eq!(directive("ExecStart"), ["/usr/local/bin/sse-relay"]);
    // verify also checks that ExecStart is executable: point it at the binary under test.
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/sse-relay", BIN)).unwrap();
    let path = unit.to_str().unwrap();
    let (ok, out, err) = tool("systemd-analyze", &["verify", path]);
    assert!(
        ok && out.trim().is_empty() && err.trim().is_empty(),
        "systemd-analyze verify:\n{out}{err}"
    );
    let (_, out, err) = tool("systemd-analyze", &["security", "--offline=true", path]);
    let level = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for sse-relay.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{out}{err}"));
    assert!(level <= MAX_EXPOSURE, "exposure {level}:\n{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every system call name in `items` (names and `@groups`, from `systemd-analyze
/// syscall-filter`'s listing `groups`), groups expanded.
fn expand(items: &[&str], groups: &HashMap<String, Vec<String>>, out: &mut BTreeSet<String>) {
    for item in items {
        match groups.get(*item) {
            Some(members) => {
                let members: Vec<&str> = members.iter().map(String::as_str).collect();
                expand(&members, groups, out);
            }
            None => {
                assert!(!item.starts_with('@'), "unknown system call group {item}");
                out.insert((*item).to_owned());
            }
        }
    }
}

/// The system calls the unit's `SystemCallFilter=` lines allow, as systemd reads them: the
/// allow lists' union, less every `~` list.
fn allowed_syscalls() -> BTreeSet<String> {
    let (ok, listing, err) = tool("systemd-analyze", &["syscall-filter"]);
    assert!(ok, "{err}");
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    let mut current = None;
    for line in listing.lines() {
        if let Some(name) = line.strip_prefix('@') {
            current = Some(format!("@{}", name.trim()));
            groups.entry(current.clone().unwrap()).or_default();
        } else if let (Some(g), item) = (&current, line.trim()) {
            if !item.is_empty() && !item.starts_with('#') {
                groups.get_mut(g).unwrap().push(item.to_owned());
            }
        }
    }
    let (mut allow, mut deny) = (BTreeSet::new(), BTreeSet::new());
    for line in directive("SystemCallFilter") {
        let (set, list) = match line.strip_prefix('~') {
            Some(rest) => (&mut deny, rest),
            None => (&mut allow, line),
        };
        expand(&list.split_whitespace().collect::<Vec<_>>(), &groups, set);
    }
    assert!(
        allow.contains("read") && deny.contains("setrlimit"),
        "filter not read: {allow:?}"
    );
    allow.difference(&deny).cloned().collect()
}

/// The names of the system calls in an `strace -f` log, and the address families of the
/// sockets it made.
fn traced(log: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut calls, mut families) = (BTreeSet::new(), BTreeSet::new());
    for line in log.lines() {
        // "PID name(args) = ret", or "PID name(args <unfinished ...>"; resumptions,
        // signals and exits ("<...", "---", "+++") name nothing new.
        let rest = line
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if name == "socket" || name == "socketpair" {
            families.insert(args.split([',', ')']).next().unwrap_or("").to_owned());
        }
        calls.insert(name.to_owned());
    }
    (calls, families)
}

/// strace and the relay it runs, both stopped if the test ends early.
struct Traced {
    strace: std::process::Child,
    /// The relay's process id, once known.
    relay: String,
}

impl Drop for Traced {
    fn drop(&mut self) {
        // strace outlives its tracee: once it has exited, so has the relay (and its id may
        // belong to another process by now).
        if matches!(self.strace.try_wait(), Ok(None)) {
            if !self.relay.is_empty() {
                let _ = Command::new("kill").args(["-KILL", &self.relay]).status();
            }
            let _ = self.strace.kill();
            let _ = self.strace.wait();
        }
    }
}

#[tokio::test]
async fn the_relay_needs_nothing_the_unit_refuses() {
    let allowed = allowed_syscalls();
    let families: BTreeSet<String> = directive("RestrictAddressFamilies")
        .iter()
        .flat_map(|l| l.split_whitespace())
        .map(str::to_owned)
        .collect();
    let redis = RedisServer::start();
    let dir = scratch("strace");
    let log = dir.join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-o", log.to_str().unwrap(), BIN]);
    // The unit's Environment= lines, then the example settings (systemd's order), with what
    // this test needs in place of their placeholders.
    let example = ENV_EXAMPLE.lines().filter(|l| !l.starts_with('#'));
    for line in directive("Environment").into_iter().chain(example) {
        if let Some((k, v)) = line.split_once('=') {
            cmd.env(k, v);
        }
    }
    let strace = cmd
        .env("SSE_RELAY_LISTEN", "127.0.0.1:0")
        .env("SSE_RELAY_SECRET", "0123456789abcdef0123456789abcdef")
        .env(
            "SSE_RELAY_BROKER",
            format!("redis://localhost:{}/0", redis.port),
        )
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("strace (scripts/setup.sh installs it)");
    let mut run = Traced {
        strace,
        relay: String::new(),
    };
    let mut stdout = BufReader::new(run.strace.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    // The relay is strace's child. SIGTERM goes to it: strace would detach and leave it running.
    let tracer = run.strace.id();
    run.relay = std::fs::read_to_string(format!("/proc/{tracer}/task/{tracer}/children"))
        .unwrap()
        .trim()
        .to_owned();

    let relay = TestRelay::remote(addr);
    let (_, mut subs) = smoke_session(&relay).await;
    let other = relay.create().await;
    relay.end(&other, r#"{"data":"done"}"#).await;
    assert!(relay
        .get("/metrics")
        .await
        .body
        .contains("sse_relay_channels"));
    sigterm_drains(&run.relay, &mut subs).await;
    let status = tokio::task::spawn_blocking(move || run.strace.wait().unwrap())
        .await
        .unwrap();
    drop(stdout);
    let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(
        stderr.contains("<6> INFO sse_relay: sse-relay started"),
        "the unit's log format (journal):\n{stderr}"
    );

    let (calls, made) = traced(&std::fs::read_to_string(&log).unwrap());
    for expected in ["accept4", "epoll_wait", "connect", "writev"] {
        assert!(calls.contains(expected), "{expected} not traced: {calls:?}");
    }
    let refused: Vec<_> = calls.difference(&allowed).collect();
    assert!(
        refused.is_empty(),
        "the unit's SystemCallFilter refuses {refused:?} (traced: {calls:?})"
    );
    let refused: Vec<_> = made.difference(&families).collect();
    assert!(
        refused.is_empty(),
        "RestrictAddressFamilies refuses {refused:?} (sockets made: {made:?})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
