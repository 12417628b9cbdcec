//! The cloud-function side: `deserializeSSEChannel(descriptor, options?)` and
//! the writer it returns.
//!
//! ```js
//! const { deserializeSSEChannel } = require('open-sse-channel')
//! const ch = deserializeSSEChannel(event.sseChannel, { allowedRelays: ['https://relay.example.com'] })
//! ch.write('step 1')            // no await needed: writes keep program order
//! ch.write({ step: 2 })
//! await ch.end({ result: 42 })  // resolves once the relay has stored the end event
//! ```
//!
//! # Layout
//!
//! - `options`: the options' shape (serde), defaults, checks, the allow-list.
//! - `descriptor`: reading and checking the descriptor argument.
//! - `queue`: the queue of writes, batching, the halting rule, the flusher.
//! - `http`: one request with its retries; answers read up to a bound.
//!
//! # Why it is built this way
//!
//! - **A descriptor is untrusted input.** It arrives in a function's event, so
//!   anyone who can call the function controls it. Every field is checked and
//!   the writer only posts to relay origins the deployer listed
//!   (`options.allowedRelays`, else the environment variable
//!   `SSE_CHANNEL_ALLOWED_RELAYS`). There is no wildcard: `"*"` is refused with
//!   `INVALID_OPTIONS`, because it would let a caller aim the function's
//!   requests at any host (SSRF). Redirects are not followed.
//! - **Order without `await`.** One queue, one flusher, one request in flight.
//! - **Retries never duplicate.** Every request carries an `Idempotency-Key`
//!   (a random writer id from the platform's cryptographic generator, and the
//!   request number) that stays the same across its retries.
//! - **Bounded.** At most `maxQueued` messages wait (default 50,000); relay
//!   answers are read up to 16 KiB.
//! - **Payloads stay JS values.** Bodies are assembled from `JSON.stringify`
//!   output in JS strings; wasm only copies a payload's text once to measure its
//!   UTF-8 size.
//!
//! # Failures
//!
//! Every rejection is an `Error` with a stable `code`. A value that cannot be
//! sent (`MESSAGE_TOO_LARGE` over `maxMessageBytes`, `BAD_REQUEST` when not
//! JSON-serializable) rejects that call alone, before anything is queued.
//!
//! A request that fails rejects every write it carried **and every call queued
//! behind it**. Then:
//!
//! - when the relay refused the channel itself (`UNAUTHORIZED`, `FORBIDDEN`,
//!   `CHANNEL_NOT_FOUND`, `CHANNEL_ENDED`, `CHANNEL_EXPIRED`,
//!   `CHANNEL_CANCELLED`), every later `write` and `end` rejects with that
//!   code, for good (a cancel also aborts `writer.signal`);
//! - otherwise (`RELAY_UNAVAILABLE` after the retries, `MESSAGE_TOO_LARGE` or
//!   `BAD_REQUEST` from the relay, and `QUEUE_FULL`, a write refused because
//!   `maxQueued` messages wait) the writer is **halted**: every later `write`
//!   and `end` rejects with the same code and message, without a request,
//!   until the function calls `resume()`, accepting that those messages are
//!   missing. So a subscriber never receives a message that follows one that
//!   silently went missing.
//!
//! A write that is not awaited is still a promise: like any other, its
//! rejection is an unhandled rejection in Node.js unless it is awaited or given
//! a `.catch`. That is deliberate: a lost message should not pass silently.

mod descriptor;
mod http;
mod options;
mod queue;

use std::cell::RefCell;
use std::rc::Rc;

use sse_channel_protocol::{api, ErrorCode};
use wasm_bindgen::prelude::*;

use crate::js_error::js_error;

pub(crate) use options::WriterOptions;

#[wasm_bindgen(typescript_custom_section)]
const WRITER_TS: &'static str = r#"
/**
 * Writes messages to one channel, as a cloud function. Made by `deserializeSSEChannel`.
 * Calls keep program order whether or not they are awaited; queued messages go out batched.
 */
export class SSEChannelWriter {
  private constructor();
  /**
   * Sends one message (any JSON-serializable value; `undefined` becomes `null`); resolves once the relay
   * has stored it. Rejects with a coded error: `CHANNEL_ENDED`, `CHANNEL_CANCELLED` (the reader cancelled;
   * `message` is the reason), `MESSAGE_TOO_LARGE`, `BAD_REQUEST`,
   * `QUEUE_FULL`, `UNAUTHORIZED`, `FORBIDDEN`, `CHANNEL_NOT_FOUND`, `CHANNEL_EXPIRED` or `RELAY_UNAVAILABLE`.
   * After a failed request (or `QUEUE_FULL`) every later call rejects with the same code until `resume()`.
   */
  write(data: any): Promise<void>;
  /** Sends the final message (default `null`) after every queued write and ends the channel. */
  end(data?: any): Promise<void>;
  /**
   * Ends the channel with a failure, after every queued write: readers get an `error` event with code
   * `FUNCTION_FAILED`, `message` (at most 1,024 characters) and the optional JSON `details`, then `close`.
   * `error`: an `Error` (its `message`, and its `details` property if any), a string, or `{ message, details }`.
   * Rejects like `end()`.
   */
  fail(error: Error | string | { message: string; details?: any }): Promise<void>;
  /** The channel's live subscriber streams in the relay's last answer (`undefined` before the first). */
  readonly subscribers: number | undefined;
  /**
   * Aborts once the writer knows the reader cancelled the channel (`ch.cancel()` in the browser, or the
   * relay's `ABANDONED` cancel after `abandonAfterMs`); its `reason` is an `SSEChannelError` with code
   * `CHANNEL_CANCELLED` and the reason as `message`. Pass it to `fetch` or check it in loops. The writer
   * learns of a cancel from any answer, and from a long-poll that starts only when `signal` is first read
   * (or `cancelled` first awaited) and stops with `end()`, `fail()` or the cancel.
   */
  readonly signal: AbortSignal;
  /** Resolves with the cancel reason once the writer knows of a cancel (see `signal`); never rejects. */
  readonly cancelled: Promise<string>;
  /**
   * After a failed request or `QUEUE_FULL` halted the writer: accept that those messages are missing
   * and let later `write`/`end` calls go out again. No effect otherwise (a refused channel stays refused).
   */
  resume(): void;
  /** The channel id (32 hex digits). */
  readonly channelId: string;
  /** True once `end()` has been called (false again if that end was refused by a failure). */
  readonly ended: boolean;
  /** Releases the writer's memory now (optional; pending writes still settle). */
  free(): void;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// A descriptor argument: what `SSEChannel.toJSON()` returns, or its JSON text.
    #[wasm_bindgen(typescript_type = "SSEChannelDescriptor | string")]
    pub type DescriptorArg;
    /// The `options` argument of `deserializeSSEChannel`.
    #[wasm_bindgen(typescript_type = "SSEChannelWriterOptions")]
    pub type WriterOptionsArg;
    /// Any JSON-serializable value.
    #[wasm_bindgen(typescript_type = "any")]
    pub type AnyArg;
    /// A promise that resolves with nothing.
    #[wasm_bindgen(typescript_type = "Promise<void>")]
    pub type VoidPromise;
}

/// A coded failure, turned into a JS `Error` only at the boundary.
#[derive(Clone)]
pub(crate) struct Failure {
    code: ErrorCode,
    message: String,
}

impl Failure {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn to_js(&self) -> JsValue {
        js_error(self.code, &self.message)
    }
}

/// Turns a descriptor into a writer. See [`SSEChannelWriter`].
///
/// `descriptor` is what the browser's `SSEChannel.toJSON()` returned, as an
/// object or a JSON string. `options` (all optional; the typings list them with
/// their defaults):
///
/// - `allowedRelays`: relay origins this function may post to, e.g.
///   `["https://relay.example.com"]`. Default: the comma-separated origins of the
///   environment variable `SSE_CHANNEL_ALLOWED_RELAYS`. Without either, every
///   descriptor is refused with `RELAY_NOT_ALLOWED`. `"*"` is refused.
/// - `maxMessageBytes`: largest message (its JSON text, UTF-8). Default 65536.
/// - `maxBodyBytes`, `maxBatchMessages`: largest request body and most messages
///   per batch. Defaults 1 MiB and 1000, the relay's defaults; lower them when
///   the relay's limits are lower.
/// - `maxQueued`: most messages waiting for the relay. Default 50000.
/// - `timeoutMs`: time one attempt may take. Default 15000.
/// - `retry: { maxAttempts, minDelayMs, maxDelayMs }`: attempts per request
///   (default 5) and the backoff between them, with full jitter (the first
///   retry waits 250 to 500 ms, the window doubles, never over 4000 ms).
///
/// Throws `INVALID_DESCRIPTOR`, `RELAY_NOT_ALLOWED` or `INVALID_OPTIONS`.
///
/// ```js
/// const ch = deserializeSSEChannel(event.sseChannel)   // allow-list from SSE_CHANNEL_ALLOWED_RELAYS
/// await ch.write({ progress: 0.5 })
/// await ch.end('done')
/// ```
#[wasm_bindgen(js_name = deserializeSSEChannel)]
pub fn deserialize_sse_channel(
    descriptor: DescriptorArg,
    options: Option<WriterOptionsArg>,
) -> Result<SSEChannelWriter, JsValue> {
    let options = WriterOptions::from_js(&options.map_or(JsValue::UNDEFINED, Into::into), None)?;
    writer_from(&descriptor, options)
}

/// The long-poll's `timeoutMs` (the relay's default): how long one `…/wait`
/// request stays open while nothing happens.
const WAIT_TIMEOUT_MS: &str = "25000";

/// Builds a writer with already-read options (shared with `installUniCloud`).
pub(crate) fn writer_from(
    descriptor: &JsValue,
    o: WriterOptions,
) -> Result<SSEChannelWriter, JsValue> {
    let d = descriptor::read(descriptor)?;
    let origin = d
        .relay_origin()
        .map_err(|e| js_error(ErrorCode::InvalidDescriptor, e.message()))?;
    o.check_relay(&origin)?;
    let mut authorization =
        String::with_capacity(api::AUTH_SCHEME.len() + 1 + d.publish_token.len());
    authorization.push_str(api::AUTH_SCHEME);
    authorization.push(' ');
    authorization.push_str(&d.publish_token);
    let target = http::Target {
        messages_url: [d.relay.as_str(), &api::messages_path(&d.channel_id)].concat(),
        end_url: [d.relay.as_str(), &api::end_path(&d.channel_id)].concat(),
        fail_url: [d.relay.as_str(), &api::fail_path(&d.channel_id)].concat(),
        wait_url: [
            d.relay.as_str(),
            &api::wait_path(&d.channel_id),
            "?",
            api::QUERY_TIMEOUT_MS,
            "=",
            WAIT_TIMEOUT_MS,
        ]
        .concat(),
        authorization,
        policy: http::RetryPolicy {
            max_attempts: o.max_attempts,
            min_delay_ms: o.min_delay_ms,
            max_delay_ms: o.max_delay_ms,
            timeout_ms: o.timeout_ms,
        },
    };
    let limits = queue::Limits {
        max_message_bytes: o.max_message_bytes,
        max_body_bytes: o.max_body_bytes,
        max_batch_messages: o.max_batch_messages,
        max_queued: o.max_queued,
    };
    let writer_id = http::writer_id().map_err(|f| f.to_js())?;
    Ok(SSEChannelWriter {
        channel_id: d.channel_id,
        queue: Rc::new(RefCell::new(queue::Queue::new(
            target,
            limits,
            d.expires_at as f64,
            writer_id,
        ))),
    })
}

/// Writes messages to one channel, as a cloud function. Made by
/// `deserializeSSEChannel`.
///
/// `write(data)` and `end(data?)` return promises that resolve once the relay
/// has stored the message. Calls keep program order whether or not they are
/// awaited; queued messages are sent together in one request.
#[wasm_bindgen(skip_typescript)]
pub struct SSEChannelWriter {
    channel_id: String,
    queue: Rc<RefCell<queue::Queue>>,
}

#[wasm_bindgen]
impl SSEChannelWriter {
    /// Sends one message (any JSON-serializable value; `undefined` becomes
    /// `null`). Resolves when the relay has stored it. Rejects with
    /// `CHANNEL_ENDED` after `end()`, `MESSAGE_TOO_LARGE` when its JSON text is
    /// over `maxMessageBytes`, `BAD_REQUEST` when it cannot be serialized,
    /// `QUEUE_FULL` when `maxQueued` messages wait, or with the relay's refusal
    /// (`UNAUTHORIZED`, `CHANNEL_EXPIRED`, …) or `RELAY_UNAVAILABLE` after the
    /// retries; after a failed request, with its error until `resume()`.
    #[wasm_bindgen(skip_typescript)]
    pub fn write(&self, data: AnyArg) -> VoidPromise {
        queue::enqueue(&self.queue, &data.into(), false).unchecked_into()
    }

    /// Sends the final message (default `null`) after every queued write, and
    /// ends the channel: subscribers get `end(data)` and then `close`. Later
    /// `write`/`end` calls reject with `CHANNEL_ENDED`.
    #[wasm_bindgen(skip_typescript)]
    pub fn end(&self, data: Option<AnyArg>) -> VoidPromise {
        queue::enqueue(&self.queue, &data.map_or(JsValue::NULL, Into::into), true).unchecked_into()
    }

    /// After a failed request (or `QUEUE_FULL`) halted the writer: accepts that
    /// those messages are missing and lets later calls go out again.
    #[wasm_bindgen(skip_typescript)]
    pub fn resume(&self) {
        self.queue.borrow_mut().resume();
    }

    /// The channel id (32 hex digits).
    #[wasm_bindgen(getter, js_name = channelId, skip_typescript)]
    pub fn channel_id(&self) -> String {
        self.channel_id.clone()
    }

    /// True once `end()` (or `fail()`) has been called.
    #[wasm_bindgen(getter, skip_typescript)]
    pub fn ended(&self) -> bool {
        self.queue.borrow().end_called()
    }

    /// Ends the channel with a failure after every queued write: readers get
    /// an `error` event with code `FUNCTION_FAILED`, the message and the
    /// optional `details`, then `close`. `error`: an `Error` (its `message`,
    /// and its `details` property if any), a string, or `{message, details}`.
    #[wasm_bindgen(skip_typescript)]
    pub fn fail(&self, error: AnyArg) -> VoidPromise {
        queue::enqueue_fail(&self.queue, &error.into()).unchecked_into()
    }

    /// The channel's live subscribers in the relay's last answer (`undefined`
    /// before the first).
    #[wasm_bindgen(getter, skip_typescript)]
    pub fn subscribers(&self) -> Option<f64> {
        self.queue.borrow().subscribers
    }

    /// An `AbortSignal` that aborts once the writer knows the channel was
    /// cancelled. Reading it starts the long-poll that learns of a cancel.
    #[wasm_bindgen(getter, skip_typescript)]
    pub fn signal(&self) -> JsValue {
        queue::signal(&self.queue)
    }

    /// Resolves with the cancel reason once the writer knows of a cancel;
    /// never rejects. Reading it starts the long-poll.
    #[wasm_bindgen(getter, skip_typescript)]
    pub fn cancelled(&self) -> js_sys::Promise {
        queue::cancelled(&self.queue)
    }
}
