//! The `sluice` system over HTTP (issue 6): the engine and its API server (`sluice::api::serve`)
//! run in this process on a loopback port; client threads with keep-alive agents `POST`
//! batches of [`BIDS_PER_REQUEST`] Nexmark bids to `/api/v1/topics/bids/records` — as
//! MessagePack (mode `http`) or JSON (mode `http-json`) arrays of `{key, timestamp, value}`
//! — into a topic with the default `interval(5ms)` fsync, so every ack means durable.
//!
//! While the bids go in, the workload's query runs as a job whose results go to a view, and
//! one more thread queries the view every [`VIEW_QUERY_PERIOD`].
//!
//! - Closed loop: the clients send as fast as the server acks; the row's events/s is the
//!   ingest rate, and its latency columns are the *view query* latencies during ingest.
//! - Open loop (`--open-loop-rate`): each client sends its share on a fixed schedule; the
//!   latency columns are *ack* latencies from each request's intended send time.
//!
//! The clients run in the same process as the server, so the CPU time (and per-core figure)
//! includes them: encoding, HTTP and loopback on both sides.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sluice::job::spec::JobSpec;
use sluice::log::FsyncPolicy;
use sluice_gen::encode::write_ndjson_parts;
use sluice_gen::nexmark::{Event, NexmarkEvent};
use sluice_gen::{EventRecord, RecordBuf};

use super::fixture::{Instance, failed};
use super::input::NEXMARK_OUT_OF_ORDERNESS_MS;
use super::{Mode, Sluice};
use crate::BenchError;
use crate::check::Output;
use crate::measure::{LatencyRecorder, MonotonicClock, OpenLoop, Span};
use crate::system::{Job, Load, Sample, repeat};
use crate::workload::Workload;

/// Bids per ingest request.
pub const BIDS_PER_REQUEST: usize = 1_000;
/// Default number of client threads posting bids.
pub const DEFAULT_CLIENTS: usize = 16;
/// Most client threads accepted.
pub const MAX_CLIENTS: usize = 256;
/// How often the view is queried during ingest.
pub const VIEW_QUERY_PERIOD: Duration = Duration::from_millis(10);
/// Most retries of one request the server refused as busy.
const MAX_RETRIES: u32 = 10_000;
/// What the rows of this mode measure (for the report); `{clients}` is filled in.
pub const MEASURES: &str = "HTTP ingest on loopback, server (sluice::api::serve, 2 threads) and \
    {clients} keep-alive client threads in this process: batches of 1,000 Nexmark bids as MessagePack \
    (http) or JSON (http-json) envelopes into a topic ({partitions}) with \
    fsync interval(5ms), acked once durable; the workload's query runs meanwhile as a job into \
    a view. events/s = bids acked per second; closed-loop latency columns = view query latency \
    during ingest (one query per 10 ms); open-loop latency columns = ack latency from each \
    request's intended send time; CPU includes the clients";

/// The wire format of the request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/msgpack`.
    MsgPack,
    /// `application/json`.
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::MsgPack => "application/msgpack",
            Format::Json => "application/json",
        }
    }
}

/// The request bodies: the dataset's bids in batches of [`BIDS_PER_REQUEST`].
pub fn bodies(events: &[NexmarkEvent], format: Format) -> Result<Vec<Vec<u8>>, BenchError> {
    let bids: Vec<&NexmarkEvent> = events
        .iter()
        .filter(|e| matches!(e.event, Event::Bid(_)))
        .collect();
    let mut rec = RecordBuf::default();
    let mut out = Vec::with_capacity(bids.len().div_ceil(BIDS_PER_REQUEST));
    for part in bids.chunks(BIDS_PER_REQUEST) {
        let mut body = Vec::with_capacity(part.len() * 220);
        match format {
            Format::MsgPack => {
                let io = |e: std::io::Error| failed("http", format!("encoding a body: {e}"));
                rmp::encode::write_array_len(&mut body, part.len() as u32)
                    .map_err(|e| io(e.into()))?;
                for e in part {
                    rec.fill(*e)?;
                    let key = String::from_utf8_lossy(&rec.key);
                    rmp::encode::write_map_len(&mut body, 3).map_err(|e| io(e.into()))?;
                    rmp::encode::write_str(&mut body, "key").map_err(|e| io(e.into()))?;
                    rmp::encode::write_str(&mut body, &key).map_err(|e| io(e.into()))?;
                    rmp::encode::write_str(&mut body, "timestamp").map_err(|e| io(e.into()))?;
                    rmp::encode::write_sint(&mut body, rec.timestamp).map_err(|e| io(e.into()))?;
                    rmp::encode::write_str(&mut body, "value").map_err(|e| io(e.into()))?;
                    body.extend_from_slice(&rec.value);
                }
            }
            Format::Json => {
                body.push(b'[');
                for (i, e) in part.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    let key = e.key();
                    write_ndjson_parts(&key, e.timestamp(), *e, &mut body)?;
                    if body.last() == Some(&b'\n') {
                        body.pop();
                    }
                }
                body.push(b']');
            }
        }
        out.push(body);
    }
    Ok(out)
}

/// The API server in this process.
struct Server {
    instance: Instance,
    /// Runs the server until dropped.
    rt: Option<tokio::runtime::Runtime>,
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    fn start(shards: u32) -> Result<Server, BenchError> {
        let instance = Instance::start(shards, |_| {})?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-http")
            .enable_all()
            .build()
            .map_err(|e| failed("http", format!("tokio runtime: {e}")))?;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| failed("http", format!("binding a loopback port: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| failed("http", e.to_string()))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(sluice::api::serve(
            Arc::clone(&instance.engine),
            listener,
            async {
                let _ = rx.await;
            },
        ));
        Ok(Server {
            instance,
            rt: Some(rt),
            base: format!("http://{addr}"),
            stop: Some(tx),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.instance.engine.shutdown();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// Posts one body until it is acked; returns the number of busy refusals.
fn post(agent: &ureq::Agent, url: &str, format: Format, body: &[u8]) -> Result<u32, BenchError> {
    for retry in 0..=MAX_RETRIES {
        let mut r = agent
            .post(url)
            .header("Content-Type", format.content_type())
            .send(body)
            .map_err(|e| failed("http", format!("POST {url}: {e}")))?;
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        match status {
            200..=299 => return Ok(retry),
            429 | 503 => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                return Err(failed(
                    "http",
                    format!("POST {url} answered {status}: {text}"),
                ));
            }
        }
    }
    Err(failed(
        "http",
        format!("POST {url} refused as busy {MAX_RETRIES} times (MAX_RETRIES)"),
    ))
}

/// The view job of `workload` over the bids topic.
fn view_job(workload: Workload) -> Result<JobSpec, BenchError> {
    let Workload::Nexmark(q) = workload else {
        return Err(BenchError::usage(
            "--workload",
            format!("the http mode runs Nexmark queries, not {workload}"),
            "use e.g. --workload q7",
        ));
    };
    let operators = if super::input::two_phase(q) {
        json!([
            {"plugin": "nexmark@0.1.0", "config": {"query": q.to_string(), "phase": "partial"}},
            {"plugin": "nexmark@0.1.0", "config": {"query": q.to_string(), "phase": "final"}, "partition_by_key": true}
        ])
    } else {
        json!([{"plugin": "nexmark@0.1.0", "config": {"query": q.to_string()}}])
    };
    serde_json::from_value(json!({
        "name": "view", "sources": [{"topic": "bids"}],
        "max_out_of_orderness_ms": NEXMARK_OUT_OF_ORDERNESS_MS,
        "operators": operators,
        "sinks": {"main": {"view": {"view": "results"}}}
    }))
    .map_err(|e| failed("http", format!("view job: {e}")))
}

/// Queries the view every [`VIEW_QUERY_PERIOD`] until `stop`; latencies corrected for
/// coordinated omission at that period.
fn query_view(url: &str, stop: &AtomicBool) -> Result<LatencyRecorder, BenchError> {
    let agent = agent();
    let mut latency = LatencyRecorder::new();
    while !stop.load(Ordering::Acquire) {
        let started = Instant::now();
        let mut r = agent
            .get(url)
            .call()
            .map_err(|e| failed("http", format!("GET {url}: {e}")))?;
        let status = r.status().as_u16();
        let _ = r.body_mut().read_to_vec();
        if status != 200 {
            return Err(failed("http", format!("GET {url} answered {status}")));
        }
        let took = started.elapsed();
        latency.record_corrected(took, VIEW_QUERY_PERIOD);
        std::thread::sleep(VIEW_QUERY_PERIOD.saturating_sub(took));
    }
    Ok(latency)
}

/// Lowers the calling thread's CPU priority (nice 10). The closed-loop clients saturate the
/// machine as fast as the server acks; at nice 10 they stand in for producers on other hosts
/// instead of crowding out the server and the view-query thread, whose latency the
/// closed-loop rows report. Open-loop clients keep the default priority, since they time
/// their own acks.
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread; failure only leaves the priority as is.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// One repetition's client-side results.
struct Driven {
    wall: Duration,
    acks: LatencyRecorder,
    busy: u32,
}

/// Sends every body from `clients` threads (body `i` by client `i % clients`), closed
/// loop or at the offered rate (each client runs its share of it).
fn drive(
    clients: usize,
    url: &str,
    format: Format,
    bodies: &[Vec<u8>],
    load: Load,
) -> Result<Driven, BenchError> {
    let started = Instant::now();
    let results: Vec<Result<(LatencyRecorder, u32), BenchError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    let agent = agent();
                    let mine: Vec<&Vec<u8>> = bodies.iter().skip(c).step_by(clients).collect();
                    let mut busy = 0;
                    match load {
                        Load::Closed => {
                            lower_priority();
                            let mut acks = LatencyRecorder::new();
                            for body in mine {
                                let t = Instant::now();
                                busy += post(&agent, url, format, body)?;
                                acks.record(t.elapsed());
                            }
                            Ok((acks, busy))
                        }
                        Load::Open { rate, .. } => {
                            let per_client = rate / clients as f64;
                            let schedule = OpenLoop::new(
                                per_client,
                                BIDS_PER_REQUEST as u64,
                                (mine.len() * BIDS_PER_REQUEST) as u64,
                            )?;
                            let mut clock = MonotonicClock::start();
                            // Stagger the clients across one request interval.
                            let offset =
                                Duration::from_secs_f64(c as f64 * BIDS_PER_REQUEST as f64 / rate);
                            std::thread::sleep(offset);
                            let report = schedule.run(&mut clock, |send| {
                                busy += post(&agent, url, format, mine[send.index as usize])?;
                                Ok::<(), BenchError>(())
                            })?;
                            Ok((report.latency, busy))
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(failed("http", "a client thread panicked")))
            })
            .collect()
    });
    let mut acks = LatencyRecorder::new();
    let mut busy = 0;
    for r in results {
        let (l, b) = r?;
        acks.merge(&l);
        busy += b;
    }
    Ok(Driven {
        wall: started.elapsed(),
        acks,
        busy,
    })
}

/// Runs `job` over HTTP.
pub fn run(sys: &Sluice, job: &Job<'_>) -> Result<Vec<Sample>, BenchError> {
    let format = if sys.mode == Mode::HttpJson {
        Format::Json
    } else {
        Format::MsgPack
    };
    let events = job.data.nexmark_events()?;
    job.progress.set_message("encoding request bodies");
    let bodies = bodies(&events, format)?;
    let bids: u64 = events
        .iter()
        .filter(|e| matches!(e.event, Event::Bid(_)))
        .count() as u64;
    let partitions = sys.partitions(job.shards);
    let fsync: FsyncPolicy = "interval(5ms)"
        .parse()
        .map_err(|e| failed("http", format!("fsync policy: {e}")))?;
    repeat(job, |_, _| {
        let server = Server::start(job.shards)?;
        server.instance.create_topic("bids", partitions, fsync)?;
        server.instance.create_job(view_job(job.workload)?)?;
        let ingest_url = format!("{}/api/v1/topics/bids/records", server.base);
        let view_url = format!("{}/api/v1/views/results?limit=10", server.base);
        job.progress.set_message(format!(
            "{}: {} requests over HTTP",
            job.workload,
            bodies.len()
        ));
        let stop = AtomicBool::new(false);
        let span = Span::start();
        let (driven, views) = std::thread::scope(|s| {
            let viewer = s.spawn(|| query_view(&view_url, &stop));
            let driven = drive(sys.http_clients, &ingest_url, format, &bodies, job.load);
            stop.store(true, Ordering::Release);
            let views = viewer
                .join()
                .unwrap_or_else(|_| Err(failed("http", "the view thread panicked")));
            (driven, views)
        });
        let usage = span.finish();
        let driven = driven?;
        let views = views?;
        let ingested = server.instance.topic_records("bids");
        let view = views.summary();
        let acks = driven.acks.summary();
        let reason = format!(
            "HTTP ingest; {ingested} of {bids} bids in the topic after the acks; {} busy retries; \
             view query p50 {:.2} ms, p99 {:.2} ms over {} queries; ack p50 {:.2} ms, p99 {:.2} ms",
            driven.busy,
            view.as_ref().map_or(f64::NAN, |v| v.p50_ms),
            view.as_ref().map_or(f64::NAN, |v| v.p99_ms),
            view.as_ref().map_or(0, |v| v.count),
            acks.as_ref().map_or(f64::NAN, |v| v.p50_ms),
            acks.as_ref().map_or(f64::NAN, |v| v.p99_ms),
        );
        let correct = ingested == bids;
        let verdict = if correct {
            job.verify(Output::Unchecked {
                rows: ingested,
                reason,
            })?
        } else {
            crate::check::Verdict {
                correct: Some(false),
                rows: ingested,
                detail: Some(format!("records lost: {reason}")),
            }
        };
        Ok(Sample {
            wall_s: driven.wall.as_secs_f64(),
            events: bids,
            cpu_s: Some(usage.cpu_s),
            peak_rss_mb: usage.peak_rss_mb,
            latency: match job.load {
                Load::Closed => view,
                Load::Open { .. } => acks,
            },
            timeline: Vec::new(),
            startup_s: None,
            overhead_s: None,
            verdict,
        })
    })
}
