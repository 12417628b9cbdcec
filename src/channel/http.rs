//! `POST /v1/channels` through the browser's `fetch`.

use sse_channel_protocol::api::{
    CreateChannelRequest, CreateChannelResponse, ErrorBody, CHANNELS_PATH,
};
use sse_channel_protocol::ErrorCode;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_with_init(url: &str, init: &JsValue) -> js_sys::Promise;
}

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
    let body =
        serde_wasm_bindgen::to_value(&CreateChannelRequest { ttl_secs }).map_err(protocol)?;
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
    let resp: web_sys::Response = JsFuture::from(fetch_with_init(&url, &init))
        .await
        .map_err(network)?
        .unchecked_into();
    let json = JsFuture::from(resp.json().map_err(protocol)?).await;
    if !resp.ok() {
        let err = json
            .ok()
            .and_then(|j| serde_wasm_bindgen::from_value::<ErrorBody>(j).ok());
        return Err(match err {
            Some(e) => (
                ErrorCode::parse(&e.error.code).unwrap_or(ErrorCode::Internal),
                e.error.message,
            ),
            None => (
                ErrorCode::Internal,
                "the relay refused to create the channel".to_owned(),
            ),
        });
    }
    serde_wasm_bindgen::from_value(json.map_err(protocol)?).map_err(protocol)
}
