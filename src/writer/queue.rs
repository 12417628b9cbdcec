//! The queue of writes, batching, the halting rule, and the flusher.
//!
//! `write` snapshots its payload as JSON text and appends it here; one flusher
//! sends what is queued as one batch (`{"messages":[…]}`) while no earlier
//! request is in flight, so program order is wire order and many quick writes
//! cost few requests. When a request fails, nothing queued behind it is sent
//! (see [`Queue::fail`]): a subscriber never receives a message that follows
//! one that went missing.
//!
//! The cancel signal and its `/wait` long-poll are in [`cancel`]; a payload's
//! JSON text and size in [`payload`].

mod cancel;
mod payload;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Array, Function, JsString, Promise};
use sse_channel_protocol::{api, ErrorCode};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use super::http::{self, AbortController, Target};
use super::Failure;
use crate::batch::batch_len;
use payload::{fail_body, to_json};

pub(super) use cancel::{cancelled, signal};

/// One message waiting for the relay: its JSON text and its promise's settlers.
struct Pending {
    json: JsString,
    bytes: usize,
    resolve: Function,
    reject: Function,
}

/// Limits of the queue, from the writer options.
pub(super) struct Limits {
    pub(super) max_message_bytes: usize,
    pub(super) max_body_bytes: usize,
    pub(super) max_batch_messages: usize,
    pub(super) max_queued: usize,
}

/// One writer's state.
pub(super) struct Queue {
    target: Rc<Target>,
    limits: Limits,
    /// The channel's `expiresAt` (Unix ms): later calls fail without a request.
    expires_at: f64,
    /// Names this writer in its idempotency keys, `<writer_id>-<n>`.
    writer_id: String,
    next_request: u64,
    waiting: VecDeque<Pending>,
    /// Messages of the request in flight (they count against `max_queued`).
    in_flight: usize,
    end: Option<Pending>,
    end_called: bool,
    /// The relay refused the channel itself: every later call fails with this.
    closed: Option<Failure>,
    /// A request failed otherwise: later calls fail with this until `resume()`.
    halted: Option<Failure>,
    flushing: bool,
    /// The final request is `fail`, not `end` (its body is the fail body).
    end_is_fail: bool,
    /// The final request (end or fail) was stored.
    finished: bool,
    /// `subscribers` of the last stored answer.
    pub(super) subscribers: Option<f64>,
    /// The cancel reason, once the writer knows of one.
    cancel: Option<String>,
    /// Behind `writer.signal`, made when first read.
    signal: Option<AbortController>,
    /// `writer.cancelled` and its resolver, made when first read.
    cancelled: Option<(Promise, Function)>,
    /// The long-poll runs (started by `signal` or `cancelled`).
    waiting_for_cancel: bool,
    /// Aborts the long-poll in flight.
    wait_abort: Option<AbortController>,
}

impl Queue {
    pub(super) fn new(target: Target, limits: Limits, expires_at: f64, writer_id: String) -> Self {
        Self {
            target: Rc::new(target),
            limits,
            expires_at,
            writer_id,
            next_request: 1,
            waiting: VecDeque::new(),
            in_flight: 0,
            end: None,
            end_called: false,
            closed: None,
            halted: None,
            flushing: false,
            end_is_fail: false,
            finished: false,
            subscribers: None,
            cancel: None,
            signal: None,
            cancelled: None,
            waiting_for_cancel: false,
            wait_abort: None,
        }
    }

    /// Nothing more will be stored: the end or fail was, or the channel was refused.
    fn over(&self) -> bool {
        self.finished || self.closed.is_some()
    }

    /// True once `end()` has been accepted (and not refused since).
    pub(super) fn end_called(&self) -> bool {
        self.end_called
    }

    /// The function accepts that what failed is missing: later calls go out
    /// again. No effect when the channel itself was refused.
    pub(super) fn resume(&mut self) {
        self.halted = None;
    }

    /// Why a new `write` (or `end`) cannot be queued, checked in this order.
    fn refusal(&self, data: &JsValue, is_end: bool) -> Result<(JsString, usize), Failure> {
        if self.end_called {
            return Err(Failure::new(
                ErrorCode::ChannelEnded,
                if is_end {
                    "end() was already called on this channel"
                } else {
                    "write() after end(): the channel is ended"
                },
            ));
        }
        if let Some(f) = self.closed.as_ref().or(self.halted.as_ref()) {
            return Err(f.clone());
        }
        if js_sys::Date::now() >= self.expires_at {
            return Err(Failure::new(
                ErrorCode::ChannelExpired,
                "the channel's lifetime (expiresAt) is over",
            ));
        }
        let json = to_json(data, self.limits.max_message_bytes)?;
        if !is_end && self.waiting.len() + self.in_flight >= self.limits.max_queued {
            let mut m = String::from("maxQueued (");
            m.push_str(&self.limits.max_queued.to_string());
            m.push_str(
                ") messages already wait for the relay; the writer is halted until resume()",
            );
            return Err(Failure::new(ErrorCode::QueueFull, m));
        }
        Ok(json)
    }

    /// A request failed: its own messages reject with `f`, and so does
    /// everything queued behind it. A refusal of the channel itself closes the
    /// writer for good; any other failure halts it until `resume()`.
    fn fail(&mut self, f: Failure, sent: Vec<Pending>) {
        let reason = f.to_js();
        let mut refused = sent;
        refused.extend(self.waiting.drain(..));
        if let Some(end) = self.end.take() {
            // The end did not happen: after `resume()`, `end()` may be called again.
            self.end_called = false;
            refused.push(end);
        }
        for p in refused {
            let _ = p.reject.call1(&JsValue::UNDEFINED, &reason);
        }
        if f.code == ErrorCode::ChannelCancelled {
            self.learn_cancel(f.message.clone());
        } else if f.code.is_final_for_publisher() {
            self.closed = Some(f);
            self.stop_waiting();
        } else {
            self.halted = Some(f);
        }
    }
}

/// Queues `data` (the final message when `is_end`) and returns its promise.
pub(super) fn enqueue(queue: &Rc<RefCell<Queue>>, data: &JsValue, is_end: bool) -> Promise {
    enqueue_final(queue, data, is_end, false)
}

/// Queues `writer.fail(error)`: the fail body, sent after every queued write.
pub(super) fn enqueue_fail(queue: &Rc<RefCell<Queue>>, error: &JsValue) -> Promise {
    enqueue_final(queue, error, true, true)
}

fn enqueue_final(
    queue: &Rc<RefCell<Queue>>,
    data: &JsValue,
    is_end: bool,
    is_fail: bool,
) -> Promise {
    let mut settlers = None;
    let promise = Promise::new(&mut |resolve, reject| settlers = Some((resolve, reject)));
    let Some((resolve, reject)) = settlers else {
        return promise;
    };
    let start = {
        let mut q = queue.borrow_mut();
        let checked = if is_fail {
            q.refusal(&JsValue::NULL, true)
                .and_then(|_| fail_body(data, q.limits.max_message_bytes))
        } else {
            q.refusal(data, is_end)
        };
        match checked {
            Err(f) => {
                // A full queue is a gap in what the function meant to send.
                if f.code == ErrorCode::QueueFull {
                    q.halted = Some(f.clone());
                }
                let _ = reject.call1(&JsValue::UNDEFINED, &f.to_js());
                false
            }
            Ok((json, bytes)) => {
                let pending = Pending {
                    json,
                    bytes,
                    resolve,
                    reject,
                };
                if is_end {
                    q.end_called = true;
                    q.end_is_fail = is_fail;
                    q.end = Some(pending);
                } else {
                    q.waiting.push_back(pending);
                }
                !std::mem::replace(&mut q.flushing, true)
            }
        }
    };
    if start {
        spawn_local(flush(queue.clone()));
    }
    promise
}

enum Job {
    Batch(Vec<Pending>),
    End(Pending),
}

/// Sends what is queued, one request at a time, until nothing is left.
async fn flush(queue: Rc<RefCell<Queue>>) {
    loop {
        let (job, url, body, key, target) = {
            let mut q = queue.borrow_mut();
            let job = if !q.waiting.is_empty() {
                let limits = (q.limits.max_body_bytes, q.limits.max_batch_messages);
                let batch = take_batch(&mut q.waiting, limits.0, limits.1);
                q.in_flight = batch.len();
                Job::Batch(batch)
            } else if let Some(end) = q.end.take() {
                Job::End(end)
            } else {
                q.flushing = false;
                return;
            };
            let (url, body) = match &job {
                Job::Batch(items) => (q.target.messages_url.clone(), batch_body(items)),
                Job::End(p) if q.end_is_fail => (q.target.fail_url.clone(), p.json.clone()),
                Job::End(p) => (
                    q.target.end_url.clone(),
                    JsString::from(api::DATA_BODY_HEAD)
                        .concat(&p.json)
                        .concat(&api::DATA_BODY_TAIL.into()),
                ),
            };
            let mut key = q.writer_id.clone();
            key.push('-');
            key.push_str(&q.next_request.to_string());
            q.next_request += 1;
            (job, url, body, key, q.target.clone())
        };
        let outcome = http::send(&target, &url, &body, &key).await;
        let mut q = queue.borrow_mut();
        q.in_flight = 0;
        let items = match job {
            Job::Batch(items) => items,
            Job::End(p) => {
                // A failed end did not end the channel: after `resume()` it may be called again.
                q.end_called = outcome.is_ok();
                if outcome.is_ok() {
                    q.finished = true;
                    q.stop_waiting();
                }
                vec![p]
            }
        };
        match outcome {
            Ok(subscribers) => {
                if subscribers.is_some() {
                    q.subscribers = subscribers;
                }
                drop(q);
                for p in items {
                    let _ = p.resolve.call0(&JsValue::UNDEFINED);
                }
            }
            Err(f) => q.fail(f, items),
        }
    }
}

/// The next request's messages: the longest prefix of the queue that fits
/// ([`crate::batch::batch_len`]).
fn take_batch(
    queue: &mut VecDeque<Pending>,
    max_bytes: usize,
    max_messages: usize,
) -> Vec<Pending> {
    let n = batch_len(queue.iter().map(|p| p.bytes), max_bytes, max_messages);
    queue.drain(..n).collect()
}

/// `{"messages":[a,b,…]}`, assembled from the payloads' JSON text in JS strings.
fn batch_body(items: &[Pending]) -> JsString {
    let parts: Array = items.iter().map(|p| JsValue::from(&p.json)).collect();
    JsString::from(api::BATCH_BODY_HEAD)
        .concat(&parts.join(","))
        .concat(&api::BATCH_BODY_TAIL.into())
}
