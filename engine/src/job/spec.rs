//! The job spec: what a user submits to run a chain of plugins over topics.
//!
//! A spec arrives as JSON (HTTP API) or TOML (files) and is checked by
//! [`JobSpec::validate`] before anything runs; every refusal names the field,
//! what was wrong and what to do. Nothing here touches the log or Wasm.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest job, view or topic name accepted.
pub const MAX_NAME_LEN: usize = 128;
/// Most operators in one job's chain.
pub const MAX_OPERATORS: usize = 16;
/// Most source topics of one job.
pub const MAX_SOURCES: usize = 8;
/// Most partitions of a re-keyed stage.
pub const MAX_STAGE_PARTITIONS: u32 = 1024;
/// Bounds of the records-per-batch setting.
pub const MAX_BATCH_RECORDS: u32 = 65_536;
/// Bounds of the checkpoint interval setting, in milliseconds.
pub const MIN_CHECKPOINT_MS: u64 = 10;
pub const MAX_CHECKPOINT_MS: u64 = 3_600_000;
/// Most entries a view may be configured to keep.
pub const MAX_VIEW_ENTRIES: usize = 10_000_000;
/// Default bound of a view's entries.
pub const DEFAULT_VIEW_ENTRIES: usize = 100_000;

/// A job: source topics, how to key and time their records, a chain of
/// operators, and where each operator output goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub name: String,
    pub sources: Vec<SourceSpec>,
    #[serde(default)]
    pub key: KeySpec,
    #[serde(default)]
    pub event_time: TimeSpec,
    /// Bounded out-of-orderness: watermark = max event time seen − this.
    #[serde(default)]
    pub max_out_of_orderness_ms: u64,
    /// A source partition with no new record for this long (wall clock) has its
    /// watermark moved up to the largest event time it has seen. `None` (the
    /// default) never does; results then depend on the log alone.
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    pub operators: Vec<OperatorSpec>,
    /// Where the outputs of the operators go, by output name (`main`,
    /// `alerts`, `late`, ...). `main` of every operator but the last feeds the
    /// next operator. An output with no sink is dropped and counted.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkSpec>,
    #[serde(default = "default_checkpoint_ms")]
    pub checkpoint_interval_ms: u64,
    #[serde(default = "default_batch_records")]
    pub batch_max_records: u32,
}

fn default_checkpoint_ms() -> u64 {
    1_000
}

fn default_batch_records() -> u32 {
    1_024
}

/// One source topic and where to start reading it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub topic: String,
    #[serde(default)]
    pub start: StartPosition,
}

/// Where a job with no checkpoint starts reading a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    #[default]
    Earliest,
    Latest,
    /// The same offset in every partition (clamped to what exists).
    Offset(u64),
    /// The first record at or after this event time, per partition.
    Timestamp(i64),
}

/// The key operators see for each source record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySpec {
    /// The record key as ingested (the topic is partitioned by it).
    #[default]
    Record,
    /// A field of the value, as a dotted path (`bid.bidder`). The records are
    /// re-partitioned by it before the first operator, unless
    /// `co_partitioned` says the topic is already partitioned by that field.
    Field {
        field: String,
        #[serde(default)]
        co_partitioned: bool,
    },
}

/// Where a record's event time comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSpec {
    /// The record timestamp.
    #[default]
    Record,
    /// An integer field of the value (epoch ms), as a dotted path.
    Field { field: String },
}

/// One operator of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSpec {
    /// `name@version` of an uploaded plugin.
    pub plugin: String,
    /// Passed to the plugin's `init`, as MessagePack.
    #[serde(default)]
    pub config: serde_json::Value,
    /// Re-partition this operator's input by the record key the previous
    /// operator emitted, so that its state stays partition-local.
    #[serde(default)]
    pub partition_by_key: bool,
    /// Partitions of the re-keyed stage (default: those of the source).
    #[serde(default)]
    pub partitions: Option<u32>,
    #[serde(default)]
    pub on_error: ErrorPolicy,
    /// Sinks for this operator's outputs, overriding the job's `sinks`.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkSpec>,
}

/// What a failed plugin call does to the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorPolicy {
    /// The batch's records go to the job's dead-letter topic with the error,
    /// and processing continues.
    #[default]
    DeadLetter,
    /// The job pauses; it resumes from the failed batch when resumed.
    Pause,
}

/// Where an output goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkSpec {
    /// Append to a topic the job owns (created with the stage's partitions).
    Topic { topic: String },
    /// Keep the latest result per (key, window), queryable over HTTP.
    View {
        view: String,
        #[serde(default = "default_view_entries")]
        max_entries: usize,
    },
    /// The job's dead-letter topic, `<job>.dlq`.
    DeadLetter,
    /// Count and drop.
    Discard,
}

fn default_view_entries() -> usize {
    DEFAULT_VIEW_ENTRIES
}

/// A spec that cannot run, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job spec field `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for SpecError {}

fn err(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks a user-given name (job, topic, view, plugin): 1..=128 characters
/// of `a-z A-Z 0-9 . _ -`, not starting with `.` (so no `..` or hidden files).
pub fn check_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "{kind} name must be 1 to {MAX_NAME_LEN} characters, got {}",
            name.len()
        ));
    }
    if name.starts_with('.') {
        return Err(format!("{kind} name `{name}` must not start with `.`"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{kind} name `{}` contains {c:?}; use only letters, digits, `.`, `_` and `-`",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// Splits `name@version`.
pub fn parse_plugin_ref(s: &str) -> Result<(&str, &str), String> {
    match s.split_once('@') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => {
            check_name("plugin", name)?;
            check_name("plugin version", version)?;
            Ok((name, version))
        }
        _ => Err(format!(
            "`{s}` is not a plugin reference; write `name@version`, e.g. `fraud-rules@0.1.0`"
        )),
    }
}

impl JobSpec {
    /// Parses a spec from JSON, with the position of a syntax error.
    pub fn from_json(bytes: &[u8]) -> Result<JobSpec, SpecError> {
        serde_json::from_slice(bytes).map_err(|e| err("(document)", e.to_string()))
    }

    /// Parses a spec from TOML.
    pub fn from_toml(text: &str) -> Result<JobSpec, SpecError> {
        toml::from_str(text).map_err(|e| err("(document)", e.to_string()))
    }

    /// Everything that can be checked without the log and the plugin store.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_name("job", &self.name).map_err(|m| err("name", m))?;
        if self.name.starts_with('_') {
            return Err(err(
                "name",
                "names starting with `_` are reserved for Sluice's internal topics",
            ));
        }
        if self.sources.is_empty() || self.sources.len() > MAX_SOURCES {
            return Err(err(
                "sources",
                format!("a job needs 1 to {MAX_SOURCES} source topics"),
            ));
        }
        for (i, s) in self.sources.iter().enumerate() {
            check_name("topic", &s.topic).map_err(|m| err(format!("sources[{i}].topic"), m))?;
        }
        if let KeySpec::Field { field, .. } = &self.key {
            check_path(field).map_err(|m| err("key.field", m))?;
        }
        if let TimeSpec::Field { field } = &self.event_time {
            check_path(field).map_err(|m| err("event_time.field", m))?;
        }
        if self.operators.is_empty() || self.operators.len() > MAX_OPERATORS {
            return Err(err(
                "operators",
                format!("a job needs 1 to {MAX_OPERATORS} operators"),
            ));
        }
        for (i, op) in self.operators.iter().enumerate() {
            let at = |f: &str| format!("operators[{i}].{f}");
            parse_plugin_ref(&op.plugin).map_err(|m| err(at("plugin"), m))?;
            if i == 0 && op.partition_by_key {
                return Err(err(
                    at("partition_by_key"),
                    "the first operator reads the sources; to re-partition them use the job's `key` setting",
                ));
            }
            if let Some(p) = op.partitions {
                if !op.partition_by_key {
                    return Err(err(
                        at("partitions"),
                        "only a re-keyed operator (`partition_by_key: true`) has its own partitions",
                    ));
                }
                if p == 0 || p > MAX_STAGE_PARTITIONS {
                    return Err(err(
                        at("partitions"),
                        format!("must be 1 to {MAX_STAGE_PARTITIONS}, got {p}"),
                    ));
                }
            }
            for (name, sink) in &op.sinks {
                check_sink(name, sink).map_err(|m| err(at(&format!("sinks.{name}")), m))?;
            }
        }
        for (name, sink) in &self.sinks {
            check_sink(name, sink).map_err(|m| err(format!("sinks.{name}"), m))?;
        }
        if !(MIN_CHECKPOINT_MS..=MAX_CHECKPOINT_MS).contains(&self.checkpoint_interval_ms) {
            return Err(err(
                "checkpoint_interval_ms",
                format!(
                    "must be between {MIN_CHECKPOINT_MS} and {MAX_CHECKPOINT_MS}, got {}",
                    self.checkpoint_interval_ms
                ),
            ));
        }
        if self.batch_max_records == 0 || self.batch_max_records > MAX_BATCH_RECORDS {
            return Err(err(
                "batch_max_records",
                format!(
                    "must be 1 to {MAX_BATCH_RECORDS}, got {}",
                    self.batch_max_records
                ),
            ));
        }
        if self.idle_timeout_ms == Some(0) {
            return Err(err(
                "idle_timeout_ms",
                "must be at least 1 ms; leave it out to disable idleness",
            ));
        }
        Ok(())
    }

    /// The job's dead-letter topic.
    pub fn dead_letter_topic(&self) -> String {
        format!("{}.dlq", self.name)
    }
}

fn check_sink(output: &str, sink: &SinkSpec) -> Result<(), String> {
    if output.is_empty()
        || output.len() > 64
        || !output
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "output name `{}` must be 1 to 64 characters of a-z, 0-9, `_` or `-`",
            output.escape_debug()
        ));
    }
    match sink {
        SinkSpec::Topic { topic } => check_name("topic", topic),
        SinkSpec::View { view, max_entries } => {
            check_name("view", view)?;
            if *max_entries == 0 || *max_entries > MAX_VIEW_ENTRIES {
                return Err(format!(
                    "view `{view}`: max_entries must be 1 to {MAX_VIEW_ENTRIES}, got {max_entries}"
                ));
            }
            Ok(())
        }
        SinkSpec::DeadLetter | SinkSpec::Discard => Ok(()),
    }
}

fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > 256 || path.split('.').any(str::is_empty) {
        return Err(format!(
            "`{path}` is not a field path; write field names joined by `.`, e.g. `bid.date_time`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> &'static str {
        r#"{"name":"fraud","sources":[{"topic":"payments"}],
            "operators":[{"plugin":"fraud-rules@0.1.0","config":{"span_ms":600000}}],
            "sinks":{"alerts":{"topic":{"topic":"fraud-alerts"}},"main":"discard"}}"#
    }

    #[test]
    fn minimal_json_spec_parses_with_defaults() {
        let spec = JobSpec::from_json(minimal().as_bytes()).unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.checkpoint_interval_ms, 1_000);
        assert_eq!(spec.batch_max_records, 1_024);
        assert_eq!(spec.key, KeySpec::Record);
        assert_eq!(spec.sources[0].start, StartPosition::Earliest);
        assert_eq!(spec.sinks["main"], SinkSpec::Discard);
    }

    #[test]
    fn toml_spec_parses() {
        let spec = JobSpec::from_toml(
            r#"
            name = "surge"
            max_out_of_orderness_ms = 5000
            [[sources]]
            topic = "rides"
            start = { timestamp = 1700000000000 }
            [key.field]
            field = "cell"
            co_partitioned = true
            [[operators]]
            plugin = "surge-pricing@0.1.0"
            [sinks.main]
            view = { view = "surge", max_entries = 5000 }
            "#,
        )
        .unwrap();
        spec.validate().unwrap();
        assert_eq!(
            spec.sources[0].start,
            StartPosition::Timestamp(1_700_000_000_000)
        );
    }

    #[test]
    fn unknown_field_is_refused_by_name() {
        let e = JobSpec::from_json(br#"{"name":"a","sources":[],"operators":[],"sink":{}}"#)
            .unwrap_err();
        assert!(e.message.contains("sink"), "{e}");
    }

    #[test]
    fn bad_names_and_settings_say_what_is_wrong() {
        let mut spec = JobSpec::from_json(minimal().as_bytes()).unwrap();
        spec.name = "../etc".into();
        assert!(spec.validate().unwrap_err().to_string().contains("`.`"));
        spec.name = "ok".into();
        spec.operators[0].plugin = "fraud-rules".into();
        let e = spec.validate().unwrap_err();
        assert_eq!(e.field, "operators[0].plugin");
        assert!(e.message.contains("name@version"));
        spec.operators[0].plugin = "fraud-rules@1".into();
        spec.checkpoint_interval_ms = 1;
        assert_eq!(spec.validate().unwrap_err().field, "checkpoint_interval_ms");
        spec.checkpoint_interval_ms = 1000;
        spec.sinks.insert("Bad Name".into(), SinkSpec::Discard);
        assert!(spec.validate().unwrap_err().message.contains("a-z"));
    }

    #[test]
    fn first_operator_cannot_be_rekeyed() {
        let mut spec = JobSpec::from_json(minimal().as_bytes()).unwrap();
        spec.operators[0].partition_by_key = true;
        assert_eq!(
            spec.validate().unwrap_err().field,
            "operators[0].partition_by_key"
        );
    }

    #[test]
    fn check_name_refuses_traversal_and_odd_characters() {
        assert!(check_name("topic", "..").is_err());
        assert!(check_name("topic", "a/b").is_err());
        assert!(check_name("topic", "").is_err());
        assert!(check_name("topic", &"x".repeat(129)).is_err());
        assert!(check_name("topic", "orders-2024.v1_x").is_ok());
    }
}
