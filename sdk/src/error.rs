//! `error`: the SDK's one error type.
//!
//! Every fallible SDK call and every operator callback returns [`Error`]. When a
//! callback fails inside a Wasm plugin, the SDK hands the error's text to the host
//! (`sluice.fail`) and reports status 1, so the text is what an operator of the job
//! reads: it names the input, what was wrong and, where it can, what to do.

use std::fmt;

/// An error from an operator or from the SDK on its behalf.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job's `config` does not deserialize into the operator's `Config` type.
    #[error(
        "operator config does not match `{type_name}`: {reason}; fix the `config` of this operator in the job spec"
    )]
    Config {
        /// The Rust type the config was decoded into.
        type_name: &'static str,
        /// What the decoder reported.
        reason: String,
    },
    /// A record's value is not the MessagePack the operator expected.
    #[error("value does not decode as `{type_name}`: {reason}")]
    Decode {
        /// The Rust type the value was decoded into.
        type_name: &'static str,
        /// What the decoder reported.
        reason: String,
    },
    /// A value could not be encoded as MessagePack.
    #[error("cannot encode `{type_name}` as MessagePack: {reason}")]
    Encode {
        /// The Rust type that was encoded.
        type_name: &'static str,
        /// What the encoder reported.
        reason: String,
    },
    /// The batch handed over by the host does not follow ABI v1.
    #[error("malformed batch from the host: {0} (see sdk/ABI.md, \"The batch\")")]
    Batch(String),
    /// An output name or output record was refused.
    #[error("output `{output}`: {reason}")]
    Output {
        /// The output name as given by the operator.
        output: String,
        /// Why it was refused.
        reason: String,
    },
    /// A snapshot could not be written or read.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// A named bound of the SDK was reached.
    #[error("limit `{limit}` ({max}) reached: {what}")]
    Limit {
        /// The name of the bound (a constant in [`crate::limits`] or a `with_max_*` setting).
        limit: &'static str,
        /// Its value.
        max: u64,
        /// What was being added when it was hit.
        what: String,
    },
    /// A call arrived in a state where it cannot be served (for example `process`
    /// before a successful `init`).
    #[error("{0}")]
    Protocol(String),
    /// The error of one input record, with the record named.
    #[error("record at offset {offset} of partition {partition} (source {source_index}): {inner}")]
    Record {
        /// Offset of the record in its partition.
        offset: u64,
        /// Input partition of the record.
        partition: u32,
        /// Index of the job source the record came from.
        source_index: u16,
        /// The underlying error.
        inner: Box<Error>,
    },
    /// An error raised by the operator's own code.
    #[error("{0}")]
    Operator(String),
}

impl Error {
    /// An operator error with the given message: `return Err(Error::msg("amount is negative"))`.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::Operator(message.to_string())
    }

    /// Names the record this error belongs to, unless it already names one.
    pub(crate) fn at_record(self, offset: u64, partition: u32, source_index: u16) -> Self {
        match self {
            Error::Record { .. } => self,
            inner => Error::Record {
                offset,
                partition,
                source_index,
                inner: Box::new(inner),
            },
        }
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::Operator(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::Operator(message.to_owned())
    }
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_error_names_the_record_once() {
        let err = Error::msg("bad amount")
            .at_record(7, 2, 1)
            .at_record(9, 9, 9);
        assert_eq!(
            err.to_string(),
            "record at offset 7 of partition 2 (source 1): bad amount"
        );
    }
}
