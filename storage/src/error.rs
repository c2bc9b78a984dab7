//! Errors of the storage layer.

/// Result with the storage [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `storage.url` could not be turned into an object store.
    #[error("storage url `{url}`: {reason}")]
    Url {
        /// The URL as configured.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A local folder could not be created or resolved.
    #[error("storage folder `{path}`: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An object store call failed.
    #[error("object store {op} `{path}`: {source}")]
    ObjectStore {
        /// The operation (`put`, `list`, `delete`, `get`).
        op: &'static str,
        /// The object path (or prefix).
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// Streaming a file to the object store failed.
    #[error("object store upload `{path}`: {source}")]
    Upload {
        /// The object path.
        path: String,
        /// The upload's error.
        source: std::io::Error,
    },
    /// Encoding or decoding Parquet failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// An Arrow kernel failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A batch or file does not have the table's schema.
    #[error("table `{table}`: {reason}")]
    Schema {
        /// The table.
        table: String,
        /// What does not match.
        reason: String,
    },
    /// A table name is not `[a-z_][a-z0-9_]*` (at most 64 bytes).
    #[error("invalid table name `{0}`: use lowercase letters, digits and `_`")]
    TableName(String),
    /// A flush wrote some partitions but not all; the rest stays buffered.
    #[error("table `{table}`: {failed} of {partitions} partitions failed to flush: {first}")]
    Flush {
        /// The table.
        table: String,
        /// Partitions that failed.
        failed: usize,
        /// Partitions attempted.
        partitions: usize,
        /// The first failure.
        first: Box<Error>,
    },
    /// A blocking encode task panicked or was cancelled.
    #[error("encode task failed: {0}")]
    Task(String),
    /// The sink could not acknowledge deliveries on its edge.
    #[error("edge: {0}")]
    Edge(#[from] phoenix_model::EdgeError),
}

impl Error {
    /// Wraps an object store error with its operation and path.
    pub(crate) fn store(
        op: &'static str,
        path: impl ToString,
        source: object_store::Error,
    ) -> Self {
        Error::ObjectStore {
            op,
            path: path.to_string(),
            source,
        }
    }
}
