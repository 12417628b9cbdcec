//! Graceful shutdown against a real relay.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test]
async fn graceful_shutdown_closes_streams_so_clients_reconnect() {
    let mut relay = start(config()).await;
    let ch = relay.create().await;
    let mut sse = relay.live(T::Sse, &ch, "").await;
    let mut ws = relay.live(T::Ws, &ch, "").await;
    relay.publish(&ch, r#"{"data":1}"#).await;
    sse.expect_message(1, json!(1)).await;
    ws.expect_message(1, json!(1)).await;
    let started = Instant::now();
    relay.begin_shutdown();
    for sub in [&mut sse, &mut ws] {
        let e = sub.next().await.unwrap();
        assert_eq!(e.event, "error");
        assert_eq!(e.data["code"], "SHUTTING_DOWN");
    }
    sse.closed().await;
    assert_eq!(ws.closed().await, Some(4503));
    relay.shutdown().await;
    // Streams closed promptly: well inside the 2 s grace period.
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(relay.addr).await.is_err());
}

#[tokio::test]
async fn idle_relay_stops_at_once() {
    let mut relay = start(config()).await;
    assert_eq!(relay.get("/healthz").await.status, 200);
    let started = Instant::now();
    relay.shutdown().await;
    assert!(started.elapsed() < Duration::from_millis(1000));
}
