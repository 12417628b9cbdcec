//! The executor's half of the per-event path (`src/transport/reader.rs`): a
//! `message` that the machine would turn into [`Effect::Message`] alone (see
//! [`Machine::delivering`]) is delivered by JS, with no call into wasm per
//! event. The executor tells JS which connection that holds for and the last
//! id, and before each input reads back the last id JS delivered
//! ([`Input::Delivered`]), so the machine's cursor, the getters and a
//! reconnection's resume point see every message.

use super::run::on_incoming;
use super::*;
use crate::transport::{dispatch, read_one, Dispatch};

/// The channel's [`Dispatch`] and the wasm's reader of the frames JS passes
/// on, from its first connection until it closes.
pub(super) struct Fast {
    pub(super) d: Dispatch,
    _read: Closure<dyn FnMut(JsValue)>,
}

impl Drop for Fast {
    fn drop(&mut self) {
        // A reader still running (a listener closed the channel amid a batch)
        // then delivers nothing more and passes nothing to the dropped closure.
        self.d.set_c(0);
        self.d.set_f(&JsValue::NULL);
    }
}

impl Inner {
    /// Makes the channel's [`Dispatch`] (at its first connection).
    pub(super) fn make_dispatch(&mut self, shared: &Shared) {
        if self.fast.is_none() {
            let weak = Rc::downgrade(shared);
            let read = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
                with(&weak, |s| {
                    let conn = s.borrow().fast.as_ref().map_or(0, |f| f.d.k());
                    on_incoming(s, conn, read_one(&v));
                })
            });
            let d = dispatch(read.as_ref());
            self.fast = Some(Fast { d, _read: read });
            self.publish_listeners();
        }
    }

    /// Before an input: the messages JS delivered since the last one, into the
    /// machine (they came before the input).
    pub(super) fn pull(&mut self, out: &mut Vec<Effect>) {
        let (Some(f), conn) = (&self.fast, self.granted) else {
            return;
        };
        if conn == 0 {
            return;
        }
        let l = f.d.l();
        if l > self.shared_l {
            let at = f.d.t();
            self.shared_l = l;
            self.m
                .handle(at, Input::Delivered { conn, id: l as u64 }, out);
        }
    }

    /// After an input: the connection JS may deliver for (none once `close`
    /// was delivered) and the last id.
    pub(super) fn push(&mut self) {
        let Some(f) = &self.fast else { return };
        let c = match self.m.delivering() {
            Some(c) if !self.done => c,
            _ => 0,
        };
        let l = self.m.last_event_id() as f64;
        if l != self.shared_l {
            f.d.set_l(l);
            self.shared_l = l;
        }
        if c != self.granted {
            f.d.set_c(c);
            self.granted = c;
        }
    }

    /// Gives JS the `message` listeners: a new array (so that a delivery in
    /// progress keeps its snapshot), or `null` when one of them is `once` (the
    /// wasm then delivers, and removes it).
    pub(super) fn publish_listeners(&self) {
        let Some(f) = &self.fast else { return };
        let list = js_sys::Array::new();
        let mut once = self.done;
        for l in self.listeners.iter().filter(|l| l.event == Ev::Message) {
            once |= l.once;
            list.push(&l.f);
        }
        if once {
            f.d.set_m(&JsValue::NULL);
        } else {
            f.d.set_m(&list);
        }
    }

    /// The last event id delivered or skipped, also by JS (0 before any).
    pub(crate) fn last_event_id(&self) -> u64 {
        let l = self.m.last_event_id();
        match &self.fast {
            Some(f) if self.granted != 0 => l.max(f.d.l() as u64),
            _ => l,
        }
    }
}
