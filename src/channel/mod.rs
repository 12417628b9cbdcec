//! The `SSEChannel` class: a thin `#[wasm_bindgen]` facade over [`core`].
//!
//! ```js
//! import { SSEChannel } from 'open-sse-channel' // loads the wasm itself; `open-sse-channel/slim` needs `await init()`
//! SSEChannel.configure({ relay: 'https://relay.example.com' })
//! const ch = new SSEChannel()
//! ch.on('message', (data) => console.log(data))
//! ch.on('end', (data) => console.log('done', data))
//! await ch.open()
//! await uniCloud.callFunction({ name: 'task', data: { sseChannel: ch } }) // JSON.stringify → toJSON()
//! ```
//!
//! # Lifecycle
//!
//! `open()` creates the channel (`POST /v1/channels`), subscribes, and
//! resolves when the relay's `ready` frame arrives. A stream that is lost
//! afterwards (network error, heartbeat silence, a retryable relay code) is
//! replaced with exponential backoff and full jitter ([`crate::backoff`]),
//! resuming after the last id seen; replayed ids already delivered are
//! dropped. `end` closes the channel normally. Codes the protocol marks final
//! (`UNAUTHORIZED`, `CHANNEL_NOT_FOUND`, `CHANNEL_EXPIRED`, …) and a spent
//! `reconnect.maxAttempts` (`RECONNECT_EXHAUSTED`) end with `error` then
//! `close`. The browser's `online` event skips the rest of a backoff delay,
//! and replaces a live connection at once when `offline` came since.
//!
//! # Events
//!
//! | event | argument | when |
//! |---|---|---|
//! | `open` | — | once, when the subscription first becomes live |
//! | `message` | the published JSON value | in publish order, each once |
//! | `end` | the `end` data | once; `close` follows |
//! | `close` | — | exactly once, last |
//! | `error` | `Error` with `code` | a final failure (then `close`): also `FUNCTION_FAILED` (`writer.fail`) and `CHANNEL_CANCELLED` (`cancel()`, `abandonAfterMs`) with `details`; or `MESSAGES_LOST` with `from`/`to` (the stream goes on) |
//! | `reconnecting` | `{attempt, delayMs, code}` | a lost stream will be retried in `delayMs` |
//! | `state` | `{from, to}` | every change of the `state` getter |
//!
//! Listeners run in the order they were added; one that throws is reported
//! with `console.error` and the others still run. `off` with a function that
//! was never added removes nothing. Once `close` has been delivered every
//! listener is released, and later ones are not kept: nothing can call them,
//! and a listener that closes over its channel would otherwise keep the
//! channel's JS object alive through wasm, where no garbage collector sees
//! the cycle.

mod core;
mod http;
mod options;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use sse_channel_protocol::api::field;
use sse_channel_protocol::descriptor::{DESCRIPTOR_TYPE, DESCRIPTOR_VERSION};
use sse_channel_protocol::ErrorCode;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use sse_channel_protocol::api::CreateChannelResponse;

use self::core::{Inner, Shared};
use self::options::{defaults, Options};
use crate::js;
use crate::js_error::js_error;

#[cfg(feature = "writer")]
pub(crate) use self::options::check_defaults;
pub(crate) use self::options::configure_defaults;

/// `type` of a subscription (`toSubscription()`).
const SUBSCRIPTION_TYPE: &str = "SSESubscription";
/// Its resume point.
const LAST_EVENT_ID: &str = "lastEventId";

#[wasm_bindgen(typescript_custom_section)]
const TS: &'static str = r#"
/** The states of a channel, in lifecycle order. */
export type SSEChannelState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Options of `new SSEChannel(options)` and `SSEChannel.configure(options)`; all optional. */
export interface SSEChannelOptions {
  /** Base URL of the relay (http or https). Default: the one set by `SSEChannel.configure`. */
  relay?: string;
  /** Default `'auto'`: WebSocket, falling back to EventSource when a WebSocket fails, or stays silent for half of `openTimeoutMs`, before any delivered `ready`. */
  transport?: 'auto' | 'websocket' | 'eventsource';
  reconnect?: {
    /** Smallest backoff delay, at least 1 (0 is refused: it would retry without delay). Default 500. */
    minDelayMs?: number;
    /** Largest backoff delay. Default 10000. */
    maxDelayMs?: number;
    /** Failed attempts in a row before `RECONNECT_EXHAUSTED` (the count restarts once a connection delivers a frame after `ready`). Default `Infinity`; 0 = never reconnect. */
    maxAttempts?: number;
  };
  /** From `open()` to a live subscription (and per reconnection attempt). Default 10000. */
  openTimeoutMs?: number;
  /** Silence after which the connection is replaced. Default 2.5 × the relay's heartbeat (45000 if unknown); 0 disables. */
  heartbeatTimeoutMs?: number;
  /** Lifetime asked for the channel, in seconds. Default: the relay's (1 hour). */
  ttlSecs?: number;
  /**
   * Sent on creation: the relay cancels the channel (the function's `writer.signal` aborts,
   * readers get `error` `CHANNEL_CANCELLED` with message `ABANDONED`) once no page has listened
   * for this long, e.g. after the last tab closed. 1000 to 3600000. Default: off.
   */
  abandonAfterMs?: number;
}

/** What `toSubscription()` returns and `SSEChannel.attach()` takes: plain JSON, e.g. for `sessionStorage`. Holds no publish token. */
export interface SSESubscription {
  type: 'SSESubscription';
  version: 1;
  relay: string;
  channelId: string;
  subscribeToken: string;
  /** Unix time in milliseconds. */
  expiresAt: number;
  /** The last event id delivered to this page: `attach` resumes after it. */
  lastEventId: number;
}

export interface SSEChannelEvents {
  open: () => void;
  message: (data: unknown) => void;
  end: (data: unknown) => void;
  close: () => void;
  error: (err: SSEChannelError) => void;
  reconnecting: (info: { attempt: number; delayMs: number; code: string }) => void;
  state: (change: { from: SSEChannelState; to: SSEChannelState }) => void;
}

/**
 * A channel from a long-running cloud function to this page. Events: `open`,
 * `message(data)`, `end(data)`, `close`, `error(err)`, `reconnecting({attempt, delayMs, code})`,
 * `state({from, to})`; always open → message* → end → close, `close` exactly once.
 */
export class SSEChannel {
  /** Releases this handle. A channel that was opened goes on until `end`, `close()` or a final error. */
  free(): void;
  constructor(options?: SSEChannelOptions);
  /** Sets defaults for every later `new SSEChannel()`, e.g. `{ relay }`. */
  static configure(options: SSEChannelOptions): void;
  /**
   * A channel for an existing one (e.g. after a page reload): `open()` subscribes after
   * `subscription.lastEventId`, creating nothing, so no message is lost or repeated and `end`
   * (or the final `error`) still arrives while the relay retains the channel. Throws
   * `INVALID_OPTIONS` for a malformed subscription.
   */
  static attach(subscription: SSESubscription, options?: SSEChannelOptions): SSEChannel;
  /** What to keep to re-attach later; throws `INVALID_STATE` before the channel was created. */
  toSubscription(): SSESubscription;
  /**
   * Cancels the channel on the relay (`reason`: at most 256 characters): the function's
   * `writer.signal` aborts and every reader gets `error` `CHANNEL_CANCELLED`, then `close`.
   * Rejects with `INVALID_STATE` before the channel exists, or the relay's code
   * (`CHANNEL_ENDED` if it had ended). `close()` only closes this page's subscription.
   */
  cancel(reason?: string): Promise<void>;
  /** Creates the channel and subscribes; resolves once the subscription is live. */
  open(): Promise<void>;
  /** Closes the channel (idempotent). */
  close(): void;
  on<E extends keyof SSEChannelEvents>(event: E, listener: SSEChannelEvents[E]): void;
  addListener<E extends keyof SSEChannelEvents>(event: E, listener: SSEChannelEvents[E]): void;
  once<E extends keyof SSEChannelEvents>(event: E, listener: SSEChannelEvents[E]): void;
  off<E extends keyof SSEChannelEvents>(event: E, listener: SSEChannelEvents[E]): void;
  removeListener<E extends keyof SSEChannelEvents>(event: E, listener: SSEChannelEvents[E]): void;
  removeAllListeners(event?: keyof SSEChannelEvents): void;
  /** uniCloud's spelling of `removeAllListeners(event)`. */
  removeAllListener(event: keyof SSEChannelEvents): void;
  /** The descriptor to pass to a cloud function; throws `INVALID_STATE` before `open()` resolved, and always for an attached channel (it holds no publish token). */
  toJSON(): SSEChannelDescriptor;
  readonly state: SSEChannelState;
  /** The channel id, once created; `null` before. */
  readonly channelId: string | null;
  /** The last event id received (0 before any). */
  readonly lastEventId: number;
  /** The transport in use, `null` before the first connection attempt. */
  readonly transport: 'websocket' | 'eventsource' | null;
}
"#;

/// The browser end of a channel (JS: `SSEChannel`). See the module docs and the
/// generated TypeScript for the full JS contract.
#[wasm_bindgen(js_name = SSEChannel, skip_typescript)]
pub struct SseChannel {
    inner: Shared,
}

fn listener(f: JsValue) -> Result<Function, JsValue> {
    f.dyn_into::<Function>()
        .map_err(|_| js_error(ErrorCode::InvalidOptions, "a listener must be a function"))
}

#[wasm_bindgen(js_class = SSEChannel)]
impl SseChannel {
    /// `new SSEChannel(options?)`: options over the configured defaults.
    /// Throws `INVALID_OPTIONS` for an invalid option.
    #[wasm_bindgen(constructor, skip_typescript)]
    pub fn new(options: JsValue) -> Result<SseChannel, JsValue> {
        let opts = Options::merged(&defaults(), &options)?;
        Ok(Self {
            inner: Rc::new(RefCell::new(Inner::new(opts, None))),
        })
    }

    /// `SSEChannel.attach(subscription, options?)`: a channel for the existing
    /// channel that `subscription` (from `toSubscription()`) names; `open()`
    /// subscribes from its `lastEventId` without creating anything. Throws
    /// `INVALID_OPTIONS` for a malformed subscription or option.
    #[wasm_bindgen(skip_typescript)]
    pub fn attach(subscription: JsValue, options: JsValue) -> Result<SseChannel, JsValue> {
        let bad = || {
            js_error(
                ErrorCode::InvalidOptions,
                "attach(subscription): not a subscription from toSubscription()",
            )
        };
        let text = |k| js::get_string(&subscription, k).ok_or_else(bad);
        if text(field::TYPE)? != SUBSCRIPTION_TYPE
            || js::get_u64(&subscription, field::VERSION) != Some(1)
        {
            return Err(bad());
        }
        let relay = js::object(&[(field::RELAY, text(field::RELAY)?.into())]);
        let opts = Options::merged(&Options::merged(&defaults(), &options)?, &relay)?;
        let created = CreateChannelResponse {
            channel_id: text(field::CHANNEL_ID)?,
            subscribe_token: text(field::SUBSCRIBE_TOKEN)?,
            publish_token: String::new(),
            expires_at: js::get_u64(&subscription, field::EXPIRES_AT).ok_or_else(bad)?,
        };
        let last = js::get_u64(&subscription, LAST_EVENT_ID).ok_or_else(bad)?;
        Ok(Self {
            inner: Rc::new(RefCell::new(Inner::new(opts, Some((created, last))))),
        })
    }

    /// What a page keeps to re-attach later (e.g. in `sessionStorage`):
    /// `{type: "SSESubscription", version: 1, relay, channelId,
    /// subscribeToken, expiresAt, lastEventId}`, without the publish token.
    /// Throws `INVALID_STATE` before the channel was created.
    #[wasm_bindgen(js_name = toSubscription, skip_typescript)]
    pub fn to_subscription(&self) -> Result<JsValue, JsValue> {
        let i = self.inner.borrow();
        let (relay, c, last) = i.subscription().ok_or_else(|| {
            js_error(
                ErrorCode::InvalidState,
                "toSubscription(): the channel does not exist yet",
            )
        })?;
        Ok(js::object(&[
            (field::TYPE, SUBSCRIPTION_TYPE.into()),
            (field::VERSION, 1.into()),
            (field::RELAY, relay.into()),
            (field::CHANNEL_ID, c.channel_id.as_str().into()),
            (field::SUBSCRIBE_TOKEN, c.subscribe_token.as_str().into()),
            (field::EXPIRES_AT, (c.expires_at as f64).into()),
            (LAST_EVENT_ID, (last as f64).into()),
        ]))
    }

    /// Asks the relay to cancel the channel (`reason` optional, at most 256
    /// characters): the function's writer learns it (its `signal` aborts) and
    /// every reader gets `error` `CHANNEL_CANCELLED`, then `close`. Rejects with
    /// `INVALID_STATE` before the channel exists, or with the relay's code
    /// (`CHANNEL_ENDED` when it had already ended).
    #[wasm_bindgen(skip_typescript)]
    pub fn cancel(&self, reason: Option<String>) -> Promise {
        self::core::cancel(&self.inner, reason)
    }

    /// `SSEChannel.configure(options)`: defaults for later constructions.
    #[wasm_bindgen(skip_typescript)]
    pub fn configure(options: JsValue) -> Result<(), JsValue> {
        configure_defaults(&options)
    }

    /// Creates the channel on the relay and subscribes. Resolves once the
    /// subscription is live; rejects with a coded error on failure or after
    /// `openTimeoutMs`, and with `INVALID_STATE` when called twice or after close.
    #[wasm_bindgen(skip_typescript)]
    pub fn open(&self) -> Promise {
        self::core::open(&self.inner)
    }

    /// Closes the channel. Idempotent: `close` is emitted once.
    #[wasm_bindgen(skip_typescript)]
    pub fn close(&self) {
        self::core::close(&self.inner)
    }

    /// Adds a listener. (`addListener`, `removeListener` and `removeAllListener`,
    /// the other spellings, are added in JavaScript by the package:
    /// `pkg-template/build/facade.js`.)
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event: &str, listener_fn: JsValue) -> Result<(), JsValue> {
        let f = listener(listener_fn)?;
        self.inner.borrow_mut().add_listener(event, f, false);
        Ok(())
    }

    /// Adds a listener called at most once.
    #[wasm_bindgen(skip_typescript)]
    pub fn once(&self, event: &str, listener_fn: JsValue) -> Result<(), JsValue> {
        let f = listener(listener_fn)?;
        self.inner.borrow_mut().add_listener(event, f, true);
        Ok(())
    }

    /// Removes a listener; a function never added changes nothing.
    #[wasm_bindgen(skip_typescript)]
    pub fn off(&self, event: &str, listener_fn: JsValue) {
        self.inner.borrow_mut().remove_listener(event, &listener_fn);
    }

    /// Removes every listener of `event`, or of every event when omitted.
    #[wasm_bindgen(js_name = removeAllListeners, skip_typescript)]
    pub fn remove_all_listeners(&self, event: Option<String>) {
        self.inner
            .borrow_mut()
            .remove_all_listeners(event.as_deref());
    }

    /// The descriptor (`{type, version, relay, channelId, publishToken,
    /// expiresAt}`); `JSON.stringify(channel)` uses it. Throws `INVALID_STATE`
    /// before `open()` resolved.
    #[wasm_bindgen(js_name = toJSON, skip_typescript)]
    pub fn to_json(&self) -> Result<JsValue, JsValue> {
        let i = self.inner.borrow();
        if i.attached() {
            return Err(js_error(
                ErrorCode::InvalidState,
                "toJSON(): an attached channel holds no publish token and cannot be passed to a function",
            ));
        }
        let d = i.descriptor().ok_or_else(|| {
            js_error(
                ErrorCode::InvalidState,
                "toJSON(): the channel can be serialized only after open() resolved",
            )
        })?;
        let (relay_url, c) = d;
        // What `Descriptor::new` would hold, written from borrowed parts (no copies).
        let [kind, version, relay, channel_id, publish_token, expires_at] = field::DESCRIPTOR;
        Ok(js::object(&[
            (kind, DESCRIPTOR_TYPE.into()),
            (version, DESCRIPTOR_VERSION.into()),
            (relay, relay_url.into()),
            (channel_id, c.channel_id.as_str().into()),
            (publish_token, c.publish_token.as_str().into()),
            (expires_at, (c.expires_at as f64).into()),
        ]))
    }

    /// `"idle" | "connecting" | "open" | "reconnecting" | "closed"`.
    #[wasm_bindgen(getter, skip_typescript)]
    pub fn state(&self) -> JsValue {
        // A JsValue, not a String: no copy into a Rust allocation and out again.
        JsValue::from_str(self.inner.borrow().state().as_str())
    }

    /// The channel id once created, else `null`.
    #[wasm_bindgen(getter, js_name = channelId, skip_typescript)]
    pub fn channel_id(&self) -> JsValue {
        self.inner
            .borrow()
            .channel_id()
            .map_or(JsValue::UNDEFINED, JsValue::from_str)
    }

    /// The last event id received (0 before any).
    #[wasm_bindgen(getter, js_name = lastEventId, skip_typescript)]
    pub fn last_event_id(&self) -> f64 {
        self.inner.borrow().last_event_id() as f64
    }

    /// `"websocket" | "eventsource"`, or `null` before the first connection attempt.
    #[wasm_bindgen(getter, skip_typescript)]
    pub fn transport(&self) -> JsValue {
        self.inner
            .borrow()
            .transport()
            .map_or(JsValue::UNDEFINED, |k| JsValue::from_str(k.as_str()))
    }
}
