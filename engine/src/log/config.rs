//! Topic settings and log options: their types, their serde form and their validation.
//! `Log::create_topic` and the metadata loader call [`TopicConfig::validate`]; nothing
//! invalid reaches the disk or survives a reload.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::LogError;
use super::limits::{
    DEFAULT_SEGMENT_BYTES, MAX_FSYNC_INTERVAL_MS, MAX_PARTITIONS, MAX_SEGMENT_BYTES,
    MAX_TOPIC_NAME_BYTES, MIN_SEGMENT_BYTES,
};

/// Options for a whole [`Log`](super::Log).
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// Most bytes of records the log may hold over all topics; appends past it fail with
    /// [`LogError::QuotaFull`]. `None` = bounded only by the disk.
    pub quota_bytes: Option<u64>,
}

/// When a partition's appended bytes are forced to stable storage (`fdatasync`).
///
/// Serde form: `"always"`, `"never"`, or `{"interval_ms": 5}`.
/// Text form ([`FromStr`]): `always`, `never`, `interval(5ms)`, `interval(5)`, `interval:5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "FsyncRepr", into = "FsyncRepr")]
pub enum FsyncPolicy {
    /// `append_durable` returns once an fsync covering the batch completed (group commit:
    /// one fsync covers every batch appended while the previous one ran).
    Always,
    /// The background syncer fsyncs the partition at most `ms` after it was written; acks do
    /// not wait for it.
    Interval {
        /// The syncer's period for this topic, in milliseconds (1..=60000).
        ms: u64,
    },
    /// Acked once written; the OS writes back when it likes (explicit `sync()`, segment
    /// rolls and checkpoints still fsync).
    Never,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum FsyncRepr {
    Name(String),
    Interval { interval_ms: u64 },
}

impl TryFrom<FsyncRepr> for FsyncPolicy {
    type Error = String;
    fn try_from(r: FsyncRepr) -> Result<Self, String> {
        match r {
            FsyncRepr::Name(s) => s.parse(),
            FsyncRepr::Interval { interval_ms } => Ok(FsyncPolicy::Interval { ms: interval_ms }),
        }
    }
}

impl From<FsyncPolicy> for FsyncRepr {
    fn from(p: FsyncPolicy) -> Self {
        match p {
            FsyncPolicy::Always => FsyncRepr::Name("always".into()),
            FsyncPolicy::Never => FsyncRepr::Name("never".into()),
            FsyncPolicy::Interval { ms } => FsyncRepr::Interval { interval_ms: ms },
        }
    }
}

impl FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        match t {
            "always" => return Ok(FsyncPolicy::Always),
            "never" => return Ok(FsyncPolicy::Never),
            _ => {}
        }
        let arg = t
            .strip_prefix("interval(")
            .and_then(|r| r.strip_suffix(')'))
            .or_else(|| t.strip_prefix("interval:"));
        let bad = || {
            format!(
                "invalid fsync policy `{s}`: expected `always`, `never`, `interval(<ms>ms)` or \
                 `interval:<ms>`"
            )
        };
        let arg = arg.ok_or_else(bad)?.trim();
        let digits = arg.strip_suffix("ms").unwrap_or(arg).trim();
        let ms: u64 = digits.parse().map_err(|_| bad())?;
        Ok(FsyncPolicy::Interval { ms })
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::Never => f.write_str("never"),
            FsyncPolicy::Interval { ms } => write!(f, "interval({ms}ms)"),
        }
    }
}

/// How long a partition keeps its records. Whole sealed segments are removed; the active
/// segment never is. Both bounds apply per partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Remove a sealed segment once every record in it has a timestamp older than
    /// `now - max_age_ms`. `None` = keep forever.
    #[serde(default)]
    pub max_age_ms: Option<u64>,
    /// Remove the oldest sealed segments while the partition holds more than this many bytes.
    /// `None` = no size bound.
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

/// A topic's persisted settings (`topic.json` in its directory).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TopicConfig {
    /// `[a-zA-Z0-9._-]`, 1..=128 bytes, not `.` or `..`.
    pub name: String,
    /// 1..=`MAX_PARTITIONS`.
    pub partitions: u32,
    /// Retention bounds.
    #[serde(default)]
    pub retention: Retention,
    /// Durability policy.
    pub fsync: FsyncPolicy,
    /// Roll to a new segment once the active one holds this many bytes
    /// (`MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES`).
    pub segment_bytes: u64,
}

impl TopicConfig {
    /// A config with default retention (keep all), `fsync = always` and
    /// `DEFAULT_SEGMENT_BYTES` segments.
    pub fn new(name: impl Into<String>, partitions: u32) -> Self {
        TopicConfig {
            name: name.into(),
            partitions,
            retention: Retention::default(),
            fsync: FsyncPolicy::Always,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }

    /// Refuses impossible settings with a message saying why and what is allowed.
    pub fn validate(&self) -> Result<(), LogError> {
        validate_topic_name(&self.name)?;
        let bad = |reason: String| {
            Err(LogError::InvalidConfig {
                topic: self.name.clone(),
                reason,
            })
        };
        if self.partitions == 0 {
            return bad("0 partitions: a topic needs at least 1 partition".into());
        }
        if self.partitions > MAX_PARTITIONS {
            return bad(format!(
                "{} partitions is over the limit MAX_PARTITIONS = {MAX_PARTITIONS}",
                self.partitions
            ));
        }
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return bad(format!(
                "segment_bytes = {} is outside {MIN_SEGMENT_BYTES}..={MAX_SEGMENT_BYTES} \
                 (MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES)",
                self.segment_bytes
            ));
        }
        if let FsyncPolicy::Interval { ms } = self.fsync
            && !(1..=MAX_FSYNC_INTERVAL_MS).contains(&ms)
        {
            return bad(format!(
                "fsync interval {ms} ms is outside 1..={MAX_FSYNC_INTERVAL_MS} ms; use \
                 `never` for no periodic fsync"
            ));
        }
        if self.retention.max_age_ms == Some(0) {
            return bad("retention max_age_ms = 0 would delete every record; omit it to keep records forever".into());
        }
        if let Some(b) = self.retention.max_bytes
            && b < self.segment_bytes
        {
            return bad(format!(
                "retention max_bytes = {b} is below segment_bytes = {}; a partition keeps whole \
                 segments, so max_bytes must be at least one segment",
                self.segment_bytes
            ));
        }
        Ok(())
    }
}

/// Checks a topic name: `[a-zA-Z0-9._-]`, 1..=`MAX_TOPIC_NAME_BYTES` bytes, not `.`/`..`.
pub fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let shown: String = name.chars().take(200).collect();
    let bad = |reason: String| {
        Err(LogError::InvalidTopicName {
            name: shown.clone(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("the name is empty; use 1 to 128 characters from [a-zA-Z0-9._-]".into());
    }
    if name.len() > MAX_TOPIC_NAME_BYTES {
        return bad(format!(
            "the name is {} bytes long, over the limit MAX_TOPIC_NAME_BYTES = {MAX_TOPIC_NAME_BYTES}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are reserved path names".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(format!(
            "character {c:?} is not allowed; use only letters a-z A-Z, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policy_parses_text_forms() {
        assert_eq!("always".parse(), Ok(FsyncPolicy::Always));
        assert_eq!("never".parse(), Ok(FsyncPolicy::Never));
        assert_eq!("interval(5ms)".parse(), Ok(FsyncPolicy::Interval { ms: 5 }));
        assert_eq!("interval(7)".parse(), Ok(FsyncPolicy::Interval { ms: 7 }));
        assert_eq!("interval:9".parse(), Ok(FsyncPolicy::Interval { ms: 9 }));
        let err = "sometimes".parse::<FsyncPolicy>().unwrap_err();
        assert!(
            err.contains("sometimes") && err.contains("interval"),
            "{err}"
        );
    }

    #[test]
    fn fsync_policy_serde_round_trips() {
        for p in [
            FsyncPolicy::Always,
            FsyncPolicy::Never,
            FsyncPolicy::Interval { ms: 5 },
        ] {
            let j = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<FsyncPolicy>(&j).unwrap(), p);
        }
        assert_eq!(
            serde_json::to_string(&FsyncPolicy::Interval { ms: 5 }).unwrap(),
            r#"{"interval_ms":5}"#
        );
        assert_eq!(
            serde_json::from_str::<FsyncPolicy>(r#""interval(3ms)""#).unwrap(),
            FsyncPolicy::Interval { ms: 3 }
        );
    }
}
