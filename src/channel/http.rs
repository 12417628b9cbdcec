//! `POST /v1/channels` and `POST /v1/channels/{id}/cancel` through the browser's `fetch`,
//! called from one small JavaScript function (`ssePost`).

use sse_channel_protocol::api::{cancel_path, field, CreateChannelResponse, CHANNELS_PATH};
use sse_channel_protocol::ErrorCode;

use wasm_bindgen::prelude::*;

use crate::js;

/// A failure with its code and message, made into a JS error where emitted.
pub(crate) type Failure = (ErrorCode, String);

fn network<E>(_: E) -> Failure {
    (
        ErrorCode::NetworkError,
        "could not reach the relay to create the channel".to_owned(),
    )
}

fn protocol<E>(_: E) -> Failure {
    (
        ErrorCode::Internal,
        "the relay answered the channel creation with an unexpected body".to_owned(),
    )
}

/// What [`create_channel`] reports, once.
pub(crate) type Done = Box<dyn FnOnce(Result<CreateChannelResponse, Failure>)>;

// The request in one small JavaScript function (`ssePost` in src/browser.js) instead of a `fetch`
// binding, a `Response` type, its `ok` and `json()`, and two promise callbacks in wasm.
#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    #[wasm_bindgen(js_name = ssePost)]
    fn sse_post(url: &str, body: &JsValue, token: &str, done: JsValue);
}

/// What [`post`] reports: `(ok, the answer's JSON)` or the network failure.
/// Boxed, so that `post` and its callback exist once in the bundle.
type Answered = Box<dyn FnOnce(Result<(bool, JsValue), Failure>)>;

/// POSTs `body` (as JSON) to `relay` + `path`, with `bearer` as the token when
/// not empty, and calls `done` with `(ok, the answer's JSON)`, or the network failure.
fn post(relay: &str, path: &str, body: &JsValue, bearer: &str, done: Answered) {
    let mut url = String::with_capacity(relay.len() + path.len());
    url.push_str(relay);
    url.push_str(path);
    // Called exactly once by `ssePost` (fetch's promise always settles), which frees it.
    let done = Closure::<dyn FnMut(JsValue)>::once_into_js(move |v: JsValue| {
        let ok = match js::get(&v, "s").as_f64() {
            Some(1.0) => true,
            Some(2.0) => false,
            _ => return done(Err(network(()))),
        };
        done(Ok((ok, js::get(&v, "j"))))
    });
    sse_post(&url, body, bearer, done);
}

/// The relay's coded refusal in an error answer, or `fallback` as `INTERNAL`.
fn refusal(json: &JsValue, fallback: &str) -> Failure {
    let err = js::get(json, field::ERROR);
    match js::get_string(&err, field::CODE).and_then(|c| ErrorCode::parse(&c)) {
        Some(code) => (
            code,
            js::get_string(&err, field::MESSAGE).unwrap_or_default(),
        ),
        None => (ErrorCode::Internal, fallback.to_owned()),
    }
}

/// Creates a channel on `relay` (a validated base URL without trailing slash)
/// and calls `done` with the answer. Callbacks rather than a future: the
/// browser build then needs no async runtime.
pub(crate) fn create_channel(
    relay: &str,
    ttl_secs: Option<u64>,
    abandon_after_ms: Option<u64>,
    done: Done,
) {
    let body = js::object(&[]);
    for (k, v) in [
        (field::TTL_SECS, ttl_secs),
        (field::ABANDON_AFTER_MS, abandon_after_ms),
    ] {
        if let Some(v) = v {
            let _ = js_sys::Reflect::set(&body, &k.into(), &(v as f64).into());
        }
    }
    post(
        relay,
        CHANNELS_PATH,
        &body,
        "",
        Box::new(move |r| done(r.and_then(|(ok, json)| answer(ok, &json)))),
    );
}

/// Cancels channel `channel_id` (`POST …/cancel` with the subscribe token and
/// the optional `reason`) and calls `done` with the outcome.
pub(crate) fn cancel_channel(
    relay: &str,
    channel_id: &str,
    subscribe_token: &str,
    reason: Option<String>,
    done: impl FnOnce(Result<(), Failure>) + 'static,
) {
    let body = js::object(&[]);
    if let Some(r) = reason {
        let _ = js_sys::Reflect::set(&body, &field::REASON.into(), &r.into());
    }
    post(
        relay,
        &cancel_path(channel_id),
        &body,
        subscribe_token,
        Box::new(move |r| {
            done(r.and_then(|(ok, json)| {
                if ok {
                    Ok(())
                } else {
                    Err(refusal(&json, "the relay refused to cancel the channel"))
                }
            }))
        }),
    );
}

/// The relay's answer: the created channel, or its coded refusal.
fn answer(ok: bool, json: &JsValue) -> Result<CreateChannelResponse, Failure> {
    if !ok {
        return Err(refusal(json, "the relay refused to create the channel"));
    }
    // A body that is not JSON (undefined) or lacks a member: the same error.
    let text = |k| js::get_string(json, k).ok_or_else(|| protocol(()));
    Ok(CreateChannelResponse {
        channel_id: text(field::CHANNEL_ID)?,
        subscribe_token: text(field::SUBSCRIBE_TOKEN)?,
        publish_token: text(field::PUBLISH_TOKEN)?,
        expires_at: js::get_u64(json, field::EXPIRES_AT).ok_or_else(|| protocol(()))?,
    })
}
