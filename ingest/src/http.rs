//! OTLP/HTTP receiver: `POST /v1/metrics` (protobuf or JSON, identity or gzip).
//!
//! Answers per the OTLP/HTTP spec, in the request's content type: 200 with an
//! `ExportMetricsServiceResponse` (with `partial_success` only when points were rejected);
//! 400 undecodable body; 413 body too large (compressed or decompressed); 415 unknown content
//! type or encoding (plain JSON body); 503 with `Retry-After` when the memory budget has no
//! room (decided from `Content-Length` before the body is read) or the pipeline refuses the
//! batch. Error bodies are a `google.rpc.Status`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::body::{gunzip_limited, read_limited, BodyError, Encoding};
use crate::error::{Error, Result};
use crate::metrics::{self, Protocol, RequestReject};
use crate::receiver::{Receiver, ADMIT_FACTOR};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
/// Body size assumed on admission when there is no `Content-Length` (chunked); the charge
/// grows with the bytes really received.
const CHUNKED_GUESS: usize = 64 * 1024;

/// gRPC status codes used in `google.rpc.Status` error bodies.
mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

/// Body format of a request, and of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// From a `Content-Type` value; parameters such as `; charset=utf-8` are ignored.
    fn parse(header: Option<&str>) -> Option<Self> {
        let media = header?.split(';').next()?.trim();
        if media.eq_ignore_ascii_case(PROTOBUF) {
            Some(Format::Protobuf)
        } else if media.eq_ignore_ascii_case(JSON) {
            Some(Format::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => PROTOBUF,
            Format::Json => JSON,
        }
    }
}

/// The OTLP/HTTP router: `POST /v1/metrics`.
pub fn http_router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route("/v1/metrics", post(export))
        // The handler enforces `max_body_bytes` itself, on both sides of decompression.
        .layer(DefaultBodyLimit::disable())
        .with_state(receiver)
}

/// Serves [`http_router`] on `listener` until `shutdown` is cancelled, then finishes
/// in-flight requests.
///
/// # Errors
/// [`Error::Io`] when the server fails.
pub async fn serve_http(
    listener: TcpListener,
    receiver: Arc<Receiver>,
    shutdown: CancellationToken,
) -> Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        // Small responses: don't let Nagle delay them.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, http_router(receiver))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(Error::Io)
}

/// A request that failed as a whole.
struct Failure {
    status: StatusCode,
    reason: RequestReject,
    message: String,
    retry_after: Option<Duration>,
}

impl Failure {
    fn new(status: StatusCode, reason: RequestReject, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    fn body(rx: &Receiver, e: BodyError) -> Self {
        match e {
            BodyError::Budget(e) => Self::export(rx.budget_error(e)),
            BodyError::TooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                RequestReject::BodyTooLarge,
                "request body is larger than the limit",
            ),
            BodyError::Invalid(m) => {
                Self::new(StatusCode::BAD_REQUEST, RequestReject::InvalidBody, m)
            }
        }
    }

    fn export(e: Error) -> Self {
        match &e {
            Error::Unavailable { retry_after, .. } => Self {
                retry_after: Some(*retry_after),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    RequestReject::PipelineFull,
                    e.to_string(),
                )
            },
            Error::MemoryBudget { retry_after } => Self {
                retry_after: Some(*retry_after),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    RequestReject::MemoryBudget,
                    e.to_string(),
                )
            },
            Error::InvalidProtobuf(_) => Self::new(
                StatusCode::BAD_REQUEST,
                RequestReject::InvalidBody,
                e.to_string(),
            ),
            Error::TooLarge { .. } | Error::OverBudget { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                RequestReject::BodyTooLarge,
                e.to_string(),
            ),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                RequestReject::Internal,
                e.to_string(),
            ),
        }
    }

    fn grpc_code(&self) -> i32 {
        match self.status {
            StatusCode::PAYLOAD_TOO_LARGE => code::RESOURCE_EXHAUSTED,
            StatusCode::SERVICE_UNAVAILABLE => code::UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR => code::INTERNAL,
            _ => code::INVALID_ARGUMENT,
        }
    }

    /// The error response; `format` is `None` when the request's own format is unknown.
    fn into_response(self, format: Option<Format>) -> Response {
        let code = self.grpc_code();
        let (content_type, body) = match format {
            Some(Format::Protobuf) => {
                let status = tonic_types::pb::Status {
                    code,
                    message: self.message,
                    details: Vec::new(),
                };
                (PROTOBUF, status.encode_to_vec())
            }
            Some(Format::Json) | None => {
                let json = serde_json::json!({ "code": code, "message": self.message });
                (JSON, json.to_string().into_bytes())
            }
        };
        let mut resp = (self.status, [(CONTENT_TYPE, content_type)], body).into_response();
        if let Some(after) = self.retry_after {
            // Whole seconds, rounded up, at least 1.
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp
    }
}

fn header(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn export(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    let start = Instant::now();
    let format = Format::parse(header(&headers, CONTENT_TYPE));
    let span = tracing::debug_span!("otlp_http_export", format = ?format);
    let result = handle(&rx, format, &headers, body).instrument(span).await;
    let resp = match result {
        Ok(resp) => resp,
        Err(failure) => {
            metrics::request_rejected(Protocol::Http, failure.reason);
            // 415 answers in plain JSON: the client's format may be what we don't speak.
            let answer_format = match failure.reason {
                RequestReject::UnsupportedMediaType => None,
                _ => format,
            };
            failure.into_response(answer_format)
        }
    };
    metrics::request(Protocol::Http, status_label(resp.status()), start.elapsed());
    resp
}

async fn handle(
    rx: &Receiver,
    format: Option<Format>,
    headers: &HeaderMap,
    body: Body,
) -> std::result::Result<Response, Failure> {
    let unsupported = |m: String| {
        Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RequestReject::UnsupportedMediaType,
            m,
        )
    };
    let Some(format) = format else {
        return Err(unsupported(format!(
            "unsupported content type {:?}; use {PROTOBUF} or {JSON}",
            header(headers, CONTENT_TYPE).unwrap_or("")
        )));
    };
    let encoding = Encoding::parse(header(headers, CONTENT_ENCODING)).ok_or_else(|| {
        unsupported(format!(
            "unsupported content encoding {:?}; use gzip or identity",
            header(headers, CONTENT_ENCODING).unwrap_or("")
        ))
    })?;
    let max = rx.max_body_bytes();
    let declared = header(headers, CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(Failure::body(rx, BodyError::TooLarge));
    }
    // Admission: charge the budget for the declared body before reading a byte of it.
    let guess = declared.map_or(CHUNKED_GUESS.min(max), |n| n as usize);
    let charge = rx
        .admit(guess, encoding == Encoding::Gzip)
        .await
        .map_err(Failure::export)?;
    let reserve = |bytes| charge.at_least(bytes).map_err(BodyError::Budget);
    let raw = read_limited(body, max, reserve)
        .await
        .map_err(|e| Failure::body(rx, e))?;
    let data = match encoding {
        Encoding::Identity => raw,
        Encoding::Gzip => inflate(raw, max, reserve).map_err(|e| Failure::body(rx, e))?,
    };
    metrics::request_bytes(Protocol::Http, data.len());
    // The parsed message (and its batch) take about ADMIT_FACTOR × the body.
    charge
        .anticipate(data.len().saturating_mul(ADMIT_FACTOR))
        .map_err(|e| Failure::export(rx.budget_error(e)))?;
    let outcome = match format {
        // Read in place: the body stands for the message in the charge.
        Format::Protobuf => rx.export_protobuf(Protocol::Http, &data, &charge).await,
        Format::Json => {
            let req = parse_json(&data)?;
            // The message holds its own copies; the charge is set to the message and batch next.
            drop(data);
            rx.export(Protocol::Http, &req, &charge).await
        }
    }
    .map_err(Failure::export)?;
    Ok(success(format, &outcome.response()))
}

/// Inflates `raw`, dropping it as soon as the output is complete.
fn inflate(
    raw: bytes::Bytes,
    max: usize,
    reserve: impl FnMut(usize) -> std::result::Result<(), BodyError>,
) -> std::result::Result<bytes::Bytes, BodyError> {
    gunzip_limited(&raw, max, reserve).map(Into::into)
}

fn parse_json(data: &[u8]) -> std::result::Result<ExportMetricsServiceRequest, Failure> {
    serde_json::from_slice(data).map_err(|e| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            RequestReject::InvalidBody,
            format!("invalid JSON body: {e}"),
        )
    })
}

fn success(format: Format, resp: &ExportMetricsServiceResponse) -> Response {
    let body = match format {
        Format::Protobuf => resp.encode_to_vec(),
        // `{}` rather than `{"partialSuccess":null}` when everything was accepted.
        Format::Json if resp.partial_success.is_none() => b"{}".to_vec(),
        Format::Json => serde_json::to_vec(resp).unwrap_or_else(|_| b"{}".to_vec()),
    };
    (
        StatusCode::OK,
        [(CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}

fn status_label(s: StatusCode) -> &'static str {
    match s.as_u16() {
        200 => "200",
        400 => "400",
        413 => "413",
        415 => "415",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Content types match case-insensitively with parameters; others are unknown.
    #[test]
    fn content_types() {
        assert_eq!(
            Format::parse(Some("application/x-protobuf")),
            Some(Format::Protobuf)
        );
        assert_eq!(
            Format::parse(Some("Application/JSON; charset=utf-8")),
            Some(Format::Json)
        );
        assert_eq!(Format::parse(Some("text/plain")), None);
        assert_eq!(Format::parse(None), None);
    }
}
