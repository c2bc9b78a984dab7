//! Errors of the Kafka bus.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to Kafka or encoding a payload.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client could not be created from the configuration.
    #[error("kafka client configuration: {0}")]
    Client(String),
    /// The cluster could not be reached or refused a request.
    #[error("kafka {op}: {reason}")]
    Kafka {
        /// What was being done.
        op: &'static str,
        /// The client's message.
        reason: String,
    },
    /// A batch could not be encoded.
    #[error("payload: {0}")]
    Payload(String),
}

impl Error {
    /// A Kafka failure during `op`.
    pub(crate) fn kafka(op: &'static str, e: impl std::fmt::Display) -> Self {
        Error::Kafka {
            op,
            reason: e.to_string(),
        }
    }
}
