//! The live dashboard (`/`, assets embedded in the binary), its data feed
//! (`/api/v1/status` and the SSE stream `/api/v1/events`), and the health
//! endpoints `/healthz` and `/readyz`.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::auth::{Access, check};
use super::jobs::{JobStatus, status as job_status};
use super::{ApiError, AppState};
use crate::state::view::{Answer, Query};

const PAGE: &str = include_str!("assets/dashboard.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
/// Rows of each view carried by a dashboard update.
const VIEW_ROWS: usize = 12;

pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

#[derive(Serialize)]
pub struct ShardStatus {
    pub id: u32,
    pub core: Option<usize>,
    pub alive: bool,
    pub records_in: u64,
    pub records_out: u64,
    pub ingested: u64,
    pub queued: usize,
    pub busy_ns: u64,
    pub panics: u64,
    pub last_panic: String,
    pub backpressured: bool,
}

#[derive(Serialize)]
pub struct TopicBrief {
    pub name: String,
    pub records: u64,
    pub size_bytes: u64,
}

/// Everything the dashboard draws, in one document.
#[derive(Serialize)]
pub struct Status {
    pub now_ms: i64,
    pub uptime_s: f64,
    pub ready: bool,
    pub shards: Vec<ShardStatus>,
    pub jobs: Vec<JobStatus>,
    pub topics: Vec<TopicBrief>,
    pub views: Vec<Answer>,
}

pub fn snapshot(st: &AppState) -> Status {
    let e = &st.engine;
    let alive = e.shards_alive(e.stall_limit());
    let shards = e
        .shards()
        .iter()
        .zip(alive)
        .map(|(s, alive)| ShardStatus {
            id: s.id,
            core: s.core,
            alive,
            records_in: s.stats.records_in.load(Ordering::Relaxed),
            records_out: s.stats.records_out.load(Ordering::Relaxed),
            ingested: s.stats.ingested.load(Ordering::Relaxed),
            queued: s.queued(),
            busy_ns: s.stats.busy_ns.load(Ordering::Relaxed),
            panics: s.stats.panics.load(Ordering::Relaxed),
            last_panic: s
                .stats
                .last_panic
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default(),
            backpressured: s.stats.backpressured.load(Ordering::Relaxed),
        })
        .collect();
    let jobs = e
        .jobs()
        .into_iter()
        .map(|(spec, state, rt, c)| {
            let mut s = job_status(spec, state, rt, c, false);
            s.spec
                .operators
                .iter_mut()
                .for_each(|o| o.config = serde_json::Value::Null);
            s
        })
        .collect();
    let mut topics: Vec<TopicBrief> = e
        .log
        .topics()
        .iter()
        .filter(|t| !t.name().starts_with('_'))
        .map(|t| TopicBrief {
            name: t.name().to_owned(),
            records: t
                .partitions()
                .iter()
                .map(|p| p.end_offset() - p.start_offset())
                .sum(),
            size_bytes: t.partitions().iter().map(|p| p.size_bytes()).sum(),
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let views = e
        .views
        .names()
        .into_iter()
        .filter_map(|n| e.views.get(&n))
        .map(|v| {
            v.query(&Query {
                limit: Some(VIEW_ROWS),
                ..Query::default()
            })
        })
        .collect();
    Status {
        now_ms: crate::shard::runtime::now_ms(),
        uptime_s: e.started.elapsed().as_secs_f64(),
        ready: e.is_ready(),
        shards,
        jobs,
        topics,
        views,
    }
}

pub async fn status(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    Ok(axum::Json(snapshot(&st)).into_response())
}

/// One `status` event per second.
pub async fn events(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    let stream = futures_util::stream::unfold((st, true), |(st, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let data = serde_json::to_string(&snapshot(&st)).unwrap_or_default();
        Some((
            Ok::<Event, Infallible>(Event::default().event("status").data(data)),
            (st, false),
        ))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// 200 while every shard's loop turns; 503 naming the stuck ones otherwise.
pub async fn healthz(State(st): State<AppState>) -> Response {
    let e = &st.engine;
    let alive = e.shards_alive(e.stall_limit());
    let panics: u64 = e
        .shards()
        .iter()
        .map(|s| s.stats.panics.load(Ordering::Relaxed))
        .sum();
    let stuck: Vec<usize> = alive
        .iter()
        .enumerate()
        .filter(|(_, a)| !**a)
        .map(|(i, _)| i)
        .collect();
    let body = serde_json::json!({
        "status": if stuck.is_empty() { "ok" } else { "degraded" },
        "shards": alive.len(),
        "stuck_shards": stuck,
        "shard_panics": panics,
    });
    let code = if stuck.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

/// 200 once recovery has replayed the log; 503 before.
pub async fn readyz(State(st): State<AppState>) -> Response {
    let r = st.engine.recovery();
    let ready = st.engine.is_ready();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(serde_json::json!({ "ready": ready, "recovery": r })),
    )
        .into_response()
}
