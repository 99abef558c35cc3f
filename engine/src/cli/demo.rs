//! `sluice demo`: an embedded appliance on a temporary data dir, the bundled
//! plugins, synthetic traffic for the showcase scenarios, a terminal
//! dashboard, and the web dashboard on `--listen`.
//!
//! Each scenario is a topic, a seeded generator from `sluice-gen` paced to
//! wall-clock time, and the job spec shipped next to its plugin
//! (`plugins/<name>/demo-job.json`). With `--for N` the demo stops by itself,
//! prints a summary (including whether every injected fraud pattern was
//! caught) and exits 0.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sluice_gen::encode::{EventRecord, RecordBuf};
use sluice_gen::scenarios::ScenarioConfig;
use sluice_gen::scenarios::heartbeats::{HeartbeatsConfig, HeartbeatsGenerator};
use sluice_gen::scenarios::payments::{FraudRules, Injection, PaymentsConfig, PaymentsGenerator};
use sluice_gen::scenarios::rides::{HotSpot, RidesConfig, RidesGenerator};
use sluice_gen::scenarios::scores::{ScoresConfig, ScoresGenerator};
use sluice_gen::scenarios::shop::{ShopConfig, ShopGenerator};

use super::DemoArgs;
use crate::config::Config;
use crate::job::engine::{Engine, EngineError};
use crate::job::ingest::NewRecords;
use crate::job::spec::JobSpec;
use crate::shard::IngestRecord;
use crate::shard::runtime::now_ms;
use crate::state::view::Query;

/// Partitions of every demo topic.
const PARTITIONS: u32 = 4;
/// How often the feeders send a batch.
const FEED_TICK: Duration = Duration::from_millis(50);
/// The fraud rules the demo's generator and job agree on (short span so
/// patterns complete within seconds).
const DEMO_SPAN_MS: i64 = 20_000;

/// Demo job specs, shipped with their plugins.
const SPECS: &[(&str, &str)] = &[
    (
        "fraud-rules",
        include_str!("../../../plugins/fraud-rules/demo-job.json"),
    ),
    (
        "surge-pricing",
        include_str!("../../../plugins/surge-pricing/demo-job.json"),
    ),
    (
        "sales-rollup",
        include_str!("../../../plugins/sales-rollup/demo-job.json"),
    ),
    (
        "sessionize",
        include_str!("../../../plugins/sessionize/demo-job.json"),
    ),
    (
        "top-k",
        include_str!("../../../plugins/top-k/demo-job.json"),
    ),
    (
        "viewers",
        include_str!("../../../plugins/viewers/demo-job.json"),
    ),
];

type Source = Box<dyn Iterator<Item = RecordBuf> + Send>;

fn encoded<E: EventRecord>(it: impl Iterator<Item = E> + Send + 'static) -> Source {
    Box::new(it.filter_map(|e| {
        let mut r = RecordBuf::default();
        r.fill(&e).ok().map(|_| r)
    }))
}

/// The scenarios' generators, starting now, `rate` events per second each,
/// long enough for `secs` seconds. Also the fraud alerts a correct job must
/// raise.
/// The scenarios' sources and the fraud alerts a correct job must raise.
struct Sources {
    topics: Vec<(&'static str, Source)>,
    expected: Vec<sluice_gen::scenarios::payments::Alert>,
}

fn sources(rate: u64, secs: u64) -> Result<Sources> {
    let base = now_ms();
    let scenario = |seed: u64, keys: u64, skew: f64| ScenarioConfig {
        seed,
        base_time_ms: base,
        rate,
        count: rate.saturating_mul(secs.max(1)),
        keys,
        skew,
        max_delay_ms: 1_000,
    };
    let rules = FraudRules {
        span_ms: DEMO_SPAN_MS,
        ..FraudRules::default()
    };
    let pay_scenario = scenario(1, (rate * 20).max(2_000), 0.0);
    let injections =
        Injection::evenly_spaced((secs / 5).clamp(3, 300) as usize, &pay_scenario, &rules);
    let payments = PaymentsGenerator::new(PaymentsConfig {
        scenario: pay_scenario,
        rules,
        injections,
        ..PaymentsConfig::default()
    })?;
    let expected = payments.expected_alerts().to_vec();
    let mid = base + 5_000;
    let rides = RidesGenerator::new(RidesConfig {
        scenario: scenario(2, 36, 0.5),
        hot_spots: vec![HotSpot {
            cell: 7,
            from_ms: mid,
            to_ms: mid + 60_000,
            share: 0.5,
        }],
        ..RidesConfig::default()
    })?;
    let shop = ShopGenerator::new(ShopConfig {
        scenario: scenario(3, 5_000, 1.0),
        ..ShopConfig::default()
    })?;
    let scores = ScoresGenerator::new(ScoresConfig {
        scenario: scenario(4, 10, 1.0),
        ..ScoresConfig::default()
    })?;
    let beats = HeartbeatsGenerator::new(HeartbeatsConfig {
        scenario: scenario(5, 12, 1.0),
        ..HeartbeatsConfig::default()
    })?;
    Ok(Sources {
        topics: vec![
            ("payments", encoded(payments)),
            ("rides", encoded(rides)),
            ("shop", encoded(shop)),
            ("scores", encoded(scores)),
            ("heartbeats", encoded(beats)),
        ],
        expected,
    })
}

/// Sends the generator's events whose time has come, every tick.
async fn feed(
    engine: Arc<Engine>,
    topic: &'static str,
    mut src: Source,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) {
    let mut pending: Option<RecordBuf> = None;
    while !stop.load(Ordering::Relaxed) {
        let now = now_ms();
        let mut batch = NewRecords::default();
        while let Some(r) = pending.take().or_else(|| src.next()) {
            // Generators run slightly ahead of event time; hold back the future.
            if r.timestamp > now + 1_000 {
                pending = Some(r);
                break;
            }
            let k0 = batch.data.len();
            batch.data.extend_from_slice(&r.key);
            let v0 = batch.data.len();
            batch.data.extend_from_slice(&r.value);
            batch.records.push(IngestRecord {
                timestamp: r.timestamp,
                key: k0..v0,
                value: v0..batch.data.len(),
                headers: Vec::new(),
            });
            if batch.records.len() >= 5_000 {
                break;
            }
        }
        let n = batch.records.len() as u64;
        if n > 0 {
            loop {
                match engine.ingest(topic, batch.clone(), None).await {
                    Ok(_) => {
                        sent.fetch_add(n, Ordering::Relaxed);
                        break;
                    }
                    Err(EngineError::Busy { retry_after_ms }) => {
                        tokio::time::sleep(Duration::from_millis(retry_after_ms)).await;
                    }
                    Err(e) => {
                        tracing::error!(topic, error = %e, "demo feed stopped");
                        return;
                    }
                }
            }
        }
        tokio::time::sleep(FEED_TICK).await;
    }
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// One screen of the terminal dashboard.
fn screen(
    engine: &Engine,
    url: &str,
    started: Instant,
    sent: &BTreeMap<&str, Arc<AtomicU64>>,
    plain: bool,
) -> String {
    let mut out = String::new();
    let up = started.elapsed().as_secs();
    let jobs = engine.jobs();
    let total_rate: f64 = jobs
        .iter()
        .filter_map(|j| j.2.as_ref())
        .map(|r| f64::from_bits(r.stats.rate_in.load(Ordering::Relaxed)))
        .sum();
    let total_lag: u64 = jobs
        .iter()
        .filter_map(|j| j.2.as_ref())
        .map(|r| r.lag())
        .sum();
    if plain {
        let sent_total: u64 = sent.values().map(|s| s.load(Ordering::Relaxed)).sum();
        return format!(
            "[{up:>4}s] sent {sent_total} events, processing {}/s, lag {total_lag}\n",
            fmt_rate(total_rate)
        );
    }
    out.push_str(&format!(
        "\x1b[1mSLUICE demo\x1b[0m  up {up}s   dashboard {url}   Ctrl-C to stop\n\n"
    ));
    out.push_str(&format!(
        "{:<14} {:>10} {:>12} {:>8} {:>6} {:>6}\n",
        "job", "in/s", "records", "lag", "ckpts", "late"
    ));
    for (spec, state, rt, _) in &jobs {
        match rt {
            Some(rt) => out.push_str(&format!(
                "{:<14} {:>10} {:>12} {:>8} {:>6} {:>6}\n",
                spec.name,
                fmt_rate(f64::from_bits(rt.stats.rate_in.load(Ordering::Relaxed))),
                rt.stats.records_in.load(Ordering::Relaxed),
                rt.lag(),
                rt.stats.checkpoints.load(Ordering::Relaxed),
                rt.stats.late_events.load(Ordering::Relaxed),
            )),
            None => out.push_str(&format!("{:<14} {state:?}\n", spec.name)),
        }
    }
    out.push_str(&format!("{:<14} {:>10}\n\n", "total", fmt_rate(total_rate)));
    let q = |view: &str, q: Query| engine.views.get(view).map(|v| v.query(&q));
    if let Some(a) = q(
        "fraud-alerts",
        Query {
            limit: Some(5),
            ..Query::default()
        },
    ) {
        out.push_str(&format!(
            "\x1b[1mLatest fraud alerts\x1b[0m ({} total)\n",
            a.total
        ));
        for r in &a.rows {
            out.push_str(&format!(
                "  {:<24} {:<12} {}\n",
                r.value["rule"].as_str().unwrap_or("?"),
                r.key,
                r.value["txn_ids"]
            ));
        }
        out.push('\n');
    }
    if let Some(a) = q(
        "sales",
        Query {
            latest: true,
            sort: Some("revenue".into()),
            limit: Some(5),
            ..Query::default()
        },
    ) {
        out.push_str("\x1b[1mTop products, latest minute\x1b[0m\n");
        for r in &a.rows {
            out.push_str(&format!(
                "  {:<14} orders {:>5}  revenue {:>12}\n",
                r.key, r.value["orders"], r.value["revenue"]
            ));
        }
        out.push('\n');
    }
    if let Some(a) = q(
        "surge",
        Query {
            limit: Some(1_000),
            ..Query::default()
        },
    ) {
        // Rows come newest window first; the first row of a cell is its price now.
        let mut cells: BTreeMap<String, f64> = BTreeMap::new();
        for r in &a.rows {
            cells
                .entry(r.key.clone())
                .or_insert(r.value["multiplier"].as_f64().unwrap_or(1.0));
        }
        out.push_str("\x1b[1mSurge map (multiplier per cell)\x1b[0m\n  ");
        for (i, (cell, m)) in cells.iter().enumerate() {
            let color = if *m >= 2.0 {
                "\x1b[31m"
            } else if *m > 1.0 {
                "\x1b[33m"
            } else {
                "\x1b[32m"
            };
            out.push_str(&format!("{color}{cell:>5} ×{m:.1}\x1b[0m  "));
            if i % 6 == 5 {
                out.push_str("\n  ");
            }
        }
        out.push('\n');
    }
    if let Some(a) = q(
        "leaderboard",
        Query {
            sort: Some("points".into()),
            limit: Some(5),
            ..Query::default()
        },
    ) {
        out.push_str("\x1b[1mLeaderboard (all contests)\x1b[0m\n");
        for (i, r) in a.rows.iter().enumerate() {
            out.push_str(&format!(
                "  {}. {:<24} {}\n",
                i + 1,
                r.key,
                r.value["points"]
            ));
        }
    }
    out
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    let _filter = super::serve::init_tracing("warn");
    let tmp;
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("sluice-demo-")
                .tempdir()
                .context("cannot create a temporary data dir")?;
            tmp.path().to_owned()
        }
    };
    let mut config = Config {
        data_dir: data_dir.clone(),
        listen: args.listen,
        ..Config::default()
    };
    config.topic_defaults.partitions = PARTITIONS;
    let engine = Engine::start(config).context("cannot start the embedded appliance")?;
    let rt = super::serve::http_runtime(2, Vec::new())?;
    let listener = rt.block_on(async {
        match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => Ok(l),
            // The default port is taken (another demo?): take any free one.
            Err(_) => {
                tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await
            }
        }
    })?;
    let url = format!("http://{}/", listener.local_addr()?);
    let (stop_http, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(crate::api::serve(engine.clone(), listener, async {
        let _ = stop_rx.await;
    }));

    // Topics and jobs.
    for topic in ["payments", "rides", "shop", "scores", "heartbeats"] {
        let mut cfg = crate::log::TopicConfig::new(topic, PARTITIONS);
        cfg.fsync = "interval(5ms)".parse().map_err(anyhow::Error::msg)?;
        engine.log.create_topic(cfg)?;
    }
    for (plugin, text) in SPECS {
        let spec =
            JobSpec::from_json(text.as_bytes()).with_context(|| format!("demo job of {plugin}"))?;
        engine
            .create_job(spec)
            .with_context(|| format!("starting the demo job of {plugin}"))?;
    }

    // Traffic.
    let secs = args.for_secs.unwrap_or(3_600);
    let Sources {
        topics: srcs,
        expected,
    } = sources(args.rate, secs + 60)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut sent = BTreeMap::new();
    let mut feeders = Vec::new();
    for (topic, src) in srcs {
        let counter = Arc::new(AtomicU64::new(0));
        sent.insert(topic, counter.clone());
        feeders.push(rt.spawn(feed(engine.clone(), topic, src, stop.clone(), counter)));
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let i = interrupted.clone();
        rt.spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            i.store(true, Ordering::Relaxed);
        });
    }

    println!(
        "Sluice demo: web dashboard at {url} (data in {})",
        data_dir.display()
    );
    let started = Instant::now();
    let deadline = args.for_secs.map(|s| started + Duration::from_secs(s));
    let tty = !args.plain && std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let text = screen(&engine, &url, started, &sent, !tty);
        let mut out = std::io::stdout().lock();
        if tty {
            let _ = write!(out, "\x1b[2J\x1b[H{text}");
        } else {
            let _ = write!(out, "{text}");
        }
        let _ = out.flush();
        if interrupted.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }

    // Stop traffic, let the jobs drain, summarise.
    stop.store(true, Ordering::Relaxed);
    for f in feeders {
        let _ = rt.block_on(f);
    }
    let drain = Instant::now();
    while engine
        .jobs()
        .iter()
        .filter_map(|j| j.2.as_ref())
        .any(|r| r.lag() > 0)
        && drain.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let total_sent: u64 = sent.values().map(|s| s.load(Ordering::Relaxed)).sum();
    let secs = started.elapsed().as_secs_f64();
    println!("\nSluice demo summary after {secs:.1} s");
    println!(
        "  events generated and ingested: {total_sent} ({:.0}/s)",
        total_sent as f64 / secs
    );
    for (spec, state, rt, _) in engine.jobs() {
        match rt {
            Some(rt) => println!(
                "  job {:<14} {:>10} records in, {:>8} out, {} checkpoints, {} errors",
                spec.name,
                rt.stats.records_in.load(Ordering::Relaxed),
                rt.stats.records_out.load(Ordering::Relaxed),
                rt.stats.checkpoints.load(Ordering::Relaxed),
                rt.stats.errors.load(Ordering::Relaxed)
            ),
            None => println!("  job {:<14} {state:?}", spec.name),
        }
    }
    let now = now_ms();
    let due: Vec<_> = expected
        .iter()
        .filter(|a| a.detected_at <= now - 5_000)
        .collect();
    let caught = engine.views.get("fraud-alerts").map_or(0, |v| {
        let rows = v
            .query(&Query {
                limit: Some(crate::state::view::MAX_QUERY_LIMIT),
                ..Query::default()
            })
            .rows;
        due.iter()
            .filter(|a| {
                rows.iter()
                    .any(|r| r.value["txn_ids"] == serde_json::json!(a.txn_ids))
            })
            .count()
    });
    println!(
        "  fraud patterns injected and due: {}, caught: {caught}",
        due.len()
    );
    let _ = stop_http.send(());
    let _ = rt.block_on(server);
    engine.shutdown();
    Ok(())
}
