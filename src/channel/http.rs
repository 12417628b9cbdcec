//! `POST /v1/channels` and `POST /v1/channels/{id}/cancel` through the browser's `fetch`.

use sse_channel_protocol::api::{cancel_path, field, CreateChannelResponse, CHANNELS_PATH};
use sse_channel_protocol::ErrorCode;
use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::fetch::{fetch_with_init, Response};
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

/// The two callbacks of one `promise.then(ok, err)`: whichever runs first
/// takes both out and drops them, so neither outlives the answer (a
/// `Closure::once_into_js` that never runs would leak).
type Pair = Rc<RefCell<Option<(Closure<dyn FnMut(JsValue)>, Closure<dyn FnMut(JsValue)>)>>>;

fn then(promise: &Promise, on: impl FnOnce(Result<JsValue, JsValue>) + 'static) {
    let pair: Pair = Rc::default();
    let on = Rc::new(RefCell::new(Some(on)));
    let settle = |ok: bool| {
        let pair = pair.clone();
        let on = on.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
            let _done = pair.borrow_mut().take();
            if let Some(f) = on.borrow_mut().take() {
                f(if ok { Ok(v) } else { Err(v) });
            }
        })
    };
    let (ok, err) = (settle(true), settle(false));
    let _ = promise.then2(&ok, &err);
    *pair.borrow_mut() = Some((ok, err));
}

/// What [`post`] reports: `(ok, the answer's JSON)` or the network failure.
/// Boxed, so that `post` and its callbacks exist once in the bundle.
type Answered = Box<dyn FnOnce(Result<(bool, Result<JsValue, JsValue>), Failure>)>;

/// POSTs `body` (JSON) to `relay` + `path`, with `bearer` as the token when
/// given, and calls `done` with `(ok, the answer's JSON)`, or the network failure.
fn post(relay: &str, path: &str, body: &JsValue, bearer: Option<&str>, done: Answered) {
    let Ok(body) = js_sys::JSON::stringify(body) else {
        return done(Err(protocol(())));
    };
    let headers = js::object(&[("content-type", JsValue::from_str("application/json"))]);
    if let Some(token) = bearer {
        let mut auth = String::with_capacity(token.len() + 7);
        auth.push_str("Bearer ");
        auth.push_str(token);
        let _ = js_sys::Reflect::set(&headers, &"authorization".into(), &auth.into());
    }
    let init = js::object(&[
        ("method", JsValue::from_str("POST")),
        ("headers", headers),
        ("body", body.into()),
    ]);
    let mut url = String::with_capacity(relay.len() + path.len());
    url.push_str(relay);
    url.push_str(path);
    then(&fetch_with_init(&url, &init), move |resp| {
        let resp: Response = match resp {
            Ok(r) => r.unchecked_into(),
            Err(e) => return done(Err(network(e))),
        };
        let Ok(json) = resp.json() else {
            return done(Err(protocol(())));
        };
        let ok = resp.ok();
        then(&json, move |json| done(Ok((ok, json))));
    });
}

/// The relay's coded refusal in an error answer, or `fallback` as `INTERNAL`.
fn refusal(json: Result<JsValue, JsValue>, fallback: &str) -> Failure {
    let err = json.map(|j| js::get(&j, field::ERROR)).unwrap_or_default();
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
        None,
        Box::new(move |r| done(r.and_then(|(ok, json)| answer(ok, json)))),
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
        Some(subscribe_token),
        Box::new(move |r| {
            done(r.and_then(|(ok, json)| {
                if ok {
                    Ok(())
                } else {
                    Err(refusal(json, "the relay refused to cancel the channel"))
                }
            }))
        }),
    );
}

/// The relay's answer: the created channel, or its coded refusal.
fn answer(ok: bool, json: Result<JsValue, JsValue>) -> Result<CreateChannelResponse, Failure> {
    if !ok {
        return Err(refusal(json, "the relay refused to create the channel"));
    }
    let json = json.map_err(protocol)?;
    let text = |k| js::get_string(&json, k).ok_or_else(|| protocol(()));
    Ok(CreateChannelResponse {
        channel_id: text(field::CHANNEL_ID)?,
        subscribe_token: text(field::SUBSCRIBE_TOKEN)?,
        publish_token: text(field::PUBLISH_TOKEN)?,
        expires_at: js::get_u64(&json, field::EXPIRES_AT).ok_or_else(|| protocol(()))?,
    })
}
