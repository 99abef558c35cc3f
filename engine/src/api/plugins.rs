//! `/api/v1/plugins`: upload (validated, stored by digest), list, describe,
//! delete (refused while a job uses the version).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::{Access, check};
use super::body::{answer, read};
use super::error::off_runtime;
use super::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub struct UploadParams {
    pub name: Option<String>,
    pub version: Option<String>,
}

/// `POST /api/v1/plugins?name=fraud&version=1.2.0` with the `.wasm` as body.
pub async fn upload(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<UploadParams>,
    body: Body,
) -> Result<Response, ApiError> {
    let cfg = st.engine.config();
    check(&cfg.auth, &headers, Access::Admin)?;
    let (Some(name), Some(version)) = (q.name, q.version) else {
        return Err(ApiError::bad_request(
            "say which plugin this is: POST /api/v1/plugins?name=<name>&version=<version> with the .wasm file as the body",
        ));
    };
    let limit = cfg.wasm.max_module_bytes;
    let bytes = read(body, limit).await.map_err(|mut e| {
        if e.status == StatusCode::PAYLOAD_TOO_LARGE {
            e.message = format!(
                "plugin module is larger than the {limit}-byte limit (wasm.max_module_bytes)"
            );
        }
        e
    })?;
    let engine = st.engine.clone();
    let (stored, created) =
        off_runtime(move || engine.plugins.put(&name, &version, &bytes, false)).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(answer(&headers, status, &stored))
}

pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    let plugins = st.engine.plugins.list()?;
    Ok(answer(
        &headers,
        StatusCode::OK,
        &serde_json::json!({ "plugins": plugins }),
    ))
}

pub async fn describe(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    let p = st.engine.plugins.get(&name, &version)?.ok_or_else(|| {
        ApiError::not_found(format!("plugin `{name}@{version}` is not installed"))
    })?;
    let users = st.engine.plugin_users(&name, &version);
    Ok(answer(
        &headers,
        StatusCode::OK,
        &serde_json::json!({ "plugin": p, "used_by": users }),
    ))
}

pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Admin)?;
    let users = st.engine.plugin_users(&name, &version);
    st.engine.plugins.delete(&name, &version, &users)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
