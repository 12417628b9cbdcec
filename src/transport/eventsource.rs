//! The EventSource transport: `GET …/events`, Server-Sent Events.

use std::cell::Cell;
use std::rc::Rc;

use sse_channel_protocol::frame::parse_event_id;
use sse_channel_protocol::EventKind;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{EventSource, MessageEvent};

use super::{json_parse, Incoming, Sink, Transport};

/// The named events the relay sends on this transport.
const KINDS: [EventKind; 5] = [
    EventKind::Ready,
    EventKind::Message,
    EventKind::End,
    EventKind::Error,
    EventKind::Ping,
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
        let mut listeners: Vec<Listener> = Vec::with_capacity(6);

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
                let msg = if kind == EventKind::Error {
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
                let Ok(data) = json_parse(&msg.data()) else {
                    es2.close();
                    sink(Incoming::Lost { opened: true });
                    return;
                };
                // `error` too: the final one (fail, cancel) has an id. A frame
                // without an `id:` line repeats the last id; the machine tells.
                let id = match kind {
                    EventKind::Message | EventKind::End | EventKind::Error => {
                        parse_event_id(&msg.last_event_id())
                    }
                    _ => None,
                };
                sink(Incoming::Frame { kind, id, data });
            });
            listeners.push((kind.as_str(), cb));
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
