//! Query errors, classified the way the HTTP API answers them.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Result with a [`QueryError`].
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// Why a query produced no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    /// The statement is not allowed (DDL, DML, `COPY`, file access, several statements).
    #[error("not allowed: {0}")]
    Refused(String),
    /// The query does not parse or plan (syntax, unknown table or column, bad types).
    #[error("invalid query: {0}")]
    Invalid(String),
    /// The query ran past the time limit and was cancelled.
    #[error("query exceeded the time limit of {secs}s and was cancelled")]
    Timeout {
        /// The limit, in seconds.
        secs: u64,
    },
    /// The query needed more memory than allowed, or returned too many rows.
    #[error("resources exhausted: {0}")]
    ResourcesExhausted(String),
    /// Too many queries are running; retry later.
    #[error("too many queries running (limit {limit}); retry later")]
    Busy {
        /// Queries allowed at once.
        limit: usize,
    },
    /// A failure that is not the query's fault (storage unreachable, bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl QueryError {
    /// The HTTP status the API answers with: 400 for the caller's query, 503 when busy, 500
    /// otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            QueryError::Refused(_)
            | QueryError::Invalid(_)
            | QueryError::Timeout { .. }
            | QueryError::ResourcesExhausted(_) => 400,
            QueryError::Busy { .. } => 503,
            QueryError::Internal(_) => 500,
        }
    }

    /// A short label for metrics (`reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            QueryError::Refused(_) => "refused",
            QueryError::Invalid(_) => "invalid",
            QueryError::Timeout { .. } => "timeout",
            QueryError::ResourcesExhausted(_) => "resources_exhausted",
            QueryError::Busy { .. } => "busy",
            QueryError::Internal(_) => "internal",
        }
    }
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        let message = e.to_string();
        match e.find_root() {
            DataFusionError::ResourcesExhausted(_) => QueryError::ResourcesExhausted(message),
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Configuration(_)
            | DataFusionError::Execution(_) => QueryError::Invalid(message),
            // Casts, overflow, division by zero; I/O failures surfacing as Arrow errors are ours.
            DataFusionError::ArrowError(inner, _) => match inner.as_ref() {
                ArrowError::ExternalError(_) | ArrowError::IoError(..) => {
                    QueryError::Internal(message)
                }
                _ => QueryError::Invalid(message),
            },
            _ => QueryError::Internal(message),
        }
    }
}
