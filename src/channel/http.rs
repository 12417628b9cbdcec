//! `POST /v1/channels` through the browser's `fetch`.

use sse_channel_protocol::api::{field, CreateChannelResponse, CHANNELS_PATH};
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

/// Creates a channel on `relay` (a validated base URL without trailing slash)
/// and calls `done` with the answer. Callbacks rather than a future: the
/// browser build then needs no async runtime.
pub(crate) fn create_channel(relay: &str, ttl_secs: Option<u64>, done: Done) {
    let body = match ttl_secs {
        Some(t) => js::object(&[(field::TTL_SECS, (t as f64).into())]),
        None => js::object(&[]),
    };
    let Ok(body) = js_sys::JSON::stringify(&body) else {
        return done(Err(protocol(())));
    };
    let headers = js::object(&[("content-type", JsValue::from_str("application/json"))]);
    let init = js::object(&[
        ("method", JsValue::from_str("POST")),
        ("headers", headers),
        ("body", body.into()),
    ]);
    let mut url = String::with_capacity(relay.len() + CHANNELS_PATH.len());
    url.push_str(relay);
    url.push_str(CHANNELS_PATH);
    then(&fetch_with_init(&url, &init), move |resp| {
        let resp: Response = match resp {
            Ok(r) => r.unchecked_into(),
            Err(e) => return done(Err(network(e))),
        };
        let Ok(json) = resp.json() else {
            return done(Err(protocol(())));
        };
        let ok = resp.ok();
        then(&json, move |json| done(answer(ok, json)));
    });
}

/// The relay's answer: the created channel, or its coded refusal.
fn answer(ok: bool, json: Result<JsValue, JsValue>) -> Result<CreateChannelResponse, Failure> {
    if !ok {
        let err = json.map(|j| js::get(&j, field::ERROR)).unwrap_or_default();
        let code = js::get_string(&err, field::CODE).and_then(|c| ErrorCode::parse(&c));
        return Err(match code {
            Some(code) => (
                code,
                js::get_string(&err, field::MESSAGE).unwrap_or_default(),
            ),
            None => (
                ErrorCode::Internal,
                "the relay refused to create the channel".to_owned(),
            ),
        });
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
