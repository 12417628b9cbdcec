//! A real `redis-server` on a free loopback port, stopped when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// The append-only directory (persistent servers only).
    dir: Option<PathBuf>,
}

impl RedisServer {
    /// A server without persistence (`--save '' --appendonly no`).
    pub fn start() -> Self {
        Self::spawn(free_port(), None)
    }

    /// A server that writes every command to its append-only file in `dir`
    /// before answering (`--appendonly yes --appendfsync always`).
    pub fn start_persistent(dir: &Path) -> Self {
        Self::spawn(free_port(), Some(dir.to_owned()))
    }

    fn spawn(port: u16, dir: Option<PathBuf>) -> Self {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--protected-mode", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        match &dir {
            Some(d) => cmd
                .args(["--appendonly", "yes", "--appendfsync", "always"])
                .args(["--dir", d.to_str().unwrap()]),
            None => cmd.args(["--appendonly", "no"]),
        };
        let child = cmd
            .spawn()
            .expect("redis-server is installed (scripts/setup.sh installs it)");
        let server = Self {
            port,
            child: Some(child),
            dir,
        };
        server.wait_ready();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.ping() {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True when the server answers `PING` (and is done loading its data).
    pub fn ping(&self) -> bool {
        self.command("PING").is_some_and(|r| r.starts_with("+PONG"))
    }

    /// Sends one inline command and returns the first reply chunk.
    pub fn command(&self, line: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(format!("{line}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// `kill -9`: whatever was not yet written to disk is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port (and directory).
    pub fn restart(&mut self) {
        self.kill();
        let again = Self::spawn(self.port, self.dir.take());
        *self = again;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
