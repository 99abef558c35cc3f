//! The results file (`bench/results/latest.json`): a JSON array of [`Row`]s that `run`
//! merges into and `report` reads.
//!
//! Invariant: at most one row per [`Row::key`] (workload, system, mode, shards, events); a new
//! measurement replaces the old one. Rows are kept in report order (workload, then system),
//! and the file is replaced atomically (write to a temp file, rename).

use std::cmp::Ordering;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::workload::Workload;

/// One measured (workload, system, configuration), the median of its repetitions.
///
/// The fields up to `date` are always present (null where a figure does not apply); the
/// ones after it are omitted when unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `q0` … `q11`, or a scenario (`fraud-rules`, ...).
    pub workload: String,
    /// `sluice`, `native`, `reference`, `flink`, ...
    pub system: String,
    /// `in-process`, `http`, or `local` (Flink's local mini cluster).
    pub mode: String,
    /// Shards (engine threads) or parallelism (Flink); null if the system is not parallel.
    pub shards: Option<u32>,
    /// Input events processed per repetition.
    pub events: u64,
    /// Median wall-clock seconds of one repetition.
    pub wall_s: Option<f64>,
    /// `events / wall_s`; null if the answer was wrong.
    pub events_per_s: Option<f64>,
    /// `events / cpu_s`: events per second of one busy core (NEXMARK.md §3); null if the
    /// answer was wrong or CPU time is unknown.
    pub events_per_s_per_core: Option<f64>,
    /// Latency percentiles, ms; null for closed-loop runs that do not measure latency.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile latency, ms.
    pub p999_ms: Option<f64>,
    /// Peak resident memory, MiB.
    pub peak_rss_mb: Option<f64>,
    /// Whether the output matched the reference; null if it was not checked.
    pub correct: Option<bool>,
    /// The command that produced the row.
    pub command: String,
    /// CPU model and cores.
    pub machine: String,
    /// When, RFC 3339 UTC.
    pub date: String,

    /// CPU seconds of the median repetition (the denominator of the per-core figure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
    /// Start-up seconds not included in `wall_s` (Flink's JVM and table environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_s: Option<f64>,
    /// Fixed seconds included in `wall_s` whatever the input (e.g. Flink's job submission,
    /// measured with an empty job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead_s: Option<f64>,
    /// Result rows the system produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_rows: Option<u64>,
    /// Timed repetitions the median is taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetitions: Option<u32>,
    /// `[percentile, ms]` points of the latency CDF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_cdf: Option<Vec<[f64; 2]>>,
    /// `[seconds since start, events/s]` samples of throughput over the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<[f64; 2]>>,
    /// What the system's wall time, CPU time and memory include.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measures: Option<String>,
    /// Why the answer is wrong or was not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The identity of a row: a newer row with the same key replaces it.
pub type RowKey = (String, String, String, Option<u32>, u64);

impl Row {
    /// (workload, system, mode, shards, events).
    pub fn key(&self) -> RowKey {
        (
            self.workload.clone(),
            self.system.clone(),
            self.mode.clone(),
            self.shards,
            self.events,
        )
    }
}

/// Known systems first, in this order, then any other by name.
const SYSTEM_ORDER: [&str; 4] = ["sluice", "native", "reference", "flink"];

fn system_rank(system: &str) -> usize {
    SYSTEM_ORDER
        .iter()
        .position(|s| *s == system)
        .unwrap_or(SYSTEM_ORDER.len())
}

/// Report order of rows: workload, system, mode, shards, events.
pub fn report_order(a: &Row, b: &Row) -> Ordering {
    let workload = |r: &Row| {
        r.workload
            .parse::<Workload>()
            .map_or(usize::MAX, |w| w.order())
    };
    workload(a)
        .cmp(&workload(b))
        .then_with(|| a.workload.cmp(&b.workload))
        .then_with(|| system_rank(&a.system).cmp(&system_rank(&b.system)))
        .then_with(|| a.system.cmp(&b.system))
        .then_with(|| a.mode.cmp(&b.mode))
        .then_with(|| a.shards.cmp(&b.shards))
        .then_with(|| a.events.cmp(&b.events))
}

/// Reads a results file; a missing file is an empty list.
pub fn load(path: &Path) -> Result<Vec<Row>, BenchError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BenchError::io("reading", path, e)),
    };
    serde_json::from_str(&text).map_err(|e| BenchError::BadResults {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// `existing` with every row of `new` added, replacing rows with the same key; sorted in
/// report order.
pub fn merge(existing: Vec<Row>, new: &[Row]) -> Vec<Row> {
    let mut rows: Vec<Row> = existing
        .into_iter()
        .filter(|r| !new.iter().any(|n| n.key() == r.key()))
        .collect();
    rows.extend(new.iter().cloned());
    rows.sort_by(report_order);
    rows
}

/// Writes `rows` to `path` atomically (pretty JSON, one field per line, for readable diffs).
pub fn save(path: &Path, rows: &[Row]) -> Result<(), BenchError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| BenchError::io("creating directory", dir, e))?;
    }
    let text = serde_json::to_string_pretty(rows).map_err(|e| BenchError::BadResults {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, text + "\n").map_err(|e| BenchError::io("writing", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| BenchError::io("renaming into", path, e))
}

/// Loads `path`, merges `new` into it and saves it.
pub fn merge_into(path: &Path, new: &[Row]) -> Result<Vec<Row>, BenchError> {
    let rows = merge(load(path)?, new);
    save(path, &rows)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: &str, system: &str, events: u64, eps: f64) -> Row {
        Row {
            workload: workload.into(),
            system: system.into(),
            mode: "in-process".into(),
            shards: Some(1),
            events,
            wall_s: Some(1.0),
            events_per_s: Some(eps),
            events_per_s_per_core: None,
            p50_ms: None,
            p99_ms: None,
            p999_ms: None,
            peak_rss_mb: None,
            correct: None,
            command: String::new(),
            machine: String::new(),
            date: String::new(),
            cpu_s: None,
            startup_s: None,
            overhead_s: None,
            result_rows: None,
            repetitions: None,
            latency_cdf: None,
            timeline: None,
            measures: None,
            note: None,
        }
    }

    #[test]
    fn merge_replaces_same_key_and_sorts_for_the_report() {
        let old = vec![row("q5", "flink", 10, 1.0), row("q0", "reference", 10, 1.0)];
        let merged = merge(
            old,
            &[row("q5", "flink", 10, 2.0), row("q0", "sluice", 10, 3.0)],
        );
        let got: Vec<(&str, &str, Option<f64>)> = merged
            .iter()
            .map(|r| (r.workload.as_str(), r.system.as_str(), r.events_per_s))
            .collect();
        assert_eq!(
            got,
            vec![
                ("q0", "sluice", Some(3.0)),
                ("q0", "reference", Some(1.0)),
                ("q5", "flink", Some(2.0)),
            ]
        );
    }

    #[test]
    fn required_fields_serialize_as_null_and_extras_are_omitted() {
        let json = serde_json::to_value(row("q0", "reference", 1, 1.0)).unwrap();
        let obj = json.as_object().unwrap();
        assert!(obj["p50_ms"].is_null() && obj["correct"].is_null());
        assert!(!obj.contains_key("latency_cdf") && !obj.contains_key("cpu_s"));
    }
}
