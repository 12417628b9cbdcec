//! Opening, delivery, the end of a channel, attached channels and `close()`.

use super::*;

#[test]
fn open_creates_listens_and_arms_the_open_deadline() {
    let mut d = Drive::new(Config::default());
    let out = d.feed(Input::Open).to_vec();
    assert_eq!(
        out,
        [
            st(Idle, Connecting),
            Effect::Arm(Timer::Open, 10_000),
            Effect::Listen,
            Effect::Create
        ]
    );
    assert_eq!(d.m.state(), Connecting);
    assert_eq!(d.feed(Input::Open), [Effect::Refuse { closed: false }]);
}

#[test]
fn created_connects_with_websocket_under_auto() {
    let mut d = Drive::new(Config::default());
    d.feed(Input::Open);
    d.feed(Input::Created);
    assert_eq!(d.connect_kind(), Some(Kind::WebSocket));
    assert_eq!(d.m.transport(), Some(Kind::WebSocket));
    // auto gives an unproven WebSocket half of openTimeoutMs.
    assert_eq!(d.armed_ms(Timer::Watchdog), Some(5_000));
    let mut d = Drive::with(|c| c.transport = TransportChoice::Only(Kind::EventSource));
    d.feed(Input::Open);
    d.feed(Input::Created);
    assert_eq!(d.connect_kind(), Some(Kind::EventSource));
    assert_eq!(d.armed_ms(Timer::Watchdog), Some(10_000));
}

#[test]
fn first_ready_opens_and_settles() {
    let mut d = Drive::new(Config::default());
    let conn = d.connecting();
    d.at(
        3.0,
        Input::Ready {
            conn,
            heartbeat_ms: Some(1_000),
        },
    );
    assert!(d.has(st(Connecting, Open)));
    assert!(d.has(Effect::Opened));
    assert!(d.has(Effect::Cancel(Timer::Open)));
    assert_eq!(d.armed_ms(Timer::Watchdog), Some(2_500));
    assert!(d.m.opened());
    // A second ready on the same connection changes nothing.
    assert!(d
        .feed(Input::Ready {
            conn,
            heartbeat_ms: None
        })
        .is_empty());
}

#[test]
fn messages_are_delivered_once_in_order() {
    let mut d = Drive::new(Config::default());
    let conn = d.live();
    for (id, deliver) in [(1, true), (2, true), (2, false), (1, false), (3, true)] {
        let out = d.feed(Input::Message { conn, id: Some(id) });
        assert_eq!(out.contains(&Effect::Message), deliver, "id {id}");
    }
    assert!(!d
        .feed(Input::Message { conn, id: None })
        .contains(&Effect::Message));
    assert_eq!(d.m.last_event_id(), 3);
}

#[test]
fn frames_of_a_connection_given_up_are_ignored() {
    let mut d = Drive::with(|c| c.transport = TransportChoice::Only(Kind::WebSocket));
    let old = d.live();
    d.feed(Input::Dropped {
        conn: old,
        opened: true,
    });
    d.feed(Input::Timer(Timer::Retry));
    let new = d.conn();
    assert_ne!(old, new);
    assert!(d
        .feed(Input::Message {
            conn: old,
            id: Some(1)
        })
        .is_empty());
    assert!(d
        .feed(Input::Dropped {
            conn: old,
            opened: true
        })
        .is_empty());
    assert!(d
        .feed(Input::Ready {
            conn: old,
            heartbeat_ms: None
        })
        .is_empty());
}

#[test]
fn end_delivers_then_closes() {
    let mut d = Drive::new(Config::default());
    let conn = d.live();
    let out = d.feed(Input::End { conn, id: Some(4) }).to_vec();
    assert_eq!(
        out,
        [
            Effect::Disconnect,
            Effect::Cancel(Timer::Watchdog),
            Effect::End,
            st(Open, Closed),
            Effect::Close
        ]
    );
    assert_eq!(d.m.last_event_id(), 4);
    assert!(d.feed(Input::Message { conn, id: Some(5) }).is_empty());
    assert_eq!(d.feed(Input::Open), [Effect::Refuse { closed: true }]);
}

#[test]
fn the_final_error_event_fails_then_closes_without_reconnecting() {
    for code in [ErrorCode::FunctionFailed, ErrorCode::ChannelCancelled] {
        let mut d = Drive::new(Config::default());
        let conn = d.live();
        d.feed(Input::Message { conn, id: Some(1) });
        let out = d.feed(Input::Final { conn, id: 2, code }).to_vec();
        assert_eq!(
            out,
            [
                Effect::Disconnect,
                Effect::Cancel(Timer::Watchdog),
                st(Open, Closed),
                Effect::Fail(Failure::new(code, Why::Relay)),
                Effect::Close
            ]
        );
        assert_eq!(d.m.last_event_id(), 2);
        assert!(!d
            .all
            .iter()
            .any(|e| matches!(e, Effect::Reconnecting { .. })));
        assert!(d.feed(Input::Dropped { conn, opened: true }).is_empty());
    }
}

#[test]
fn an_error_frame_repeating_a_seen_id_is_an_in_band_error() {
    let mut d = Drive::new(Config::default());
    let conn = d.live();
    d.feed(Input::Message { conn, id: Some(5) });
    d.feed(Input::Final {
        conn,
        id: 5,
        code: ErrorCode::ShuttingDown,
    });
    assert!(d.has(Effect::Disconnect));
    assert_eq!(d.reconnecting().map(|r| r.2), Some(ErrorCode::ShuttingDown));
    assert_eq!(d.m.state(), Reconnecting);
    // Before `ready` (a refused subscription), an error frame is in-band too:
    // a final code ends the channel, whatever id the browser reports.
    let mut d = Drive::new(Config::default());
    let conn = d.connecting();
    d.feed(Input::Final {
        conn,
        id: 9,
        code: ErrorCode::ChannelNotFound,
    });
    assert_eq!(
        d.failure(),
        Some(Failure::new(ErrorCode::ChannelNotFound, Why::Relay))
    );
    assert_eq!(d.m.last_event_id(), 0);
}

#[test]
fn the_final_error_event_after_a_reconnect_also_ends() {
    let mut d = Drive::new(Config::default());
    let conn = d.live();
    d.feed(Input::Message { conn, id: Some(3) });
    d.feed(Input::Dropped { conn, opened: true });
    d.feed(Input::Timer(Timer::Retry));
    let conn = d.conn();
    assert!(d.has(Effect::Connect {
        conn,
        kind: Kind::WebSocket,
        last_event_id: 3
    }));
    d.feed(Input::Ready {
        conn,
        heartbeat_ms: None,
    });
    // The replay overlaps what was delivered: dropped; then the final event.
    assert!(!d
        .feed(Input::Message { conn, id: Some(3) })
        .contains(&Effect::Message));
    d.feed(Input::Final {
        conn,
        id: 4,
        code: ErrorCode::FunctionFailed,
    });
    assert_eq!(
        d.failure(),
        Some(Failure::new(ErrorCode::FunctionFailed, Why::Relay))
    );
    assert_eq!(d.out.last(), Some(&Effect::Close));
    assert_eq!(d.m.state(), Closed);
}

#[test]
fn an_attached_channel_subscribes_from_its_last_event_id_without_creating() {
    let mut m = Machine::attached(Config::default(), 7, 41);
    let mut out = Vec::new();
    m.handle(0.0, Input::Open, &mut out);
    assert!(!out.contains(&Effect::Create));
    assert!(out.contains(&Effect::Connect {
        conn: 1,
        kind: Kind::WebSocket,
        last_event_id: 41
    }));
    // A stray creation answer changes nothing.
    out.clear();
    m.handle(1.0, Input::Created, &mut out);
    assert!(out.is_empty());
    m.handle(
        2.0,
        Input::Ready {
            conn: 1,
            heartbeat_ms: None,
        },
        &mut out,
    );
    assert!(out.contains(&Effect::Opened));
    // Events the page already had are dropped, the next ones delivered, then `end`.
    for (id, delivered) in [(40, false), (41, false), (42, true)] {
        out.clear();
        m.handle(
            3.0,
            Input::Message {
                conn: 1,
                id: Some(id),
            },
            &mut out,
        );
        assert_eq!(out.contains(&Effect::Message), delivered, "id {id}");
    }
    out.clear();
    m.handle(
        4.0,
        Input::End {
            conn: 1,
            id: Some(43),
        },
        &mut out,
    );
    assert!(out.contains(&Effect::End));
    assert_eq!(out.last(), Some(&Effect::Close));
    // A lost stream resumes after what was delivered, still without creating.
    let ws = Config {
        transport: TransportChoice::Only(Kind::WebSocket),
        ..Config::default()
    };
    let mut m = Machine::attached(ws, 7, 41);
    out.clear();
    m.handle(0.0, Input::Open, &mut out);
    m.handle(
        1.0,
        Input::Dropped {
            conn: 1,
            opened: false,
        },
        &mut out,
    );
    out.clear();
    m.handle(2.0, Input::Timer(Timer::Retry), &mut out);
    assert!(!out.contains(&Effect::Create));
    assert!(out.iter().any(|e| matches!(
        e,
        Effect::Connect {
            last_event_id: 41,
            ..
        }
    )));
}

#[test]
fn close_is_final_and_once() {
    let mut d = Drive::new(Config::default());
    assert_eq!(d.feed(Input::Close), [st(Idle, Closed), Effect::Close]);
    assert!(d.feed(Input::Close).is_empty());
    let mut d = Drive::new(Config::default());
    d.live();
    let out = d.feed(Input::Close).to_vec();
    assert_eq!(
        out,
        [
            Effect::Disconnect,
            Effect::Cancel(Timer::Watchdog),
            st(Open, Closed),
            Effect::Close
        ]
    );
}
