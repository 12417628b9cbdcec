//! The numbers of the wasm's export ([`crate::machine::abi`]): every input
//! decoded and every effect encoded, kind by kind (the JavaScript side's names
//! are checked against these in `tests/channel_js.rs`).

use std::cell::RefCell;

use super::*;
use crate::machine::abi::{decode_input, effect, encode_effect, input, op, timer, NO_RELAY};
use crate::state::{State, Transition};

#[test]
fn the_numbers_are_distinct_and_dense() {
    for (what, all) in [("inputs", &input::ALL[..]), ("effects", &effect::ALL[..])] {
        let numbers: Vec<u32> = all.iter().map(|&(_, n)| n).collect();
        let dense: Vec<u32> = (0..all.len() as u32).collect();
        assert_eq!(numbers, dense, "{what}: 0, 1, 2, … in order");
    }
    let mut ops: Vec<u32> = op::ALL.iter().map(|&(_, n)| n).collect();
    ops.dedup();
    assert_eq!(ops.len(), op::ALL.len());
    assert!(
        op::ALL.iter().all(|&(_, n)| n <= op::INPUT),
        "inputs come after every other op"
    );
    assert_eq!([timer::OPEN, timer::WATCHDOG, timer::RETRY], [0, 1, 2]);
}

#[test]
fn every_input_decodes() {
    let code = |c: ErrorCode| ErrorCode::ALL.iter().position(|&x| x == c).unwrap() as f64;
    let lost = ErrorCode::MessagesLost;
    let cases = [
        (input::OPEN, [0.0; 3], Input::Open),
        (input::CLOSE, [0.0; 3], Input::Close),
        (input::ONLINE, [0.0; 3], Input::Online),
        (input::OFFLINE, [0.0; 3], Input::Offline),
        (input::CREATED, [0.0; 3], Input::Created),
        (
            input::CREATE_FAILED,
            [code(ErrorCode::RateLimited), 0.0, 0.0],
            Input::CreateFailed(ErrorCode::RateLimited),
        ),
        (
            input::NO_RELAY,
            [0.0; 3],
            Input::Fatal(Failure::new(ErrorCode::InvalidOptions, NO_RELAY)),
        ),
        (
            input::READY,
            [3.0, 15_000.0, 0.0],
            Input::Ready {
                conn: 3,
                heartbeat_ms: Some(15_000),
            },
        ),
        (
            input::READY,
            [3.0, -1.0, 0.0],
            Input::Ready {
                conn: 3,
                heartbeat_ms: None,
            },
        ),
        (
            input::MESSAGE,
            [2.0, 9.0, 0.0],
            Input::Message {
                conn: 2,
                id: Some(9),
            },
        ),
        (
            input::MESSAGE,
            [2.0, 0.0, 0.0],
            Input::Message { conn: 2, id: None },
        ),
        (
            input::DELIVERED,
            [2.0, 12.0, 0.0],
            Input::Delivered { conn: 2, id: 12 },
        ),
        (
            input::END,
            [2.0, 13.0, 0.0],
            Input::End {
                conn: 2,
                id: Some(13),
            },
        ),
        (
            input::END,
            [2.0, 0.0, 0.0],
            Input::End { conn: 2, id: None },
        ),
        (input::ALIVE, [4.0, 0.0, 0.0], Input::Alive { conn: 4 }),
        (
            input::LOST,
            [4.0, 5.0, 8.0],
            Input::Lost {
                conn: 4,
                range: LostRange { from: 5, to: 8 },
            },
        ),
        (
            input::FINAL,
            [4.0, 21.0, code(ErrorCode::FunctionFailed)],
            Input::Final {
                conn: 4,
                id: 21,
                code: ErrorCode::FunctionFailed,
            },
        ),
        (
            input::STREAM_ERROR,
            [4.0, code(lost), 0.0],
            Input::StreamError {
                conn: 4,
                code: lost,
            },
        ),
        (
            input::DROPPED,
            [5.0, 1.0, 0.0],
            Input::Dropped {
                conn: 5,
                opened: true,
            },
        ),
        (
            input::DROPPED,
            [5.0, 0.0, 0.0],
            Input::Dropped {
                conn: 5,
                opened: false,
            },
        ),
        (input::REFUSED, [6.0, 0.0, 0.0], Input::Refused { conn: 6 }),
        (
            input::TIMER,
            [timer::OPEN.into(), 0.0, 0.0],
            Input::Timer(Timer::Open),
        ),
        (
            input::TIMER,
            [timer::WATCHDOG.into(), 0.0, 0.0],
            Input::Timer(Timer::Watchdog),
        ),
        (
            input::TIMER,
            [timer::RETRY.into(), 0.0, 0.0],
            Input::Timer(Timer::Retry),
        ),
    ];
    for &(_, k) in &input::ALL {
        assert!(cases.iter().any(|c| c.0 == k), "input {k} has a case here");
    }
    for (k, [a, b, c], want) in cases {
        assert_eq!(decode_input(k, a, b, c), Some(want), "input {k}");
    }
    // An unknown input, or a code outside the protocol's list: nothing.
    assert_eq!(decode_input(input::ALL.len() as u32, 0.0, 0.0, 0.0), None);
    let unknown = ErrorCode::ALL.len() as f64;
    assert_eq!(decode_input(input::CREATE_FAILED, unknown, 0.0, 0.0), None);
    assert_eq!(decode_input(input::STREAM_ERROR, 1.0, unknown, 0.0), None);
    assert_eq!(decode_input(input::FINAL, 1.0, 2.0, unknown), None);
}

#[test]
fn every_effect_encodes() {
    // Strings as (their index among those given, length), as the class reads (address, length).
    let given: RefCell<Vec<&'static str>> = RefCell::new(Vec::new());
    let s = |t: &'static str| {
        let mut g = given.borrow_mut();
        g.push(t);
        ((g.len() - 1) as f64, t.len() as f64)
    };
    let one = |k: u32, a: f64, b: f64, c: f64, d: f64| [Some([k.into(), a, b, c, d, 0.0]), None];
    let closing = Transition {
        from: State::Open,
        to: State::Closed,
    };
    let msg = "the relay is gone";
    let cases = [
        (
            Effect::Refuse { closed: true },
            one(effect::REFUSE, 1.0, 0.0, 0.0, 0.0),
            vec![],
        ),
        (
            Effect::Refuse { closed: false },
            one(effect::REFUSE, 0.0, 0.0, 0.0, 0.0),
            vec![],
        ),
        (
            Effect::Listen,
            one(effect::LISTEN, 0.0, 0.0, 0.0, 0.0),
            vec![],
        ),
        (
            Effect::Create,
            one(effect::CREATE, 0.0, 0.0, 0.0, 0.0),
            vec![],
        ),
        (
            Effect::Connect {
                conn: 3,
                kind: Kind::WebSocket,
                last_event_id: 41,
            },
            one(effect::CONNECT, 3.0, 1.0, 41.0, 0.0),
            vec![],
        ),
        (
            Effect::Connect {
                conn: 4,
                kind: Kind::EventSource,
                last_event_id: 0,
            },
            one(effect::CONNECT, 4.0, 0.0, 0.0, 0.0),
            vec![],
        ),
        (
            Effect::Disconnect,
            one(effect::DISCONNECT, 0.0, 0.0, 0.0, 0.0),
            vec![],
        ),
        (
            Effect::Arm(Timer::Open, 10_000),
            one(effect::ARM, 0.0, 10_000.0, 0.0, 0.0),
            vec![],
        ),
        (
            Effect::Arm(Timer::Watchdog, 5),
            one(effect::ARM, 1.0, 5.0, 0.0, 0.0),
            vec![],
        ),
        (
            Effect::Cancel(Timer::Retry),
            one(effect::CANCEL, 2.0, 0.0, 0.0, 0.0),
            vec![],
        ),
        (
            Effect::State(closing),
            one(effect::STATE, 0.0, 4.0, 1.0, 6.0),
            vec!["open", "closed"],
        ),
        (
            Effect::Opened,
            one(effect::OPENED, 0.0, 0.0, 0.0, 0.0),
            vec![],
        ),
        (
            Effect::Message,
            one(effect::MESSAGE, 0.0, 0.0, 0.0, 0.0),
            vec![],
        ),
        (Effect::End, one(effect::END, 0.0, 0.0, 0.0, 0.0), vec![]),
        (
            Effect::Lost(LostRange { from: 7, to: 9 }),
            one(effect::LOST, 7.0, 9.0, 0.0, 0.0),
            vec![],
        ),
        (
            Effect::Reconnecting {
                attempt: 2,
                delay_ms: 1_500,
                code: ErrorCode::NetworkError,
            },
            one(effect::RECONNECTING, 2.0, 1_500.0, 0.0, 13.0),
            vec!["NETWORK_ERROR"],
        ),
        (
            Effect::Fail(Failure::new(ErrorCode::FunctionFailed, Why::Relay)),
            one(effect::FAIL, 0.0, 15.0, 0.0, -1.0),
            vec!["FUNCTION_FAILED"],
        ),
        (
            Effect::Fail(Failure::new(ErrorCode::OpenTimeout, Why::Text(msg))),
            one(effect::FAIL, 0.0, 12.0, 1.0, msg.len() as f64),
            vec!["OPEN_TIMEOUT", msg],
        ),
        (
            Effect::Fail(Failure {
                code: ErrorCode::ReconnectExhausted,
                why: Why::Text(msg),
                cause: Some((ErrorCode::NetworkError, Why::Relay)),
            }),
            [
                Some([effect::CAUSE.into(), 2.0, 13.0, 0.0, -1.0, 0.0]),
                Some([effect::FAIL.into(), 0.0, 19.0, 1.0, msg.len() as f64, 0.0]),
            ],
            vec!["RECONNECT_EXHAUSTED", msg, "NETWORK_ERROR"],
        ),
        (
            Effect::Close,
            one(effect::CLOSE, 0.0, 0.0, 0.0, 0.0),
            vec![],
        ),
    ];
    for &(_, k) in &effect::ALL {
        let kinds =
            |r: &[Option<[f64; 6]>; 2]| r.iter().flatten().map(|r| r[0]).collect::<Vec<_>>();
        assert!(
            cases.iter().any(|c| kinds(&c.1).contains(&k.into())),
            "effect kind {k} has a case here"
        );
    }
    for (e, want, strings) in cases {
        given.borrow_mut().clear();
        assert_eq!(encode_effect(e, s), want, "{e:?}");
        assert_eq!(*given.borrow(), strings, "the strings of {e:?}");
    }
}

#[test]
fn options_slots_round_trip_every_config_shape() {
    use crate::machine::abi::{decode_config, encode_config, opt, transport};
    // The machine's slots come first, then the two that only go to the relay.
    let slots: Vec<u32> = opt::ALL[..8].iter().map(|&(_, n)| n).collect();
    assert_eq!(slots, (0..8).collect::<Vec<u32>>());
    assert_eq!(opt::MACHINE, opt::TTL_SECS);
    assert_eq!(
        transport::ALL.map(|(_, n)| n),
        [
            transport::AUTO,
            transport::WEBSOCKET,
            transport::EVENTSOURCE
        ]
    );
    let configs = [
        Config::DEFAULT,
        Config {
            transport: TransportChoice::Only(Kind::WebSocket),
            min_delay_ms: 1,
            max_delay_ms: 1,
            max_attempts: Some(0),
            open_timeout_ms: 1,
            heartbeat_timeout_ms: Some(0),
        },
        Config {
            transport: TransportChoice::Only(Kind::EventSource),
            min_delay_ms: crate::machine::MS_MAX,
            max_delay_ms: crate::machine::MS_MAX,
            max_attempts: Some(u32::MAX),
            open_timeout_ms: crate::machine::MS_MAX,
            heartbeat_timeout_ms: Some(crate::machine::MS_MAX),
        },
    ];
    for c in configs {
        let n = encode_config(c);
        assert_eq!(decode_config(n), c, "{n:?}");
    }
    let d = encode_config(Config::DEFAULT);
    assert_eq!(d[opt::TRANSPORT as usize], f64::from(transport::AUTO));
    assert_eq!(d[opt::MAX_ATTEMPTS as usize], f64::INFINITY, "unlimited");
    assert!(
        d[opt::HEARTBEAT_TIMEOUT_MS as usize].is_nan(),
        "the relay's heartbeat decides"
    );
    assert_eq!(
        d[opt::MIN_DELAY_MS as usize],
        f64::from(Config::DEFAULT.min_delay_ms)
    );
}
