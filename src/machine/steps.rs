//! The steps [`Machine::handle`] is made of: timers, state changes,
//! connecting, the watchdog, failures and the end of the channel.

use super::config::*;
use super::*;

impl Machine {
    pub(super) fn armed(&self, t: Timer) -> bool {
        self.armed[t.index()]
    }

    pub(super) fn arm(&mut self, t: Timer, ms: u32, out: &mut Vec<Effect>) {
        self.armed[t.index()] = true;
        out.push(Effect::Arm(t, ms));
    }

    pub(super) fn disarm(&mut self, t: Timer, out: &mut Vec<Effect>) {
        if std::mem::take(&mut self.armed[t.index()]) {
            out.push(Effect::Cancel(t));
        }
    }

    pub(super) fn set_state(&mut self, to: State, out: &mut Vec<Effect>) {
        if let Some(t) = self.state.transition(to) {
            self.state = to;
            out.push(Effect::State(t));
        }
    }

    /// An input of the open connection (not of one given up).
    pub(super) fn current(&self, conn: u32) -> bool {
        self.connected && conn == self.conn
    }

    /// A frame after `ready` on the open connection: it is alive, and proven.
    pub(super) fn frame(&mut self, now: f64, conn: u32) -> bool {
        if !self.current(conn) || !self.live {
            return false;
        }
        self.last_frame_at = now;
        if !self.proven {
            self.proven = true;
            self.failed = 0;
            self.last_failure = None;
        }
        true
    }

    pub(super) fn should_fall_back(&self) -> bool {
        self.cfg.transport == TransportChoice::Auto
            && self.kind == Some(Kind::WebSocket)
            && !self.ws_proven
            && !self.live
    }

    /// `auto`: this WebSocket never became live and none ever did → EventSource, at once and for good.
    pub(super) fn fall_back(&mut self, now: f64, out: &mut Vec<Effect>) {
        self.disconnect(out);
        self.kind = Some(Kind::EventSource);
        self.connect(now, out);
    }

    pub(super) fn disconnect(&mut self, out: &mut Vec<Effect>) {
        if std::mem::take(&mut self.connected) {
            out.push(Effect::Disconnect);
        }
        self.live = false;
        self.proven = false;
        self.disarm(Timer::Watchdog, out);
    }

    /// A new connection with the current transport and resume point.
    pub(super) fn connect(&mut self, now: f64, out: &mut Vec<Effect>) {
        self.disconnect(out);
        self.disarm(Timer::Retry, out);
        let kind = *self.kind.get_or_insert(match self.cfg.transport {
            TransportChoice::Auto => Kind::WebSocket,
            TransportChoice::Only(k) => k,
        });
        self.conn = self.conn.wrapping_add(1);
        self.connected = true;
        self.last_frame_at = now;
        out.push(Effect::Connect {
            conn: self.conn,
            kind,
            last_event_id: self.cursor.last(),
        });
        let ms = if self.should_fall_back() {
            self.cfg.ws_trial_ms()
        } else {
            self.cfg.open_timeout_ms
        };
        self.arm(Timer::Watchdog, ms, out);
    }

    pub(super) fn watchdog(&mut self, now: f64, out: &mut Vec<Effect>) {
        if !self.connected {
            return;
        }
        if !self.live {
            if self.should_fall_back() {
                self.fall_back(now, out);
            } else {
                self.failure(ErrorCode::OpenTimeout, NOT_LIVE, out);
            }
            return;
        }
        let Some(timeout) = self.cfg.heartbeat_timeout(self.heartbeat_ms) else {
            return;
        };
        let remaining = f64::from(timeout) - (now - self.last_frame_at);
        if remaining >= 1.0 {
            // A frame came since this deadline was set: wait for the rest.
            self.arm(Timer::Watchdog, remaining as u32, out);
        } else {
            self.failure(ErrorCode::HeartbeatTimeout, SILENT, out);
        }
    }

    /// Every failure ends here: retry with backoff, or give up.
    pub(super) fn failure(&mut self, code: ErrorCode, why: Why, out: &mut Vec<Effect>) {
        self.disconnect(out);
        match after_failure(code, self.failed, self.cfg.max_attempts) {
            Decision::Fail(c) => {
                let f = if c == code {
                    Failure::new(code, why)
                } else {
                    Failure {
                        code: c,
                        why: EXHAUSTED,
                        cause: Some((code, why)),
                    }
                };
                self.finish(Some(f), out);
            }
            Decision::Retry { attempt } => {
                self.last_failure = Some((code, why));
                if self.state == State::Open {
                    self.set_state(State::Reconnecting, out);
                }
                let delay_ms = backoff::delay(
                    attempt,
                    self.cfg.min_delay_ms,
                    self.cfg.max_delay_ms,
                    self.random01(),
                );
                self.failed = self.failed.saturating_add(1);
                out.push(Effect::Reconnecting {
                    attempt: attempt.saturating_add(1),
                    delay_ms,
                    code,
                });
                self.arm(Timer::Retry, delay_ms, out);
            }
        }
    }

    /// The final teardown: `closed`, then `error` (if any), then `close`.
    pub(super) fn finish(&mut self, failure: Option<Failure>, out: &mut Vec<Effect>) {
        self.disconnect(out);
        for t in TIMERS {
            self.disarm(t, out);
        }
        self.set_state(State::Closed, out);
        if let Some(f) = failure {
            out.push(Effect::Fail(f));
        }
        out.push(Effect::Close);
    }

    /// A uniform draw from `[0, 1)` (xorshift32): enough to spread clients' retries.
    pub(super) fn random01(&mut self) -> f64 {
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        f64::from(x) / 4_294_967_296.0
    }
}
