//! `GET /metrics`: Prometheus text exposition, built at scrape time from
//! the engine's atomics and the shards' histograms (prometheus-client does
//! the encoding).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::auth::{Access, check};
use super::{ApiError, AppState};
use crate::time::NO_WATERMARK;

type Labels = Vec<(String, String)>;

fn gauge_family(
    reg: &mut Registry,
    name: &str,
    help: &str,
) -> Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>> {
    let f = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    reg.register(name, help, f.clone());
    f
}

fn label(k: &str, v: impl ToString) -> Labels {
    vec![(k.to_owned(), v.to_string())]
}

/// The whole exposition.
pub fn render(st: &AppState) -> String {
    let e = &st.engine;
    let mut reg = Registry::with_prefix("sluice");

    // Jobs.
    let job_in = gauge_family(
        &mut reg,
        "job_records_in",
        "Records read by a job (counter)",
    );
    let job_out = gauge_family(
        &mut reg,
        "job_records_out",
        "Records a job wrote to topics and views (counter)",
    );
    let rate_in = gauge_family(
        &mut reg,
        "job_records_in_per_second",
        "Input rate over the last second",
    );
    let lag = gauge_family(
        &mut reg,
        "job_lag_records",
        "Records behind the end of the job's inputs",
    );
    let wm_delay = gauge_family(
        &mut reg,
        "job_watermark_delay_seconds",
        "Wall clock minus the job's watermark",
    );
    let errors = gauge_family(&mut reg, "job_errors", "Failed plugin calls (counter)");
    let dead = gauge_family(
        &mut reg,
        "job_dead_letters",
        "Records sent to the dead-letter topic (counter)",
    );
    let renewals = gauge_family(
        &mut reg,
        "job_instance_renewals",
        "Plugin instances replaced after a trap, timeout or memory-limit failure (counter)",
    );
    let late = gauge_family(
        &mut reg,
        "job_late_events",
        "Events later than their window allowed (counter)",
    );
    let ckpt_n = gauge_family(&mut reg, "job_checkpoints", "Checkpoints written (counter)");
    let ckpt_s = gauge_family(
        &mut reg,
        "job_checkpoint_duration_seconds",
        "Duration of the last checkpoint",
    );
    let ckpt_b = gauge_family(
        &mut reg,
        "job_checkpoint_bytes",
        "Size of the last checkpoint file",
    );
    let running = gauge_family(
        &mut reg,
        "job_running",
        "1 if the job runs, 0 if stopped or paused",
    );
    let mem = gauge_family(
        &mut reg,
        "job_plugin_memory_bytes",
        "Linear memory of the job's plugin instances",
    );
    let now = crate::shard::runtime::now_ms();
    for (spec, _, rt, _) in e.jobs() {
        let l = label("job", &spec.name);
        running
            .get_or_create(&l)
            .set(if rt.is_some() { 1.0 } else { 0.0 });
        let Some(rt) = rt else { continue };
        let s = &rt.stats;
        job_in
            .get_or_create(&l)
            .set(s.records_in.load(Ordering::Relaxed) as f64);
        job_out
            .get_or_create(&l)
            .set(s.records_out.load(Ordering::Relaxed) as f64);
        rate_in
            .get_or_create(&l)
            .set(f64::from_bits(s.rate_in.load(Ordering::Relaxed)));
        lag.get_or_create(&l).set(rt.lag() as f64);
        let w = rt.watermark();
        if w != NO_WATERMARK {
            wm_delay.get_or_create(&l).set((now - w) as f64 / 1000.0);
        }
        errors
            .get_or_create(&l)
            .set(s.errors.load(Ordering::Relaxed) as f64);
        dead.get_or_create(&l)
            .set(s.dead_letters.load(Ordering::Relaxed) as f64);
        renewals
            .get_or_create(&l)
            .set(s.renewals.load(Ordering::Relaxed) as f64);
        late.get_or_create(&l)
            .set(s.late_events.load(Ordering::Relaxed) as f64);
        ckpt_n
            .get_or_create(&l)
            .set(s.checkpoints.load(Ordering::Relaxed) as f64);
        ckpt_s
            .get_or_create(&l)
            .set(s.last_checkpoint_us.load(Ordering::Relaxed) as f64 / 1e6);
        ckpt_b
            .get_or_create(&l)
            .set(s.last_checkpoint_bytes.load(Ordering::Relaxed) as f64);
        let m: u64 = rt
            .tasks
            .iter()
            .flatten()
            .map(|t| t.memory_bytes.load(Ordering::Relaxed))
            .sum();
        mem.get_or_create(&l).set(m as f64);
    }

    // Shards.
    let alive = e.shards_alive(e.stall_limit());
    let sh_in = gauge_family(
        &mut reg,
        "shard_records_in",
        "Records processed by a shard (counter)",
    );
    let sh_ing = gauge_family(
        &mut reg,
        "shard_ingested_records",
        "Records appended by a shard's ingest (counter)",
    );
    let sh_busy = gauge_family(
        &mut reg,
        "shard_busy_seconds",
        "Time a shard spent working (counter)",
    );
    let sh_q = gauge_family(
        &mut reg,
        "shard_ingest_queue",
        "Ingest batches waiting for a shard",
    );
    let sh_alive = gauge_family(&mut reg, "shard_alive", "1 while the shard's loop turns");
    let sh_panics = gauge_family(
        &mut reg,
        "shard_panics",
        "Panics caught and recovered (counter)",
    );
    let sh_bp = gauge_family(
        &mut reg,
        "shard_backpressured",
        "1 while ingest is held back for lag",
    );
    for (s, ok) in e.shards().iter().zip(alive) {
        let l = label("shard", s.id);
        sh_in
            .get_or_create(&l)
            .set(s.stats.records_in.load(Ordering::Relaxed) as f64);
        sh_ing
            .get_or_create(&l)
            .set(s.stats.ingested.load(Ordering::Relaxed) as f64);
        sh_busy
            .get_or_create(&l)
            .set(s.stats.busy_ns.load(Ordering::Relaxed) as f64 / 1e9);
        sh_q.get_or_create(&l).set(s.queued() as f64);
        sh_alive.get_or_create(&l).set(if ok { 1.0 } else { 0.0 });
        sh_panics
            .get_or_create(&l)
            .set(s.stats.panics.load(Ordering::Relaxed) as f64);
        sh_bp
            .get_or_create(&l)
            .set(if s.stats.backpressured.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            });
        reg.register(
            format!("shard{}_batch_seconds", s.id),
            "Time to run one batch through a task, append included",
            s.stats.batch_seconds.clone(),
        );
        reg.register(
            format!("shard{}_wasm_call_seconds", s.id),
            "Time of one plugin call",
            s.stats.wasm_call_seconds.clone(),
        );
    }

    // Log and views.
    let log_bytes = gauge_family(&mut reg, "log_bytes", "Bytes held by the log");
    log_bytes
        .get_or_create(&Vec::new())
        .set(e.log.total_bytes() as f64);
    let topic_records = gauge_family(&mut reg, "topic_records", "Records retained per topic");
    for t in e.log.topics() {
        let n: u64 = t
            .partitions()
            .iter()
            .map(|p| p.end_offset() - p.start_offset())
            .sum();
        topic_records
            .get_or_create(&label("topic", t.name()))
            .set(n as f64);
    }
    let view_entries = gauge_family(&mut reg, "view_entries", "Entries held per view");
    for n in e.views.names() {
        if let Some(v) = e.views.get(&n) {
            view_entries
                .get_or_create(&label("view", &n))
                .set(v.stats().0 as f64);
        }
    }
    let mut out = String::new();
    encode(&mut out, &reg).expect("writing to a String cannot fail");
    out
}

pub async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&st),
    )
        .into_response())
}
