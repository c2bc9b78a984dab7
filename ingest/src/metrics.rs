//! Metrics of the receivers (through the `metrics` facade), with small fixed label sets.
//!
//! | name | labels |
//! | --- | --- |
//! | `phoenix_ingest_requests_total` | `protocol`, `status` (HTTP code, or gRPC code name) |
//! | `phoenix_ingest_requests_rejected_total` | `protocol`, `reason` (`invalid_body`, `body_too_large`, `unsupported_media_type`, `memory_budget`, `pipeline_full`, `internal`) |
//! | `phoenix_ingest_request_bytes_total` | `protocol` (body bytes after decompression) |
//! | `phoenix_ingest_request_duration_seconds` | `protocol` (histogram) |
//! | `phoenix_ingest_datapoints_received_total` | `protocol` |
//! | `phoenix_ingest_datapoints_accepted_total` | `protocol` |
//! | `phoenix_ingest_datapoints_rejected_total` | `protocol`, `reason` ([`Reason::as_str`]) |
//! | `phoenix_ingest_exemplars_dropped_total` | `protocol` |
//! | `phoenix_ingest_metrics_without_data_total` | `protocol` |
//! | `phoenix_ingest_in_flight_bytes` | (gauge) bytes charged against the memory budget now |
//! | `phoenix_ingest_memory_budget_bytes` | (gauge) `ingest.max_in_flight_bytes` |

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

use crate::decode::{Decoded, Reason};

/// `phoenix_ingest_requests_total`.
pub const REQUESTS: &str = "phoenix_ingest_requests_total";
/// `phoenix_ingest_requests_rejected_total`.
pub const REQUESTS_REJECTED: &str = "phoenix_ingest_requests_rejected_total";
/// `phoenix_ingest_request_bytes_total`.
pub const REQUEST_BYTES: &str = "phoenix_ingest_request_bytes_total";
/// `phoenix_ingest_request_duration_seconds`.
pub const REQUEST_DURATION: &str = "phoenix_ingest_request_duration_seconds";
/// `phoenix_ingest_datapoints_received_total`.
pub const DATAPOINTS_RECEIVED: &str = "phoenix_ingest_datapoints_received_total";
/// `phoenix_ingest_datapoints_accepted_total`.
pub const DATAPOINTS_ACCEPTED: &str = "phoenix_ingest_datapoints_accepted_total";
/// `phoenix_ingest_datapoints_rejected_total`.
pub const DATAPOINTS_REJECTED: &str = "phoenix_ingest_datapoints_rejected_total";
/// `phoenix_ingest_exemplars_dropped_total`.
pub const EXEMPLARS_DROPPED: &str = "phoenix_ingest_exemplars_dropped_total";
/// `phoenix_ingest_metrics_without_data_total`.
pub const METRICS_WITHOUT_DATA: &str = "phoenix_ingest_metrics_without_data_total";
/// `phoenix_ingest_in_flight_bytes`.
pub const IN_FLIGHT_BYTES: &str = "phoenix_ingest_in_flight_bytes";
/// `phoenix_ingest_memory_budget_bytes`.
pub const MEMORY_BUDGET_BYTES: &str = "phoenix_ingest_memory_budget_bytes";

/// Which receiver handled a request (the `protocol` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

impl Protocol {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        }
    }
}

/// Whole-request rejection reasons (the `reason` label of `requests_rejected_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestReject {
    /// Undecodable body.
    InvalidBody,
    /// Body (or decompressed body, or decoded columns) too large.
    BodyTooLarge,
    /// Unknown content type or encoding.
    UnsupportedMediaType,
    /// The memory budget had no room for the request (answered before its body was read).
    MemoryBudget,
    /// The edge refused the batch.
    PipelineFull,
    /// A bug while building the batch.
    Internal,
}

impl RequestReject {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestReject::InvalidBody => "invalid_body",
            RequestReject::BodyTooLarge => "body_too_large",
            RequestReject::UnsupportedMediaType => "unsupported_media_type",
            RequestReject::MemoryBudget => "memory_budget",
            RequestReject::PipelineFull => "pipeline_full",
            RequestReject::Internal => "internal",
        }
    }
}

/// Registers descriptions and units with the installed recorder (call once at startup).
pub fn describe() {
    describe_counter!(
        REQUESTS,
        "OTLP export requests answered, by protocol and status."
    );
    describe_counter!(
        REQUESTS_REJECTED,
        "OTLP export requests rejected as a whole, by reason."
    );
    describe_counter!(
        REQUEST_BYTES,
        Unit::Bytes,
        "OTLP request body bytes after decompression."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an OTLP export request."
    );
    describe_counter!(
        DATAPOINTS_RECEIVED,
        "Datapoints decoded from OTLP requests."
    );
    describe_counter!(DATAPOINTS_ACCEPTED, "Datapoints handed to the pipeline.");
    describe_counter!(DATAPOINTS_REJECTED, "Datapoints rejected, by reason.");
    describe_counter!(
        EXEMPLARS_DROPPED,
        "Exemplars dropped (Phoenix does not store them)."
    );
    describe_counter!(METRICS_WITHOUT_DATA, "Metrics received without any data.");
    describe_gauge!(
        IN_FLIGHT_BYTES,
        Unit::Bytes,
        "Bytes that requests in flight hold against the ingest memory budget."
    );
    describe_gauge!(
        MEMORY_BUDGET_BYTES,
        Unit::Bytes,
        "The ingest memory budget (ingest.max_in_flight_bytes)."
    );
}

/// Bytes charged against the memory budget now.
pub(crate) fn in_flight_bytes(bytes: usize) {
    gauge!(IN_FLIGHT_BYTES).set(bytes as f64);
}

/// The memory budget.
pub(crate) fn memory_budget(bytes: usize) {
    gauge!(MEMORY_BUDGET_BYTES).set(bytes as f64);
}

/// One answered request.
pub(crate) fn request(protocol: Protocol, status: &'static str, elapsed: Duration) {
    let p = protocol.as_str();
    counter!(REQUESTS, "protocol" => p, "status" => status).increment(1);
    histogram!(REQUEST_DURATION, "protocol" => p).record(elapsed.as_secs_f64());
}

/// One request rejected as a whole.
pub(crate) fn request_rejected(protocol: Protocol, reason: RequestReject) {
    counter!(REQUESTS_REJECTED, "protocol" => protocol.as_str(), "reason" => reason.as_str())
        .increment(1);
}

/// Body bytes of one request.
pub(crate) fn request_bytes(protocol: Protocol, bytes: usize) {
    counter!(REQUEST_BYTES, "protocol" => protocol.as_str()).increment(bytes as u64);
}

/// Datapoint counters of one decoded request; `refused` is true when the edge did not take
/// the batch (its points count as rejected with reason `pipeline_full`).
pub(crate) fn datapoints(protocol: Protocol, d: &Decoded, refused: bool) {
    let p = protocol.as_str();
    counter!(DATAPOINTS_RECEIVED, "protocol" => p).increment((d.accepted + d.rejected) as u64);
    let rejected = |reason: Reason, n: u64| {
        counter!(DATAPOINTS_REJECTED, "protocol" => p, "reason" => reason.as_str()).increment(n);
    };
    for (reason, n) in d.rejections.iter() {
        rejected(reason, n);
    }
    if refused {
        if d.accepted > 0 {
            rejected(Reason::PipelineFull, d.accepted as u64);
        }
    } else {
        counter!(DATAPOINTS_ACCEPTED, "protocol" => p).increment(d.accepted as u64);
    }
    if d.exemplars_dropped > 0 {
        counter!(EXEMPLARS_DROPPED, "protocol" => p).increment(d.exemplars_dropped);
    }
    if d.metrics_without_data > 0 {
        counter!(METRICS_WITHOUT_DATA, "protocol" => p).increment(d.metrics_without_data);
    }
}
