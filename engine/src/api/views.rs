//! `/api/v1/views`: the latest window results, sorted and paginated; top-k
//! and the rank of a key for leaderboards.

use axum::extract::{Path, Query as Q, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::auth::{Access, check};
use super::body::answer;
use super::{ApiError, AppState};
use crate::state::view::{MAX_QUERY_LIMIT, Query};

#[derive(Serialize)]
struct ViewInfo {
    name: String,
    entries: usize,
    evicted: u64,
    partitions: usize,
}

pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    let views: Vec<ViewInfo> = st
        .engine
        .views
        .names()
        .into_iter()
        .filter_map(|n| st.engine.views.get(&n))
        .map(|v| {
            let (entries, evicted) = v.stats();
            ViewInfo {
                name: v.name.clone(),
                entries,
                evicted,
                partitions: v.partitions(),
            }
        })
        .collect();
    Ok(answer(
        &headers,
        StatusCode::OK,
        &serde_json::json!({ "views": views }),
    ))
}

pub async fn query(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Q(q): Q<Query>,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    if q.limit.is_some_and(|l| l > MAX_QUERY_LIMIT) {
        return Err(ApiError::bad_request(format!(
            "limit must be at most {MAX_QUERY_LIMIT}; page with offset"
        )));
    }
    let view = st.engine.views.get(&name).ok_or_else(|| {
        ApiError::not_found(format!(
            "view `{name}` does not exist; a job creates it with a `view` sink"
        ))
    })?;
    Ok(answer(&headers, StatusCode::OK, &view.query(&q)))
}
