//! The JSON error answer: `{"error":{"code":"…","message":"…"}}` with the code's status.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sse_channel_protocol::api::{self, ErrorBody, ErrorDetail};
use sse_channel_protocol::ErrorCode;

use crate::broker::BrokerError;
use crate::token::TokenError;

/// An error answer. Handlers return it; its [`IntoResponse`] writes the JSON body
/// and records the code in the response's extensions, where the metrics layer
/// counts it.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The stable code; decides the status.
    pub code: ErrorCode,
    /// A sentence for humans. Never contains a token.
    pub message: Cow<'static, str>,
}

impl ApiError {
    /// An error with a fixed message.
    pub fn new(code: ErrorCode, message: &'static str) -> Self {
        Self {
            code,
            message: Cow::Borrowed(message),
        }
    }

    /// An error with a built message.
    pub fn owned(code: ErrorCode, message: String) -> Self {
        Self {
            code,
            message: Cow::Owned(message),
        }
    }

    /// `BAD_REQUEST` with this message.
    pub fn bad_request(message: &'static str) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// The `{"code","message"}` object (the `data` of an `error` stream frame).
    pub fn detail_json(&self) -> String {
        serde_json::to_string(&ErrorDetail {
            code: self.code.as_str().to_owned(),
            message: self.message.clone().into_owned(),
        })
        .unwrap_or_default()
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        Self::owned(e.code(), e.message().to_owned())
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        Self::new(e.code(), e.message())
    }
}

impl ApiError {
    /// The answer's status: the code's.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The answer's body: `{"error":{"code","message"}}`.
    pub fn body_json(&self) -> String {
        serde_json::to_string(&ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message.clone().into_owned(),
            },
        })
        .unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut res = (status, self.body_json()).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(api::JSON_CONTENT_TYPE),
        );
        res.extensions_mut().insert(self.code);
        res
    }
}
