//! Readers first: a publish is answered only once this node's readers waiting
//! at the head have written the event (`flow::taken`), so when the publisher
//! reads its answer the event is already in the reader's socket.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads from `s` until `needle` has arrived (bounded by [`WAIT`]).
async fn read_until(s: &mut TcpStream, buf: &mut Vec<u8>, needle: &[u8]) {
    tokio::time::timeout(WAIT, async {
        while !buf.windows(needle.len()).any(|w| w == needle) {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before {:?}", String::from_utf8_lossy(needle));
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_is_in_the_readers_socket_before_the_publish_is_answered() {
    let relay = start(config()).await;
    for transport in ["events", "ws"] {
        let ch = relay.create().await;
        let mut sub = TcpStream::connect(relay.addr).await.unwrap();
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
        sub.write_all(get.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        read_until(&mut sub, &mut seen, b"ready").await;
        let mut publ = TcpStream::connect(relay.addr).await.unwrap();
        for i in 0..20 {
            let body = format!(r#"{{"data":"m{i}"}}"#);
            let post = format!(
                "POST /v1/channels/{}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                ch.id,
                ch.publ,
                body.len()
            );
            publ.write_all(post.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            read_until(&mut publ, &mut answer, b"}").await;
            // No waiting: whatever the relay wrote before the answer is here.
            let mut now = vec![0u8; 4096];
            let n = sub.try_read(&mut now).unwrap_or(0);
            let got = String::from_utf8_lossy(&now[..n]);
            assert!(
                got.contains(&format!("\"m{i}\"")),
                "{transport}: publish {i} answered before the event reached the reader (had {got:?})"
            );
        }
    }
}
