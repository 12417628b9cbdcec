//! Retries of creation and streams, the attempt budget, the WebSocket
//! fallback, heartbeats and the network events.

use super::*;

#[test]
fn a_lost_stream_is_retried_with_backoff_and_resumes() {
    let mut d = Drive::with(|c| c.transport = TransportChoice::Only(Kind::WebSocket));
    let conn = d.live();
    d.feed(Input::Message { conn, id: Some(1) });
    d.feed(Input::Dropped { conn, opened: true });
    assert!(d.has(Effect::Disconnect));
    assert!(d.has(st(Open, Reconnecting)));
    let (attempt, delay, code) = d.reconnecting().unwrap();
    assert_eq!((attempt, code), (1, ErrorCode::NetworkError));
    assert!((500..1_000).contains(&delay));
    assert_eq!(d.armed_ms(Timer::Retry), Some(delay));
    d.feed(Input::Timer(Timer::Retry));
    assert!(matches!(
        d.out.last(),
        Some(Effect::Arm(Timer::Watchdog, 10_000))
    ));
    let conn = d.conn();
    assert!(d.has(Effect::Connect {
        conn,
        kind: Kind::WebSocket,
        last_event_id: 1
    }));
    d.feed(Input::Ready {
        conn,
        heartbeat_ms: None,
    });
    assert!(d.has(st(Reconnecting, Open)));
    assert!(!d.has(Effect::Opened), "open is emitted once");
}

#[test]
fn final_codes_end_at_once() {
    let mut d = Drive::new(Config::default());
    let conn = d.live();
    d.feed(Input::StreamError {
        conn,
        code: ErrorCode::ChannelNotFound,
    });
    assert_eq!(
        d.failure(),
        Some(Failure::new(ErrorCode::ChannelNotFound, Why::Relay))
    );
    assert_eq!(d.out.last(), Some(&Effect::Close));
    assert_eq!(d.m.state(), Closed);
}

#[test]
fn max_attempts_ends_the_loop_with_the_cause() {
    let mut d = Drive::with(|c| {
        c.max_attempts = Some(2);
        c.transport = TransportChoice::Only(Kind::EventSource);
    });
    let mut conn = d.live();
    for attempt in 1..=2 {
        d.feed(Input::Dropped { conn, opened: true });
        assert_eq!(d.reconnecting().map(|r| r.0), Some(attempt));
        d.feed(Input::Timer(Timer::Retry));
        conn = d.conn();
    }
    d.feed(Input::Dropped { conn, opened: true });
    let f = d.failure().unwrap();
    assert_eq!(f.code, ErrorCode::ReconnectExhausted);
    assert_eq!(f.cause.map(|c| c.0), Some(ErrorCode::NetworkError));
    assert_eq!(d.m.state(), Closed);
}

#[test]
fn ready_then_drop_spends_attempts() {
    // A path that answers `ready` and drops at once must not reset the count.
    let mut d = Drive::with(|c| {
        c.max_attempts = Some(3);
        c.transport = TransportChoice::Only(Kind::WebSocket);
    });
    let mut conn = d.live();
    let mut delays = Vec::new();
    for _ in 0..3 {
        d.feed(Input::Dropped { conn, opened: true });
        delays.push(d.reconnecting().expect("retries").0);
        d.feed(Input::Timer(Timer::Retry));
        conn = d.conn();
        d.feed(Input::Ready {
            conn,
            heartbeat_ms: Some(1_000),
        });
    }
    assert_eq!(delays, [1, 2, 3]);
    d.feed(Input::Dropped { conn, opened: true });
    assert_eq!(
        d.failure().map(|f| f.code),
        Some(ErrorCode::ReconnectExhausted)
    );
}

#[test]
fn a_frame_after_ready_restarts_the_count() {
    let mut d = Drive::with(|c| {
        c.max_attempts = Some(1);
        c.transport = TransportChoice::Only(Kind::WebSocket);
    });
    let mut conn = d.live();
    for _ in 0..5 {
        d.feed(Input::Dropped { conn, opened: true });
        assert_eq!(d.reconnecting().map(|r| r.0), Some(1));
        d.feed(Input::Timer(Timer::Retry));
        conn = d.conn();
        d.feed(Input::Ready {
            conn,
            heartbeat_ms: Some(1_000),
        });
        d.feed(Input::Alive { conn });
    }
}

#[test]
fn creation_is_retried_within_the_open_deadline() {
    let mut d = Drive::new(Config::default());
    d.feed(Input::Open);
    for (i, code) in [
        ErrorCode::NetworkError,
        ErrorCode::RateLimited,
        ErrorCode::ShuttingDown,
    ]
    .into_iter()
    .enumerate()
    {
        d.feed(Input::CreateFailed(code));
        assert_eq!(d.m.state(), Connecting);
        assert_eq!(d.reconnecting().map(|r| r.0), Some(i as u32 + 1));
        assert_eq!(d.feed(Input::Timer(Timer::Retry)), [Effect::Create]);
    }
    d.feed(Input::Created);
    let conn = d.conn();
    d.feed(Input::Ready {
        conn,
        heartbeat_ms: None,
    });
    assert!(d.has(Effect::Opened));
}

#[test]
fn creation_failing_until_the_deadline_rejects_with_its_code() {
    let mut d = Drive::new(Config::default());
    d.feed(Input::Open);
    d.feed(Input::CreateFailed(ErrorCode::NetworkError));
    d.feed(Input::Timer(Timer::Open));
    assert_eq!(
        d.failure(),
        Some(Failure::new(ErrorCode::NetworkError, Why::Relay))
    );
    assert!(d.has(Effect::Cancel(Timer::Retry)));
    assert_eq!(d.out.last(), Some(&Effect::Close));
    // A creation that answers later changes nothing.
    assert!(d.feed(Input::Created).is_empty());
}

#[test]
fn creation_never_answering_is_open_timeout() {
    let mut d = Drive::new(Config::default());
    d.feed(Input::Open);
    d.feed(Input::Timer(Timer::Open));
    assert_eq!(d.failure().map(|f| f.code), Some(ErrorCode::OpenTimeout));
    assert_eq!(d.all.iter().filter(|e| **e == Effect::Create).count(), 1);
}

#[test]
fn creation_refused_for_good_fails_at_once() {
    let mut d = Drive::new(Config::default());
    d.feed(Input::Open);
    d.feed(Input::CreateFailed(ErrorCode::BadRequest));
    assert_eq!(d.failure().map(|f| f.code), Some(ErrorCode::BadRequest));
    assert_eq!(d.m.state(), Closed);
}

#[test]
fn auto_falls_back_when_the_websocket_cannot_open() {
    for input in [
        |conn| Input::Dropped {
            conn,
            opened: false,
        },
        |conn| Input::Dropped { conn, opened: true },
        |conn| Input::Refused { conn },
        |_| Input::Timer(Timer::Watchdog),
    ] {
        let mut d = Drive::new(Config::default());
        let conn = d.connecting();
        d.feed(input(conn));
        assert_eq!(
            d.connect_kind(),
            Some(Kind::EventSource),
            "{:?}",
            input(conn)
        );
        assert!(
            d.reconnecting().is_none(),
            "at once, without a backoff delay"
        );
        let conn = d.conn();
        d.feed(Input::Ready {
            conn,
            heartbeat_ms: None,
        });
        assert!(d.has(Effect::Opened));
        // For good: a later loss retries EventSource.
        d.feed(Input::Dropped { conn, opened: true });
        d.feed(Input::Timer(Timer::Retry));
        assert_eq!(d.connect_kind(), Some(Kind::EventSource));
    }
}

#[test]
fn auto_keeps_a_websocket_that_worked_once() {
    let mut d = Drive::new(Config::default());
    let conn = d.live();
    d.feed(Input::Dropped {
        conn,
        opened: false,
    });
    assert!(d.reconnecting().is_some());
    d.feed(Input::Timer(Timer::Retry));
    assert_eq!(d.connect_kind(), Some(Kind::WebSocket));
    assert_eq!(d.armed_ms(Timer::Watchdog), Some(10_000));
}

#[test]
fn a_silent_attempt_times_out_and_retries() {
    let mut d = Drive::with(|c| c.transport = TransportChoice::Only(Kind::WebSocket));
    let conn = d.live();
    d.feed(Input::Dropped { conn, opened: true });
    d.feed(Input::Timer(Timer::Retry));
    d.feed(Input::Timer(Timer::Watchdog));
    assert_eq!(d.reconnecting().map(|r| r.2), Some(ErrorCode::OpenTimeout));
}

#[test]
fn heartbeat_silence_replaces_the_connection() {
    let mut d = Drive::with(|c| c.transport = TransportChoice::Only(Kind::EventSource));
    let conn = d.live(); // at t=0, timeout 2,500 ms
    d.at(2_000.0, Input::Alive { conn });
    // The deadline set at 0 fires at 2,500: a frame came at 2,000, wait 2,000 more.
    d.at(2_500.0, Input::Timer(Timer::Watchdog));
    assert_eq!(d.out, [Effect::Arm(Timer::Watchdog, 2_000)]);
    d.at(4_500.0, Input::Timer(Timer::Watchdog));
    assert_eq!(
        d.reconnecting().map(|r| r.2),
        Some(ErrorCode::HeartbeatTimeout)
    );
    assert!(d.has(Effect::Disconnect));
}

#[test]
fn heartbeat_check_can_be_disabled() {
    let mut d = Drive::with(|c| c.heartbeat_timeout_ms = Some(0));
    let conn = d.connecting();
    d.feed(Input::Ready {
        conn,
        heartbeat_ms: Some(1_000),
    });
    assert_eq!(d.armed_ms(Timer::Watchdog), None);
}

#[test]
fn messages_lost_skips_the_range() {
    let mut d = Drive::new(Config::default());
    let conn = d.live();
    let range = LostRange { from: 1, to: 9 };
    assert_eq!(d.feed(Input::Lost { conn, range }), [Effect::Lost(range)]);
    assert_eq!(d.m.last_event_id(), 9);
    assert!(d.m.state() == Open);
}

#[test]
fn online_skips_the_backoff_delay() {
    let mut d = Drive::with(|c| c.transport = TransportChoice::Only(Kind::WebSocket));
    let conn = d.live();
    d.feed(Input::Dropped { conn, opened: true });
    d.feed(Input::Online);
    assert!(d.has(Effect::Cancel(Timer::Retry)));
    assert_eq!(d.connect_kind(), Some(Kind::WebSocket));
    // Without a pending retry and without offline, online does nothing.
    let conn = d.conn();
    d.feed(Input::Ready {
        conn,
        heartbeat_ms: None,
    });
    assert!(d.feed(Input::Online).is_empty());
}

#[test]
fn offline_then_online_replaces_a_live_connection() {
    let mut d = Drive::new(Config::default());
    let conn = d.live();
    assert!(d.feed(Input::Offline).is_empty());
    d.feed(Input::Online);
    assert!(d.has(Effect::Disconnect));
    assert!(d.has(st(Open, Reconnecting)));
    assert_eq!(d.reconnecting(), Some((1, 0, ErrorCode::NetworkError)));
    assert_ne!(d.conn(), conn);
}

#[test]
fn max_attempts_zero_never_replaces_on_online() {
    let mut d = Drive::with(|c| c.max_attempts = Some(0));
    d.live();
    d.feed(Input::Offline);
    assert!(d.feed(Input::Online).is_empty());
}

#[test]
fn fatal_and_unarmed_timers() {
    let mut d = Drive::new(Config::default());
    assert!(d.feed(Input::Timer(Timer::Retry)).is_empty());
    d.feed(Input::Open);
    let f = Failure::new(ErrorCode::InvalidOptions, Why::Text("no relay"));
    d.feed(Input::Fatal(f));
    assert_eq!(d.failure(), Some(f));
    assert_eq!(d.m.state(), Closed);
}
