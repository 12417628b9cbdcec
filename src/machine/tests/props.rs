//! Property tests over arbitrary input sequences.

use super::*;

fn arb_input() -> impl Strategy<Value = Input> {
    let code = prop::sample::select(ErrorCode::ALL.to_vec());
    let conn = 0u32..6;
    prop_oneof![
        Just(Input::Open),
        Just(Input::Created),
        code.clone().prop_map(Input::CreateFailed),
        (conn.clone(), prop::option::of(1u64..5_000))
            .prop_map(|(conn, heartbeat_ms)| Input::Ready { conn, heartbeat_ms }),
        (conn.clone(), prop::option::of(0u64..20))
            .prop_map(|(conn, id)| Input::Message { conn, id }),
        (conn.clone(), 0u64..20).prop_map(|(conn, id)| Input::Delivered { conn, id }),
        (conn.clone(), prop::option::of(0u64..20)).prop_map(|(conn, id)| Input::End { conn, id }),
        conn.clone().prop_map(|conn| Input::Alive { conn }),
        (conn.clone(), 0u64..10, 0u64..10).prop_map(|(conn, a, b)| Input::Lost {
            conn,
            range: LostRange {
                from: a.min(b),
                to: a.max(b)
            }
        }),
        (conn.clone(), code.clone()).prop_map(|(conn, code)| Input::StreamError { conn, code }),
        (conn.clone(), 0u64..20, code).prop_map(|(conn, id, code)| Input::Final { conn, id, code }),
        (conn.clone(), any::<bool>()).prop_map(|(conn, opened)| Input::Dropped { conn, opened }),
        conn.prop_map(|conn| Input::Refused { conn }),
        prop::sample::select(TIMERS.to_vec()).prop_map(Input::Timer),
        Just(Input::Online),
        Just(Input::Offline),
        Just(Input::Close),
    ]
}

fn arb_config() -> impl Strategy<Value = Config> {
    (
        prop::sample::select(vec![
            TransportChoice::Auto,
            TransportChoice::Only(Kind::WebSocket),
            TransportChoice::Only(Kind::EventSource),
        ]),
        prop::option::of(0u32..4),
        prop::option::of(0u32..3_000),
    )
        .prop_map(|(transport, max_attempts, heartbeat_timeout_ms)| Config {
            transport,
            max_attempts,
            heartbeat_timeout_ms,
            ..Config::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// The invariants of any run: never two connections, state changes only
    /// along the lifecycle, nothing after `close`, `close` exactly once when
    /// closed, at most one `error` and only right before `close` (or
    /// `MESSAGES_LOST`), a bounded retry count, timers armed before they are
    /// cancelled, connection inputs only acted on for the open connection.
    #[test]
    fn invariants_hold_for_any_input_sequence(
        cfg in arb_config(),
        // Inputs mostly aim at the live connection: `conn` 0 means "the current one".
        inputs in prop::collection::vec((arb_input(), any::<bool>()), 0..80),
        attached in any::<bool>(),
    ) {
        let mut m = if attached { Machine::attached(cfg, 3, 5) } else { Machine::new(cfg, 3) };
        let mut out = Vec::new();
        let mut now = 0.0;
        let mut open_conn: Option<u32> = None;
        let mut last_conn = 0u32;
        let mut closes = 0;
        let mut state = State::Idle;
        let mut in_row = 0u32; // retries since the last proof
        let mut armed = [false; 3];
        for (input, aim) in inputs {
            let input = match input {
                Input::Ready { heartbeat_ms, .. } if aim => Input::Ready { conn: last_conn, heartbeat_ms },
                Input::Message { id, .. } if aim => Input::Message { conn: last_conn, id },
                Input::Delivered { id, .. } if aim => Input::Delivered { conn: last_conn, id },
                Input::End { id, .. } if aim => Input::End { conn: last_conn, id },
                Input::Alive { .. } if aim => Input::Alive { conn: last_conn },
                Input::Lost { range, .. } if aim => Input::Lost { conn: last_conn, range },
                Input::StreamError { code, .. } if aim => Input::StreamError { conn: last_conn, code },
                Input::Final { id, code, .. } if aim => Input::Final { conn: last_conn, id, code },
                Input::Dropped { opened, .. } if aim => Input::Dropped { conn: last_conn, opened },
                Input::Refused { .. } if aim => Input::Refused { conn: last_conn },
                // The executor only delivers timers that are armed.
                Input::Timer(t) if !armed[t.index()] => continue,
                other => other,
            };
            now += 100.0;
            out.clear();
            m.handle(now, input, &mut out);
            let was_closed = closes > 0;
            if was_closed {
                let refused_only = out.iter().all(|e| *e == Effect::Refuse { closed: true });
                prop_assert!(refused_only, "effects after close: {:?}", out);
            }
            if matches!(input, Input::Timer(t) if armed[t.index()]) {
                if let Input::Timer(t) = input { armed[t.index()] = false; }
            }
            let mut failed_here = false;
            for (i, e) in out.iter().enumerate() {
                match *e {
                    Effect::Connect { conn, .. } => {
                        prop_assert!(open_conn.is_none(), "two connections");
                        prop_assert!(conn != last_conn, "connection ids are fresh");
                        open_conn = Some(conn);
                        last_conn = conn;
                    }
                    Effect::Disconnect => {
                        prop_assert!(open_conn.take().is_some(), "disconnect without a connection");
                    }
                    Effect::State(t) => {
                        prop_assert_eq!(t.from, state);
                        prop_assert!(t.from.transition(t.to).is_some());
                        state = t.to;
                    }
                    Effect::Close => {
                        closes += 1;
                        prop_assert_eq!(i, out.len() - 1, "close is last");
                        prop_assert_eq!(state, State::Closed);
                        prop_assert!(open_conn.is_none());
                        prop_assert_eq!(armed, [false; 3], "timers left armed");
                    }
                    Effect::Fail(_) => {
                        prop_assert!(!failed_here);
                        failed_here = true;
                        prop_assert_eq!(out.get(i + 1), Some(&Effect::Close));
                    }
                    Effect::Reconnecting { attempt, .. } => {
                        in_row += 1;
                        if let Some(max) = cfg.max_attempts {
                            prop_assert!(attempt <= max, "attempt {} over max {}", attempt, max);
                        }
                    }
                    Effect::Arm(t, ms) => {
                        armed[t.index()] = true;
                        prop_assert!(ms >= 1 || t == Timer::Retry);
                    }
                    Effect::Cancel(t) => {
                        prop_assert!(armed[t.index()], "cancel of an unarmed timer");
                        armed[t.index()] = false;
                    }
                    Effect::Message | Effect::End | Effect::Lost(_) | Effect::Opened => {
                        prop_assert!(matches!(state, State::Open | State::Connecting | State::Closed));
                    }
                    Effect::Refuse { .. } | Effect::Listen | Effect::Create => {}
                }
            }
            if let Some(max) = cfg.max_attempts {
                // Retries in a row only restart after a proven connection.
                let _ = in_row;
                prop_assert!(m.failed <= max);
            }
            prop_assert_eq!(m.state(), state);
            prop_assert!(closes <= 1, "close twice");
            if state == State::Closed {
                prop_assert_eq!(closes, 1);
            }
        }
        // Closing at the end always works and emits close exactly once in all.
        out.clear();
        m.handle(now, Input::Close, &mut out);
        let total = closes + out.iter().filter(|e| **e == Effect::Close).count();
        prop_assert_eq!(total, 1);
    }

    /// Message ids are delivered strictly increasing, whatever arrives.
    #[test]
    fn deliveries_strictly_increase(ids in prop::collection::vec(prop::option::of(0u64..30), 0..60)) {
        let mut m = Machine::new(Config::default(), 1);
        let mut out = Vec::new();
        m.handle(0.0, Input::Open, &mut out);
        m.handle(0.0, Input::Created, &mut out);
        let conn = 1;
        m.handle(0.0, Input::Ready { conn, heartbeat_ms: None }, &mut out);
        let mut last = 0;
        for id in ids {
            out.clear();
            m.handle(1.0, Input::Message { conn, id }, &mut out);
            if out.contains(&Effect::Message) {
                let id = id.unwrap();
                prop_assert!(id > last);
                last = id;
            } else {
                prop_assert!(id.is_none_or(|id| id <= last));
            }
        }
    }

    /// While [`Machine::delivering`] names a connection, a `message` frame with a
    /// new id emits `Message` and nothing else, and `Delivered { conn, id }`
    /// leaves the machine exactly as the `Message`s up to `id` would: what lets
    /// the executor deliver them without an input each.
    #[test]
    fn delivered_is_the_messages_it_stands_for(
        cfg in arb_config(),
        inputs in prop::collection::vec((arb_input(), any::<bool>()), 0..60),
        n in 1u64..5,
    ) {
        let mut m = Machine::new(cfg, 3);
        let mut out = Vec::new();
        let mut now = 0.0;
        let mut last_conn = 0u32;
        for (input, aim) in inputs {
            let input = match input {
                Input::Ready { heartbeat_ms, .. } if aim => Input::Ready { conn: last_conn, heartbeat_ms },
                Input::Message { id, .. } if aim => Input::Message { conn: last_conn, id },
                Input::Delivered { id, .. } if aim => Input::Delivered { conn: last_conn, id },
                Input::Alive { .. } if aim => Input::Alive { conn: last_conn },
                other => other,
            };
            now += 100.0;
            out.clear();
            m.handle(now, input, &mut out);
            for e in &out {
                if let Effect::Connect { conn, .. } = *e {
                    last_conn = conn;
                }
            }
            let Some(conn) = m.delivering() else { continue };
            let (mut a, mut b) = (m.clone(), m.clone());
            let first = m.last_event_id() + 1;
            let mut oa = Vec::new();
            for id in first..first + n {
                a.handle(now + 1.0, Input::Message { conn, id: Some(id) }, &mut oa);
            }
            prop_assert_eq!(oa, vec![Effect::Message; n as usize]);
            let mut ob = Vec::new();
            b.handle(now + 1.0, Input::Delivered { conn, id: first + n - 1 }, &mut ob);
            prop_assert!(ob.is_empty());
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
    }
}
