//! `/api/v1/jobs`: create from a spec, list, describe, stop, resume,
//! upgrade, checkpoint, delete. Job changes run on a blocking thread: they
//! wait for the shards.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::auth::{Access, check};
use super::body::{answer, decode};
use super::error::off_runtime;
use super::{ApiError, AppState};
use crate::job::engine::{Engine, EngineError, JobState};
use crate::job::spec::JobSpec;
use crate::shard::runtime::{JobRuntime, OperatorError};

const MAX_SPEC_BYTES: usize = 1 << 20;

/// A job as the API shows it.
#[derive(Debug, Serialize)]
pub struct JobStatus {
    pub name: String,
    #[serde(flatten)]
    pub state: JobState,
    pub created_ms: i64,
    pub uptime_s: Option<f64>,
    pub records_in: u64,
    pub records_out: u64,
    /// Records per second in and out over the last second.
    pub rate_in: f64,
    pub rate_out: f64,
    pub lag: u64,
    pub watermark: Option<i64>,
    pub checkpoints: u64,
    pub last_checkpoint_ms: Option<i64>,
    pub last_checkpoint_us: u64,
    pub last_checkpoint_bytes: u64,
    pub errors: u64,
    pub dead_letters: u64,
    /// Plugin instances renewed after a trap, a timeout or a memory-limit failure.
    pub renewals: u64,
    pub late_events: u64,
    pub dropped: u64,
    pub recent_errors: Vec<OperatorError>,
    /// Per stage: partitions with their lag and watermark.
    pub stages: Vec<Vec<TaskStatus>>,
    pub spec: JobSpec,
}

#[derive(Debug, Serialize)]
pub struct TaskStatus {
    pub partition: u32,
    pub lag: u64,
    pub watermark: Option<i64>,
    pub records_in: u64,
    /// Milliseconds since the task last read or wrote records; null until it has.
    pub idle_ms: Option<u64>,
}

fn wm(v: i64) -> Option<i64> {
    (v != crate::time::NO_WATERMARK).then_some(v)
}

/// The status of a job (shared with the dashboard).
pub fn status(
    spec: JobSpec,
    state: JobState,
    rt: Option<Arc<JobRuntime>>,
    created_ms: i64,
    detail: bool,
) -> JobStatus {
    let mut s = JobStatus {
        name: spec.name.clone(),
        state,
        created_ms,
        uptime_s: None,
        records_in: 0,
        records_out: 0,
        rate_in: 0.0,
        rate_out: 0.0,
        lag: 0,
        watermark: None,
        checkpoints: 0,
        last_checkpoint_ms: None,
        last_checkpoint_us: 0,
        last_checkpoint_bytes: 0,
        errors: 0,
        dead_letters: 0,
        renewals: 0,
        late_events: 0,
        dropped: 0,
        recent_errors: Vec::new(),
        stages: Vec::new(),
        spec,
    };
    if let Some(rt) = rt {
        let st = &rt.stats;
        let up = rt.started.elapsed().as_secs_f64();
        s.uptime_s = Some(up);
        s.records_in = st.records_in.load(Ordering::Relaxed);
        s.records_out = st.records_out.load(Ordering::Relaxed);
        s.rate_in = f64::from_bits(st.rate_in.load(Ordering::Relaxed));
        s.rate_out = f64::from_bits(st.rate_out.load(Ordering::Relaxed));
        s.lag = rt.lag();
        s.watermark = wm(rt.watermark());
        s.checkpoints = st.checkpoints.load(Ordering::Relaxed);
        s.last_checkpoint_ms =
            Some(st.last_checkpoint_ms.load(Ordering::Relaxed)).filter(|v| *v > 0);
        s.last_checkpoint_us = st.last_checkpoint_us.load(Ordering::Relaxed);
        s.last_checkpoint_bytes = st.last_checkpoint_bytes.load(Ordering::Relaxed);
        s.errors = st.errors.load(Ordering::Relaxed);
        s.dead_letters = st.dead_letters.load(Ordering::Relaxed);
        s.renewals = st.renewals.load(Ordering::Relaxed);
        s.late_events = st.late_events.load(Ordering::Relaxed);
        s.dropped = st.dropped.load(Ordering::Relaxed);
        if detail {
            s.recent_errors = rt.recent_errors();
            s.stages = rt
                .tasks
                .iter()
                .map(|stage| {
                    stage
                        .iter()
                        .enumerate()
                        .map(|(p, t)| TaskStatus {
                            partition: p as u32,
                            lag: t.lag.load(Ordering::Relaxed),
                            watermark: wm(t.watermark.load(Ordering::Relaxed)),
                            records_in: t.records_in.load(Ordering::Relaxed),
                            idle_ms: t
                                .last_active(rt.started)
                                .map(|at| at.elapsed().as_millis() as u64),
                        })
                        .collect()
                })
                .collect();
        }
    }
    s
}

async fn blocking<T: Send + 'static>(
    engine: &Arc<Engine>,
    f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    let engine = engine.clone();
    off_runtime(move || f(&engine)).await
}

fn one(st: &AppState, name: &str) -> Result<JobStatus, ApiError> {
    let (spec, state, rt, created) = st
        .engine
        .job(name)
        .ok_or_else(|| ApiError::not_found(format!("job `{name}` does not exist")))?;
    Ok(status(spec, state, rt, created, true))
}

pub async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Admin)?;
    let spec: JobSpec = decode(&headers, body, MAX_SPEC_BYTES).await?;
    let name = spec.name.clone();
    blocking(&st.engine, move |e| e.create_job(spec)).await?;
    Ok(answer(&headers, StatusCode::CREATED, &one(&st, &name)?))
}

pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    let jobs: Vec<JobStatus> = st
        .engine
        .jobs()
        .into_iter()
        .map(|(spec, state, rt, c)| status(spec, state, rt, c, false))
        .collect();
    Ok(answer(
        &headers,
        StatusCode::OK,
        &serde_json::json!({ "jobs": jobs }),
    ))
}

pub async fn describe(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    Ok(answer(&headers, StatusCode::OK, &one(&st, &name)?))
}

pub async fn stop(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin_action(st, headers, name, Engine::stop_job).await
}

pub async fn resume(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin_action(st, headers, name, Engine::resume_job).await
}

pub async fn checkpoint(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin_action(st, headers, name, Engine::checkpoint_job).await
}

/// Runs `action` on job `name` off the runtime (admin only), then answers
/// with the job's status.
async fn admin_action(
    st: AppState,
    headers: HeaderMap,
    name: String,
    action: fn(&Engine, &str) -> Result<(), EngineError>,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Admin)?;
    let n = name.clone();
    blocking(&st.engine, move |e| action(e, &n)).await?;
    Ok(answer(&headers, StatusCode::OK, &one(&st, &name)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upgrade {
    pub plugin: String,
    pub version: String,
}

pub async fn upgrade(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Admin)?;
    let u: Upgrade = decode(&headers, body, 4096).await?;
    let n = name.clone();
    blocking(&st.engine, move |e| {
        e.upgrade_job(&n, &u.plugin, &u.version)
    })
    .await?;
    Ok(answer(&headers, StatusCode::OK, &one(&st, &name)?))
}

pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Admin)?;
    blocking(&st.engine, move |e| e.delete_job(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
