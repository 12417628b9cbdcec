//! The numbers of the wasm's one export, `sse(op, h, now, a, b, c)`
//! (`src/channel/abi.rs`): its ops, the inputs it feeds a [`Machine`](super::Machine),
//! the records of the effects it writes back, and the slots of the options
//! array ([`opt`]), with the functions that turn numbers into an [`Input`], an
//! [`Effect`] into records and the slots into a [`Config`] and back. Plain
//! Rust, so the encoding is tested natively; the JavaScript side names the
//! same numbers once, in `src/browser.js` (`SSE_OP_*`, `SSE_IN_*`, `SSE_FX_*`,
//! `SSE_OPT_*`), and
//! `tests/channel_js.rs` checks that both sides agree, name by name.

use sse_channel_protocol::{ErrorCode, LostRange};

use super::{Config, Effect, Failure, Input, Kind, Timer, TransportChoice, Why};

/// `pub const NAME: u32 = N;` for each name (with its doc comment), and
/// `ALL`: every one by its own name, the JavaScript name after the prefix, so
/// that a number added to a module is in its `ALL` (which the tests compare
/// with `src/browser.js`) by construction.
macro_rules! named_numbers {
    ($all:literal; $($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        $($(#[$doc])* pub const $name: u32 = $value;)*
        #[doc = $all]
        pub const ALL: [(&str, u32); [$(stringify!($name)),*].len()] =
            [$((stringify!($name), $name)),*];
    };
}

/// The ops of the export (the JavaScript names: `SSE_OP_` + the name).
pub mod op {
    named_numbers! {
        "Every op, by its JavaScript name.";
        /// A new machine from the options in the buffer; returns its handle.
        NEW = 0,
        /// Frees machine `h`.
        FREE = 1,
        /// The address of the shared buffer.
        BUFFER = 2,
        /// Sizes the text buffer to `h` bytes; returns its address.
        TEXT = 3,
        /// 1 when the text is a valid `relay`, else 0.
        IS_RELAY = 4,
        /// The text's index in `ErrorCode::ALL`, −1 if none.
        CODE_INDEX = 5,
        /// The default options into the buffer.
        DEFAULTS = 6,
        /// The first input: op `INPUT + k` is input `k` ([`super::input`]).
        INPUT = 16,
    }
}

/// The inputs, `k` in op [`op::INPUT`] + `k`, with their numbers `a, b, c`
/// (the JavaScript names: `SSE_IN_` + the name; codes are indexes in
/// [`ErrorCode::ALL`]).
pub mod input {
    named_numbers! {
        "Every input, by its JavaScript name.";
        /// [`Input::Open`](crate::machine::Input::Open).
        OPEN = 0,
        /// `Close`.
        CLOSE = 1,
        /// `Online`.
        ONLINE = 2,
        /// `Offline`.
        OFFLINE = 3,
        /// `Created`.
        CREATED = 4,
        /// `CreateFailed`: code.
        CREATE_FAILED = 5,
        /// `Fatal` with `INVALID_OPTIONS`: `open()` without a relay.
        NO_RELAY = 6,
        /// `Ready`: conn, heartbeat ms (−1: none).
        READY = 7,
        /// `Message`: conn, id (0: none).
        MESSAGE = 8,
        /// `Delivered`: conn, id.
        DELIVERED = 9,
        /// `End`: conn, id (0: none).
        END = 10,
        /// `Alive`: conn.
        ALIVE = 11,
        /// `Lost`: conn, from, to.
        LOST = 12,
        /// `Final`: conn, id, code.
        FINAL = 13,
        /// `StreamError`: conn, code.
        STREAM_ERROR = 14,
        /// `Dropped`: conn, opened (1/0).
        DROPPED = 15,
        /// `Refused`: conn.
        REFUSED = 16,
        /// `Timer`: the timer ([`super::timer`]).
        TIMER = 17,
    }
}

/// The kinds of the effect records `(kind, a, b, c, d, e)` (the JavaScript
/// names: `SSE_FX_` + the name; strings as (address, length) of static UTF-8).
pub mod effect {
    named_numbers! {
        "Every kind, by its JavaScript name.";
        /// `Refuse`: closed (1/0).
        REFUSE = 0,
        /// `Listen`.
        LISTEN = 1,
        /// `Create`.
        CREATE = 2,
        /// `Connect`: conn, WebSocket (1/0), last event id.
        CONNECT = 3,
        /// `Disconnect`.
        DISCONNECT = 4,
        /// `Arm`: timer, ms.
        ARM = 5,
        /// `Cancel`: timer.
        CANCEL = 6,
        /// `State`: from (address, length), to (address, length).
        STATE = 7,
        /// `Opened`.
        OPENED = 8,
        /// `Message`.
        MESSAGE = 9,
        /// `End`.
        END = 10,
        /// `Lost`: from, to.
        LOST = 11,
        /// `Reconnecting`: attempt, delay ms, code (address, length).
        RECONNECTING = 12,
        /// `Fail`: code (address, length), message (address, length; length −1:
        /// the relay's message).
        FAIL = 13,
        /// The cause of the `Fail` record that follows, as `FAIL`.
        CAUSE = 14,
        /// `Close`.
        CLOSE = 15,
    }
}

/// The timers' numbers, in `Arm`, `Cancel` and the `TIMER` input (the
/// executor's index of its `setTimeout` ids).
pub mod timer {
    /// [`Timer::Open`](crate::machine::Timer::Open).
    pub const OPEN: u32 = 0;
    /// `Watchdog`.
    pub const WATCHDOG: u32 = 1;
    /// `Retry`.
    pub const RETRY: u32 = 2;
}

/// The slots of the options array the class keeps per channel (the
/// JavaScript names: `SSE_OPT_` + the name): the first [`opt::MACHINE`] go to
/// op [`op::NEW`] through the buffer ([`decode_config`]); `TTL_SECS` and
/// `ABANDON_AFTER_MS` go into `POST /v1/channels` and stay in JavaScript.
/// An absent value is NaN (`heartbeatTimeoutMs`: the relay's heartbeat
/// decides; `ttlSecs`, `abandonAfterMs`: the relay's default), an unlimited
/// `maxAttempts` is infinity.
pub mod opt {
    named_numbers! {
        "Every slot, by its JavaScript name.";
        /// `transport`: one of [`super::transport`].
        TRANSPORT = 0,
        /// `reconnect.minDelayMs`.
        MIN_DELAY_MS = 1,
        /// `reconnect.maxDelayMs`.
        MAX_DELAY_MS = 2,
        /// `reconnect.maxAttempts`.
        MAX_ATTEMPTS = 3,
        /// `openTimeoutMs`.
        OPEN_TIMEOUT_MS = 4,
        /// `heartbeatTimeoutMs`.
        HEARTBEAT_TIMEOUT_MS = 5,
        /// `ttlSecs`.
        TTL_SECS = 6,
        /// `abandonAfterMs`.
        ABANDON_AFTER_MS = 7,
        /// How many slots the machine reads (those before `TTL_SECS`).
        MACHINE = 6,
    }
}

/// The values of slot [`opt::TRANSPORT`]: the index of the option's string in
/// JavaScript's `['auto', 'websocket', 'eventsource']` (`SSE_TRANSPORTS` in
/// `src/browser.js`).
pub mod transport {
    /// `'auto'`.
    pub const AUTO: u32 = 0;
    /// `'websocket'`.
    pub const WEBSOCKET: u32 = 1;
    /// `'eventsource'`.
    pub const EVENTSOURCE: u32 = 2;
    /// Every value, by its option string.
    pub const ALL: [(&str, u32); 3] = [
        ("auto", AUTO),
        ("websocket", WEBSOCKET),
        ("eventsource", EVENTSOURCE),
    ];
}

/// `c` as the machine's slots of the options array (op [`op::DEFAULTS`]).
// Inlined into the export, as both config functions are: index.js 15,801 -> 15,763 bytes gzip -9.
#[inline(always)]
pub fn encode_config(c: Config) -> [f64; opt::MACHINE as usize] {
    [
        f64::from(match c.transport {
            TransportChoice::Auto => transport::AUTO,
            TransportChoice::Only(Kind::WebSocket) => transport::WEBSOCKET,
            TransportChoice::Only(Kind::EventSource) => transport::EVENTSOURCE,
        }),
        c.min_delay_ms.into(),
        c.max_delay_ms.into(),
        c.max_attempts.map_or(f64::INFINITY, f64::from),
        c.open_timeout_ms.into(),
        c.heartbeat_timeout_ms.map_or(f64::NAN, f64::from),
    ]
}

/// The machine's slots of the options array as a [`Config`] (op [`op::NEW`]);
/// the class wrote them checked (`sseOptions`), so this only converts.
#[inline(always)]
pub fn decode_config(n: [f64; opt::MACHINE as usize]) -> Config {
    let [transport, min, max, attempts, open, heartbeat] = n;
    Config {
        transport: match transport as u32 {
            transport::AUTO => TransportChoice::Auto,
            transport::WEBSOCKET => TransportChoice::Only(Kind::WebSocket),
            _ => TransportChoice::Only(Kind::EventSource),
        },
        min_delay_ms: min as u32,
        max_delay_ms: max as u32,
        max_attempts: (attempts != f64::INFINITY).then_some(attempts as u32),
        open_timeout_ms: open as u32,
        heartbeat_timeout_ms: (!heartbeat.is_nan()).then_some(heartbeat as u32),
    }
}

/// `open()` without a relay (input [`input::NO_RELAY`]).
pub const NO_RELAY: Why = Why::Text(
    "no relay: pass { relay: 'https://…' } or call SSEChannel.configure({ relay }) first",
);

/// The number of `t`.
pub const fn timer_number(t: Timer) -> u32 {
    match t {
        Timer::Open => timer::OPEN,
        Timer::Watchdog => timer::WATCHDOG,
        Timer::Retry => timer::RETRY,
    }
}

/// Input `k` of [`input`] with its numbers; `None` for an unknown `k` or code.
// Inlined into the export: the browser wasm is 66 bytes smaller, index.js 9 bytes gzip -9.
#[inline(always)]
pub fn decode_input(k: u32, a: f64, b: f64, c: f64) -> Option<Input> {
    let conn = a as u32;
    let id = |v: f64| (v >= 1.0).then_some(v as u64);
    let code = |v: f64| ErrorCode::ALL.get(v as usize).copied();
    Some(match k {
        input::OPEN => Input::Open,
        input::CLOSE => Input::Close,
        input::ONLINE => Input::Online,
        input::OFFLINE => Input::Offline,
        input::CREATED => Input::Created,
        input::CREATE_FAILED => Input::CreateFailed(code(a)?),
        input::NO_RELAY => Input::Fatal(Failure::new(ErrorCode::InvalidOptions, NO_RELAY)),
        input::READY => Input::Ready {
            conn,
            heartbeat_ms: (b >= 0.0).then_some(b as u64),
        },
        input::MESSAGE => Input::Message { conn, id: id(b) },
        input::DELIVERED => Input::Delivered { conn, id: b as u64 },
        input::END => Input::End { conn, id: id(b) },
        input::ALIVE => Input::Alive { conn },
        input::LOST => Input::Lost {
            conn,
            range: LostRange {
                from: b as u64,
                to: c as u64,
            },
        },
        input::FINAL => Input::Final {
            conn,
            id: b as u64,
            code: code(c)?,
        },
        input::STREAM_ERROR => Input::StreamError {
            conn,
            code: code(b)?,
        },
        input::DROPPED => Input::Dropped {
            conn,
            opened: b != 0.0,
        },
        input::REFUSED => Input::Refused { conn },
        input::TIMER => Input::Timer(match a as u32 {
            timer::OPEN => Timer::Open,
            timer::WATCHDOG => Timer::Watchdog,
            _ => Timer::Retry,
        }),
        _ => return None,
    })
}

/// The records `(kind, a, b, c, d, e)` of one effect (two for a failure with a
/// cause: [`effect::CAUSE`] first), strings as `s` gives them (in the wasm:
/// address and length).
pub fn encode_effect(e: Effect, s: impl Fn(&'static str) -> (f64, f64)) -> [Option<[f64; 6]>; 2] {
    let one = |k: u32, a: f64, b: f64, c: f64, d: f64| [Some([k.into(), a, b, c, d, 0.0]), None];
    let flag = |v: bool| f64::from(u8::from(v));
    // A failure's code and message as four numbers (length −1: the relay's message).
    let failure = |k: u32, code: ErrorCode, why: Why| {
        let (cp, cl) = s(code.as_str());
        let (mp, ml) = match why {
            Why::Relay => (0.0, -1.0),
            Why::Text(t) => s(t),
        };
        Some([k.into(), cp, cl, mp, ml, 0.0])
    };
    match e {
        Effect::Refuse { closed } => one(effect::REFUSE, flag(closed), 0.0, 0.0, 0.0),
        Effect::Listen => one(effect::LISTEN, 0.0, 0.0, 0.0, 0.0),
        Effect::Create => one(effect::CREATE, 0.0, 0.0, 0.0, 0.0),
        Effect::Connect {
            conn,
            kind,
            last_event_id,
        } => one(
            effect::CONNECT,
            conn.into(),
            flag(kind == Kind::WebSocket),
            last_event_id as f64,
            0.0,
        ),
        Effect::Disconnect => one(effect::DISCONNECT, 0.0, 0.0, 0.0, 0.0),
        Effect::Arm(t, ms) => one(effect::ARM, timer_number(t).into(), ms.into(), 0.0, 0.0),
        Effect::Cancel(t) => one(effect::CANCEL, timer_number(t).into(), 0.0, 0.0, 0.0),
        Effect::State(t) => {
            let (fp, fl) = s(t.from.as_str());
            let (tp, tl) = s(t.to.as_str());
            one(effect::STATE, fp, fl, tp, tl)
        }
        Effect::Opened => one(effect::OPENED, 0.0, 0.0, 0.0, 0.0),
        Effect::Message => one(effect::MESSAGE, 0.0, 0.0, 0.0, 0.0),
        Effect::End => one(effect::END, 0.0, 0.0, 0.0, 0.0),
        Effect::Lost(LostRange { from, to }) => one(effect::LOST, from as f64, to as f64, 0.0, 0.0),
        Effect::Reconnecting {
            attempt,
            delay_ms,
            code,
        } => {
            let (cp, cl) = s(code.as_str());
            one(
                effect::RECONNECTING,
                attempt.into(),
                delay_ms.into(),
                cp,
                cl,
            )
        }
        Effect::Fail(Failure { code, why, cause }) => {
            let fail = failure(effect::FAIL, code, why);
            match cause {
                Some((cc, cw)) => [failure(effect::CAUSE, cc, cw), fail],
                None => [fail, None],
            }
        }
        Effect::Close => one(effect::CLOSE, 0.0, 0.0, 0.0, 0.0),
    }
}
