//! Readers first: a publish is answered only once this node's readers waiting
//! at the head have written the event (`flow::taken`), so when the publisher
//! reads its answer the event is already in the reader's socket.

mod common;

use common::raw::RawConn;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_is_in_the_readers_socket_before_the_publish_is_answered() {
    let relay = start(config()).await;
    for transport in ["events", "ws"] {
        let ch = relay.create().await;
        let upgrade = if transport == "ws" {
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        } else {
            ""
        };
        let get = format!(
            "GET /v1/channels/{}/{transport}?token={} HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n",
            ch.id, ch.sub
        );
        let mut sub = RawConn::open(&relay, get).await;
        sub.read_until("ready").await;
        let mut publ = RawConn::connect(&relay).await;
        for i in 0..20 {
            let body = format!(r#"{{"data":"m{i}"}}"#);
            let post = format!(
                "POST /v1/channels/{}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                ch.id,
                ch.publ,
                body.len()
            );
            publ.send(post).await;
            publ.read_until("}").await;
            // No waiting: whatever the relay wrote before the answer is here.
            let mut now = vec![0u8; 4096];
            let n = sub.s.try_read(&mut now).unwrap_or(0);
            let got = String::from_utf8_lossy(&now[..n]);
            assert!(
                got.contains(&format!("\"m{i}\"")),
                "{transport}: publish {i} answered before the event reached the reader (had {got:?})"
            );
        }
    }
}
