//! State shared by both receivers: the memory budget, decode, hand the batch to the edge,
//! build the answer.
//!
//! Ack contract: a request is answered with success only after [`EdgeSender::send`] returned
//! `Ok`, i.e. once the edge is responsible for the batch.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use phoenix_model::config::IngestConfig;
use phoenix_model::{EdgeError, EdgeSender, Replayable};

use crate::budget::{BudgetError, Charge, MemoryBudget};
use crate::decode::{
    decode_protobuf_reserving, decode_reserving, now_unix_nanos, DecodeLimits, Decoded,
};
use crate::error::{Error, Result};
use crate::metrics::{self, Protocol};
use crate::replay::protobuf_source;

/// Memory charged per declared body byte on admission. Measured, an OTLP protobuf body takes
/// 7-9× its size once parsed and decoded to Arrow, up to 20× for points without attributes;
/// the guess errs high because the charge is corrected (usually shrunk) once the request is
/// parsed, while growing it then may fail.
pub const ADMIT_FACTOR: usize = 16;
/// Memory charged per declared byte of a gzip body on admission (OTLP compresses 5-10×).
pub const COMPRESSED_ADMIT_FACTOR: usize = 64;
/// Least memory charged on admission: even a tiny request builds a batch of 30 columns.
pub const MIN_ADMIT_BYTES: usize = 16 * 1024;

/// The receivers' shared state.
pub struct Receiver {
    edge: Arc<dyn EdgeSender>,
    limits: DecodeLimits,
    max_body_bytes: usize,
    retry_after: Duration,
    budget: Arc<MemoryBudget>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("limits", &self.limits)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("retry_after", &self.retry_after)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// A successfully handled export: the edge took every accepted point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOutcome {
    /// Datapoints handed to the edge.
    pub accepted: usize,
    /// Datapoints rejected by validation.
    pub rejected: usize,
    /// `partial_success.error_message`, when points were rejected.
    pub error_message: Option<String>,
}

impl ExportOutcome {
    /// The OTLP response: `partial_success` is set only when points were rejected.
    pub fn response(&self) -> ExportMetricsServiceResponse {
        ExportMetricsServiceResponse {
            partial_success: (self.rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(self.rejected).unwrap_or(i64::MAX),
                error_message: self.error_message.clone().unwrap_or_default(),
            }),
        }
    }
}

impl Receiver {
    /// A receiver sending to `edge` with the limits of `cfg`, and a memory budget of
    /// `max_in_flight_bytes` whose admission waits up to `admission_timeout_ms`.
    pub fn new(edge: Arc<dyn EdgeSender>, cfg: &IngestConfig) -> Self {
        Self {
            edge,
            limits: DecodeLimits::from_config(cfg),
            max_body_bytes: cfg.max_body_bytes,
            retry_after: Duration::from_secs(cfg.retry_after_secs.max(1)),
            budget: MemoryBudget::new(
                cfg.max_in_flight_bytes,
                Duration::from_millis(cfg.admission_timeout_ms),
            ),
        }
    }

    /// The memory budget shared by both receivers.
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// Admits a request whose body declares `body_bytes` (compressed or not): waits up to the
    /// admission timeout for [`ADMIT_FACTOR`] (or [`COMPRESSED_ADMIT_FACTOR`]) times that, at
    /// least [`MIN_ADMIT_BYTES`].
    ///
    /// # Errors
    /// [`Error::MemoryBudget`] when the budget had no room in time.
    pub async fn admit(&self, body_bytes: usize, compressed: bool) -> Result<Charge> {
        let factor = if compressed {
            COMPRESSED_ADMIT_FACTOR
        } else {
            ADMIT_FACTOR
        };
        self.budget
            .admit(body_bytes.saturating_mul(factor).max(MIN_ADMIT_BYTES))
            .await
            .map_err(|e| self.budget_error(e))
    }

    /// The request-level error for a charge that could not be had.
    pub fn budget_error(&self, e: BudgetError) -> Error {
        match e {
            BudgetError::Exhausted => Error::MemoryBudget {
                retry_after: self.retry_after,
            },
            BudgetError::TooLarge { needed, budget } => Error::OverBudget { needed, budget },
        }
    }

    /// Largest body accepted, before and after decompression.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The decoder limits.
    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// Retry hint for a client when the edge is closed or failing without its own hint.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// Decodes `req`, hands the accepted points to the edge and returns what to answer.
    /// A request whose points are all rejected sends nothing and succeeds with the rejections.
    /// Before building the batch, `charge` is set to the estimated memory of `req` and its
    /// batch (the caller should hold nothing else of the request by then); the caller releases
    /// it once this returns, i.e. once the edge took the batch.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the edge refuses the batch; [`Error::MemoryBudget`] /
    /// [`Error::OverBudget`] when the charge cannot grow to the estimate; [`Error::TooLarge`]
    /// and [`Error::Arrow`] from decoding.
    pub async fn export(
        &self,
        protocol: Protocol,
        req: &ExportMetricsServiceRequest,
        charge: &Charge,
    ) -> Result<ExportOutcome> {
        let reserve = |bytes| charge.resize(bytes).map_err(|e| self.budget_error(e));
        let decoded = decode_reserving(req, &self.limits, now_unix_nanos(), reserve)?;
        self.send(protocol, decoded, None).await
    }

    /// [`Receiver::export`] of a serialized request (an OTLP protobuf body), decoded in place;
    /// the body stands for the parsed message in the charge. The edge gets the body with the
    /// batch (see [`crate::replay`]), so a WAL may log it instead of the batch.
    ///
    /// # Errors
    /// As [`Receiver::export`], and [`Error::InvalidProtobuf`] when `body` does not decode.
    pub async fn export_protobuf(
        &self,
        protocol: Protocol,
        body: &bytes::Bytes,
        charge: &Charge,
    ) -> Result<ExportOutcome> {
        let reserve = |bytes| charge.resize(bytes).map_err(|e| self.budget_error(e));
        let now = now_unix_nanos();
        let decoded = decode_protobuf_reserving(body, &self.limits, now, reserve)?;
        let source = protobuf_source(body.clone(), &self.limits, now);
        self.send(protocol, decoded, Some(source)).await
    }

    /// Hands the accepted points of `decoded` (with their `source`, when there is one) to the
    /// edge and builds the outcome.
    async fn send(
        &self,
        protocol: Protocol,
        mut decoded: Decoded,
        source: Option<Replayable>,
    ) -> Result<ExportOutcome> {
        let batch = decoded.batch.take();
        let sent = match (batch, source) {
            (Some(batch), Some(source)) => self.edge.send_replayable(batch, source).await,
            (Some(batch), None) => self.edge.send(batch).await,
            (None, _) => Ok(()),
        };
        metrics::datapoints(protocol, &decoded, sent.is_err());
        tracing::debug!(
            protocol = protocol.as_str(),
            accepted = decoded.accepted,
            rejected = decoded.rejected,
            edge_ok = sent.is_ok(),
            "Decoded export request."
        );
        match sent {
            Ok(()) => Ok(ExportOutcome {
                accepted: decoded.accepted,
                rejected: decoded.rejected,
                error_message: decoded.error_message(),
            }),
            Err(source) => {
                let retry_after = match &source {
                    EdgeError::Full { retry_after } if !retry_after.is_zero() => *retry_after,
                    _ => self.retry_after,
                };
                Err(Error::Unavailable {
                    retry_after,
                    source,
                })
            }
        }
    }
}
