//! How an endpoint answered one attempt, classified the way OTLP exporters do.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use tonic::Code;

/// The answer to one export attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Acknowledged; `rejected` datapoints were refused by partial success.
    Accepted {
        /// `partial_success.rejected_data_points`.
        rejected: u64,
    },
    /// Refused for good (4xx, non-retryable gRPC code).
    Rejected,
    /// "Try again later" (503, 429, UNAVAILABLE, RESOURCE_EXHAUSTED, ...).
    Retryable {
        /// The server's hint (Retry-After, RetryInfo), if any.
        after: Option<Duration>,
    },
    /// No answer: connection failure, reset or timeout.
    Failed,
}

/// Datapoints refused by partial success in a decoded response.
pub(crate) fn partially_rejected(resp: &ExportMetricsServiceResponse) -> u64 {
    resp.partial_success
        .as_ref()
        .map_or(0, |p| u64::try_from(p.rejected_data_points).unwrap_or(0))
}

/// Whether an HTTP status is retryable per the OTLP/HTTP spec.
pub(crate) fn http_retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// Whether a gRPC code is retryable per the OTLP/gRPC spec (RESOURCE_EXHAUSTED included,
/// as servers use it for backpressure).
pub(crate) fn grpc_retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::DataLoss
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's retryable statuses are retryable, client errors are not.
    #[test]
    fn classification() {
        assert!(http_retryable(503) && http_retryable(429));
        assert!(!http_retryable(400) && !http_retryable(500) && !http_retryable(413));
        assert!(grpc_retryable(Code::Unavailable) && grpc_retryable(Code::ResourceExhausted));
        assert!(!grpc_retryable(Code::InvalidArgument) && !grpc_retryable(Code::Internal));
    }
}
