//! OTLP/gRPC receiver: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`.
//!
//! gzip is accepted and sent. tonic enforces `max_body_bytes` (as `max_decoding_message_size`)
//! on the message as received *and* while decompressing (its gzip output buffer is capped at
//! the limit), so a gzip bomb is cut off without inflating past the limit.
//!
//! A front layer ([`Front`]) charges the memory budget before tonic reads the message, and
//! fixes the codes of errors tonic answers without the handler.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::grpc_front::{Admitted, Front, Handled};
use crate::metrics::{self, Protocol, RequestReject};
use crate::receiver::Receiver;

/// Serves the gRPC receiver on `listener` until `shutdown` is cancelled, then finishes
/// in-flight requests.
///
/// # Errors
/// [`Error::Grpc`] when the server fails.
pub async fn serve_grpc(
    listener: TcpListener,
    receiver: Arc<Receiver>,
    shutdown: CancellationToken,
) -> Result<()> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(grpc_service(receiver))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
        .map_err(Error::Grpc)
}

/// The metrics service with compression, limits, admission and error mapping configured.
fn grpc_service(receiver: Arc<Receiver>) -> Front<MetricsServiceServer<MetricsGrpc>> {
    let max = receiver.max_body_bytes();
    let server = MetricsServiceServer::new(MetricsGrpc {
        receiver: Arc::clone(&receiver),
    })
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(max);
    Front::new(server, receiver)
}

struct MetricsGrpc {
    receiver: Arc<Receiver>,
}

#[tonic::async_trait]
impl MetricsService for MetricsGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> std::result::Result<Response<ExportMetricsServiceResponse>, Status> {
        let start = Instant::now();
        if let Some(h) = request.extensions().get::<Handled>() {
            h.0.store(true, Ordering::Relaxed);
        }
        let admitted = request.extensions().get::<Admitted>().cloned();
        let req = request.into_inner();
        // The handler only sees the decoded message; its encoded size is the body size.
        let body_bytes = req.encoded_len();
        metrics::request_bytes(Protocol::Grpc, body_bytes);
        let span = tracing::debug_span!("otlp_grpc_export");
        let result = async {
            // Served without the front layer (not in Phoenix): admit here.
            let charge = match admitted {
                Some(a) => a.0,
                None => Arc::new(self.receiver.admit(body_bytes, false).await?),
            };
            self.receiver.export(Protocol::Grpc, &req, &charge).await
        }
        .instrument(span)
        .await;
        let (label, answer) = match result {
            Ok(outcome) => ("ok", Ok(Response::new(outcome.response()))),
            Err(e) => {
                let (reason, status) = status_of(e);
                metrics::request_rejected(Protocol::Grpc, reason);
                (code_label(status.code()), Err(status))
            }
        };
        metrics::request(Protocol::Grpc, label, start.elapsed());
        answer
    }
}

/// The reject reason and gRPC status of a failed export.
pub(crate) fn status_of(e: Error) -> (RequestReject, Status) {
    match e {
        Error::MemoryBudget { retry_after } => (
            RequestReject::MemoryBudget,
            Status::with_error_details(
                Code::Unavailable,
                e.to_string(),
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
        ),
        Error::Unavailable { retry_after, .. } => (
            RequestReject::PipelineFull,
            Status::with_error_details(
                Code::Unavailable,
                e.to_string(),
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
        ),
        Error::TooLarge { .. } | Error::OverBudget { .. } => (
            RequestReject::BodyTooLarge,
            Status::resource_exhausted(e.to_string()),
        ),
        Error::InvalidProtobuf(_) => (
            RequestReject::InvalidBody,
            Status::invalid_argument(e.to_string()),
        ),
        _ => (RequestReject::Internal, Status::internal(e.to_string())),
    }
}

/// The `status` label of a gRPC code.
pub(crate) fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::InvalidArgument => "invalid_argument",
        Code::ResourceExhausted => "resource_exhausted",
        Code::Unavailable => "unavailable",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        _ => "other",
    }
}
