//! Errors of the processor graph.

use arrow::error::ArrowError;

/// Why a processor or the graph failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An Arrow kernel failed.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// A batch lacks a column of the metrics schema, or has it with another type.
    #[error("batch has no column `{0}` of the metrics schema's type")]
    Column(&'static str),
    /// The pipeline config is invalid (it should have been validated at load).
    #[error("invalid pipeline: {0}")]
    Config(String),
    /// A processor could not be built from its parameters.
    #[error("processor `{id}` (type {type_name}): {reason}")]
    Build {
        /// Processor id.
        id: String,
        /// Its `type:`.
        type_name: String,
        /// Why.
        reason: String,
    },
    /// A checkpoint could not be written, read or restored.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// [`crate::Graph::build`] was called outside a tokio runtime.
    #[error("the processor graph must be built inside a tokio runtime")]
    NoRuntime,
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
