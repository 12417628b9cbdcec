//! Carrying out the machine's effects ([`Inner::run`]) and turning what a
//! transport saw into the machine's inputs ([`on_incoming`]).

use super::*;

impl Inner {
    /// Carries out one effect; returns an input it caused at once, if any.
    pub(super) fn run(&mut self, e: Effect, shared: &Shared) -> Option<Input> {
        match e {
            Effect::Refuse { closed } => {
                let msg = if closed {
                    "open() after close()"
                } else {
                    "open() was already called"
                };
                if let Some((_, reject)) = self.opening.take() {
                    let _ =
                        reject.call1(&JsValue::UNDEFINED, &js_error(ErrorCode::InvalidState, msg));
                }
            }
            Effect::Listen => {
                // open() accepted: its promise settles on the first `ready`, a
                // failure, or close; until then the channel keeps itself alive.
                self.pending_open = self.opening.take();
                self.keepalive = Some(shared.clone());
                let weak = Rc::downgrade(shared);
                let cb = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
                    let input = if e.unchecked_into::<web_sys::Event>().type_() == "online" {
                        Input::Online
                    } else {
                        Input::Offline
                    };
                    with(&weak, |s| step(s, input))
                });
                sse_network(cb.as_ref(), true);
                self.network = Some(cb);
            }
            Effect::Create => {
                let Some(relay) = self.relay.clone() else {
                    return Some(Input::Fatal(Failure::new(
                        ErrorCode::InvalidOptions,
                        Why::Text("no relay: pass { relay: 'https://…' } or call SSEChannel.configure({ relay }) first"),
                    )));
                };
                let weak = Rc::downgrade(shared);
                create_channel(
                    &relay,
                    self.ttl_secs,
                    self.abandon_after_ms,
                    Box::new(move |result| {
                        let Some(s) = weak.upgrade() else { return };
                        let input = match result {
                            Ok(created) => {
                                let mut i = s.borrow_mut();
                                if i.created.is_none() && !i.m.state().is_closed() {
                                    i.created = Some(created);
                                }
                                Input::Created
                            }
                            Err((code, msg)) => {
                                s.borrow_mut().relay_message = msg;
                                Input::CreateFailed(code)
                            }
                        };
                        step(&s, input);
                        flush(&s);
                    }),
                );
            }
            Effect::Connect {
                conn,
                kind,
                last_event_id,
            } => {
                let c = self.created.as_ref()?;
                let url = transport::stream_url(
                    kind,
                    self.relay.as_deref().unwrap_or_default(),
                    &c.channel_id,
                    &c.subscribe_token,
                    last_event_id,
                );
                self.make_dispatch(shared);
                match Transport::connect(kind, &url, &self.fast.as_ref()?.d, conn) {
                    Ok(t) => self.conn = Some(t),
                    Err(_) => return Some(Input::Refused { conn }),
                }
            }
            Effect::Disconnect => {
                if let Some(mut c) = self.conn.take() {
                    c.close();
                }
            }
            Effect::Arm(t, ms) => {
                let weak = Rc::downgrade(shared);
                self.timers[t as usize] = Some(Timeout::new(ms, move || {
                    with(&weak, |s| step(s, Input::Timer(t)))
                }));
            }
            Effect::Cancel(t) => self.timers[t as usize] = None,
            Effect::State(t) => {
                let o = js::object(&[
                    ("from", t.from.as_str().into()),
                    ("to", t.to.as_str().into()),
                ]);
                self.emit(Ev::State, o);
            }
            Effect::Opened => {
                self.emit(Ev::Open, JsValue::UNDEFINED);
                if let Some((resolve, _)) = self.pending_open.take() {
                    let _ = resolve.call0(&JsValue::UNDEFINED);
                }
            }
            // The frame's data is used once: taken, not cloned.
            Effect::Message => {
                let data = std::mem::take(&mut self.data);
                self.emit(Ev::Message, data);
            }
            Effect::End => {
                let data = std::mem::take(&mut self.data);
                self.emit(Ev::End, data);
            }
            Effect::Lost(LostRange { from, to }) => {
                let err = js_error_with(
                    ErrorCode::MessagesLost,
                    &self.relay_message,
                    &[
                        (field::FROM, (from as f64).into()),
                        (field::TO, (to as f64).into()),
                    ],
                );
                self.emit(Ev::Error, err);
            }
            Effect::Reconnecting {
                attempt,
                delay_ms,
                code,
            } => {
                let info = js::object(&[
                    ("attempt", f64::from(attempt).into()),
                    ("delayMs", f64::from(delay_ms).into()),
                    ("code", code.as_str().into()),
                ]);
                self.emit(Ev::Reconnecting, info);
            }
            Effect::Fail(Failure { code, why, cause }) => {
                let details = std::mem::take(&mut self.details);
                let err = match cause {
                    // The final event's details (undefined when it had none).
                    None if code == ErrorCode::FunctionFailed
                        || code == ErrorCode::ChannelCancelled =>
                    {
                        let err = self.error(code, why);
                        let _ = Reflect::set(&err, &field::DETAILS.into(), &details);
                        err
                    }
                    None => self.error(code, why),
                    Some((c, w)) => {
                        let cause = self.error(c, w);
                        let err = self.error(code, why);
                        let _ = Reflect::set(&err, &"cause".into(), &cause);
                        err
                    }
                };
                self.emit(Ev::Error, err.clone());
                if let Some((_, reject)) = self.pending_open.take() {
                    let _ = reject.call1(&JsValue::UNDEFINED, &err);
                }
            }
            Effect::Close => {
                self.emit(Ev::Close, JsValue::UNDEFINED);
                if let Some(cb) = self.network.take() {
                    sse_network(cb.as_ref(), false);
                }
                if let Some((_, reject)) = self.pending_open.take() {
                    let err = js_error(
                        ErrorCode::InvalidState,
                        "the channel was closed before open() completed",
                    );
                    let _ = reject.call1(&JsValue::UNDEFINED, &err);
                }
                self.timers = [None, None, None];
                self.data = JsValue::UNDEFINED;
                // The machine has every id JS delivered (read before this input).
                self.fast = None;
                self.granted = 0;
                // Never the last reference: every caller holds one (see `with`).
                self.keepalive = None;
            }
        }
        None
    }
}

/// What a transport saw, as an input of connection `conn`.
pub(super) fn on_incoming(shared: &Shared, conn: u32, inc: Incoming) {
    let input = match inc {
        Incoming::Lost { opened } => Input::Dropped { conn, opened },
        Incoming::Frame { kind, id, data } => {
            let input = match kind {
                EventKind::Ready => Input::Ready {
                    conn,
                    heartbeat_ms: js::get_u64(&data, field::HEARTBEAT_MS),
                },
                EventKind::Message => Input::Message { conn, id },
                EventKind::End => Input::End { conn, id },
                EventKind::Error => {
                    let code = js::get_string(&data, field::CODE)
                        .and_then(|c| ErrorCode::parse(&c))
                        .unwrap_or(ErrorCode::Internal);
                    let message = js::get_string(&data, field::MESSAGE)
                        .unwrap_or_else(|| "the relay closed the stream with an error".to_owned());
                    shared.borrow_mut().relay_message = message;
                    if code == ErrorCode::MessagesLost {
                        match (
                            js::get_u64(&data, field::FROM),
                            js::get_u64(&data, field::TO),
                        ) {
                            (Some(from), Some(to)) => Input::Lost {
                                conn,
                                range: LostRange { from, to },
                            },
                            _ => Input::Alive { conn },
                        }
                    } else if let Some(id) = id {
                        // The stored final event (fail, cancel), if the id is new.
                        shared.borrow_mut().details = js::get(&data, field::DETAILS);
                        Input::Final { conn, id, code }
                    } else {
                        Input::StreamError { conn, code }
                    }
                }
                _ => Input::Alive { conn },
            };
            shared.borrow_mut().data = data;
            input
        }
    };
    step(shared, input);
}
