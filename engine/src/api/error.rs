//! The one error shape of the API: `{"error": {"code", "message", "details"}}`
//! with the right HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::job::engine::EngineError;
use crate::job::plugins::StoreError;
use crate::log::LogError;

/// An API error: status, stable code, a sentence saying what was wrong and
/// what to do, and optional structured details.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after_s: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn too_large(message: impl Into<String>, limit: usize) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            .with(json!({ "limit": limit }))
    }

    pub fn busy(retry_after_ms: u64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "retry_later",
            format!("Sluice is processing behind its intake; retry in {retry_after_ms} ms"),
        )
        .with(json!({ "retry_after_ms": retry_after_ms }));
        e.retry_after_s = Some(retry_after_ms.div_ceil(1000).max(1));
        e
    }

    pub fn with(mut self, details: Value) -> ApiError {
        self.details = details;
        self
    }
}

/// Runs `f` on tokio's blocking pool and waits for it, so that CPU-heavy or
/// blocking work (parsing a large ingest body, storing a plugin, stopping a
/// job) never holds up the runtime's few workers, which must stay free to
/// answer quick requests such as view queries. `f`'s own error converts into
/// an [`ApiError`]; a panic in `f` becomes a 500.
pub async fn off_runtime<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!(
                    "the worker handling this request failed ({e}); the server log has the \
                     details: retry, and report it if it repeats"
                ),
            )
        })?
        .map_err(Into::into)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> ApiError {
        let msg = e.to_string();
        let (status, code) = match &e {
            LogError::UnknownTopic(_)
            | LogError::TopicDeleted(_)
            | LogError::UnknownPartition { .. } => (StatusCode::NOT_FOUND, "not_found"),
            LogError::InvalidTopicName { .. }
            | LogError::InvalidConfig { .. }
            | LogError::EmptyBatch { .. } => (StatusCode::BAD_REQUEST, "invalid"),
            LogError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            LogError::TopicExists(_) => (StatusCode::CONFLICT, "exists"),
            LogError::QuotaFull { .. } | LogError::DiskFull { .. } => {
                (StatusCode::INSUFFICIENT_STORAGE, "storage_full")
            }
            LogError::OffsetOutOfRange { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "offset_out_of_range")
            }
            LogError::SequenceTooOld { .. } | LogError::RetryMismatch { .. } => {
                (StatusCode::CONFLICT, "sequence_refused")
            }
            LogError::WriterBusy { .. } | LogError::Locked { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "busy")
            }
            LogError::Corrupt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "log_error"),
        };
        ApiError::new(status, code, msg)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let msg = e.to_string();
        let (status, code) = match &e {
            StoreError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_plugin"),
            StoreError::BadName(_) => (StatusCode::BAD_REQUEST, "invalid"),
            StoreError::VersionExists { .. } => (StatusCode::CONFLICT, "version_exists"),
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::InUse { .. } => (StatusCode::CONFLICT, "in_use"),
            StoreError::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "io"),
        };
        ApiError::new(status, code, msg)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Log(l) => l.into(),
            EngineError::Plugin(p) => p.into(),
            EngineError::Busy { retry_after_ms } => ApiError::busy(retry_after_ms),
            EngineError::Spec(s) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_spec", s.to_string())
                    .with(json!({ "field": s.field }))
            }
            EngineError::NoSuchJob(_) | EngineError::NoSuchTopic(_) => {
                ApiError::not_found(e.to_string())
            }
            EngineError::JobExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "exists", e.to_string())
            }
            EngineError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            EngineError::Internal(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
            }
        }
    }
}
