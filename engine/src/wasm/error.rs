//! The one error type of the Wasm host: [`PluginError`].
//!
//! Every refusal and every failed call becomes a `PluginError` that names the
//! plugin, the instance and guest function when there is one, the records of
//! the batch involved, what went wrong and what to do about it. The engine
//! matches on [`ErrorKind`] to pick its error policy (dead-letter the batch or
//! pause the job) and shows `Display` to people.

use std::fmt;

use super::plugin::{InstanceLabel, PluginId};

/// What kind of failure a [`PluginError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The module was refused: not Wasm, too large, wrong imports or exports.
    Invalid,
    /// The module speaks an ABI version other than the host's.
    AbiMismatch,
    /// The guest trapped (`unreachable`, out-of-bounds access, stack overflow…).
    Trap,
    /// The call ran past its CPU deadline and was interrupted.
    Deadline,
    /// The guest needed more memory than the per-instance limit allows.
    MemoryLimit,
    /// The guest handed the host bytes that break ABI v1 (bad emit buffer,
    /// bad output name, bad status, pointer out of bounds…).
    GarbageOutput,
    /// The guest emitted more output in one call than the host accepts.
    OutputLimit,
    /// The guest reported a failure itself (status 1, usually with `fail`).
    GuestError,
    /// The host was used against the call protocol (a bug in the caller).
    Usage,
    /// The host configuration is unusable.
    Config,
    /// The host itself failed (the engine could not create or run something).
    Host,
}

impl ErrorKind {
    /// A short stable name, for metrics labels and JSON error codes.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid_module",
            ErrorKind::AbiMismatch => "abi_mismatch",
            ErrorKind::Trap => "trap",
            ErrorKind::Deadline => "deadline",
            ErrorKind::MemoryLimit => "memory_limit",
            ErrorKind::GarbageOutput => "garbage_output",
            ErrorKind::OutputLimit => "output_limit",
            ErrorKind::GuestError => "guest_error",
            ErrorKind::Usage => "usage",
            ErrorKind::Config => "config",
            ErrorKind::Host => "host",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The records of one input partition that a batch carried: offsets
/// `first_offset..=last_offset` of `partition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRange {
    /// The input partition.
    pub partition: u32,
    /// The smallest offset of the partition in the batch.
    pub first_offset: u64,
    /// The largest offset of the partition in the batch.
    pub last_offset: u64,
}

impl fmt::Display for RecordRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partition {} offsets {}..={}",
            self.partition, self.first_offset, self.last_offset
        )
    }
}

/// A refused module or a failed call into a plugin. Small to return (one
/// box); the accessors give its parts.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", Rendered(self))]
pub struct PluginError(Box<Details>);

#[derive(Debug, Clone)]
struct Details {
    plugin: Option<PluginId>,
    instance: Option<InstanceLabel>,
    function: Option<&'static str>,
    kind: ErrorKind,
    message: String,
    hint: String,
    records: Vec<RecordRange>,
}

impl PluginError {
    /// A refusal or failure of `plugin` with no instance or function attached.
    pub(crate) fn new(
        plugin: &PluginId,
        kind: ErrorKind,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> PluginError {
        let mut error = PluginError::host(kind, message, hint);
        error.0.plugin = Some(plugin.clone());
        error
    }

    /// A problem of the host itself, not tied to any plugin.
    pub(crate) fn host(
        kind: ErrorKind,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> PluginError {
        PluginError(Box::new(Details {
            plugin: None,
            instance: None,
            function: None,
            kind,
            message: message.into(),
            hint: hint.into(),
            records: Vec::new(),
        }))
    }

    /// Attaches the guest function that failed.
    pub(crate) fn in_function(mut self, function: &'static str) -> PluginError {
        self.0.function = Some(function);
        self
    }

    /// Attaches the instance that failed.
    pub(crate) fn in_instance(mut self, label: &InstanceLabel) -> PluginError {
        self.0.instance = Some(label.clone());
        self
    }

    /// Drops the instance: for failures of the throwaway instance that
    /// validation runs, which no job owns.
    pub(crate) fn without_instance(mut self) -> PluginError {
        self.0.instance = None;
        self
    }

    /// Attaches the records of the batch involved.
    pub(crate) fn with_records(mut self, records: &[RecordRange]) -> PluginError {
        self.0.records = records.to_vec();
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The plugin concerned; `None` only for host configuration errors.
    pub fn plugin(&self) -> Option<&PluginId> {
        self.0.plugin.as_ref()
    }

    /// The instance concerned, for failures of a live instance.
    pub fn instance(&self) -> Option<&InstanceLabel> {
        self.0.instance.as_ref()
    }

    /// The guest export that failed, for failed calls.
    pub fn function(&self) -> Option<&'static str> {
        self.0.function
    }

    /// What went wrong: the phrase after the plugin's name (for call
    /// failures, the cause after the colon).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// What to do about it.
    pub fn hint(&self) -> &str {
        &self.0.hint
    }

    /// The records of the batch involved (empty when no batch was).
    pub fn records(&self) -> &[RecordRange] {
        &self.0.records
    }
}

struct Rendered<'a>(&'a PluginError);

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0.0;
        if let Some(plugin) = &e.plugin {
            write!(f, "plugin `{plugin}` ")?;
        }
        if let Some(instance) = &e.instance {
            write!(f, "({instance}) ")?;
        }
        if let Some(function) = e.function {
            write!(f, "failed in `{function}`")?;
            for (i, range) in e.records.iter().enumerate() {
                f.write_str(if i == 0 { " on records " } else { ", " })?;
                write!(f, "{range}")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&e.message)?;
        if !e.hint.is_empty() {
            write!(f, " — {}", e.hint)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_failure_names_plugin_instance_function_and_records() {
        let id = PluginId::new("fraud", "1.2.0");
        let label = InstanceLabel::new("payments", 2, 5);
        let err = PluginError::new(&id, ErrorKind::Trap, "wasm trap: boom", "fix the plugin")
            .in_function("sluice_process")
            .in_instance(&label)
            .with_records(&[
                RecordRange {
                    partition: 3,
                    first_offset: 10,
                    last_offset: 19,
                },
                RecordRange {
                    partition: 7,
                    first_offset: 0,
                    last_offset: 0,
                },
            ]);
        assert_eq!(
            err.to_string(),
            "plugin `fraud@1.2.0` (job `payments`, operator 2, shard 5) failed in \
             `sluice_process` on records partition 3 offsets 10..=19, partition 7 \
             offsets 0..=0: wasm trap: boom — fix the plugin"
        );
    }

    #[test]
    fn refusal_reads_as_one_sentence() {
        let id = PluginId::new("fraud", "1.2.0");
        let err = PluginError::new(
            &id,
            ErrorKind::Invalid,
            "imports `wasi_snapshot_preview1::fd_write`",
            "build for wasm32-unknown-unknown with sluice-sdk",
        );
        assert_eq!(
            err.to_string(),
            "plugin `fraud@1.2.0` imports `wasi_snapshot_preview1::fd_write` — build for \
             wasm32-unknown-unknown with sluice-sdk"
        );
    }
}
