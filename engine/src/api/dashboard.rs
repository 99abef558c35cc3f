//! The live dashboard (`/`, assets embedded in the binary), its data feed
//! (`/api/v1/status` and the SSE stream `/api/v1/events`), and the health
//! endpoints `/healthz` and `/readyz`.
//!
//! A [`Status`] is built from the engine's atomics and a bounded query of
//! each view; nothing here keeps state between requests. Each view is shown
//! as a [`PanelKind`] picked from the shape of its newest result, so the
//! page asks for the rows that kind needs (newest alerts, the newest grid,
//! the top of a leaderboard) rather than an arbitrary first page.

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
use crate::state::view::{Answer, Query, View};

const PAGE: &str = include_str!("assets/dashboard.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
/// Rows of a view shown as a plain table.
const TABLE_ROWS: usize = 12;
/// Alerts shown per alert view (newest first).
const ALERT_ROWS: usize = 15;
/// Cells of a grid view (its newest window).
const GRID_CELLS: usize = 400;
/// Entries of a leaderboard (its top).
const LEADERBOARD_ROWS: usize = 10;

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
    pub views: Vec<ViewPanel>,
}

/// How the dashboard draws a view, from the fields of its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PanelKind {
    /// Fraud-style alerts (`rule`, `payer`, `txn_ids`): newest first.
    Alerts,
    /// A map of cells (`cell` = `"<row>-<col>"`, `multiplier`): the newest window.
    Grid,
    /// Scores (`points`): the newest window's top, highest first.
    Leaderboard,
    /// Anything else: newest windows first.
    Table,
}

/// One view as the dashboard shows it.
#[derive(Serialize)]
pub struct ViewPanel {
    pub kind: PanelKind,
    #[serde(flatten)]
    pub answer: Answer,
}

impl PanelKind {
    /// The kind for a view whose newest result is `value`.
    pub fn of(value: &serde_json::Value) -> PanelKind {
        let has = |f: &str| value.get(f).is_some();
        if has("rule") && has("payer") && has("txn_ids") {
            PanelKind::Alerts
        } else if has("cell") && has("multiplier") {
            PanelKind::Grid
        } else if has("points") {
            PanelKind::Leaderboard
        } else {
            PanelKind::Table
        }
    }

    /// What to ask the view for, given the fields of its newest result.
    fn query(self, value: &serde_json::Value) -> Query {
        match self {
            PanelKind::Alerts => Query {
                sort: value.get("detected_at").map(|_| "detected_at".to_owned()),
                limit: Some(ALERT_ROWS),
                ..Query::default()
            },
            PanelKind::Grid => Query {
                latest: true,
                limit: Some(GRID_CELLS),
                ..Query::default()
            },
            PanelKind::Leaderboard => Query {
                latest: true,
                sort: Some("points".to_owned()),
                limit: Some(LEADERBOARD_ROWS),
                ..Query::default()
            },
            PanelKind::Table => Query {
                limit: Some(TABLE_ROWS),
                ..Query::default()
            },
        }
    }
}

/// The dashboard panel of one view: one query for a table, two otherwise
/// (the first shows the newest result's shape).
pub fn panel(view: &View) -> ViewPanel {
    let table = PanelKind::Table.query(&serde_json::Value::Null);
    let answer = view.query(&table);
    let newest = answer
        .rows
        .first()
        .map(|r| r.value.clone())
        .unwrap_or_default();
    let kind = PanelKind::of(&newest);
    let answer = match kind {
        PanelKind::Table => answer,
        _ => view.query(&kind.query(&newest)),
    };
    ViewPanel { kind, answer }
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
        .map(|v| panel(&v))
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
    // The message of the newest panic is kept per shard; name every shard that has one.
    let last_panics: serde_json::Map<String, serde_json::Value> = e
        .shards()
        .iter()
        .filter_map(|s| {
            let m = s.stats.last_panic.lock().map(|m| m.clone()).ok()?;
            (!m.is_empty()).then(|| (s.id.to_string(), m.into()))
        })
        .collect();
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
        "last_shard_panics": last_panics,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view_of(values: &[(&str, serde_json::Value)]) -> View {
        let v = View::new("v", 10_000, 1);
        for (key, value) in values {
            let bytes = rmp_serde::to_vec_named(value).unwrap();
            v.apply(0, [(key.as_bytes(), 0, &bytes[..])]);
        }
        v
    }

    #[test]
    fn panel_kind_follows_the_fields_of_the_newest_result() {
        let alert = json!({"rule": "velocity", "payer": "p", "txn_ids": ["t1"]});
        assert_eq!(PanelKind::of(&alert), PanelKind::Alerts);
        assert_eq!(
            PanelKind::of(&json!({"cell": "1-2", "multiplier": 1.5})),
            PanelKind::Grid
        );
        assert_eq!(PanelKind::of(&json!({"points": 3})), PanelKind::Leaderboard);
        assert_eq!(PanelKind::of(&json!({"count": 3})), PanelKind::Table);
        assert_eq!(PanelKind::of(&serde_json::Value::Null), PanelKind::Table);
    }

    #[test]
    fn leaderboard_panel_carries_the_top_of_the_newest_window() {
        let mut rows = Vec::new();
        for i in 0..30u64 {
            let key = format!("player-{i:02}");
            rows.push((
                key,
                json!({"points": i, "window_start": 0, "window_end": 10}),
            ));
        }
        rows.push((
            "old-champion".into(),
            json!({"points": 999, "window_start": -10, "window_end": 0}),
        ));
        let refs: Vec<(&str, serde_json::Value)> =
            rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let p = panel(&view_of(&refs));
        assert_eq!(p.kind, PanelKind::Leaderboard);
        let keys: Vec<&str> = p.answer.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys.len(), LEADERBOARD_ROWS);
        assert_eq!(keys[0], "player-29", "highest points first: {keys:?}");
        assert!(
            !keys.contains(&"old-champion"),
            "older windows are left out"
        );
    }

    #[test]
    fn alert_panel_shows_the_most_recently_detected_first() {
        let alert = |at: i64| {
            json!({"rule": "two_large", "payer": "p", "txn_ids": ["t"], "detected_at": at,
                   "window_start": 0, "window_end": 100})
        };
        let p = panel(&view_of(&[
            ("a", alert(5)),
            ("b", alert(9)),
            ("c", alert(7)),
        ]));
        assert_eq!(p.kind, PanelKind::Alerts);
        let keys: Vec<&str> = p.answer.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["b", "c", "a"]);
    }

    #[test]
    fn grid_panel_carries_every_cell_of_the_newest_window_only() {
        let mut rows = Vec::new();
        for r in 0..5 {
            for c in 0..5 {
                let cell = format!("{r}-{c}");
                rows.push((
                    cell.clone(),
                    json!({"cell": cell, "multiplier": 1.0, "window_start": 10, "window_end": 20}),
                ));
            }
        }
        rows.push((
            "0-0-old".into(),
            json!({"cell": "0-0", "multiplier": 2.0, "window_start": 0, "window_end": 10}),
        ));
        let refs: Vec<(&str, serde_json::Value)> =
            rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let p = panel(&view_of(&refs));
        assert_eq!(p.kind, PanelKind::Grid);
        assert_eq!(
            p.answer.rows.len(),
            25,
            "more cells than a table page holds"
        );
        assert!(p.answer.rows.iter().all(|r| r.window_end == Some(20)));
    }
}
