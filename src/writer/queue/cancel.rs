//! The cancel signal: `writer.signal`, `writer.cancelled`, and the `/wait`
//! long-poll behind them.
//!
//! Reading `signal` or `cancelled` starts the long-poll, which asks the relay
//! until it learns of a cancel or nothing more can be stored. A cancel learnt
//! here or from a refused request ([`Queue::learn_cancel`]) closes the writer,
//! aborts the signal and resolves `cancelled`.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use sse_channel_protocol::ErrorCode;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use super::Queue;
use crate::writer::http::{self, AbortController, Waited};
use crate::writer::Failure;

impl Queue {
    /// The writer learns that the channel was cancelled: later calls reject
    /// `CHANNEL_CANCELLED` with the reason, the signal aborts, `cancelled`
    /// resolves, the long-poll stops.
    pub(super) fn learn_cancel(&mut self, reason: String) {
        if self.cancel.is_some() {
            return;
        }
        let f = Failure::new(ErrorCode::ChannelCancelled, reason.clone());
        if self.closed.is_none() {
            self.closed = Some(f.clone());
        }
        if let Some(c) = &self.signal {
            // Later, not now: `abort` runs the signal's listeners at once, and
            // one may call the writer, which is borrowed here.
            let c = AbortController::from(JsValue::from(c));
            let reason = f.to_js();
            spawn_local(async move { c.abort_with(&reason) });
        }
        if let Some((_, resolve)) = &self.cancelled {
            let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::from_str(&reason));
        }
        self.cancel = Some(reason);
        self.stop_waiting();
    }

    /// Stops the long-poll (end or fail stored, channel refused, cancel known).
    pub(super) fn stop_waiting(&mut self) {
        if let Some(c) = self.wait_abort.take() {
            c.abort();
        }
    }
}

/// `writer.signal`: made on first read, which starts the long-poll.
pub(in crate::writer) fn signal(queue: &Rc<RefCell<Queue>>) -> JsValue {
    let signal = {
        let mut q = queue.borrow_mut();
        if q.signal.is_none() {
            let c = AbortController::new();
            if let Some(reason) = &q.cancel {
                c.abort_with(&Failure::new(ErrorCode::ChannelCancelled, reason.clone()).to_js());
            }
            q.signal = Some(c);
        }
        q.signal.as_ref().map(|c| c.signal()).unwrap_or_default()
    };
    start_waiting(queue);
    signal
}

/// `writer.cancelled`: made on first read, which starts the long-poll.
pub(in crate::writer) fn cancelled(queue: &Rc<RefCell<Queue>>) -> Promise {
    let promise = {
        let mut q = queue.borrow_mut();
        if q.cancelled.is_none() {
            let mut settle = None;
            let p = Promise::new(&mut |resolve, _| settle = Some(resolve));
            if let (Some(reason), Some(resolve)) = (&q.cancel, &settle) {
                let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::from_str(reason));
            }
            if let Some(resolve) = settle {
                q.cancelled = Some((p, resolve));
            }
        }
        match &q.cancelled {
            Some((p, _)) => p.clone(),
            None => Promise::resolve(&JsValue::UNDEFINED),
        }
    };
    start_waiting(queue);
    promise
}

fn start_waiting(queue: &Rc<RefCell<Queue>>) {
    {
        let mut q = queue.borrow_mut();
        if q.waiting_for_cancel || q.over() || q.cancel.is_some() {
            return;
        }
        q.waiting_for_cancel = true;
    }
    spawn_local(wait_for_cancel(queue.clone()));
}

/// The long-poll: asks the relay again and again until it learns of a cancel
/// or nothing more can happen; stopped at once by end, fail or a refusal.
async fn wait_for_cancel(queue: Rc<RefCell<Queue>>) {
    let mut misses = 0u32;
    loop {
        let (target, controller) = {
            let mut q = queue.borrow_mut();
            if q.over() || q.cancel.is_some() {
                break;
            }
            let c = AbortController::new();
            q.wait_abort = Some(AbortController::from(JsValue::from(&c)));
            (q.target.clone(), c)
        };
        let waited = http::wait_once(&target, &controller).await;
        let pause = {
            let mut q = queue.borrow_mut();
            q.wait_abort = None;
            match waited {
                Waited::Cancelled(reason) => {
                    q.learn_cancel(reason);
                    break;
                }
                Waited::Open(subscribers) => {
                    misses = 0;
                    if subscribers.is_some() {
                        q.subscribers = subscribers;
                    }
                    false
                }
                Waited::Over => break,
                Waited::Again if q.over() => break,
                Waited::Again => true,
            }
        };
        if pause {
            misses += 1;
            // 1 s, 2 s, 4 s, … at most 8 s between attempts that got no answer.
            http::sleep_unref(500u32.saturating_mul(1 << misses.min(4))).await;
        }
    }
    queue.borrow_mut().waiting_for_cancel = false;
}
