//! Test-only fault injection, so tests can watch the engine deal with broken shards:
//! - `POST /api/v1/debug/hang?shard=&ms=` wedges one shard's loop for a while (the
//!   systemd watchdog stops and resumes; see `engine/tests/systemd_notify.rs`);
//! - `POST /api/v1/debug/panic?shard=` makes one shard's loop panic (the shard is
//!   reported and its jobs restored from their checkpoints; see `engine/tests/shards.rs`).
//!
//! The routes exist only when the config says `[testing] fault_injection =
//! true` (read at start; a restart is needed to change it). Otherwise they
//! answer 404 like any unknown route, so production servers show nothing.
//! When on, they still need the admin token.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::{Access, check};
use super::{ApiError, AppState};
use crate::shard::{Command, ShardHandle};

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
    let Query(p) = params.map_err(|e| {
        ApiError::bad_request(format!(
            "debug/hang needs `?shard=<index>&ms=<milliseconds>`: {e}"
        ))
    })?;
    let shard = injectable_shard(&st, &headers, p.shard)?;
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

#[derive(Debug, Deserialize)]
pub struct PanicParams {
    pub shard: u32,
}

/// Makes shard `shard` panic inside its loop, as a bug in the engine would.
pub async fn panic(
    State(st): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<PanicParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params
        .map_err(|e| ApiError::bad_request(format!("debug/panic needs `?shard=<index>`: {e}")))?;
    let shard = injectable_shard(&st, &headers, p.shard)?;
    tracing::warn!(
        shard = p.shard,
        "fault injection: making a shard panic on request"
    );
    shard.command(Command::Panic);
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "shard": p.shard })),
    )
        .into_response())
}

/// Shard `index`, if fault injection is on, the caller holds the admin token and the
/// shard exists.
fn injectable_shard<'a>(
    st: &'a AppState,
    headers: &HeaderMap,
    index: u32,
) -> Result<&'a ShardHandle, ApiError> {
    let config = st.engine.config();
    if !config.testing.fault_injection {
        return Err(ApiError::not_found(
            "no such route; see /api/v1/openapi.json",
        ));
    }
    check(&config.auth, headers, Access::Admin)?;
    let shards = st.engine.shards();
    shards.get(index as usize).ok_or_else(|| {
        ApiError::bad_request(format!(
            "shard {index} does not exist; this server runs shards 0 to {}",
            shards.len().saturating_sub(1)
        ))
    })
}
