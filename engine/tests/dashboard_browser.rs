//! The live dashboard in a real browser. A real server on loopback runs real
//! jobs (the bundled `window-totals` plugin into a view, Nexmark q1 into a
//! topic) while a background thread keeps feeding them; Debian's Chromium,
//! headless, opens `/` and is driven over the DevTools protocol through
//! `--remote-debugging-pipe` (NUL-separated JSON on its file descriptors 3
//! and 4, so no WebSocket client is needed). The tests read what the page
//! shows and check that figures appear and move.
//!
//! Without Chromium the tests skip loudly, unless `SLUICE_REQUIRE_BROWSER=1`
//! (CI) makes that a failure. `SLUICE_UPDATE_SCREENSHOT=1` copies the
//! screenshot taken by the first test to `docs/dashboard.png`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sluice::job::ingest::NewRecords;
use sluice::job::spec::JobSpec;
use sluice::shard::IngestRecord;
use sluice_gen::nexmark::{NexmarkConfig, NexmarkGenerator};
use support::{Server, post_json};

/// How long one DevTools call may take before the test gives up.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the page may take to show what a test waits for.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Tallest screenshot taken, in CSS pixels.
const MAX_SHOT_HEIGHT: f64 = 2400.0;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Chromium's path, `None` when it is not installed.
fn chromium() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.exists() {
        return Some(fixed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.exists())
    })
}

/// Chromium, or `None` after saying loudly why the test is skipped. Fails
/// instead when `SLUICE_REQUIRE_BROWSER=1`.
fn browser_or_skip(test: &str) -> Option<PathBuf> {
    let found = chromium();
    let required = std::env::var("SLUICE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    match found {
        Some(p) => Some(p),
        None if required => panic!(
            "SLUICE_REQUIRE_BROWSER=1 but Chromium is not installed (looked for /usr/bin/chromium \
             and `chromium` on PATH); install it with `apt-get install -y chromium`"
        ),
        None => {
            // Straight to stderr: the test harness would swallow eprintln!.
            let _ = writeln!(
                std::io::stderr(),
                "\n******** SKIPPED {test}: Chromium is not installed. Install it with \
                 `apt-get install -y chromium`, or set SLUICE_REQUIRE_BROWSER=1 to make this a failure. ********\n"
            );
            None
        }
    }
}

/// A headless Chromium showing one page, driven over the DevTools protocol.
struct Browser {
    child: Child,
    /// The browser's file descriptor 3: commands, each followed by a NUL.
    commands: ChildStdin,
    /// Messages the browser wrote to its file descriptor 4.
    messages: Receiver<Value>,
    next_id: u64,
    session: String,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium on `url` and attaches to its page.
    fn open(chromium: &Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let log = std::fs::File::create(profile.path().join("chromium.log")).expect("log file");
        // The shell hands our pipes to Chromium as fds 3 and 4, which is
        // where --remote-debugging-pipe expects them.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1400,1000",
                "--remote-debugging-pipe",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("data").display()
            ))
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("chromium starts");
        let commands = child.stdin.take().expect("pipe to chromium");
        let out = child.stdout.take().expect("pipe from chromium");
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut buf = Vec::new();
            while r.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    return;
                }
                buf.clear();
            }
        });
        let mut b = Browser {
            child,
            commands,
            messages,
            next_id: 0,
            session: String::new(),
            profile,
        };
        let started = Instant::now();
        let target = loop {
            let targets = b.call("Target.getTargets", json!({}));
            let page = targets["targetInfos"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| {
                    t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url))
                })
                .map(|t| t["targetId"].clone());
            if let Some(id) = page {
                break id;
            }
            assert!(
                started.elapsed() < PAGE_TIMEOUT,
                "Chromium opened no page for {url}: {targets}\n{}",
                b.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned();
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    /// The tail of Chromium's own log, for failure messages.
    fn log(&self) -> String {
        let text =
            std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        format!(
            "chromium log (last lines):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// Sends one DevTools command (to the page once attached) and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = self.session.clone().into();
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        if let Err(e) = self
            .commands
            .write_all(&bytes)
            .and_then(|()| self.commands.flush())
        {
            panic!(
                "cannot send {method} to Chromium ({e}); did it exit?\n{}",
                self.log()
            );
        }
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) if m["id"] == id => {
                    assert!(m.get("error").is_none(), "{method} failed: {m}");
                    return m["result"].clone();
                }
                Ok(_event) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "Chromium did not answer {method} within {CALL_TIMEOUT:?}\n{}",
                        self.log()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "Chromium closed the DevTools pipe during {method}\n{}",
                        self.log()
                    )
                }
            }
        }
    }

    /// Evaluates `expr` in the page; the value must be JSON-serialisable.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!(
                "evaluating in the page threw {}",
                e["exception"]["description"]
            );
        }
        r["result"]["value"].clone()
    }

    /// Evaluates `expr` until `done` accepts its value, and returns that value.
    fn wait_for(&mut self, what: &str, expr: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let v = self.eval(expr);
            if done(&v) {
                return v;
            }
            assert!(
                started.elapsed() < PAGE_TIMEOUT,
                "the dashboard did not show {what} within {PAGE_TIMEOUT:?}; last seen: {v}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Loads `url` in the page (a new document, so the script starts over).
    fn goto(&mut self, url: &str) {
        let r = self.call("Page.navigate", json!({"url": url}));
        assert!(r.get("errorText").is_none(), "cannot open {url}: {r}");
    }

    /// A PNG of the whole page as it is now (at most `MAX_SHOT_HEIGHT` pixels tall).
    fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        let height = metrics["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(1000.0)
            .min(MAX_SHOT_HEIGHT);
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": 1400, "height": height, "scale": 1}}),
        );
        let data = r["data"].as_str().expect("screenshot data");
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("screenshot is base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.session.clear();
        if !std::thread::panicking() {
            let _ = self
                .commands
                .write_all(b"{\"id\":0,\"method\":\"Browser.close\"}\0");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything a test reads from the page in one evaluation: header figures,
/// job rows (field → raw value and text), charts and view panels.
const READ_PAGE: &str = r##"(() => {
  if (!document.getElementById("conn")) return null;
  const jobs = {};
  for (const tr of document.querySelectorAll("#jobs tbody tr[data-job]")) {
    const cells = {};
    for (const td of tr.querySelectorAll("[data-field]")) cells[td.dataset.field] = { value: td.dataset.value, text: td.textContent.trim() };
    cells.state = { text: tr.querySelector(".pill").textContent };
    jobs[tr.dataset.job] = cells;
  }
  const charts = {};
  for (const c of document.querySelectorAll("canvas")) charts[c.id] = { points: Number(c.dataset.points || 0), label: c.getAttribute("aria-label") };
  const views = {};
  const rowText = (r) => (r.tagName === "TR" ? [...r.cells].map((c) => c.textContent).join(" ") : r.textContent).replace(/\s+/g, " ").trim();
  for (const a of document.querySelectorAll("article[data-view]")) {
    views[a.dataset.view] = { kind: a.dataset.kind, rows: [...a.querySelectorAll("[data-row]")].map(rowText),
      values: [...a.querySelectorAll("[data-row] [data-value]")].map((e) => Number(e.dataset.value)),
      places: [...a.querySelectorAll(".cell")].map((e) => [e.textContent.split("×")[0].trim(), e.style.gridRowStart, e.style.gridColumnStart]) };
  }
  const text = (id) => document.getElementById(id).textContent.trim();
  return { conn: text("conn"), rate_in: text("rate-in"), wm_lag: text("wm-lag"), shards: text("shards"), jobs, charts, views,
    topics: [...document.querySelectorAll("#topic-table tbody th")].map((t) => t.textContent) };
})()"##;

/// The strings of a JSON array (none if it is not one).
fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn figure(page: &Value, job: &str, field: &str) -> Option<f64> {
    page["jobs"][job][field]["value"].as_str()?.parse().ok()
}

/// Starts a job from a JSON spec through the API, as a user would.
fn create_job(s: &Server, spec: Value) {
    let parsed: JobSpec = serde_json::from_value(spec.clone()).expect("spec parses");
    parsed.validate().expect("spec is valid");
    let (st, body) = post_json(&s.url("/api/v1/jobs"), None, &spec);
    assert_eq!(st, 201, "job {} refused: {body}", parsed.name);
}

/// Keeps feeding `payments` over HTTP and `nexmark` through the engine,
/// stamped with the wall clock, until dropped.
struct Feeder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Feeder {
    fn start(s: &Server) -> Feeder {
        let payments = s.url("/api/v1/topics/payments/records");
        let engine = s.engine.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let cfg = NexmarkConfig {
                base_time_ms: now_ms(),
                event_rate: 250,
                ..NexmarkConfig::default()
            };
            let mut nexmark = NexmarkGenerator::new(cfg, 0).map_err(|e| e.to_string())?;
            let mut round = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                let batch = payments_batch(round);
                let r = support::agent()
                    .post(&payments)
                    .header("Content-Type", "application/json")
                    .send(batch.to_string().as_bytes());
                match r {
                    Ok(resp) if resp.status() == 200 || resp.status() == 429 => {}
                    Ok(resp) => {
                        return Err(format!("ingest of payments answered {}", resp.status()));
                    }
                    // The server is gone: the test is over.
                    Err(_) if stopped.load(Ordering::Relaxed) => break,
                    Err(e) => return Err(format!("ingest of payments failed: {e}")),
                }
                let due = nexmark_due(&mut nexmark);
                if !due.records.is_empty() {
                    match rt.block_on(engine.ingest("nexmark", due, None)) {
                        Ok(_) | Err(sluice::job::engine::EngineError::Busy { .. }) => {}
                        Err(e) => return Err(format!("ingest of nexmark failed: {e}")),
                    }
                }
                round += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        });
        Feeder {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops feeding; fails the test if feeding failed.
    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join()
                .expect("feeder thread")
                .expect("feeding the topics");
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// 40 payments of 12 payers, stamped now, as a JSON ingest body.
fn payments_batch(round: u64) -> Value {
    let t = now_ms();
    let payments: Vec<Value> = (0..40)
        .map(|i| {
            let payer = format!("payer-{}", (round * 7 + i) % 12);
            json!({"key": payer, "timestamp": t,
                   "value": {"txn_id": format!("t{round}-{i}"), "payer": payer, "payee": "shop-1",
                             "amount": 100 + (round * 31 + i * 17) % 5_000, "device_id": "d", "city": "Pune", "ts": t}})
        })
        .collect();
    Value::Array(payments)
}

/// The generated Nexmark events whose event time has come (at most 200).
fn nexmark_due(generator: &mut NexmarkGenerator) -> NewRecords {
    let mut out = NewRecords::default();
    let mut rec = sluice_gen::RecordBuf::default();
    let now = now_ms();
    for e in generator.by_ref().take(200) {
        rec.fill(&e).expect("event encodes");
        let k = out.data.len();
        out.data.extend_from_slice(&rec.key);
        let v = out.data.len();
        out.data.extend_from_slice(&rec.value);
        out.records.push(IngestRecord {
            timestamp: rec.timestamp,
            key: k..v,
            value: v..out.data.len(),
            headers: Vec::new(),
        });
        if rec.timestamp >= now {
            break;
        }
    }
    out
}

/// A server with `payments` → window-totals → view `payment-totals`, and
/// `nexmark` → q1 → topic `q1-out`.
fn server_with_jobs() -> Server {
    let s = Server::start(2, |_| {});
    for (name, partitions) in [("payments", 4), ("nexmark", 4)] {
        let (st, body) = post_json(
            &s.url("/api/v1/topics"),
            None,
            &json!({"name": name, "partitions": partitions}),
        );
        assert_eq!(st, 201, "{body}");
    }
    create_job(
        &s,
        json!({"name": "payment-totals", "sources": [{"topic": "payments"}],
               "operators": [{"plugin": "window-totals@0.1.0", "config": {"window_ms": 2000}}],
               "sinks": {"main": {"view": {"view": "payment-totals"}}}}),
    );
    create_job(
        &s,
        json!({"name": "nexmark-q1", "sources": [{"topic": "nexmark"}],
               "max_out_of_orderness_ms": 1000,
               "operators": [{"plugin": "nexmark@0.1.0", "config": {"query": "q1"}}],
               "sinks": {"main": {"topic": {"topic": "q1-out"}}}}),
    );
    s
}

#[test]
fn dashboard_shows_live_jobs_rates_watermarks_and_view_results() {
    let Some(chromium) =
        browser_or_skip("dashboard_shows_live_jobs_rates_watermarks_and_view_results")
    else {
        return;
    };
    let s = server_with_jobs();
    let feeder = Feeder::start(&s);
    let mut b = Browser::open(&chromium, &s.url("/"));

    let first = b.wait_for(
        "both jobs with records, a watermark and view results",
        READ_PAGE,
        |p| {
            ["payment-totals", "nexmark-q1"].iter().all(|j| {
                figure(p, j, "records_in").is_some_and(|n| n > 0.0)
                    && figure(p, j, "watermark").is_some()
            }) && p["views"]["payment-totals"]["rows"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        },
    );
    assert_eq!(first["conn"], "live", "{first}");
    assert_eq!(first["jobs"]["payment-totals"]["state"]["text"], "running");
    assert_eq!(first["shards"], "2/2");
    assert_eq!(first["views"]["payment-totals"]["kind"], "table");
    let row = first["views"]["payment-totals"]["rows"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        row.starts_with("payer-"),
        "a totals row names its payer: {row}"
    );
    let topics = strings(&first["topics"]);
    assert!(
        topics.contains(&"payments") && topics.contains(&"q1-out"),
        "{topics:?}"
    );
    // Event time follows the wall clock here, so the watermark lag is a
    // duration, not a placeholder.
    let wm_lag = first["jobs"]["payment-totals"]["watermark_lag"]["text"]
        .as_str()
        .unwrap_or("–");
    assert!(
        wm_lag.ends_with(" ms") || wm_lag.ends_with(" s"),
        "watermark lag shown as `{wm_lag}`"
    );

    let before = figure(&first, "payment-totals", "records_in").unwrap_or(0.0);
    let later = b.wait_for("records in to grow", READ_PAGE, |p| {
        figure(p, "payment-totals", "records_in").is_some_and(|n| n > before)
            && figure(p, "payment-totals", "rate_in").is_some_and(|r| r > 0.0)
            && figure(p, "nexmark-q1", "records_out").is_some_and(|r| r > 0.0)
    });
    assert_ne!(
        first["jobs"]["payment-totals"]["records_in"]["text"],
        later["jobs"]["payment-totals"]["records_in"]["text"],
        "the records-in figure on screen changed"
    );
    assert_ne!(
        later["rate_in"], "0",
        "the header shows a non-zero input rate"
    );
    for chart in ["chart-rate", "chart-lag", "chart-wm"] {
        let c = &later["charts"][chart];
        assert!(
            c["points"].as_u64().is_some_and(|n| n >= 2),
            "{chart} plots points: {c}"
        );
        assert!(
            c["label"]
                .as_str()
                .is_some_and(|l| l.contains("payment-totals")),
            "{chart} says what it shows: {c}"
        );
    }

    // A few more seconds of history make a screenshot worth keeping.
    b.wait_for("ten seconds of chart history", READ_PAGE, |p| {
        p["charts"]["chart-rate"]["points"]
            .as_u64()
            .is_some_and(|n| n >= 20)
    });
    let png = b.screenshot();
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG"),
        "screenshot is a PNG of the page"
    );
    let shot = s.dir.path().join("dashboard.png");
    std::fs::write(&shot, &png).expect("screenshot written");
    if std::env::var("SLUICE_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png");
        std::fs::copy(&shot, &docs).expect("screenshot copied to docs/");
        eprintln!("updated {}", docs.display());
    }
    feeder.finish();
}

/// Puts `rows` into view `name` the way a job's view sink does.
fn fill_view(s: &Server, name: &str, rows: &[(String, Value)]) {
    let view = s.engine.views.get_or_create(name, 10_000, 1);
    let encoded: Vec<(Vec<u8>, Vec<u8>)> = rows
        .iter()
        .map(|(k, v)| {
            (
                k.clone().into_bytes(),
                rmp_serde::to_vec_named(v).expect("encodes"),
            )
        })
        .collect();
    view.apply(0, encoded.iter().map(|(k, v)| (&k[..], 0, &v[..])));
}

/// The panels follow the shapes of docs/events.md: fraud alerts as a list,
/// surge multipliers as a map of cells, scores as a ranked board. The views
/// are filled through the engine's view store, as a job's sink would.
#[test]
fn view_panels_draw_alerts_surge_grids_and_leaderboards_by_shape() {
    let Some(chromium) =
        browser_or_skip("view_panels_draw_alerts_surge_grids_and_leaderboards_by_shape")
    else {
        return;
    };
    let s = Server::start(1, |_| {});
    let alerts: Vec<(String, Value)> = (0..3)
        .map(|i| {
            let rule = ["two_large", "velocity", "new_device_high_amount"][i];
            (
                format!("payer-{i}"),
                json!({"rule": rule, "payer": format!("payer-{i}"),
                 "txn_ids": [format!("tx-{i}a"), format!("tx-{i}b")], "amounts": [500_000, 700_000],
                 "window_start": 0, "window_end": 600_000, "detected_at": 1_000 + i as i64}),
            )
        })
        .collect();
    fill_view(&s, "fraud-alerts", &alerts);
    let mut cells = Vec::new();
    for r in 0..4 {
        for c in 0..5 {
            let cell = format!("{r}-{c}");
            let m = 1.0 + (r * 5 + c) as f64 / 10.0;
            cells.push((cell.clone(), json!({"cell": cell, "multiplier": m, "window_start": 60_000, "window_end": 120_000})));
        }
    }
    fill_view(&s, "surge", &cells);
    let scores: Vec<(String, Value)> = [("ann", 30), ("bob", 50), ("cy", 40), ("dee", 10)]
        .iter()
        .map(|(k, p)| (k.to_string(), json!({"points": p})))
        .collect();
    fill_view(&s, "leaderboard", &scores);

    let mut b = Browser::open(&chromium, &s.url("/"));
    let page = b.wait_for("three view panels", READ_PAGE, |p| {
        ["fraud-alerts", "surge", "leaderboard"].iter().all(|v| {
            p["views"][v]["rows"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        })
    });
    let v = &page["views"];
    assert_eq!(v["fraud-alerts"]["kind"], "alerts");
    let alert_rows = strings(&v["fraud-alerts"]["rows"]);
    assert_eq!(alert_rows.len(), 3);
    assert!(
        alert_rows[0].starts_with("new_device_high_amount payer payer-2"),
        "newest alert first: {alert_rows:?}"
    );
    assert!(
        alert_rows[0].contains("tx-2a, tx-2b") && alert_rows[0].contains("1,200,000"),
        "{alert_rows:?}"
    );

    assert_eq!(v["surge"]["kind"], "grid");
    let places = v["surge"]["places"].as_array().unwrap();
    assert_eq!(places.len(), 20, "every cell of the window: {places:?}");
    assert!(
        places.contains(&json!(["2-3", "3", "4"])),
        "cell 2-3 sits on grid row 3, column 4: {places:?}"
    );
    assert!(
        strings(&v["surge"]["rows"]).contains(&"3-4 ×2.90"),
        "{}",
        v["surge"]
    );

    assert_eq!(v["leaderboard"]["kind"], "leaderboard");
    let board = strings(&v["leaderboard"]["rows"]);
    assert_eq!(board, ["1 bob 50", "2 cy 40", "3 ann 30", "4 dee 10"]);
}

/// With a read token configured the event stream refuses the page; the page
/// says how to pass the token, and with `#token=` in its address it polls
/// the status with it.
#[test]
fn dashboard_asks_for_a_read_token_and_uses_one_given_in_its_address() {
    let Some(chromium) =
        browser_or_skip("dashboard_asks_for_a_read_token_and_uses_one_given_in_its_address")
    else {
        return;
    };
    const READ: &str = "read-token-0123456789";
    let s = Server::start(1, |c| c.auth.read_token = READ.into());
    fill_view(
        &s,
        "totals",
        &[("payer-1".into(), json!({"count": 3, "total": 700}))],
    );
    let mut b = Browser::open(&chromium, &s.url("/"));
    let refused = b.wait_for("the refusal explained", READ_PAGE, |p| {
        p["conn"].as_str().is_some_and(|c| c.contains("read token"))
    });
    assert!(
        refused["views"].as_object().is_some_and(|v| v.is_empty()),
        "nothing is shown without the token: {refused}"
    );
    b.goto(&s.url(&format!("/?with-token#token={READ}")));
    let page = b.wait_for("the view, read with the token", READ_PAGE, |p| {
        p["views"]["totals"]["rows"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    assert_eq!(page["conn"], "live");
    assert_eq!(strings(&page["views"]["totals"]["rows"]), ["payer-1 3 700"]);
}
