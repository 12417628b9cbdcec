//! `src/channel.js` and `src/channel/executor.js` (the `SSEChannel` class and
//! its executor, in JS), and `src/transport/reader.js` (its connections and
//! per-event path), spell the protocol's names
//! themselves: paths, query parameters, members, the descriptor's and the
//! subscription's shape, the transports' names. Each must be the protocol
//! crate's (or the machine's), so that renaming one there fails here instead of
//! in a browser. The numbers of the wasm's export (ops, inputs, effect kinds),
//! named in `src/browser.js`, must be those of `src/machine/abi.rs`.
#![cfg(not(target_arch = "wasm32"))]

use sse_channel::machine::abi::{effect, input, op, opt, transport};
use sse_channel::machine::Kind;
use sse_channel::protocol::api::{self, field};
use sse_channel::protocol::descriptor::{DESCRIPTOR_TYPE, DESCRIPTOR_VERSION};
use sse_channel::protocol::frame::{ws_field, SSE_BATCH};
use sse_channel::protocol::{ErrorCode, EventKind};

const CLASS: &str = include_str!("../src/channel.js");
const EXECUTOR: &str = include_str!("../src/channel/executor.js");

fn has(needle: &str) {
    assert!(
        CLASS.contains(needle) || EXECUTOR.contains(needle),
        "channel.js and executor.js lack {needle}"
    );
}

fn quoted(name: &str) -> String {
    let mut s = "'".to_owned();
    s.push_str(name);
    s.push('\'');
    s
}

#[test]
fn channel_js_uses_the_protocol_names() {
    // The paths: `{CHANNELS_PATH}`, `…/{id}/cancel`, `…/{id}/ws`, `…/{id}/events`.
    has(&quoted(api::CHANNELS_PATH));
    let mut channel = api::CHANNELS_PATH.to_owned();
    channel.push('/');
    has(&quoted(&channel));
    assert_eq!(api::cancel_path("x"), format!("{channel}x/cancel"));
    has("'/cancel'");
    assert_eq!(api::ws_path("x"), format!("{channel}x/ws"));
    assert_eq!(api::events_path("x"), format!("{channel}x/events"));
    has("(ws ? '/ws' : '/events')");
    // The stream URL's query.
    has(&quoted(&format!("?{}=", api::QUERY_TOKEN)));
    has(&quoted(&format!("&{}=1", api::QUERY_BATCH)));
    has(&quoted(&format!("&{}=", api::QUERY_LAST_EVENT_ID)));
    // The members it reads and writes.
    for name in [
        field::CHANNEL_ID,
        field::SUBSCRIBE_TOKEN,
        field::PUBLISH_TOKEN,
        field::EXPIRES_AT,
        field::HEARTBEAT_MS,
        field::ERROR,
        field::CODE,
        field::MESSAGE,
        field::FROM,
        field::DETAILS,
    ] {
        has(&quoted(name));
    }
    has(&format!("body.{} = ", field::TTL_SECS));
    has(&format!("body.{} = ", field::ABANDON_AFTER_MS));
    has(&format!("{{ {}: String(reason) }}", field::REASON));
    has(&format!("x.{} = a;", field::FROM));
    has(&format!("x.{} = b;", field::TO));
    // The descriptor (`toJSON()`), member by member in the protocol's order.
    let [kind, version, relay, channel_id, publish_token, expires_at] = field::DESCRIPTOR;
    has(&format!(
        "{{ {kind}: '{DESCRIPTOR_TYPE}', {version}: {DESCRIPTOR_VERSION}, {relay}: this._o.relay, {channel_id}: c.channelId, {publish_token}: c.publishToken, {expires_at}: c.expiresAt }}"
    ));
    // The transports' names (the `transport` getter), the machine's.
    has(&format!(
        "ws ? '{}' : '{}'",
        Kind::WebSocket.as_str(),
        Kind::EventSource.as_str()
    ));
    // The codes it names are the protocol's.
    for code in [
        ErrorCode::InvalidOptions,
        ErrorCode::InvalidState,
        ErrorCode::NetworkError,
        ErrorCode::Internal,
        ErrorCode::MessagesLost,
        ErrorCode::FunctionFailed,
        ErrorCode::ChannelCancelled,
    ] {
        has(&quoted(code.as_str()));
    }
}

const BROWSER: &str = include_str!("../src/browser.js");
const READER: &str = include_str!("../src/transport/reader.js");

/// The `export const SSE_{prefix}_NAME = N;` lines of src/browser.js, as (NAME, N).
fn js_numbers(prefix: &str) -> Vec<(String, u32)> {
    let head = format!("export const SSE_{prefix}_");
    BROWSER
        .lines()
        .filter_map(|l| l.strip_prefix(&head))
        .map(|l| {
            let (name, value) = l.split_once(" = ").expect("`NAME = N;`");
            let value = value
                .strip_suffix(';')
                .expect("`N;`")
                .parse()
                .expect("a number");
            (name.to_owned(), value)
        })
        .collect()
}

#[test]
fn the_abi_numbers_are_the_same_on_both_sides() {
    for (prefix, rust) in [
        ("OP", &op::ALL[..]),
        ("IN", &input::ALL[..]),
        ("FX", &effect::ALL[..]),
        ("OPT", &opt::ALL[..]),
    ] {
        let rust: Vec<(String, u32)> = rust.iter().map(|&(n, v)| (n.to_owned(), v)).collect();
        assert_eq!(js_numbers(prefix), rust, "SSE_{prefix}_* in src/browser.js");
    }
    // Nothing else in the JavaScript names a number of the export: ops, inputs and effect kinds
    // are spelled by name (`sseW.sse(SSE_OP_…`, `this._in(SSE_IN_…`, `case SSE_FX_…:`,
    // `[SSE_IN_…, …]` for an input caused by an effect).
    for (file, js) in [
        ("channel.js", CLASS),
        ("executor.js", EXECUTOR),
        ("browser.js", BROWSER),
        ("reader.js", READER),
    ] {
        for (i, line) in js.lines().enumerate() {
            let bare = |pat: &str| {
                line.match_indices(pat)
                    .any(|(at, _)| line[at + pat.len()..].starts_with(|c: char| c.is_ascii_digit()))
            };
            for pat in [
                "num(",
                "out[",
                "n[",
                "subarray(0, ",
                ".n.slice(0, ",
                ".sse(",
                "._in(",
                "sseText(",
                "case ",
                "input = [",
                "return [",
            ] {
                assert!(
                    !bare(pat),
                    "{file}:{}: a bare number after `{pat}`: {line}",
                    i + 1
                );
            }
        }
    }
    // The transport option's strings in the order of their numbers.
    let names: Vec<String> = transport::ALL
        .iter()
        .map(|(n, _)| format!("'{n}'"))
        .collect();
    assert!(
        BROWSER.contains(&format!("[{}].indexOf(t)", names.join(", "))),
        "src/browser.js maps `transport` as src/machine/abi.rs numbers it"
    );
    // Every name is used where it applies.
    let js = [CLASS, EXECUTOR, BROWSER].concat();
    for (prefix, all) in [
        ("IN", &input::ALL[..]),
        ("FX", &effect::ALL[..]),
        ("OPT", &opt::ALL[..]),
    ] {
        for &(name, _) in all {
            let name = format!("SSE_{prefix}_{name}");
            assert!(
                js.matches(&name).count() >= 2,
                "{name} is defined but never used"
            );
        }
    }
}

#[test]
fn reader_js_uses_the_protocol_names() {
    // The SSE event names it listens to, and the kind it delivers itself.
    for kind in [
        EventKind::Ready,
        EventKind::Message,
        EventKind::End,
        EventKind::Error,
        EventKind::Ping,
    ] {
        assert!(
            READER.contains(&quoted(kind.as_str())),
            "{kind:?} in reader.js"
        );
    }
    assert!(READER.contains(&quoted(SSE_BATCH)));
    assert!(READER.contains("v.event === 'message'"));
    // The members of an event object it reads.
    for (member, read) in [
        (ws_field::EVENT, "v.event"),
        (ws_field::ID, "v.id"),
        (ws_field::DATA, "v.data"),
    ] {
        let mut want = "v.".to_owned();
        want.push_str(member);
        assert_eq!(want, read);
        assert!(READER.contains(read), "{read} in reader.js");
    }
    // The event objects it builds for named SSE events have the same members.
    assert!(READER.contains("one({ event, id: +e.lastEventId, data })"));
}
