//! `POST /v1/channels` through the browser's `fetch`.

use sse_channel_protocol::api::{field, CreateChannelResponse, CHANNELS_PATH};
use sse_channel_protocol::ErrorCode;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

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

/// Creates a channel on `relay` (a validated base URL without trailing slash).
pub(crate) async fn create_channel(
    relay: &str,
    ttl_secs: Option<u64>,
) -> Result<CreateChannelResponse, Failure> {
    let body = match ttl_secs {
        Some(t) => js::object(&[(field::TTL_SECS, (t as f64).into())]),
        None => js::object(&[]),
    };
    let body = js_sys::JSON::stringify(&body).map_err(protocol)?;
    let init = js_sys::Object::new();
    let headers = js_sys::Object::new();
    let set = |o: &JsValue, k: &str, v: &JsValue| js_sys::Reflect::set(o, &JsValue::from_str(k), v);
    let _ = set(
        &headers,
        "content-type",
        &JsValue::from_str("application/json"),
    );
    let _ = set(&init, "method", &JsValue::from_str("POST"));
    let _ = set(&init, "headers", &headers);
    let _ = set(&init, "body", &body);

    let mut url = String::with_capacity(relay.len() + CHANNELS_PATH.len());
    url.push_str(relay);
    url.push_str(CHANNELS_PATH);
    let resp: Response = JsFuture::from(fetch_with_init(&url, &init))
        .await
        .map_err(network)?
        .unchecked_into();
    let json = JsFuture::from(resp.json().map_err(protocol)?).await;
    if !resp.ok() {
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
