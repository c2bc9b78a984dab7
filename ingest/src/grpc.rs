//! OTLP/gRPC receiver: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`.
//!
//! gzip is accepted and sent. tonic enforces `max_body_bytes` (as `max_decoding_message_size`)
//! on the message as received *and* while decompressing (its gzip output buffer is capped at
//! the limit), so a gzip bomb is cut off without inflating past the limit.
//!
//! tonic answers errors it detects before our handler with codes that misguide OTLP clients:
//! an undecodable message is INTERNAL and an oversized one OUT_OF_RANGE (which OTLP clients
//! retry). [`Observed`] rewrites those to INVALID_ARGUMENT and RESOURCE_EXHAUSTED (neither
//! retried) and counts them, since they never reach the handler.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::HeaderValue;
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
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::Instrument;

use crate::error::{Error, Result};
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

/// The metrics service with compression, limits and error mapping configured.
fn grpc_service(receiver: Arc<Receiver>) -> Observed<MetricsServiceServer<MetricsGrpc>> {
    let max = receiver.max_body_bytes();
    let server = MetricsServiceServer::new(MetricsGrpc { receiver })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max);
    Observed { inner: server }
}

/// Marks that a request reached the handler (so [`Observed`] leaves its answer alone).
#[derive(Clone)]
struct Handled(Arc<AtomicBool>);

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
        let req = request.into_inner();
        // The handler only sees the decoded message; its encoded size is the body size.
        metrics::request_bytes(Protocol::Grpc, req.encoded_len());
        let span = tracing::debug_span!("otlp_grpc_export");
        let result = self
            .receiver
            .export(Protocol::Grpc, &req)
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

fn status_of(e: Error) -> (RequestReject, Status) {
    match e {
        Error::Unavailable { retry_after, .. } => (
            RequestReject::PipelineFull,
            Status::with_error_details(
                Code::Unavailable,
                e.to_string(),
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
        ),
        Error::TooLarge { .. } => (
            RequestReject::BodyTooLarge,
            Status::resource_exhausted(e.to_string()),
        ),
        _ => (RequestReject::Internal, Status::internal(e.to_string())),
    }
}

fn code_label(code: Code) -> &'static str {
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

/// Wraps the tonic service to fix and count the errors tonic answers without the handler.
#[derive(Clone)]
struct Observed<S> {
    inner: S,
}

impl<S: NamedService> NamedService for Observed<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = std::result::Result<T, Infallible>> + Send>>;

impl<S, B> Service<http::Request<B>> for Observed<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let handled = Arc::new(AtomicBool::new(false));
        req.extensions_mut().insert(Handled(Arc::clone(&handled)));
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            if !handled.load(Ordering::Relaxed) {
                fix_unhandled(&mut resp, start);
            }
            Ok(resp)
        })
    }
}

/// Maps and counts an error answered by tonic before the handler ran.
fn fix_unhandled(resp: &mut http::Response<tonic::body::Body>, start: Instant) {
    let Some(code) = resp
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
    else {
        return;
    };
    let (reason, code) = match code {
        // Protobuf decode or gzip errors.
        Code::Internal => (RequestReject::InvalidBody, Code::InvalidArgument),
        // Declared message length over the limit.
        Code::OutOfRange => (RequestReject::BodyTooLarge, Code::ResourceExhausted),
        // Decompressed size over the limit.
        Code::ResourceExhausted => (RequestReject::BodyTooLarge, Code::ResourceExhausted),
        // Unsupported grpc-encoding.
        Code::Unimplemented => (RequestReject::UnsupportedMediaType, Code::Unimplemented),
        _ => return,
    };
    resp.headers_mut()
        .insert("grpc-status", HeaderValue::from(code as i32));
    metrics::request_rejected(Protocol::Grpc, reason);
    metrics::request(Protocol::Grpc, code_label(code), start.elapsed());
    tracing::debug!(code = ?code, reason = reason.as_str(), "Rejected OTLP/gRPC request.");
}
