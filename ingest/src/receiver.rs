//! State shared by both receivers: decode, hand the batch to the edge, build the answer.
//!
//! Ack contract: a request is answered with success only after [`EdgeSender::send`] returned
//! `Ok`, i.e. once the edge is responsible for the batch.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use phoenix_model::config::IngestConfig;
use phoenix_model::{EdgeError, EdgeSender};

use crate::decode::{decode, DecodeLimits};
use crate::error::{Error, Result};
use crate::metrics::{self, Protocol};

/// The receivers' shared state.
pub struct Receiver {
    edge: Arc<dyn EdgeSender>,
    limits: DecodeLimits,
    max_body_bytes: usize,
    retry_after: Duration,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("limits", &self.limits)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("retry_after", &self.retry_after)
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
    /// A receiver sending to `edge` with the limits of `cfg`.
    pub fn new(edge: Arc<dyn EdgeSender>, cfg: &IngestConfig) -> Self {
        Self {
            edge,
            limits: DecodeLimits::from_config(cfg),
            max_body_bytes: cfg.max_body_bytes,
            retry_after: Duration::from_secs(cfg.retry_after_secs.max(1)),
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
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the edge refuses the batch; [`Error::TooLarge`] and
    /// [`Error::Arrow`] from decoding.
    pub async fn export(
        &self,
        protocol: Protocol,
        req: &ExportMetricsServiceRequest,
    ) -> Result<ExportOutcome> {
        let mut decoded = decode(req, &self.limits)?;
        let batch = decoded.batch.take();
        let sent = match batch {
            Some(batch) => self.edge.send(batch).await,
            None => Ok(()),
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
