//! One publish or end request with its retries, through the shared `fetch`.
//!
//! Every attempt carries the same `Idempotency-Key`, so a retry after a lost
//! answer is answered from the relay's memory instead of storing twice. The
//! delay between attempts is the SDK's one backoff ([`crate::backoff`]). An
//! attempt is aborted after `timeoutMs` (request and answer). Answers are
//! read up to [`MAX_ANSWER_BYTES`]: what they mean is decided by
//! [`sse_channel_protocol::publish::classify`].

use js_sys::{JsString, Promise, Uint8Array, JSON};
use sse_channel_protocol::api::{self, field};
use sse_channel_protocol::publish::{classify, Answer};
use sse_channel_protocol::ErrorCode;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::Failure;
use crate::backoff;
use crate::fetch::{fetch_with_init, has_fetch, Response};
use crate::js;
use crate::timer::Timeout;

/// Most bytes of a relay's answer body the writer reads: 16 KiB. The relay's
/// answers are small JSON objects; the rest of a longer body (a proxy's page,
/// a misbehaving server) is cancelled unread, so it cannot grow the function's
/// memory.
pub(super) const MAX_ANSWER_BYTES: usize = 16 * 1024;

#[wasm_bindgen]
extern "C" {
    pub(super) type AbortController;
    #[wasm_bindgen(constructor)]
    pub(super) fn new() -> AbortController;
    #[wasm_bindgen(method, getter)]
    pub(super) fn signal(this: &AbortController) -> JsValue;
    #[wasm_bindgen(method)]
    pub(super) fn abort(this: &AbortController);
    /// `abort(reason)`: the signal's `reason` is this value.
    #[wasm_bindgen(method, js_name = abort)]
    pub(super) fn abort_with(this: &AbortController, reason: &JsValue);

    type ReadableStream;
    #[wasm_bindgen(method, js_name = getReader)]
    fn get_reader(this: &ReadableStream) -> StreamReader;

    type StreamReader;
    #[wasm_bindgen(method)]
    fn read(this: &StreamReader) -> Promise;
    #[wasm_bindgen(method)]
    fn cancel(this: &StreamReader) -> Promise;
}

/// Where and how one writer's requests go, fixed when the writer is made.
pub(super) struct Target {
    pub(super) messages_url: String,
    pub(super) end_url: String,
    pub(super) fail_url: String,
    /// `GET …/wait?timeoutMs=…` (the long-poll for a cancel).
    pub(super) wait_url: String,
    /// `Bearer <publishToken>`.
    pub(super) authorization: String,
    pub(super) policy: RetryPolicy,
}

/// Attempts, backoff and per-attempt timeout, from the writer options.
#[derive(Clone, Copy)]
pub(super) struct RetryPolicy {
    pub(super) max_attempts: u32,
    pub(super) min_delay_ms: u32,
    pub(super) max_delay_ms: u32,
    pub(super) timeout_ms: u32,
}

enum Attempt {
    /// With the answer's `subscribers`.
    Stored(Option<f64>),
    Refused(Failure),
    Retry(String),
}

/// Sends `body` to `url` until the relay stores it, refuses it, or the
/// attempts are spent (`RELAY_UNAVAILABLE`): the same `key` on every attempt.
/// Stored: the answer's `subscribers`, when it had them.
pub(super) async fn send(
    target: &Target,
    url: &str,
    body: &JsString,
    key: &str,
) -> Result<Option<f64>, Failure> {
    let o = target.policy;
    let mut attempt = 1;
    loop {
        match attempt_once(url, body, key, &target.authorization, o.timeout_ms).await {
            Attempt::Stored(subscribers) => return Ok(subscribers),
            Attempt::Refused(f) => return Err(f),
            Attempt::Retry(why) => {
                if attempt >= o.max_attempts {
                    let mut m = String::from("the relay did not store the request after ");
                    m.push_str(&attempt.to_string());
                    m.push_str(if attempt == 1 {
                        " attempt; last: "
                    } else {
                        " attempts; last: "
                    });
                    m.push_str(&why);
                    return Err(Failure::new(ErrorCode::RelayUnavailable, m));
                }
                let r = js_sys::Math::random();
                sleep(backoff::delay(
                    attempt - 1,
                    o.min_delay_ms,
                    o.max_delay_ms,
                    r,
                ))
                .await;
                attempt += 1;
            }
        }
    }
}

/// Resolves after `ms` milliseconds.
async fn sleep(ms: u32) {
    let mut timer = None;
    let promise = Promise::new(&mut |resolve, _| {
        timer = Some(Timeout::new(ms, move || {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }));
    });
    let _ = JsFuture::from(promise).await;
    drop(timer);
}

/// Resolves after `ms` milliseconds, on a timer that does not keep Node.js
/// running on its own (`unref`, where the platform has it).
pub(super) async fn sleep_unref(ms: u32) {
    let mut timer = None;
    let promise = Promise::new(&mut |resolve, _| {
        timer = Some(Timeout::new(ms, move || {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }));
    });
    if let Some(t) = &timer {
        t.unref();
    }
    let _ = JsFuture::from(promise).await;
    drop(timer);
}

/// One HTTP attempt, aborted after `timeout_ms` (request and answer body).
async fn attempt_once(
    url: &str,
    body: &JsString,
    key: &str,
    authorization: &str,
    timeout_ms: u32,
) -> Attempt {
    if !has_fetch() {
        return Attempt::Refused(Failure::new(
            ErrorCode::RelayUnavailable,
            "no global fetch(): the writer needs Node.js 18 or later",
        ));
    }
    let controller = AbortController::new();
    let headers = js::object(&[
        (api::HEADER_CONTENT_TYPE, api::JSON_CONTENT_TYPE.into()),
        (api::HEADER_AUTHORIZATION, authorization.into()),
        (api::HEADER_IDEMPOTENCY_KEY, key.into()),
    ]);
    let init = js::object(&[
        ("method", "POST".into()),
        ("headers", headers),
        ("body", body.into()),
        ("redirect", "manual".into()),
        ("signal", controller.signal()),
    ]);
    // Cancelled when dropped, after the exchange.
    let _deadline = Timeout::new(timeout_ms, move || controller.abort());
    let response: Response = match JsFuture::from(fetch_with_init(url, &init)).await {
        Ok(r) => r.unchecked_into(),
        Err(e) => return Attempt::Retry(network_reason(&e)),
    };
    let status = response.status();
    // Read the answer (so the connection can be reused), up to the bound.
    let text = match read_answer(&response).await {
        Ok(t) => t,
        Err(e) => return Attempt::Retry(network_reason(&e)),
    };
    // The relay's `{"error":{"code","message"}}`, when it is one.
    let answer = JSON::parse(&text).unwrap_or(JsValue::UNDEFINED);
    let error = js::get(&answer, field::ERROR);
    let relay_code = js::get_string(&error, field::CODE).and_then(|c| ErrorCode::parse(&c));
    let mut status_text = String::from("HTTP ");
    status_text.push_str(&status.to_string());
    match classify(status, relay_code) {
        Answer::Stored => Attempt::Stored(js::get(&answer, field::SUBSCRIBERS).as_f64()),
        Answer::Retry => Attempt::Retry(status_text),
        Answer::Refused(ErrorCode::RelayUnavailable) => {
            status_text
                .push_str(": the relay answered a redirect, which the writer does not follow");
            Attempt::Refused(Failure::new(ErrorCode::RelayUnavailable, status_text))
        }
        Answer::Refused(ErrorCode::ChannelCancelled) => {
            // The message is the reader's reason, as the function should see it.
            let reason = js::get_string(&error, field::MESSAGE).unwrap_or_default();
            Attempt::Refused(Failure::new(ErrorCode::ChannelCancelled, reason))
        }
        Answer::Refused(code) => {
            let mut message = String::from("the relay refused the request (");
            message.push_str(&status_text);
            message.push(')');
            if let Some(m) = js::get_string(&error, field::MESSAGE) {
                message.push_str(": ");
                message.push_str(&m);
            }
            Attempt::Refused(Failure::new(code, message))
        }
    }
}

/// What one `GET …/wait` came to.
pub(super) enum Waited {
    /// Cancelled, with the reason.
    Cancelled(String),
    /// Ended, failed, expired or gone: nothing more to wait for.
    Over,
    /// Still open after the timeout, with its subscribers.
    Open(Option<f64>),
    /// No answer (network, 5xx, 429, aborted): try again later.
    Again,
}

/// One long-poll of `…/wait`, aborted through `controller`.
pub(super) async fn wait_once(target: &Target, controller: &AbortController) -> Waited {
    if !has_fetch() {
        return Waited::Over;
    }
    let headers = js::object(&[(
        api::HEADER_AUTHORIZATION,
        target.authorization.as_str().into(),
    )]);
    let init = js::object(&[
        ("method", "GET".into()),
        ("headers", headers),
        ("redirect", "manual".into()),
        ("signal", controller.signal()),
    ]);
    let response: Response = match JsFuture::from(fetch_with_init(&target.wait_url, &init)).await {
        Ok(r) => r.unchecked_into(),
        Err(_) => return Waited::Again,
    };
    let status = response.status();
    let Ok(text) = read_answer(&response).await else {
        return Waited::Again;
    };
    let answer = JSON::parse(&text).unwrap_or(JsValue::UNDEFINED);
    match classify(status, None) {
        Answer::Stored => match js::get_string(&answer, field::STATE).as_deref() {
            Some("cancelled") => {
                Waited::Cancelled(js::get_string(&answer, field::REASON).unwrap_or_default())
            }
            Some("open") => Waited::Open(js::get(&answer, field::SUBSCRIBERS).as_f64()),
            _ => Waited::Over,
        },
        Answer::Retry => Waited::Again,
        // A relay without the route, a refused token, a gone channel: stop.
        Answer::Refused(_) => Waited::Over,
    }
}

/// The answer body as text, at most [`MAX_ANSWER_BYTES`] of it: a longer body
/// is cancelled after that many bytes (its first part is still used).
async fn read_answer(response: &Response) -> Result<String, JsValue> {
    // The relay's answers declare their short length: read those whole, in one
    // step. Not when compressed: `fetch` inflates, so the length would not bound
    // the text.
    let headers = response.headers();
    let declared = headers
        .get("content-length")
        .and_then(|n| n.trim().parse::<usize>().ok());
    if headers.get("content-encoding").is_none() && declared.is_some_and(|n| n <= MAX_ANSWER_BYTES)
    {
        return Ok(JsFuture::from(response.text())
            .await?
            .as_string()
            .unwrap_or_default());
    }
    let body = response.body();
    if body.is_null() || body.is_undefined() {
        return Ok(String::new());
    }
    let reader = body.unchecked_into::<ReadableStream>().get_reader();
    let mut bytes = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await?;
        if js::get(&chunk, "done").is_truthy() {
            break;
        }
        let Some(value) = js::get(&chunk, "value").dyn_into::<Uint8Array>().ok() else {
            break;
        };
        let room = MAX_ANSWER_BYTES - bytes.len();
        let len = value.length() as usize;
        bytes.extend(value.subarray(0, len.min(room) as u32).to_vec());
        if len >= room {
            // Enough: the relay's own answers are far shorter.
            let _ = reader.cancel();
            break;
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn network_reason(e: &JsValue) -> String {
    let mut m = String::from("network error: ");
    m.push_str(&js::get_string(e, "message").unwrap_or_default());
    // Node's fetch puts the socket error (ECONNREFUSED, …) in `cause`.
    let cause = js::get(e, "cause");
    if let Some(why) = js::get_string(&cause, "code").or_else(|| js::get_string(&cause, "message"))
    {
        m.push_str(" (");
        m.push_str(&why);
        m.push(')');
    }
    m
}

/// A random name for one writer in its idempotency keys (`<id>-<n>`): a UUID
/// from the platform's cryptographic generator, so two writers never share
/// keys (with `Math.random`, two writers restored from one snapshot would, and
/// the relay would answer the second one's requests as replays).
pub(super) fn writer_id() -> Result<String, Failure> {
    random_uuid().ok_or_else(|| {
        Failure::new(
            ErrorCode::UnsupportedEnvironment,
            "no cryptographic random generator (crypto.randomUUID): the writer needs Node.js 18 or later",
        )
    })
}

// The Node build reads `node:crypto`, which Node.js 18 has (its global `crypto`
// needs a flag before Node.js 19). The build with both features, used only by
// tests in browsers, uses the global `crypto`.
#[cfg(not(feature = "browser"))]
#[wasm_bindgen(module = "node:crypto")]
extern "C" {
    #[wasm_bindgen(js_name = randomUUID)]
    fn node_random_uuid() -> String;
}

#[cfg(not(feature = "browser"))]
fn random_uuid() -> Option<String> {
    Some(node_random_uuid())
}

#[cfg(feature = "browser")]
fn random_uuid() -> Option<String> {
    let crypto = js::get(&js_sys::global(), "crypto");
    let f = js::get(&crypto, "randomUUID")
        .dyn_into::<js_sys::Function>()
        .ok()?;
    f.call0(&crypto).ok()?.as_string()
}
