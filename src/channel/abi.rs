//! The wasm side of the `SSEChannel` class: the channels' [`Machine`]s behind
//! one wide export, `sse(op, h, now, a, b, c)`, that takes and returns numbers
//! only. The class (`src/channel.js`) writes a machine's options into a shared
//! buffer of `f64`s ([`BUF`]) and feeds it inputs; each input's effects come
//! back in the same buffer, strings as (address, length) of static UTF-8 the
//! class decodes from the wasm's memory. One export and no callback: each
//! export, import and closure type costs the browser bundle a shim in the wasm
//! and glue in JavaScript (docs/sdk.md, "Why the executor is JavaScript").
//!
//! # The buffer after an input
//!
//! `[n, delivering, last_event_id, (kind, a, b, c, d, e) × n]`: `delivering` is
//! [`Machine::delivering`] (0: none), then one record per effect
//! ([`encode_effect`]; the kinds are named in [`crate::machine::abi::effect`],
//! and `SSE_FX_*` in `src/browser.js`):
//!
//! | kind | effect | a, b, c, d, e |
//! |---|---|---|
//! | 0 | `Refuse` | closed (1/0) |
//! | 1 | `Listen` | |
//! | 2 | `Create` | |
//! | 3 | `Connect` | conn, WebSocket (1/0), last event id |
//! | 4 | `Disconnect` | |
//! | 5 | `Arm` | timer (0 open, 1 watchdog, 2 retry), ms |
//! | 6 | `Cancel` | timer |
//! | 7 | `State` | from (address, length), to (address, length) |
//! | 8 | `Opened` | |
//! | 9 | `Message` | |
//! | 10 | `End` | |
//! | 11 | `Lost` | from, to |
//! | 12 | `Reconnecting` | attempt, delay ms, code (address, length) |
//! | 13 | `Fail` | code (address, length), message (address, length; length −1: the relay's message) |
//! | 14 | the cause of the next `Fail` (`RECONNECT_EXHAUSTED`) | as `Fail` |
//! | 15 | `Close` | |

use std::cell::RefCell;

use sse_channel_protocol::descriptor::relay_origin;
use sse_channel_protocol::ErrorCode;
use wasm_bindgen::prelude::*;

use crate::machine::abi::{self, decode_input, encode_effect, op};
use crate::machine::{Config, Effect, Input, Machine};

/// Records in [`BUF`]: more than any input produces (a teardown is about ten).
const MAX_EFFECTS: usize = 40;
const BUF_LEN: usize = 3 + 6 * MAX_EFFECTS;

thread_local! {
    /// The buffer the class and the wasm share (see the module docs).
    static BUF: RefCell<[f64; BUF_LEN]> = const { RefCell::new([0.0; BUF_LEN]) };
    /// A string from the class (op 3 sizes it, the class writes UTF-8 into it).
    static TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The machines of the channels that run, by handle − 1 (`None`: a free slot).
    static MACHINES: RefCell<Vec<Option<Machine>>> = const { RefCell::new(Vec::new()) };
    /// A closed machine: the inputs of a channel whose machine was freed (handle 0).
    static CLOSED: RefCell<Option<Machine>> = const { RefCell::new(None) };
    /// The effects buffer, reused.
    static OUT: RefCell<Vec<Effect>> = const { RefCell::new(Vec::new()) };
}

// The class reaches the export through the wasm's exports object, handed over
// once at instantiation (the class is JavaScript, not a wasm-bindgen export).
#[wasm_bindgen(module = "/src/channel.js")]
extern "C" {
    #[wasm_bindgen(js_name = sseBind)]
    fn sse_bind(exports: &JsValue);
}

// src/channel.js imports these (and they each other). wasm-bindgen writes a module beside its glue
// only when the crate names it, so each is named here by one of its exports, never called (the
// package's assemble.mjs inlines all four into each browser entry; the test runner serves them).
#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    #[allow(dead_code)]
    #[wasm_bindgen(js_name = sseError)]
    fn sse_error();
}
#[wasm_bindgen(module = "/src/transport/reader.js")]
extern "C" {
    #[allow(dead_code)]
    #[wasm_bindgen(js_name = sseDispatch)]
    fn sse_dispatch();
}
#[wasm_bindgen(module = "/src/channel/executor.js")]
extern "C" {
    #[allow(dead_code)]
    #[wasm_bindgen(js_name = SSEExecutor)]
    fn sse_executor();
}

#[wasm_bindgen(start)]
fn start() {
    bind();
}

/// Hands the wasm's exports to the class (again: harmless).
pub(super) fn bind() {
    sse_bind(&wasm_bindgen::exports());
}

/// The one export (see the module docs). `op`:
/// - 0: a new machine from the options in the buffer (transport 0/1/2, minDelayMs,
///   maxDelayMs, maxAttempts (∞: none), openTimeoutMs, heartbeatTimeoutMs (NaN: none)),
///   jitter seed `a`, attached after event id `b` (−1: a channel to create); returns its handle;
/// - 1: frees machine `h`; 2: the buffer's address; 3: sizes the text buffer to `h`
///   bytes and returns its address; 4: 1 when the text is a valid `relay`; 5: the
///   text's index in [`ErrorCode::ALL`], −1 if none; 6: the defaults into the buffer;
/// - 16 + k: input k ([`decode_input`]) to machine `h` (0: a channel that closed) at time `now`.
///
/// The numbers are named in [`crate::machine::abi`] (and in `src/browser.js`).
#[wasm_bindgen(js_name = sse, skip_typescript)]
pub fn sse(op: u32, h: u32, now: f64, a: f64, b: f64, c: f64) -> f64 {
    match op {
        op::NEW => new_machine(a, b),
        op::FREE => {
            MACHINES.with(|m| {
                if let Some(slot) = m.borrow_mut().get_mut(h.wrapping_sub(1) as usize) {
                    *slot = None;
                }
            });
            0.0
        }
        op::BUFFER => BUF.with(|b| b.as_ptr() as usize as f64),
        op::TEXT => TEXT.with(|t| {
            let mut t = t.borrow_mut();
            t.clear();
            t.resize(h as usize, 0);
            t.as_ptr() as usize as f64
        }),
        op::IS_RELAY => f64::from(u8::from(text(|s| relay_origin(s).is_ok()))),
        op::CODE_INDEX => {
            text(|s| ErrorCode::ALL.iter().position(|c| c.as_str() == s)).map_or(-1.0, |i| i as f64)
        }
        op::DEFAULTS => {
            BUF.with(|buf| {
                let d = abi::encode_config(Config::DEFAULT);
                buf.borrow_mut()[..d.len()].copy_from_slice(&d);
            });
            0.0
        }
        _ => {
            if let Some(input) = decode_input(op.wrapping_sub(op::INPUT), a, b, c) {
                step(h, now, input);
            }
            0.0
        }
    }
}

/// The text buffer as a `&str` (empty if not UTF-8, which the class never writes).
fn text<T>(f: impl FnOnce(&str) -> T) -> T {
    TEXT.with(|t| f(std::str::from_utf8(&t.borrow()).unwrap_or_default()))
}

fn new_machine(seed: f64, attached: f64) -> f64 {
    const N: usize = abi::opt::MACHINE as usize;
    let cfg = abi::decode_config(
        BUF.with(|b| <[f64; N]>::try_from(&b.borrow()[..N]).unwrap_or_default()),
    );
    let seed = seed as u32;
    let m = if attached >= 0.0 {
        Machine::attached(cfg, seed, attached as u64)
    } else {
        Machine::new(cfg, seed)
    };
    MACHINES.with(|ms| {
        let mut ms = ms.borrow_mut();
        let i = match ms.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                ms.push(None);
                ms.len() - 1
            }
        };
        ms[i] = Some(m);
        (i + 1) as f64
    })
}

/// Feeds `input` to machine `h` and writes the buffer (see the module docs).
fn step(h: u32, now: f64, input: Input) {
    OUT.with(|out| {
        let mut out = out.borrow_mut();
        out.clear();
        let (delivering, last) = MACHINES.with(|ms| {
            let mut ms = ms.borrow_mut();
            match ms.get_mut(h.wrapping_sub(1) as usize) {
                Some(Some(m)) => {
                    m.handle(now, input, &mut out);
                    (m.delivering().unwrap_or(0), m.last_event_id())
                }
                _ => CLOSED.with(|c| {
                    let mut c = c.borrow_mut();
                    let m = c.get_or_insert_with(|| {
                        let mut m = Machine::new(Config::DEFAULT, 1);
                        m.handle(0.0, Input::Close, &mut Vec::new());
                        m
                    });
                    m.handle(now, input, &mut out);
                    (0, 0)
                }),
            }
        });
        BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            let mut n = 0;
            for &e in out.iter() {
                for rec in encode_effect(e, s).into_iter().flatten() {
                    if n < MAX_EFFECTS {
                        buf[3 + 6 * n..9 + 6 * n].copy_from_slice(&rec);
                        n += 1;
                    }
                }
            }
            buf[0] = n as f64;
            buf[1] = f64::from(delivering);
            buf[2] = last as f64;
        });
    });
}

/// A static string as (address, length).
fn s(t: &'static str) -> (f64, f64) {
    (t.as_ptr() as usize as f64, t.len() as f64)
}
