//! `GET /api/v1/openapi.json`: the API described as OpenAPI 3.0. The route
//! table below is the single source; a test checks that every entry is
//! served by the router and that the router serves nothing else.

use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// (method, path, summary, who may call it)
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("get", "/", "Live dashboard (HTML)", "open"),
    ("get", "/dashboard.js", "Dashboard script", "open"),
    (
        "get",
        "/healthz",
        "Liveness: 200 while every shard's loop turns",
        "open",
    ),
    (
        "get",
        "/readyz",
        "Readiness: 200 once recovery has replayed the log",
        "open",
    ),
    ("get", "/metrics", "Prometheus metrics", "read"),
    ("get", "/api/v1/openapi.json", "This document", "open"),
    (
        "get",
        "/api/v1/events",
        "Server-sent `status` events, one per second",
        "read",
    ),
    (
        "get",
        "/api/v1/status",
        "Everything the dashboard shows",
        "read",
    ),
    ("get", "/api/v1/topics", "List topics", "read"),
    (
        "post",
        "/api/v1/topics",
        "Create a topic {name, partitions, fsync, retention_ms, retention_bytes, segment_bytes}",
        "admin",
    ),
    (
        "get",
        "/api/v1/topics/{name}",
        "Describe a topic: partitions, offsets, sizes, lag of the jobs reading it",
        "read",
    ),
    (
        "delete",
        "/api/v1/topics/{name}",
        "Delete a topic no job uses",
        "admin",
    ),
    (
        "post",
        "/api/v1/topics/{name}/records",
        "Ingest a JSON array, NDJSON or MessagePack array of records; ?key_field=&time_field=&bare=&producer_id=&sequence=",
        "ingest",
    ),
    (
        "get",
        "/api/v1/topics/{name}/records",
        "Read records: ?partition=&offset=&limit=&wait_ms=",
        "read",
    ),
    (
        "get",
        "/api/v1/topics/{name}/tail",
        "Server-sent `record` events as records arrive: ?partition=&from=latest|earliest",
        "read",
    ),
    ("get", "/api/v1/plugins", "List plugin versions", "read"),
    (
        "post",
        "/api/v1/plugins",
        "Upload a .wasm: ?name=&version=, body = module",
        "admin",
    ),
    (
        "get",
        "/api/v1/plugins/{name}/{version}",
        "Describe a plugin version and the jobs using it",
        "read",
    ),
    (
        "delete",
        "/api/v1/plugins/{name}/{version}",
        "Delete a plugin version no job uses",
        "admin",
    ),
    ("get", "/api/v1/jobs", "List jobs", "read"),
    (
        "post",
        "/api/v1/jobs",
        "Create and start a job from a spec",
        "admin",
    ),
    (
        "get",
        "/api/v1/jobs/{name}",
        "Job status: state, uptime, records, throughput, lag, watermark, checkpoints, errors",
        "read",
    ),
    (
        "delete",
        "/api/v1/jobs/{name}",
        "Delete a job, its checkpoints and internal topics",
        "admin",
    ),
    (
        "post",
        "/api/v1/jobs/{name}/stop",
        "Stop after a final checkpoint",
        "admin",
    ),
    (
        "post",
        "/api/v1/jobs/{name}/resume",
        "Resume from the last checkpoint",
        "admin",
    ),
    (
        "post",
        "/api/v1/jobs/{name}/upgrade",
        "Move an operator to another plugin version {plugin, version}",
        "admin",
    ),
    (
        "post",
        "/api/v1/jobs/{name}/checkpoint",
        "Checkpoint now",
        "admin",
    ),
    ("get", "/api/v1/views", "List views", "read"),
    (
        "get",
        "/api/v1/views/{name}",
        "Query a view: ?key=&from=&to=&latest=&sort=&offset=&limit=&rank_of=",
        "read",
    ),
];

/// The OpenAPI document.
pub fn build() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, access) in ROUTES {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = match *access {
            "open" => json!([]),
            _ => json!([{ "bearer": [] }]),
        };
        let op = json!({
            "summary": summary,
            "description": format!("Token needed: {access}."),
            "parameters": params,
            "security": security,
            "responses": {
                "2XX": {"description": "success"},
                "4XX": {"description": "client error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "5XX": {"description": "server error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        paths
            .entry(path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path item is an object")
            .insert(method.to_string(), op);
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Sluice API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}}}
        }
    })
}

pub async fn document() -> Response {
    axum::Json(build()).into_response()
}
