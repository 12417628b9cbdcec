//! Test helpers: a real relay on 127.0.0.1:0 and small HTTP / SSE / WebSocket
//! clients that speak to it over loopback.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sse_channel_protocol::frame::{SseEvent, SseParser};
use sse_channel_protocol::{Claims, Scope};
use sse_relay::token::TokenKey;
use sse_relay::Config;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

pub mod raw;
pub mod redis_server;

pub const SECRET: &[u8] = b"test-secret-of-at-least-32-bytes!!";
/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(5);

/// A running relay.
pub struct TestRelay {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Config for tests: known secret, fast heartbeats and sweeps.
pub fn config() -> Config {
    Config {
        secret: Some(SECRET.to_vec()),
        heartbeat_ms: 60_000,
        cleanup_interval_ms: 50,
        shutdown_grace_ms: 2000,
        ..Default::default()
    }
}

pub async fn start(config: Config) -> TestRelay {
    let broker = sse_relay::memory_broker(&config);
    start_with_broker(config, broker).await
}

/// A relay over a given broker (e.g. one another relay shares).
pub async fn start_with_broker(
    config: Config,
    broker: std::sync::Arc<dyn sse_relay::broker::Broker>,
) -> TestRelay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(sse_relay::run_with_broker(
        listener,
        config,
        broker,
        async {
            let _ = rx.await;
        },
    ));
    TestRelay {
        addr,
        stop: Some(tx),
        task: Some(task),
    }
}

impl TestRelay {
    /// Clients for a relay running elsewhere (e.g. the binary).
    pub fn remote(addr: SocketAddr) -> Self {
        Self {
            addr,
            stop: None,
            task: None,
        }
    }

    /// Begins graceful shutdown and waits until `run` returns.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("relay stops in time")
                .unwrap()
                .unwrap();
        }
    }

    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    pub async fn create(&self) -> Channel {
        let r = self.post("/v1/channels", &[], "").await;
        assert_eq!(r.status, 201, "{}", r.body);
        let v = r.json();
        Channel {
            id: v["channelId"].as_str().unwrap().to_owned(),
            sub: v["subscribeToken"].as_str().unwrap().to_owned(),
            publ: v["publishToken"].as_str().unwrap().to_owned(),
            expires_at: v["expiresAt"].as_u64().unwrap(),
        }
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let mut send = self.connect().await;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = send
            .send_request(req.body(Full::new(body.into())).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], Bytes::new()).await
    }

    /// The value of the `/metrics` line that starts with `line` (a metric
    /// name, with its labels if it has any) followed by a space.
    pub async fn metric(&self, line: &str) -> u64 {
        let m = self.get("/metrics").await.body;
        m.lines()
            .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {line} in {m}"))
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        self.request(
            "POST",
            path,
            headers,
            Bytes::copy_from_slice(body.as_bytes()),
        )
        .await
    }

    pub async fn publish(&self, ch: &Channel, body: &str) -> Resp {
        let auth = format!("Bearer {}", ch.publ);
        self.post(
            &format!("/v1/channels/{}/messages", ch.id),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    pub async fn end(&self, ch: &Channel, body: &str) -> Resp {
        let auth = format!("Bearer {}", ch.publ);
        self.post(
            &format!("/v1/channels/{}/end", ch.id),
            &[("authorization", &auth)],
            body,
        )
        .await
    }

    /// `POST /v1/channels/{id}/{route}` with `Authorization: Bearer <token>`.
    pub async fn call(&self, ch: &Channel, route: &str, token: &str, body: &str) -> Resp {
        let auth = format!("Bearer {token}");
        self.post(
            &format!("/v1/channels/{}/{route}", ch.id),
            &[("authorization", &auth)],
            body,
        )
        .await
    }

    /// `POST …/fail` with the publish token.
    pub async fn fail(&self, ch: &Channel, body: &str) -> Resp {
        self.call(ch, "fail", &ch.publ, body).await
    }

    /// `POST …/cancel` with the subscribe token.
    pub async fn cancel(&self, ch: &Channel, body: &str) -> Resp {
        self.call(ch, "cancel", &ch.sub, body).await
    }

    /// `GET …/wait{query}` with `token`.
    pub async fn wait(&self, ch: &Channel, query: &str, token: &str) -> Resp {
        let auth = format!("Bearer {token}");
        self.request(
            "GET",
            &format!("/v1/channels/{}/wait{query}", ch.id),
            &[("authorization", &auth)],
            Bytes::new(),
        )
        .await
    }

    /// Creates a channel with this create body.
    pub async fn create_with(&self, body: &str) -> Channel {
        let r = self.post("/v1/channels", &[], body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let v = r.json();
        Channel {
            id: v["channelId"].as_str().unwrap().to_owned(),
            sub: v["subscribeToken"].as_str().unwrap().to_owned(),
            publ: v["publishToken"].as_str().unwrap().to_owned(),
            expires_at: v["expiresAt"].as_u64().unwrap(),
        }
    }

    /// A fresh HTTP/1.1 connection to the relay (its driver runs on a task).
    async fn connect(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        self.connect_with(None).await
    }

    /// [`Self::connect`] with the socket's receive buffer set to `rcvbuf`
    /// bytes (a client whose unread data soon fills the connection).
    async fn connect_with(
        &self,
        rcvbuf: Option<u32>,
    ) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let stream = socket.connect(self.addr).await.unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        send
    }

    /// Opens an EventSource-style stream. `query` is appended after `?`.
    pub async fn sse(&self, id: &str, query: &str, headers: &[(&str, &str)]) -> Sse {
        self.sse_with(id, query, headers, None).await
    }

    /// [`Self::sse`] over a connection with a receive buffer of `rcvbuf` bytes.
    /// Data is read from the socket only while the stream is polled.
    pub async fn sse_with(
        &self,
        id: &str,
        query: &str,
        headers: &[(&str, &str)],
        rcvbuf: Option<u32>,
    ) -> Sse {
        let mut send = self.connect_with(rcvbuf).await;
        let mut req = Request::builder()
            .uri(format!("/v1/channels/{id}/events?{query}"))
            .header("host", self.addr.to_string())
            .header("accept", "text/event-stream");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = send
            .send_request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        Sse {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.into_body(),
            parser: SseParser::default(),
            queue: Default::default(),
        }
    }

    pub async fn ws(&self, id: &str, query: &str) -> Ws {
        let url = format!("ws://{}/v1/channels/{id}/ws?{query}", self.addr);
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Ws { socket }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

pub struct Channel {
    pub id: String,
    pub sub: String,
    pub publ: String,
    pub expires_at: u64,
}

impl Channel {
    pub fn q(&self) -> String {
        format!("token={}", self.sub)
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    /// The error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub struct Sse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    body: Incoming,
    parser: SseParser,
    queue: std::collections::VecDeque<SseEvent>,
}

impl Sse {
    /// The next event, `None` when the stream ended cleanly. Panics on timeout or
    /// on a broken stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        self.try_next().await.expect("stream not broken")
    }

    /// Like `next`, but an aborted connection is `Err`.
    pub async fn try_next(&mut self) -> Result<Option<SseEvent>, String> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Ok(Some(e));
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame())
                .await
                .expect("SSE event in time");
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        let text = std::str::from_utf8(&data).unwrap().to_owned();
                        self.queue.extend(self.parser.feed(&text));
                    }
                }
            }
        }
    }

    /// The next event that is not a heartbeat.
    pub async fn next_data(&mut self) -> Option<SseEvent> {
        loop {
            let e = self.next().await?;
            if e.event != "ping" {
                return Some(e);
            }
        }
    }
}

pub struct Ws {
    pub socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
}

/// What a WebSocket delivered.
#[derive(Debug)]
pub enum WsItem {
    Frame(Value),
    Closed(Option<u16>),
}

impl Ws {
    pub async fn next(&mut self) -> WsItem {
        loop {
            let m = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("WebSocket frame in time");
            match m {
                Some(Ok(Message::Text(t))) => {
                    return WsItem::Frame(serde_json::from_str(t.as_str()).unwrap())
                }
                Some(Ok(Message::Close(c))) => {
                    // Poll once more so tungstenite sends its close reply (as a
                    // browser does), completing the closing handshake.
                    let _ = tokio::time::timeout(WAIT, self.socket.next()).await;
                    return WsItem::Closed(c.map(|c| c.code.into()));
                }
                None | Some(Err(_)) => return WsItem::Closed(None),
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn frame(&mut self) -> Value {
        match self.next().await {
            WsItem::Frame(v) => v,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.to_owned().into()))
            .await
            .unwrap();
    }
}

/// A token signed with the test secret.
pub fn mint(id: &str, scope: Scope, exp: u64) -> String {
    TokenKey::new(SECRET).sign(&Claims {
        sub: id.to_owned(),
        scope,
        exp,
    })
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub const UNKNOWN_ID: &str = "00000000000000000000000000000000";

/// The two transports, for scenarios that run over both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    Sse,
    Ws,
}

pub const BOTH: [T; 2] = [T::Sse, T::Ws];

/// One event as either transport delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ev {
    pub id: Option<u64>,
    pub event: String,
    pub data: Value,
}

pub enum Sub {
    Sse(Sse),
    Ws(Ws, Option<Option<u16>>),
}

impl Sub {
    /// The next non-heartbeat event; `None` once the stream closed.
    pub async fn next(&mut self) -> Option<Ev> {
        loop {
            let ev = self.next_any().await?;
            if ev.event != "ping" {
                return Some(ev);
            }
        }
    }

    /// The next event including heartbeats.
    pub async fn next_any(&mut self) -> Option<Ev> {
        match self {
            Sub::Sse(s) => {
                let e = s.next().await?;
                Some(Ev {
                    id: e.id.map(|i| i.parse().unwrap()),
                    event: e.event,
                    data: serde_json::from_str(&e.data).unwrap(),
                })
            }
            Sub::Ws(w, closed) => {
                if closed.is_some() {
                    return None;
                }
                match w.next().await {
                    WsItem::Frame(v) => Some(Ev {
                        id: v.get("id").and_then(Value::as_u64),
                        event: v["event"].as_str().unwrap().to_owned(),
                        data: v.get("data").cloned().unwrap_or(Value::Null),
                    }),
                    WsItem::Closed(code) => {
                        *closed = Some(code);
                        None
                    }
                }
            }
        }
    }

    /// Asserts the stream ends now; returns the WebSocket close code (SSE: None).
    pub async fn closed(&mut self) -> Option<u16> {
        let e = self.next().await;
        assert!(e.is_none(), "expected the stream to close, got {e:?}");
        match self {
            Sub::Sse(_) => None,
            Sub::Ws(_, c) => c.flatten(),
        }
    }

    /// Reads the `ready` frame and returns its data.
    pub async fn ready(mut self) -> (Self, Value) {
        let e = self.next().await.expect("ready frame");
        assert_eq!(e.event, "ready", "{e:?}");
        assert_eq!(e.id, None);
        (self, e.data)
    }

    /// Reads events until (and including) the next one with an id, checking its
    /// message data.
    pub async fn expect_message(&mut self, id: u64, data: Value) {
        let e = self.next().await.expect("an event");
        assert_eq!(
            e,
            Ev {
                id: Some(id),
                event: "message".into(),
                data
            }
        );
    }
}

impl TestRelay {
    /// Subscribes on `t`; `query` is the query string after `?`.
    pub async fn subscribe(&self, t: T, id: &str, query: &str) -> Sub {
        match t {
            T::Sse => {
                let s = self.sse(id, query, &[]).await;
                assert_eq!(s.status, 200);
                Sub::Sse(s)
            }
            T::Ws => Sub::Ws(self.ws(id, query).await, None),
        }
    }

    /// Subscribes and consumes the `ready` frame.
    pub async fn live(&self, t: T, ch: &Channel, extra: &str) -> Sub {
        let q = if extra.is_empty() {
            ch.q()
        } else {
            format!("{}&{extra}", ch.q())
        };
        self.subscribe(t, &ch.id, &q).await.ready().await.0
    }
}

/// What a smoke test of a running relay (the binary) does first: a channel whose
/// EventSource and WebSocket readers have each received one message, and a malformed
/// publish refused with 400.
pub async fn smoke_session(relay: &TestRelay) -> (Channel, [Sub; 2]) {
    let ch = relay.create().await;
    let mut subs = [
        relay.live(T::Sse, &ch, "").await,
        relay.live(T::Ws, &ch, "").await,
    ];
    relay.publish(&ch, r#"{"data":"x"}"#).await;
    for sub in &mut subs {
        sub.expect_message(1, serde_json::json!("x")).await;
    }
    assert_eq!(relay.publish(&ch, "{").await.status, 400);
    (ch, subs)
}

/// Sends SIGTERM to process `pid` and checks that every reader of `subs` is told
/// `SHUTTING_DOWN` (the drain).
pub async fn sigterm_drains(pid: &str, subs: &mut [Sub]) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {pid}");
    for sub in subs {
        let e = sub.next().await.unwrap();
        assert_eq!(e.data["code"], "SHUTTING_DOWN");
    }
}

/// The `error` frame a refused stream sends, and its close code (WebSocket).
pub async fn refused(mut sub: Sub) -> (String, Option<u16>) {
    let e = sub.next().await.expect("an error frame");
    assert_eq!(e.event, "error", "{e:?}");
    assert_eq!(e.id, None);
    let code = e.data["code"].as_str().unwrap().to_owned();
    assert!(e.data["message"].is_string());
    (code, sub.closed().await)
}
