//! The EventSource transport: `GET …/events?…&batch=1`, Server-Sent Events: a
//! named event per event, or a `batch` event carrying a burst of them (a JSON
//! array of WebSocket-shaped frames, read as on the WebSocket).

use std::cell::Cell;
use std::rc::Rc;

use sse_channel_protocol::frame::{parse_event_id, SSE_BATCH};
use sse_channel_protocol::EventKind;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{EventSource, MessageEvent};

use super::websocket::read_frames;
use super::{json_parse, Incoming, Sink, Transport};

/// The named events the relay sends on this transport; `None` is a batch
/// ([`SSE_BATCH`]).
const KINDS: [Option<EventKind>; 6] = [
    Some(EventKind::Ready),
    Some(EventKind::Message),
    Some(EventKind::End),
    Some(EventKind::Error),
    Some(EventKind::Ping),
    None,
];

/// An event name and the listener added for it.
type Listener = (&'static str, Closure<dyn FnMut(JsValue)>);

/// A browser `EventSource` and the listeners it owns.
pub(crate) struct EventSourceTransport {
    es: EventSource,
    // (event name, listener), detached in `close`.
    listeners: Vec<Listener>,
}

impl Transport for EventSourceTransport {
    fn connect(url: &str, sink: Sink) -> Result<Self, JsValue> {
        let es = EventSource::new(url)?;
        let opened = Rc::new(Cell::new(false));
        let mut listeners: Vec<Listener> = Vec::with_capacity(7);

        {
            let opened = opened.clone();
            listeners.push(("open", Closure::new(move |_: JsValue| opened.set(true))));
        }
        for kind in KINDS {
            let sink = sink.clone();
            let es2 = es.clone();
            let opened = opened.clone();
            let cb = Closure::new(move |e: JsValue| {
                // Only an `error` listener can see a plain Event: the others skip
                // the `instanceof` (a call into JS per message).
                let msg = if kind == Some(EventKind::Error) {
                    e.dyn_ref::<MessageEvent>()
                } else {
                    Some(e.unchecked_ref::<MessageEvent>())
                };
                let Some(msg) = msg else {
                    // A plain `error` Event is the connection failing or dropping
                    // (an in-band error frame is a MessageEvent). Close at once so
                    // the browser does not reconnect on its own: the SDK's backoff
                    // is the only retry policy.
                    es2.close();
                    sink(Incoming::Lost {
                        opened: opened.get(),
                    });
                    return;
                };
                let data = json_parse(&msg.data());
                let frame = match (kind, data) {
                    (_, Err(_)) => false,
                    // A batch: its members carry their own ids.
                    (None, Ok(list)) => read_frames(&list, &sink),
                    (Some(kind), Ok(data)) => {
                        // `error` too: the final one (fail, cancel) has an id. A
                        // frame without an `id:` line repeats the last id; the
                        // machine tells.
                        let id = match kind {
                            EventKind::Message | EventKind::End | EventKind::Error => {
                                parse_event_id(&msg.last_event_id())
                            }
                            _ => None,
                        };
                        sink(Incoming::Frame { kind, id, data });
                        true
                    }
                };
                if !frame {
                    es2.close();
                    sink(Incoming::Lost { opened: true });
                }
            });
            listeners.push((kind.map_or(SSE_BATCH, EventKind::as_str), cb));
        }
        for (name, cb) in &listeners {
            es.add_event_listener_with_callback(name, cb.as_ref().unchecked_ref())?;
        }
        Ok(Self { es, listeners })
    }

    fn close(&mut self) {
        if self.listeners.is_empty() {
            return;
        }
        self.es.close();
        for (name, cb) in self.listeners.drain(..) {
            let _ = self
                .es
                .remove_event_listener_with_callback(name, cb.as_ref().unchecked_ref());
        }
    }
}

impl Drop for EventSourceTransport {
    fn drop(&mut self) {
        self.close();
    }
}
