//! Native tests of every decision: one test per transition and policy, and
//! property tests over arbitrary input sequences.

use proptest::prelude::*;
use sse_channel_protocol::{ErrorCode, LostRange};

use super::*;
use crate::state::State::*;

mod abi;
mod lifecycle;
mod props;
mod reconnect;

/// A machine, a clock, and the effects of the last input.
struct Drive {
    m: Machine,
    now: f64,
    out: Vec<Effect>,
    /// Every effect so far.
    all: Vec<Effect>,
}

impl Drive {
    fn new(cfg: Config) -> Self {
        Self {
            m: Machine::new(cfg, 7),
            now: 0.0,
            out: Vec::new(),
            all: Vec::new(),
        }
    }

    fn with(f: impl FnOnce(&mut Config)) -> Self {
        let mut c = Config::default();
        f(&mut c);
        Self::new(c)
    }

    fn feed(&mut self, input: Input) -> &[Effect] {
        self.out.clear();
        self.m.handle(self.now, input, &mut self.out);
        self.all.extend_from_slice(&self.out);
        &self.out
    }

    fn at(&mut self, ms: f64, input: Input) -> &[Effect] {
        self.now = ms;
        self.feed(input)
    }

    fn has(&self, e: Effect) -> bool {
        self.out.contains(&e)
    }

    /// The id of the last `Connect` of the last input.
    fn conn(&self) -> u32 {
        self.out
            .iter()
            .rev()
            .find_map(|e| match e {
                Effect::Connect { conn, .. } => Some(*conn),
                _ => None,
            })
            .expect("a Connect effect")
    }

    fn connect_kind(&self) -> Option<Kind> {
        self.out.iter().rev().find_map(|e| match e {
            Effect::Connect { kind, .. } => Some(*kind),
            _ => None,
        })
    }

    fn armed_ms(&self, t: Timer) -> Option<u32> {
        self.out.iter().rev().find_map(|e| match e {
            Effect::Arm(x, ms) if *x == t => Some(*ms),
            _ => None,
        })
    }

    fn failure(&self) -> Option<Failure> {
        self.out.iter().find_map(|e| match e {
            Effect::Fail(f) => Some(*f),
            _ => None,
        })
    }

    fn reconnecting(&self) -> Option<(u32, u32, ErrorCode)> {
        self.out.iter().find_map(|e| match e {
            Effect::Reconnecting {
                attempt,
                delay_ms,
                code,
            } => Some((*attempt, *delay_ms, *code)),
            _ => None,
        })
    }

    /// open() → created → connected; returns the connection id.
    fn connecting(&mut self) -> u32 {
        self.feed(Input::Open);
        self.feed(Input::Created);
        self.conn()
    }

    /// open() through the first `ready` (heartbeat 1 s); returns the connection id.
    fn live(&mut self) -> u32 {
        let conn = self.connecting();
        self.feed(Input::Ready {
            conn,
            heartbeat_ms: Some(1_000),
        });
        conn
    }
}

fn st(from: State, to: State) -> Effect {
    Effect::State(Transition { from, to })
}
