//! Graceful shutdown against a real relay.

mod common;

use common::*;
use serde_json::json;
use sse_relay::Config;

/// A grace period far longer than `TestRelay::shutdown` waits (10 s): when
/// shutdown completes, it is because every stream and connection closed, not
/// because the grace period ran out.
fn long_grace() -> Config {
    Config {
        shutdown_grace_ms: 60_000,
        ..config()
    }
}

#[tokio::test]
async fn graceful_shutdown_closes_streams_so_clients_reconnect() {
    let mut relay = start(long_grace()).await;
    let ch = relay.create().await;
    let mut sse = relay.live(T::Sse, &ch, "").await;
    let mut ws = relay.live(T::Ws, &ch, "").await;
    relay.publish(&ch, r#"{"data":1}"#).await;
    sse.expect_message(1, json!(1)).await;
    ws.expect_message(1, json!(1)).await;
    relay.begin_shutdown();
    for sub in [&mut sse, &mut ws] {
        let e = sub.next().await.unwrap();
        assert_eq!(e.event, "error");
        assert_eq!(e.data["code"], "SHUTTING_DOWN");
    }
    sse.closed().await;
    assert_eq!(ws.closed().await, Some(4503));
    relay.shutdown().await;
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(relay.addr).await.is_err());
}

#[tokio::test]
async fn idle_relay_stops_without_waiting_for_the_grace_period() {
    let mut relay = start(long_grace()).await;
    assert_eq!(relay.get("/healthz").await.status, 200);
    relay.shutdown().await;
}
