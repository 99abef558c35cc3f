//! `/api/v1/topics`: create, list, describe, delete.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

use super::auth::{Access, check};
use super::body::{answer, decode};
use super::error::off_runtime;
use super::{ApiError, AppState};
use crate::log::{FsyncPolicy, Retention, Topic, TopicConfig};

/// Settings documents are small.
const MAX_SETTINGS_BYTES: usize = 64 << 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    pub name: String,
    pub partitions: Option<u32>,
    /// `always`, `never` or `interval(5ms)`.
    pub fsync: Option<String>,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segment_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct PartitionInfo {
    pub partition: u32,
    pub start_offset: u64,
    pub end_offset: u64,
    pub durable_offset: u64,
    pub size_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct JobLag {
    pub job: String,
    /// Records behind the end, per partition.
    pub lag: Vec<u64>,
}

#[derive(Debug, Serialize)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: u32,
    pub fsync: String,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segment_bytes: u64,
    pub size_bytes: u64,
    pub records: u64,
    /// The job whose results this topic holds, if any.
    pub written_by: Option<String>,
    pub partition_info: Vec<PartitionInfo>,
    pub readers: Vec<JobLag>,
}

fn info(st: &AppState, t: &Topic, detail: bool) -> TopicInfo {
    let c = t.config();
    let parts: Vec<PartitionInfo> = t
        .partitions()
        .iter()
        .map(|p| PartitionInfo {
            partition: p.id(),
            start_offset: p.start_offset(),
            end_offset: p.end_offset(),
            durable_offset: p.durable_offset(),
            size_bytes: p.size_bytes(),
        })
        .collect();
    let readers = if detail {
        st.engine
            .jobs()
            .into_iter()
            .filter_map(|(spec, _, rt, _)| {
                let rt = rt?;
                spec.sources
                    .iter()
                    .any(|s| s.topic == t.name())
                    .then(|| JobLag {
                        job: spec.name.clone(),
                        lag: rt.tasks.first().map_or_else(Vec::new, |ts| {
                            ts.iter().map(|i| i.lag.load(Ordering::Relaxed)).collect()
                        }),
                    })
            })
            .collect()
    } else {
        Vec::new()
    };
    TopicInfo {
        name: t.name().to_owned(),
        partitions: c.partitions,
        fsync: c.fsync.to_string(),
        retention_ms: c.retention.max_age_ms,
        retention_bytes: c.retention.max_bytes,
        segment_bytes: c.segment_bytes,
        size_bytes: parts.iter().map(|p| p.size_bytes).sum(),
        records: parts.iter().map(|p| p.end_offset - p.start_offset).sum(),
        written_by: st.engine.topic_writer(t.name()),
        partition_info: if detail { parts } else { Vec::new() },
        readers,
    }
}

pub async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let cfg_now = st.engine.config();
    check(&cfg_now.auth, &headers, Access::Admin)?;
    let req: CreateTopic = decode(&headers, body, MAX_SETTINGS_BYTES).await?;
    if req.name.starts_with('_') {
        return Err(ApiError::bad_request(format!(
            "topic names starting with `_` are reserved for Sluice's internal topics; rename `{}`",
            req.name
        )));
    }
    let d = &cfg_now.topic_defaults;
    let fsync: FsyncPolicy = req
        .fsync
        .as_deref()
        .unwrap_or(&d.fsync)
        .parse()
        .map_err(ApiError::bad_request)?;
    let nonzero = |v: u64| (v > 0).then_some(v);
    let cfg = TopicConfig {
        name: req.name,
        partitions: req.partitions.unwrap_or(d.partitions),
        retention: Retention {
            max_age_ms: req.retention_ms.or(nonzero(d.retention_ms)),
            max_bytes: req.retention_bytes.or(nonzero(d.retention_bytes)),
        },
        fsync,
        segment_bytes: req.segment_bytes.unwrap_or(d.segment_bytes),
    };
    let t = st.engine.log.create_topic(cfg)?;
    Ok(answer(&headers, StatusCode::CREATED, &info(&st, &t, true)))
}

pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    let mut topics: Vec<TopicInfo> = st
        .engine
        .log
        .topics()
        .iter()
        .map(|t| info(&st, t, false))
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(answer(
        &headers,
        StatusCode::OK,
        &serde_json::json!({ "topics": topics }),
    ))
}

pub async fn describe(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    let t = st
        .engine
        .log
        .topic(&name)
        .ok_or_else(|| ApiError::not_found(format!("topic `{name}` does not exist")))?;
    Ok(answer(&headers, StatusCode::OK, &info(&st, &t, true)))
}

pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Admin)?;
    let engine = st.engine.clone();
    off_runtime(move || engine.delete_topic(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
