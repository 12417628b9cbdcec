//! `src/transport/reader.js` (the browser SDK's connections and per-event path,
//! in JS) spells the protocol's names itself: each must be the protocol
//! crate's, so that renaming one there fails here instead of in a browser.
#![cfg(not(target_arch = "wasm32"))]

use sse_channel::protocol::frame::{ws_field, SSE_BATCH};
use sse_channel::protocol::EventKind;

const JS: &str = include_str!("../src/transport/reader.js");

fn quoted(name: &str) -> String {
    let mut s = "'".to_owned();
    s.push_str(name);
    s.push('\'');
    s
}

#[test]
fn reader_js_uses_the_protocol_names() {
    // The SSE event names it listens to, and the kind it delivers itself.
    for kind in [
        EventKind::Ready,
        EventKind::Message,
        EventKind::End,
        EventKind::Error,
        EventKind::Ping,
    ] {
        assert!(JS.contains(&quoted(kind.as_str())), "{kind:?} in reader.js");
    }
    assert!(JS.contains(&quoted(SSE_BATCH)));
    assert!(JS.contains("v.event === 'message'"));
    // The members of an event object it reads.
    for (member, read) in [
        (ws_field::EVENT, "v.event"),
        (ws_field::ID, "v.id"),
        (ws_field::DATA, "v.data"),
    ] {
        let mut want = "v.".to_owned();
        want.push_str(member);
        assert_eq!(want, read);
        assert!(JS.contains(read), "{read} in reader.js");
    }
    // The event objects it builds for named SSE events have the same members.
    assert!(JS.contains("one({ event, id: +e.lastEventId, data })"));
}
