//! Request bodies with limits, and answers in the format asked for.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ApiError;

/// The body's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    MsgPack,
}

pub const MSGPACK: &str = "application/msgpack";

/// The format of a request body, from its Content-Type.
pub fn content_format(headers: &HeaderMap) -> Format {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with(MSGPACK) || ct.starts_with("application/x-msgpack") {
        Format::MsgPack
    } else if ct.starts_with("application/x-ndjson") || ct.starts_with("application/ndjson") {
        Format::Ndjson
    } else {
        Format::Json
    }
}

/// Reads the whole body, refusing more than `limit` bytes with a 413.
pub async fn read(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let msg = e.to_string();
        if msg.contains("length limit") {
            ApiError::too_large(
                format!("request body is larger than the {limit}-byte limit (limits.max_body_bytes); send smaller batches"),
                limit,
            )
        } else {
            ApiError::bad_request(format!("could not read the request body: {msg}"))
        }
    })
}

/// Decodes a small JSON or MessagePack document (specs, settings).
pub async fn decode<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read(body, limit).await?;
    match content_format(headers) {
        Format::MsgPack => rmp_serde::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "body is not valid MessagePack for this request: {e}"
            ))
        }),
        _ => serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("body is not valid JSON for this request: {e}"))
        }),
    }
}

/// Answers in MessagePack if the client accepts it, else JSON.
pub fn answer<T: Serialize>(
    headers: &HeaderMap,
    status: axum::http::StatusCode,
    value: &T,
) -> Response {
    let wants_msgpack = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(MSGPACK));
    if wants_msgpack {
        match rmp_serde::to_vec_named(value) {
            Ok(b) => (status, [(header::CONTENT_TYPE, MSGPACK)], b).into_response(),
            Err(e) => ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "encode",
                e.to_string(),
            )
            .into_response(),
        }
    } else {
        (status, axum::Json(value)).into_response()
    }
}
