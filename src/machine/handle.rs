//! [`Machine::handle`]: every input, dispatched to the decision it calls for.

use super::config::*;
use super::*;

impl Machine {
    /// Feeds one input at time `now` (ms, any monotonic origin) and appends the
    /// effects to `out`, in the order they must be carried out.
    pub fn handle(&mut self, now: f64, input: Input, out: &mut Vec<Effect>) {
        if self.state.is_closed() {
            if input == Input::Open {
                out.push(Effect::Refuse { closed: true });
            }
            return;
        }
        match input {
            Input::Open => {
                if self.state != State::Idle {
                    out.push(Effect::Refuse { closed: false });
                    return;
                }
                self.set_state(State::Connecting, out);
                self.arm(Timer::Open, self.cfg.open_timeout_ms, out);
                out.push(Effect::Listen);
                if self.created {
                    self.connect(now, out);
                } else {
                    out.push(Effect::Create);
                }
            }
            Input::Fatal(f) => self.finish(Some(f), out),
            Input::Created => {
                if self.created || self.state != State::Connecting || self.armed(Timer::Retry) {
                    return;
                }
                self.created = true;
                self.connect(now, out);
            }
            Input::CreateFailed(code) => {
                if self.created || self.state != State::Connecting || self.armed(Timer::Retry) {
                    return;
                }
                self.failure(code, Why::Relay, out);
            }
            Input::Ready { conn, heartbeat_ms } => {
                if !self.current(conn) || self.live {
                    return;
                }
                self.live = true;
                self.heartbeat_ms = heartbeat_ms;
                self.last_frame_at = now;
                if self.kind == Some(Kind::WebSocket) {
                    self.ws_proven = true;
                }
                self.disarm(Timer::Watchdog, out);
                if let Some(ms) = self.cfg.heartbeat_timeout(heartbeat_ms) {
                    self.arm(Timer::Watchdog, ms, out);
                }
                let first = self.state == State::Connecting;
                self.set_state(State::Open, out);
                if first {
                    self.opened = true;
                    self.disarm(Timer::Open, out);
                    out.push(Effect::Opened);
                }
            }
            Input::Message { conn, id } => {
                if !self.frame(now, conn) {
                    return;
                }
                // Ids already seen (a replay overlapping what arrived before
                // the cut) are dropped: every message is delivered once.
                if id.is_some_and(|id| self.cursor.accept(id)) {
                    out.push(Effect::Message);
                }
            }
            Input::Delivered { conn, id } => {
                if self.frame(now, conn) {
                    self.cursor.accept(id);
                }
            }
            Input::Alive { conn } => {
                self.frame(now, conn);
            }
            Input::Lost { conn, range } => {
                if self.frame(now, conn) {
                    self.cursor.skip(range);
                    out.push(Effect::Lost(range));
                }
            }
            Input::End { conn, id } => {
                if !self.frame(now, conn) {
                    return;
                }
                if let Some(id) = id {
                    self.cursor.accept(id);
                }
                self.disconnect(out);
                out.push(Effect::End);
                self.finish(None, out);
            }
            Input::Final { conn, id, code } => {
                if !self.current(conn) {
                    return;
                }
                if self.live && self.cursor.accept(id) {
                    // Like `end`: nothing follows it, so the channel is over.
                    self.frame(now, conn);
                    self.finish(Some(Failure::new(code, Why::Relay)), out);
                } else {
                    // Before `ready`, or an id already seen (EventSource repeats
                    // the last id on frames without one): an in-band error frame.
                    self.failure(code, Why::Relay, out);
                }
            }
            Input::StreamError { conn, code } => {
                if self.current(conn) {
                    self.failure(code, Why::Relay, out);
                }
            }
            Input::Dropped { conn, opened: _ } => {
                if !self.current(conn) {
                    return;
                }
                if self.should_fall_back() {
                    self.fall_back(now, out);
                } else {
                    self.failure(ErrorCode::NetworkError, LOST, out);
                }
            }
            Input::Refused { conn } => {
                if !self.current(conn) {
                    return;
                }
                if self.should_fall_back() {
                    self.fall_back(now, out);
                } else {
                    self.failure(ErrorCode::NetworkError, REFUSED, out);
                }
            }
            Input::Timer(t) => {
                if !self.armed(t) {
                    return;
                }
                self.armed[t.index()] = false;
                match t {
                    Timer::Open => {
                        let f = match self.last_failure {
                            Some((code, why)) => Failure::new(code, why),
                            None => Failure::new(ErrorCode::OpenTimeout, NO_OPEN),
                        };
                        self.finish(Some(f), out);
                    }
                    Timer::Watchdog => self.watchdog(now, out),
                    Timer::Retry => {
                        if self.created {
                            self.connect(now, out);
                        } else {
                            out.push(Effect::Create);
                        }
                    }
                }
            }
            Input::Offline => self.went_offline = self.live,
            Input::Online => {
                // With `maxAttempts: 0` nothing reconnects, not even this: a
                // dead connection is then found by the heartbeat watchdog.
                let replace = std::mem::take(&mut self.went_offline)
                    && self.live
                    && self.cfg.max_attempts != Some(0);
                if replace {
                    // After a network change the old connection is often dead
                    // without a word; the resume makes the replacement lossless.
                    self.disconnect(out);
                    self.set_state(State::Reconnecting, out);
                    out.push(Effect::Reconnecting {
                        attempt: 1,
                        delay_ms: 0,
                        code: ErrorCode::NetworkError,
                    });
                    self.connect(now, out);
                } else if self.armed(Timer::Retry) {
                    self.disarm(Timer::Retry, out);
                    if self.created {
                        self.connect(now, out);
                    } else {
                        out.push(Effect::Create);
                    }
                }
            }
            Input::Close => self.finish(None, out),
        }
    }
}
