//! The `SSEChannel` class: JavaScript (`src/channel.js`) over the channel's
//! [`Machine`](crate::machine::Machine), which makes every decision in wasm
//! ([`abi`]: one export that takes and returns numbers). The class holds what
//! the browser holds (listeners, the connection, timers, promises, the created
//! channel) and carries out the machine's effects. Why JavaScript: with the
//! executor in Rust (export shims, imports, closures and their glue) the
//! browser entry was 25,440 bytes gzip -9; with it in JavaScript, 16,283
//! (docs/sdk.md, "Why the executor is JavaScript"; BENCHMARKS.md, "Browser
//! entry size").
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

mod abi;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

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
  /** Nothing to release (kept from earlier versions): a channel that was opened goes on until `end`, `close()` or a final error. */
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

#[wasm_bindgen(module = "/src/channel.js")]
extern "C" {
    /// The browser end of a channel (JS: `SSEChannel`, `src/channel.js`), bound
    /// for Rust callers such as the browser tests. See the module docs and the
    /// generated TypeScript for the full JS contract.
    #[wasm_bindgen(js_name = SSEChannel)]
    pub type SseChannel;

    #[wasm_bindgen(constructor, catch, js_class = SSEChannel)]
    fn js_new(options: JsValue) -> Result<SseChannel, JsValue>;

    #[wasm_bindgen(static_method_of = SseChannel, js_class = SSEChannel, js_name = attach, catch)]
    fn js_attach(subscription: JsValue, options: JsValue) -> Result<SseChannel, JsValue>;

    #[wasm_bindgen(static_method_of = SseChannel, js_class = SSEChannel, js_name = configure, catch)]
    fn js_configure(options: JsValue) -> Result<(), JsValue>;

    /// What a page keeps to re-attach later (`toSubscription()`). Throws
    /// `INVALID_STATE` before the channel was created.
    #[wasm_bindgen(method, catch, js_class = SSEChannel, js_name = toSubscription)]
    pub fn to_subscription(this: &SseChannel) -> Result<JsValue, JsValue>;

    /// `cancel(reason?)`: asks the relay to cancel the channel.
    #[wasm_bindgen(method, js_class = SSEChannel)]
    pub fn cancel(this: &SseChannel, reason: Option<String>) -> Promise;

    /// `open()`: creates the channel and subscribes.
    #[wasm_bindgen(method, js_class = SSEChannel)]
    pub fn open(this: &SseChannel) -> Promise;

    /// `close()`: closes the channel (idempotent).
    #[wasm_bindgen(method, js_class = SSEChannel)]
    pub fn close(this: &SseChannel);

    /// `on(event, listener)`. Throws `INVALID_OPTIONS` when `listener` is not a function.
    #[wasm_bindgen(method, catch, js_class = SSEChannel)]
    pub fn on(this: &SseChannel, event: &str, listener: JsValue) -> Result<(), JsValue>;

    /// `once(event, listener)`.
    #[wasm_bindgen(method, catch, js_class = SSEChannel)]
    pub fn once(this: &SseChannel, event: &str, listener: JsValue) -> Result<(), JsValue>;

    /// `off(event, listener)`.
    #[wasm_bindgen(method, js_class = SSEChannel)]
    pub fn off(this: &SseChannel, event: &str, listener: JsValue);

    /// `removeAllListeners(event?)`.
    #[wasm_bindgen(method, js_class = SSEChannel, js_name = removeAllListeners)]
    pub fn remove_all_listeners(this: &SseChannel, event: Option<String>);

    /// `toJSON()`: the descriptor. Throws `INVALID_STATE` before `open()` resolved.
    #[wasm_bindgen(method, catch, js_class = SSEChannel, js_name = toJSON)]
    pub fn to_json(this: &SseChannel) -> Result<JsValue, JsValue>;

    /// `state`.
    #[wasm_bindgen(method, getter, js_class = SSEChannel)]
    pub fn state(this: &SseChannel) -> JsValue;

    /// `channelId` (undefined before creation).
    #[wasm_bindgen(method, getter, js_class = SSEChannel, js_name = channelId)]
    pub fn channel_id(this: &SseChannel) -> JsValue;

    /// `lastEventId`.
    #[wasm_bindgen(method, getter, js_class = SSEChannel, js_name = lastEventId)]
    pub fn last_event_id(this: &SseChannel) -> f64;

    /// `transport` (undefined before the first connection attempt).
    #[wasm_bindgen(method, getter, js_class = SSEChannel)]
    pub fn transport(this: &SseChannel) -> JsValue;
}

// The class reaches the wasm through the exports object it is handed at instantiation, by the
// start function; a wasm-bindgen test binary runs no start function, so Rust callers hand it over
// before their first call.
impl SseChannel {
    /// `new SSEChannel(options?)`: options over the configured defaults.
    /// Throws `INVALID_OPTIONS` for an invalid option.
    pub fn new(options: JsValue) -> Result<SseChannel, JsValue> {
        abi::bind();
        Self::js_new(options)
    }

    /// `SSEChannel.attach(subscription, options?)`: a channel for the existing
    /// channel that `subscription` (from `toSubscription()`) names; `open()`
    /// subscribes from its `lastEventId` without creating anything. Throws
    /// `INVALID_OPTIONS` for a malformed subscription or option.
    pub fn attach(subscription: JsValue, options: JsValue) -> Result<SseChannel, JsValue> {
        abi::bind();
        Self::js_attach(subscription, options)
    }

    /// `SSEChannel.configure(options)`: defaults for later constructions.
    pub fn configure(options: JsValue) -> Result<(), JsValue> {
        abi::bind();
        Self::js_configure(options)
    }
}
