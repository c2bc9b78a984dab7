//! OTLP metrics receivers of Phoenix: OTLP/gRPC and OTLP/HTTP front ends that decode
//! `ExportMetricsServiceRequest`s straight into Arrow batches in
//! [`phoenix_model::metrics_schema`], validate every datapoint, and hand the batch to the
//! pipeline through an [`phoenix_model::EdgeSender`], answering only once the edge took it.
//!
//! The binary binds the listeners and calls [`serve_grpc`] / [`serve_http`] with one shared
//! [`Receiver`], whose [`MemoryBudget`] admits requests by bytes before their bodies are read;
//! both stop accepting on cancellation and finish in-flight requests.

mod body;
pub mod budget;
pub mod decode;
pub mod error;
mod grpc;
mod grpc_front;
mod http;
pub mod metrics;
mod receiver;
pub mod replay;

pub use budget::{BudgetError, Charge, MemoryBudget};
pub use decode::{
    decode, decode_at, decode_protobuf, decode_protobuf_at, DecodeLimits, Decoded, Reason,
    RejectCounts,
};
pub use error::{Error, Result};
pub use grpc::serve_grpc;
pub use http::{http_router, serve_http};
pub use metrics::Protocol;
pub use receiver::{
    ExportOutcome, Receiver, ADMIT_FACTOR, COMPRESSED_ADMIT_FACTOR, MIN_ADMIT_BYTES,
};
