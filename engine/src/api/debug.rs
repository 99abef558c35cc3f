//! Test-only fault injection: `POST /api/v1/debug/hang?shard=&ms=` wedges
//! one shard's loop for a while, so tests can watch the systemd watchdog
//! stop and resume (see `engine/tests/systemd_notify.rs`).
//!
//! The route exists only when the config says `[testing] fault_injection =
//! true` (read at start; a restart is needed to change it). Otherwise it
//! answers 404 like any unknown route, so production servers show nothing.
//! When on, it still needs the admin token.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::{Access, check};
use super::{ApiError, AppState};
use crate::shard::Command;

/// Longest hang one request may ask for.
pub const MAX_HANG_MS: u64 = 60_000;

#[derive(Debug, Deserialize)]
pub struct HangParams {
    pub shard: u32,
    pub ms: u64,
}

/// Makes shard `shard` sleep `ms` milliseconds inside its loop.
pub async fn hang(
    State(st): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<HangParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let config = st.engine.config();
    if !config.testing.fault_injection {
        return Err(ApiError::not_found(
            "no such route; see /api/v1/openapi.json",
        ));
    }
    check(&config.auth, &headers, Access::Admin)?;
    let Query(p) = params.map_err(|e| {
        ApiError::bad_request(format!(
            "debug/hang needs `?shard=<index>&ms=<milliseconds>`: {e}"
        ))
    })?;
    let shards = st.engine.shards();
    let Some(shard) = shards.get(p.shard as usize) else {
        return Err(ApiError::bad_request(format!(
            "shard {} does not exist; this server runs shards 0 to {}",
            p.shard,
            shards.len().saturating_sub(1)
        )));
    };
    if p.ms == 0 || p.ms > MAX_HANG_MS {
        return Err(ApiError::bad_request(format!(
            "ms = {}: a hang lasts 1 to {MAX_HANG_MS} ms",
            p.ms
        )));
    }
    tracing::warn!(
        shard = p.shard,
        ms = p.ms,
        "fault injection: wedging a shard on request"
    );
    shard.command(Command::Hang(Duration::from_millis(p.ms)));
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "shard": p.shard, "ms": p.ms })),
    )
        .into_response())
}
