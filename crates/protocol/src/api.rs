//! HTTP surface of the relay: paths, names and JSON bodies.
//!
//! Every field name that crosses the wire is spelled here once.
//!
//! ```
//! use sse_channel_protocol::api;
//! assert_eq!(api::events_path("abc"), "/v1/channels/abc/events");
//! ```

use serde::{Deserialize, Serialize};

use crate::EventId;

/// Prefix of every versioned route.
pub const API_PREFIX: &str = "/v1";
/// `POST`: create a channel. Body: [`CreateChannelRequest`] (optional).
pub const CHANNELS_PATH: &str = "/v1/channels";
/// Liveness probe.
pub const HEALTH_PATH: &str = "/healthz";
/// Prometheus text metrics.
pub const METRICS_PATH: &str = "/metrics";

/// Query parameter carrying a subscribe token on stream routes.
pub const QUERY_TOKEN: &str = "token";
/// Query parameter carrying the last event id a subscriber saw.
pub const QUERY_LAST_EVENT_ID: &str = "lastEventId";
/// Query parameter of both stream routes: `batch=1` lets a WebSocket text
/// frame, or an SSE event named [`crate::frame::SSE_BATCH`], carry several
/// events as a JSON array of event frames in id order (one `JSON.parse` and
/// one browser event for a burst instead of one per event). Without it every
/// frame is one event.
pub const QUERY_BATCH: &str = "batch";
/// Header the browser's EventSource sends on its own reconnects.
pub const HEADER_LAST_EVENT_ID: &str = "last-event-id";
/// Header making a publish or end request idempotent: a retry with the same key
/// returns the first answer and stores nothing new. At most
/// [`crate::limits::MAX_IDEMPOTENCY_KEY_LEN`] visible ASCII characters.
pub const HEADER_IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Response header set to `true` when an idempotent retry was answered from memory.
pub const HEADER_IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// Request header carrying the publish token of a publish or end request:
/// `Authorization: Bearer <publishToken>`.
pub const HEADER_AUTHORIZATION: &str = "authorization";
/// The authorization scheme of [`HEADER_AUTHORIZATION`], followed by one space
/// and the token. The relay matches it case-insensitively (RFC 9110).
pub const AUTH_SCHEME: &str = "Bearer";
/// Request header naming the media type of the body.
pub const HEADER_CONTENT_TYPE: &str = "content-type";
/// Media type of every JSON request and answer body.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// A batch publish body is `BATCH_BODY_HEAD`, the messages' JSON texts joined
/// by `,`, then [`BATCH_BODY_TAIL`]: the JSON of [`PublishRequest`] with
/// `messages`, for clients that assemble it from JSON text without serde.
///
/// ```
/// use sse_channel_protocol::api::{BATCH_BODY_HEAD, BATCH_BODY_TAIL, DATA_BODY_HEAD, DATA_BODY_TAIL};
/// assert_eq!([BATCH_BODY_HEAD, "1,\"two\"", BATCH_BODY_TAIL].concat(), r#"{"messages":[1,"two"]}"#);
/// assert_eq!([DATA_BODY_HEAD, "{}", DATA_BODY_TAIL].concat(), r#"{"data":{}}"#);
/// ```
pub const BATCH_BODY_HEAD: &str = "{\"messages\":[";
/// End of a batch publish body; see [`BATCH_BODY_HEAD`].
pub const BATCH_BODY_TAIL: &str = "]}";
/// A one-message publish body or an end body is `DATA_BODY_HEAD`, the JSON
/// text, then [`DATA_BODY_TAIL`]: the JSON of [`PublishRequest`] or
/// [`EndRequest`] with `data`.
pub const DATA_BODY_HEAD: &str = "{\"data\":";
/// End of a one-message or end body; see [`DATA_BODY_HEAD`].
pub const DATA_BODY_TAIL: &str = "}";

/// `GET`: the EventSource stream of a channel.
pub fn events_path(channel_id: &str) -> String {
    channel_path(channel_id, "events")
}
/// `GET` (upgrade): the WebSocket stream of a channel.
pub fn ws_path(channel_id: &str) -> String {
    channel_path(channel_id, "ws")
}
/// `POST`: publish one message or a batch. Body: [`PublishRequest`].
pub fn messages_path(channel_id: &str) -> String {
    channel_path(channel_id, "messages")
}
/// `POST`: publish the final message and end the channel. Body: [`EndRequest`].
pub fn end_path(channel_id: &str) -> String {
    channel_path(channel_id, "end")
}

/// `POST`: end the channel with a final `FUNCTION_FAILED` error event
/// (publish token). Body: [`FailRequest`]; answer: [`PublishResponse`].
pub fn fail_path(channel_id: &str) -> String {
    channel_path(channel_id, "fail")
}
/// `POST`: cancel the channel with a final `CHANNEL_CANCELLED` error event
/// (**subscribe** token). Body: [`CancelRequest`]; answer: [`CancelResponse`].
pub fn cancel_path(channel_id: &str) -> String {
    channel_path(channel_id, "cancel")
}
/// `GET`: the publisher's long-poll for a cancel (publish token). Query:
/// [`QUERY_TIMEOUT_MS`]; answer: [`WaitResponse`].
pub fn wait_path(channel_id: &str) -> String {
    channel_path(channel_id, "wait")
}

/// Query parameter of `GET …/wait`: how long to wait, in milliseconds
/// (default [`crate::limits::DEFAULT_WAIT_TIMEOUT_MS`], at most
/// [`crate::limits::MAX_WAIT_TIMEOUT_MS`]).
pub const QUERY_TIMEOUT_MS: &str = "timeoutMs";

fn channel_path(channel_id: &str, tail: &str) -> String {
    let mut s = String::with_capacity(CHANNELS_PATH.len() + channel_id.len() + tail.len() + 2);
    s.push_str(CHANNELS_PATH);
    s.push('/');
    s.push_str(channel_id);
    s.push('/');
    s.push_str(tail);
    s
}

/// Body of `POST /v1/channels`. Every field is optional; an empty body is valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChannelRequest {
    /// Lifetime of the channel in seconds. Default and maximum are relay settings
    /// (see [`crate::limits::DEFAULT_CHANNEL_TTL_SECS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// Cancel the channel (reason `ABANDONED`) once it has had no live
    /// subscriber for this many milliseconds; the clock starts at creation
    /// and restarts whenever the count falls to 0. Absent: never (the
    /// default). Between [`crate::limits::MIN_ABANDON_AFTER_MS`] and
    /// [`crate::limits::MAX_ABANDON_AFTER_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandon_after_ms: Option<u64>,
}

/// Answer to `POST /v1/channels` (status 201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateChannelResponse {
    /// 32 lowercase hex digits (128 random bits).
    pub channel_id: String,
    /// Token granting the right to subscribe; stays in the browser.
    pub subscribe_token: String,
    /// Token granting the right to publish; travels in the descriptor.
    pub publish_token: String,
    /// Expiry of the channel and both tokens, Unix time in milliseconds.
    pub expires_at: u64,
}

/// Body of `POST /v1/channels/{id}/messages`: exactly one of `data` (one message)
/// or `messages` (a batch, stored in order with consecutive ids).
///
/// `{"data": X}` and `{"messages": [X, Y]}` are both valid. The relay decodes
/// this shape itself to keep payloads as raw JSON; the type documents it and
/// serves clients written in Rust.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishRequest<T> {
    /// One message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    /// A batch of messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<T>>,
}

/// Body of `POST /v1/channels/{id}/end`: `{"data": X}`; an empty body or a missing
/// `data` means `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndRequest<T> {
    /// The final message.
    #[serde(default)]
    pub data: Option<T>,
}

/// Answer to a publish or end request (status 200): the ids the relay assigned,
/// `firstId..=lastId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishResponse {
    /// Id of the first stored event.
    pub first_id: EventId,
    /// Id of the last stored event.
    pub last_id: EventId,
    /// The channel's live subscribers when the relay answered (see
    /// `docs/relay.md`, "Subscribers", for what counts with each broker).
    /// Always present in the relay's answers; optional for older relays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribers: Option<u64>,
}

/// Body of `POST /v1/channels/{id}/fail`: `{"message": "…", "details": X}`.
/// `message` has at most [`crate::limits::MAX_FAIL_MESSAGE_CHARS`]
/// characters; `details` is any JSON value, optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest<T> {
    /// What went wrong, for people.
    pub message: String,
    /// Anything the function wants the browser to see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<T>,
}

/// Body of `POST /v1/channels/{id}/cancel` (optional): `{"reason": "…"}`, at
/// most [`crate::limits::MAX_CANCEL_REASON_CHARS`] characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why the reader gave up; the final event's `message` (default
    /// [`crate::limits::DEFAULT_CANCEL_MESSAGE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Answer to `POST /v1/channels/{id}/cancel` (status 200): the id of the
/// stored `CHANNEL_CANCELLED` event (also when the channel was already
/// cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelResponse {
    /// Id of the final event.
    pub id: EventId,
}

/// The channel's state in a [`WaitResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitState {
    /// Still open when the wait timed out; ask again.
    Open,
    /// Cancelled: `reason` says why.
    Cancelled,
    /// Ended (by `end`, `fail`, or expiry): nothing to wait for.
    Ended,
}

/// Answer to `GET /v1/channels/{id}/wait` (status 200):
/// `{"state":"cancelled","reason":"…"}`, `{"state":"ended"}` or
/// `{"state":"open","subscribers":k}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitResponse {
    /// What the channel is.
    pub state: WaitState,
    /// With [`WaitState::Cancelled`]: the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// With [`WaitState::Open`]: the live subscribers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribers: Option<u64>,
}

/// Error body of every failed HTTP call: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code, one of [`crate::ErrorCode`].
    pub code: String,
    /// Human-readable explanation; not stable.
    pub message: String,
}

/// JSON member names of the bodies, frames and descriptor, for clients that
/// read and build them without serde (the browser SDK uses `Reflect`, which
/// keeps its bundle small). The test `field_names_match_serde` checks every
/// name against the serde spelling of the types, so the two cannot drift.
pub mod field {
    /// [`super::CreateChannelResponse::channel_id`], `Descriptor::channel_id`.
    pub const CHANNEL_ID: &str = "channelId";
    /// [`super::CreateChannelResponse::subscribe_token`].
    pub const SUBSCRIBE_TOKEN: &str = "subscribeToken";
    /// [`super::CreateChannelResponse::publish_token`], `Descriptor::publish_token`.
    pub const PUBLISH_TOKEN: &str = "publishToken";
    /// [`super::CreateChannelResponse::expires_at`], `Descriptor::expires_at`.
    pub const EXPIRES_AT: &str = "expiresAt";
    /// [`super::CreateChannelRequest::ttl_secs`].
    pub const TTL_SECS: &str = "ttlSecs";
    /// `ReadyData::heartbeat_ms` (data of the `ready` frame).
    pub const HEARTBEAT_MS: &str = "heartbeatMs";
    /// [`super::PublishRequest::data`], [`super::EndRequest::data`]; also the
    /// payload member of WebSocket frames.
    pub const DATA: &str = "data";
    /// [`super::PublishRequest::messages`].
    pub const MESSAGES: &str = "messages";
    /// [`super::ErrorBody::error`].
    pub const ERROR: &str = "error";
    /// [`super::ErrorDetail::code`]; also in `error` frames.
    pub const CODE: &str = "code";
    /// [`super::ErrorDetail::message`]; also in `error` frames.
    pub const MESSAGE: &str = "message";
    /// `LostRange::from` (in `MESSAGES_LOST` frames).
    pub const FROM: &str = "from";
    /// `LostRange::to` (in `MESSAGES_LOST` frames).
    pub const TO: &str = "to";
    /// `Descriptor::kind`.
    pub const TYPE: &str = "type";
    /// `Descriptor::version`.
    pub const VERSION: &str = "version";
    /// `Descriptor::relay`.
    pub const RELAY: &str = "relay";
    /// [`super::CreateChannelRequest::abandon_after_ms`].
    pub const ABANDON_AFTER_MS: &str = "abandonAfterMs";
    /// [`super::PublishResponse::subscribers`], [`super::WaitResponse::subscribers`].
    pub const SUBSCRIBERS: &str = "subscribers";
    /// [`super::PublishResponse::first_id`].
    pub const FIRST_ID: &str = "firstId";
    /// [`super::PublishResponse::last_id`].
    pub const LAST_ID: &str = "lastId";
    /// [`super::FailRequest::details`]; also in stored `error` frames
    /// (`crate::frame::ErrorData`).
    pub const DETAILS: &str = "details";
    /// [`super::CancelRequest::reason`], [`super::WaitResponse::reason`].
    pub const REASON: &str = "reason";
    /// [`super::CancelResponse::id`].
    pub const ID: &str = "id";
    /// [`super::WaitResponse::state`].
    pub const STATE: &str = "state";
    /// The members of a descriptor, in the order it is written.
    pub const DESCRIPTOR: [&str; 6] = [TYPE, VERSION, RELAY, CHANNEL_ID, PUBLISH_TOKEN, EXPIRES_AT];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_match_serde() {
        use crate::frame::ReadyData;
        use crate::{Descriptor, LostRange};
        fn keys<T: Serialize>(v: &T) -> Vec<String> {
            let text = serde_json::to_string(v).unwrap();
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).unwrap();
            let mut k: Vec<String> = map.keys().cloned().collect();
            k.sort();
            k
        }
        fn sorted(names: &[&str]) -> Vec<String> {
            let mut k: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            k.sort();
            k
        }
        let created = CreateChannelResponse {
            channel_id: "c".into(),
            subscribe_token: "s".into(),
            publish_token: "p".into(),
            expires_at: 1,
        };
        assert_eq!(
            keys(&created),
            sorted(&[
                field::CHANNEL_ID,
                field::SUBSCRIBE_TOKEN,
                field::PUBLISH_TOKEN,
                field::EXPIRES_AT
            ])
        );
        assert_eq!(
            keys(&CreateChannelRequest {
                ttl_secs: Some(1),
                abandon_after_ms: Some(2000)
            }),
            sorted(&[field::TTL_SECS, field::ABANDON_AFTER_MS])
        );
        let answer = PublishResponse {
            first_id: 1,
            last_id: 2,
            subscribers: Some(3),
        };
        assert_eq!(
            keys(&answer),
            sorted(&[field::FIRST_ID, field::LAST_ID, field::SUBSCRIBERS])
        );
        let fail = FailRequest {
            message: "m".into(),
            details: Some(1),
        };
        assert_eq!(keys(&fail), sorted(&[field::MESSAGE, field::DETAILS]));
        let cancel = CancelRequest {
            reason: Some("r".into()),
        };
        assert_eq!(keys(&cancel), sorted(&[field::REASON]));
        assert_eq!(keys(&CancelResponse { id: 4 }), sorted(&[field::ID]));
        let cancelled = WaitResponse {
            state: WaitState::Cancelled,
            reason: Some("r".into()),
            subscribers: None,
        };
        assert_eq!(keys(&cancelled), sorted(&[field::STATE, field::REASON]));
        let open = WaitResponse {
            state: WaitState::Open,
            reason: None,
            subscribers: Some(0),
        };
        assert_eq!(keys(&open), sorted(&[field::STATE, field::SUBSCRIBERS]));
        let data = crate::frame::ErrorData {
            code: "X".into(),
            message: "m".into(),
            details: Some(1),
        };
        assert_eq!(
            keys(&data),
            sorted(&[field::CODE, field::MESSAGE, field::DETAILS])
        );
        assert_eq!(
            keys(&ReadyData { heartbeat_ms: 1 }),
            sorted(&[field::HEARTBEAT_MS])
        );
        let body = ErrorBody {
            error: ErrorDetail {
                code: "X".into(),
                message: "m".into(),
            },
        };
        assert_eq!(keys(&body), sorted(&[field::ERROR]));
        assert_eq!(keys(&body.error), sorted(&[field::CODE, field::MESSAGE]));
        assert_eq!(
            keys(&LostRange { from: 1, to: 2 }),
            sorted(&[field::FROM, field::TO])
        );
        let d = Descriptor::new(
            "http://127.0.0.1:1",
            "0123456789abcdef0123456789abcdef",
            "t",
            1,
        );
        // Member order as written (serde_json's Map would sort the keys).
        let text = serde_json::to_string(&d).unwrap();
        let mut order = Vec::new();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("\":") {
            let start = rest[..i].rfind('"').unwrap();
            order.push(rest[start + 1..i].to_owned());
            rest = &rest[i + 2..];
        }
        assert_eq!(order, field::DESCRIPTOR);
        let one = PublishRequest {
            data: Some(1),
            messages: None,
        };
        assert_eq!(keys(&one), sorted(&[field::DATA]));
        let batch = PublishRequest::<u8> {
            data: None,
            messages: Some(vec![1]),
        };
        assert_eq!(keys(&batch), sorted(&[field::MESSAGES]));
        assert_eq!(keys(&EndRequest { data: Some(1) }), sorted(&[field::DATA]));
    }

    #[test]
    fn body_framing_matches_serde() {
        let batch = PublishRequest::<serde_json::Value> {
            data: None,
            messages: Some(vec![
                1.into(),
                "two".into(),
                serde_json::json!({"a": [null]}),
            ]),
        };
        assert_eq!(
            [BATCH_BODY_HEAD, r#"1,"two",{"a":[null]}"#, BATCH_BODY_TAIL].concat(),
            serde_json::to_string(&batch).unwrap()
        );
        let one = PublishRequest::<serde_json::Value> {
            data: Some("x".into()),
            messages: None,
        };
        let framed = [DATA_BODY_HEAD, r#""x""#, DATA_BODY_TAIL].concat();
        assert_eq!(framed, serde_json::to_string(&one).unwrap());
        let end = EndRequest::<serde_json::Value> {
            data: Some("x".into()),
        };
        assert_eq!(framed, serde_json::to_string(&end).unwrap());
    }

    #[test]
    fn paths() {
        assert_eq!(ws_path("ab"), "/v1/channels/ab/ws");
        assert_eq!(messages_path("ab"), "/v1/channels/ab/messages");
        assert_eq!(end_path("ab"), "/v1/channels/ab/end");
        assert_eq!(fail_path("ab"), "/v1/channels/ab/fail");
        assert_eq!(cancel_path("ab"), "/v1/channels/ab/cancel");
        assert_eq!(wait_path("ab"), "/v1/channels/ab/wait");
    }

    #[test]
    fn create_request_rejects_unknown_fields() {
        assert!(serde_json::from_str::<CreateChannelRequest>(r#"{"ttl":1}"#).is_err());
        let r: CreateChannelRequest = serde_json::from_str(r#"{"ttlSecs":5}"#).unwrap();
        assert_eq!(r.ttl_secs, Some(5));
        let r: CreateChannelRequest = serde_json::from_str(r#"{"abandonAfterMs":2000}"#).unwrap();
        assert_eq!(r.abandon_after_ms, Some(2000));
        assert!(serde_json::from_str::<FailRequest<u8>>(r#"{"message":"m","x":1}"#).is_err());
        assert!(serde_json::from_str::<CancelRequest>(r#"{"why":"m"}"#).is_err());
        let w: WaitResponse = serde_json::from_str(r#"{"state":"ended"}"#).unwrap();
        assert_eq!(w.state, WaitState::Ended);
    }

    #[test]
    fn create_response_is_camel_case() {
        let r = CreateChannelResponse {
            channel_id: "c".into(),
            subscribe_token: "s".into(),
            publish_token: "p".into(),
            expires_at: 7,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"channelId":"c","subscribeToken":"s","publishToken":"p","expiresAt":7}"#
        );
    }
}
