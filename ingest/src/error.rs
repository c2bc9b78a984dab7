//! Errors of the ingest crate.

use std::time::Duration;

use phoenix_model::EdgeError;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a request (or a server) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request would decode to more column data than allowed (HTTP 413, gRPC
    /// RESOURCE_EXHAUSTED; not retryable).
    #[error("request expands to about {estimated} bytes of columns, more than the limit of {limit} bytes")]
    TooLarge {
        /// Estimated decoded bytes.
        estimated: usize,
        /// `DecodeLimits::max_decoded_bytes`.
        limit: usize,
    },
    /// The memory budget has no room for the request now (HTTP 503, gRPC UNAVAILABLE;
    /// retryable).
    #[error("ingest memory budget (ingest.max_in_flight_bytes) is exhausted; retry later")]
    MemoryBudget {
        /// Hint for the client.
        retry_after: Duration,
    },
    /// The request needs more memory than the whole budget (HTTP 413, gRPC
    /// RESOURCE_EXHAUSTED; not retryable).
    #[error("request needs about {needed} bytes of memory, more than ingest.max_in_flight_bytes ({budget})")]
    OverBudget {
        /// Estimated bytes.
        needed: usize,
        /// `ingest.max_in_flight_bytes`.
        budget: usize,
    },
    /// The pipeline did not take the batch (HTTP 503, gRPC UNAVAILABLE; retryable).
    #[error("pipeline unavailable: {source}")]
    Unavailable {
        /// Hint for the client.
        retry_after: Duration,
        /// What the edge said.
        source: EdgeError,
    },
    /// The protobuf body is not a valid `ExportMetricsServiceRequest` (HTTP 400, gRPC
    /// INVALID_ARGUMENT; not retryable).
    #[error("invalid protobuf body: {0}")]
    InvalidProtobuf(#[from] crate::decode::wire::WireError),
    /// The batch could not be assembled (a bug; HTTP 500, gRPC INTERNAL).
    #[error("cannot build batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The HTTP server failed.
    #[error("OTLP/HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The gRPC server failed.
    #[error("OTLP/gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
}
