//! `ctx`: what an operator callback can do besides changing its own state —
//! emit records to named outputs, set event-time timers, log, count.
//!
//! The runtime owns one [`Ctx`] per operator instance and passes it to every
//! callback. It buffers outputs and aggregates counters during a call and hands
//! them to the host once at the end of a successful call; a failed call's
//! outputs are dropped. Invariant: at the start of every call the buffers are
//! empty, whatever the previous call did (even if it trapped).

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::error::Error;
use crate::host::{Host, Level, MetricKind};
use crate::limits::{MAX_METRICS, MAX_PENDING_TIMERS};
use crate::output::{LATE, Outputs};
use crate::record::Record;

/// Name of the counter of records sent to the `late` output.
pub const LATE_EVENTS: &str = "late_events";

#[derive(Debug)]
struct Metric {
    name: String,
    kind: MetricKind,
    value: i64,
    touched: bool,
}

/// The operator's handle on outputs, timers, logs and metrics during a call.
#[derive(Debug)]
pub struct Ctx {
    pub(crate) host: Host,
    outputs: Outputs,
    metrics: Vec<Metric>,
    /// Pending event-time timers (snapshotted with the operator).
    pub(crate) timers: BTreeSet<i64>,
    /// Earliest timer requested from the host since its last `on_watermark` call.
    pub(crate) requested: Option<i64>,
    pub(crate) watermark: i64,
    /// Largest watermark of a record processed so far (ABI rule 2).
    pub(crate) record_watermark: i64,
    /// The tag given to what is emitted now (ABI rule 2).
    pub(crate) tag: i64,
    /// An error raised by an infallible method (a bound hit by `count`), reported
    /// when the call ends.
    deferred: Option<Error>,
    line: String,
}

impl Ctx {
    pub(crate) const fn new() -> Self {
        Ctx {
            host: Host::new(),
            outputs: Outputs::new(),
            metrics: Vec::new(),
            timers: BTreeSet::new(),
            requested: None,
            watermark: i64::MIN,
            record_watermark: i64::MIN,
            tag: i64::MIN,
            deferred: None,
            line: String::new(),
        }
    }

    /// The input watermark: no record with an event time at or below it is
    /// expected any more. `i64::MIN` until the host has sent one.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Emits a record to output `output` with `value` encoded as MessagePack (a
    /// struct becomes a map with its field names).
    ///
    /// `key` is any byte-like key: `&str`, `&[u8]`, `String`, or a
    /// [`crate::DecimalKey`] for an integer id.
    pub fn emit<V: Serialize + ?Sized>(
        &mut self,
        output: &str,
        timestamp: i64,
        key: impl AsRef<[u8]>,
        value: &V,
    ) -> Result<(), Error> {
        self.outputs.push(
            &mut self.host,
            output,
            timestamp,
            self.tag,
            key.as_ref(),
            value,
        )
    }

    /// Emits a record whose value is already MessagePack bytes.
    pub fn emit_raw(
        &mut self,
        output: &str,
        timestamp: i64,
        key: impl AsRef<[u8]>,
        value: &[u8],
    ) -> Result<(), Error> {
        self.outputs.push_raw(
            &mut self.host,
            output,
            timestamp,
            self.tag,
            key.as_ref(),
            value,
        )
    }

    /// Emits `record` unchanged (timestamp, key and value bytes) to `output`.
    pub fn forward(&mut self, output: &str, record: &Record<'_>) -> Result<(), Error> {
        self.emit_raw(output, record.timestamp(), record.key(), record.raw_value())
    }

    /// Sends `record` unchanged to the `late` output and counts it in
    /// [`LATE_EVENTS`]. The window helpers' `add_record` does this for you.
    pub fn late(&mut self, record: &Record<'_>) -> Result<(), Error> {
        self.forward(LATE, record)?;
        self.count(LATE_EVENTS, 1);
        Ok(())
    }

    /// Asks for [`crate::Operator::on_timer`] to be called with `ts` once the
    /// watermark reaches `ts`. Setting the same time twice fires once.
    pub fn set_timer(&mut self, ts: i64) -> Result<(), Error> {
        if self.timers.len() >= MAX_PENDING_TIMERS && !self.timers.contains(&ts) {
            return Err(Error::Limit {
                limit: "MAX_PENDING_TIMERS",
                max: MAX_PENDING_TIMERS as u64,
                what: format!("a timer at {ts}"),
            });
        }
        self.timers.insert(ts);
        Ok(())
    }

    /// Cancels a pending timer; returns whether it was pending.
    pub fn cancel_timer(&mut self, ts: i64) -> bool {
        self.timers.remove(&ts)
    }

    /// The earliest pending timer, if any.
    pub fn next_timer(&self) -> Option<i64> {
        self.timers.first().copied()
    }

    /// Adds `delta` to the counter `name`. Counters are summed during a call and
    /// reported to the host once at its end.
    pub fn count(&mut self, name: &str, delta: i64) {
        self.metric(MetricKind::Counter, name, delta);
    }

    /// Sets the gauge `name`; the last value set during a call is reported.
    pub fn gauge(&mut self, name: &str, value: i64) {
        self.metric(MetricKind::Gauge, name, value);
    }

    fn metric(&mut self, kind: MetricKind, name: &str, value: i64) {
        let index = match self.metrics.iter().position(|m| m.name == name) {
            Some(index) => index,
            None if self.metrics.len() >= MAX_METRICS => {
                self.deferred.get_or_insert(Error::Limit {
                    limit: "MAX_METRICS",
                    max: MAX_METRICS as u64,
                    what: format!("a new metric named `{name}`"),
                });
                return;
            }
            None => {
                self.metrics.push(Metric {
                    name: name.to_owned(),
                    kind,
                    value: 0,
                    touched: false,
                });
                self.metrics.len() - 1
            }
        };
        let metric = &mut self.metrics[index];
        metric.touched = true;
        match kind {
            MetricKind::Counter => metric.value = metric.value.saturating_add(value),
            MetricKind::Gauge => metric.value = value,
        }
    }

    /// Writes a log line (rate-limited by the host).
    pub fn log(&mut self, level: Level, message: impl fmt::Display) {
        self.line.clear();
        // Writing into a String cannot fail.
        let _ = write!(self.line, "{message}");
        self.host.log(level, &self.line);
    }

    /// Writes an info log line.
    pub fn info(&mut self, message: impl fmt::Display) {
        self.log(Level::Info, message);
    }

    /// Writes a warning log line.
    pub fn warn(&mut self, message: impl fmt::Display) {
        self.log(Level::Warn, message);
    }

    /// Writes an error log line (the call still succeeds; return `Err` to fail it).
    pub fn error(&mut self, message: impl fmt::Display) {
        self.log(Level::Error, message);
    }

    /// Resets the per-call buffers; called at the start of every guest call.
    pub(crate) fn begin_call(&mut self) {
        self.outputs.clear();
        for metric in &mut self.metrics {
            metric.touched = false;
            if metric.kind == MetricKind::Counter {
                metric.value = 0;
            }
        }
        self.deferred = None;
    }

    /// Ends a call: on success hands outputs and metrics to the host and asks for
    /// the next timer; on failure drops them and reports the error.
    pub(crate) fn end_call(&mut self, result: Result<(), Error>) -> Result<(), Error> {
        let result = result.and_then(|()| self.deferred.take().map_or(Ok(()), Err));
        match &result {
            Ok(()) => {
                self.outputs.flush(&mut self.host);
                for metric in &mut self.metrics {
                    if metric.touched {
                        self.host.metric(metric.kind, &metric.name, metric.value);
                    }
                }
                self.request_next_timer();
            }
            Err(err) => {
                self.outputs.clear();
                self.host.fail(&err.to_string());
            }
        }
        result
    }

    /// The host remembers only the earliest time asked for since its last
    /// `on_watermark` call, so asking again is needed only for an earlier time.
    fn request_next_timer(&mut self) {
        if let Some(&first) = self.timers.first()
            && self.requested.is_none_or(|asked| first < asked)
        {
            self.host.timer(first);
            self.requested = Some(first);
        }
    }
}
