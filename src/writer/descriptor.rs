//! Reading the descriptor argument: what the browser's `SSEChannel.toJSON()`
//! returned, as an object or its JSON text. It arrives in a function's event,
//! so anyone who can call the function controls it: every field is checked
//! ([`Descriptor::validate`]) before the writer uses it.

use js_sys::{Array, Function, JSON};
use serde::Deserialize;
use sse_channel_protocol::api::field;
use sse_channel_protocol::{Descriptor, ErrorCode};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::options::Lenient;
use super::Failure;
use crate::js;

/// Largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// The descriptor's shape as JavaScript passes it: the member names of
/// [`Descriptor`]'s serde form (`api::field`), each [`Lenient`] so that a
/// wrong type is reported with the field's name.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    #[serde(rename = "type")]
    kind: Option<Lenient<String>>,
    version: Option<Lenient<f64>>,
    relay: Option<Lenient<String>>,
    channel_id: Option<Lenient<String>>,
    publish_token: Option<Lenient<String>>,
    expires_at: Option<Lenient<f64>>,
}

fn invalid(message: &str) -> JsValue {
    Failure::new(ErrorCode::InvalidDescriptor, message).to_js()
}

/// The string member `name`, or an error naming it.
fn string(v: Option<Lenient<String>>, name: &str) -> Result<String, JsValue> {
    match v {
        Some(Lenient::Ok(s)) => Ok(s),
        _ => Err(invalid(
            &["descriptor field `", name, "` is missing or not a string"].concat(),
        )),
    }
}

/// Reads and validates a descriptor given as an object or a JSON string.
pub(super) fn read(value: &JsValue) -> Result<Descriptor, JsValue> {
    let mut value = value.clone();
    if let Some(text) = value.as_string() {
        value =
            JSON::parse(&text).map_err(|_| invalid("the descriptor string is not valid JSON"))?;
    } else if let Some(to_json) = js::get(&value, "toJSON").dyn_ref::<Function>() {
        // An SSEChannel instance handed over in-process: use what JSON.stringify would.
        value = to_json
            .call0(&value)
            .map_err(|_| invalid("the descriptor's toJSON() threw"))?;
    }
    if !value.is_object() || Array::is_array(&value) {
        return Err(invalid(
            "a descriptor must be the object (or JSON string) that SSEChannel.toJSON() returns",
        ));
    }
    let shape: Shape = serde_wasm_bindgen::from_value(value)
        .map_err(|_| invalid("the descriptor is not an object"))?;
    let kind = string(shape.kind, field::TYPE)?;
    let version = match shape.version {
        Some(Lenient::Ok(n)) if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) => {
            n as u32
        }
        _ => {
            return Err(invalid(
                "descriptor field `version` is missing or not an integer",
            ))
        }
    };
    let relay = string(shape.relay, field::RELAY)?;
    let channel_id = string(shape.channel_id, field::CHANNEL_ID)?;
    let publish_token = string(shape.publish_token, field::PUBLISH_TOKEN)?;
    let expires_at = match shape.expires_at {
        Some(Lenient::Ok(n)) if n.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&n) => {
            n as u64
        }
        _ => {
            return Err(invalid(
                "descriptor field `expiresAt` must be a Unix time in milliseconds (an integer)",
            ))
        }
    };
    let descriptor = Descriptor {
        kind,
        version,
        relay: relay.trim_end_matches('/').to_owned(),
        channel_id,
        publish_token,
        expires_at,
    };
    descriptor.validate().map_err(|e| invalid(e.message()))?;
    Ok(descriptor)
}
