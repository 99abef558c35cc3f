//! The one error type of `sluice-gen`: bad generator configuration and encoding failures.
//! Every message names the offending setting, what was wrong and what to do.

/// An error from building a generator or encoding an event.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GenError {
    /// A configuration value is out of range.
    #[error("invalid {generator} config: `{field}` {problem}; {fix}")]
    Config {
        /// Which generator's config (`nexmark`, `payments`, ...).
        generator: &'static str,
        /// The field that was wrong.
        field: &'static str,
        /// What was wrong with it, including the value.
        problem: String,
        /// What to do instead.
        fix: &'static str,
    },
    /// A scenario could not honour one of its guarantees with the configured numbers.
    #[error("{generator} generator: {problem}; {fix}")]
    Infeasible {
        /// Which generator.
        generator: &'static str,
        /// What could not be done, with the bound that was hit.
        problem: String,
        /// What to change.
        fix: &'static str,
    },
    /// Serialising an event failed (only possible for values no generator here produces).
    #[error("encoding a {format} value failed: {message}")]
    Encode {
        /// `msgpack` or `json`.
        format: &'static str,
        /// The serialiser's message.
        message: String,
    },
}

impl GenError {
    pub(crate) fn config(
        generator: &'static str,
        field: &'static str,
        problem: impl Into<String>,
        fix: &'static str,
    ) -> Self {
        GenError::Config {
            generator,
            field,
            problem: problem.into(),
            fix,
        }
    }
}
