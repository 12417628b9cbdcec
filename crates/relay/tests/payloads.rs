//! Property test against a real relay: any JSON value published comes back
//! equal, as exactly one event, on both transports; and the library's `app()`
//! router works on its own.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        // Line breaks, SSE syntax, quotes, unicode.
        "(\\PC|[\r\n:]|data: |event: |id: )*".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z\n\r:]{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn any_json_round_trips_on_both_transports() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(start(sse_relay::Config {
        create_burst: 100_000,
        create_rate_per_sec: 100_000,
        channels_per_address: 100_000,
        ..config()
    }));
    let cfg = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(cfg, |(v in arb_json(), pretty in any::<bool>())| {
        // Pretty-printing puts raw line breaks into the JSON text itself.
        let data = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
        let body = format!("{{\"data\":{data}}}");
        // Parsed the way the test client parses what it receives (serde_json's
        // float parsing is not bit-exact): what is compared is the relay's fidelity.
        let v: Value = serde_json::from_str(&data).unwrap();
        rt.block_on(async {
            let ch = relay.create().await;
            let mut sse = relay.live(T::Sse, &ch, "").await;
            let mut ws = relay.live(T::Ws, &ch, "").await;
            let r = relay.publish(&ch, &body).await;
            assert_eq!(r.json(), json!({"firstId": 1, "lastId": 1, "subscribers": 2}));
            relay.end(&ch, &body).await;
            for sub in [&mut sse, &mut ws] {
                sub.expect_message(1, v.clone()).await;
                let end = sub.next().await.unwrap();
                assert_eq!((end.id, end.event.as_str(), &end.data), (Some(2), "end", &v));
                sub.closed().await;
            }
        });
    });
}

#[tokio::test]
async fn app_router_serves_on_its_own() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = sse_relay::app(config());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let relay = TestRelay::remote(addr);
    let ch = relay.create().await;
    let mut sub = relay.live(T::Ws, &ch, "").await;
    relay.publish(&ch, r#"{"data":[1]}"#).await;
    sub.expect_message(1, json!([1])).await;
}
