//! WAL errors.

use std::path::PathBuf;

/// What went wrong in the WAL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("WAL I/O on {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A batch could not be encoded or a record decoded as Arrow IPC.
    #[error("WAL Arrow IPC: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The WAL holds its configured maximum; the caller should refuse new data (retryable).
    #[error("WAL is full ({bytes} of {max_bytes} bytes); retry later")]
    Full {
        /// Bytes held now.
        bytes: u64,
        /// The budget.
        max_bytes: u64,
    },
    /// A record holding a batch's source (see [`crate::Wal::append_source_then`]) did not
    /// decode; the WAL does not open rather than drop it.
    #[error("WAL record {seq} in {path} holds a request that does not decode again: {reason}")]
    Source {
        /// The segment file.
        path: PathBuf,
        /// The record's sequence number.
        seq: u64,
        /// The decoder's answer.
        reason: String,
    },
    /// The writer thread has stopped.
    #[error("WAL writer has stopped")]
    Closed,
}

impl Error {
    /// Whether the caller may retry the same append later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Full { .. })
    }
}

/// Result with the WAL's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
