//! The layer in front of the tonic metrics service: memory admission and error fixes.
//!
//! Admission: tonic reads and decodes the whole message before the handler runs, so the budget
//! is charged here, before tonic reads it: by the request's `content-length` when present, else
//! by the 5-byte gRPC message prefix (compressed flag and length), read from the first body
//! frame(s) and replayed to tonic. Without room in time the request is answered UNAVAILABLE
//! with RetryInfo and its message is never read. A declared length over `max_body_bytes` is
//! not charged: tonic refuses it right after the prefix.
//!
//! Error fixes: tonic answers errors it detects before our handler with codes that misguide
//! OTLP clients: an undecodable message is INTERNAL and an oversized one OUT_OF_RANGE (which
//! OTLP clients retry). They are rewritten to INVALID_ARGUMENT and RESOURCE_EXHAUSTED (neither
//! retried) and counted, since they never reach the handler.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::StreamExt;
use http::header::CONTENT_LENGTH;
use http::HeaderValue;
use http_body_util::{BodyExt, BodyStream, StreamBody};
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::Code;

use crate::budget::Charge;
use crate::grpc::{code_label, status_of};
use crate::metrics::{self, Protocol, RequestReject};
use crate::receiver::Receiver;

/// Length of the gRPC message prefix: compressed flag (1) and message length (4).
const PREFIX: usize = 5;

/// Marks that a request reached the handler (so [`Front`] leaves its answer alone).
#[derive(Clone)]
pub(crate) struct Handled(pub(crate) Arc<AtomicBool>);

/// The request's charge, for the handler to correct once the message is parsed.
#[derive(Clone)]
pub(crate) struct Admitted(pub(crate) Arc<Charge>);

/// Wraps the tonic service: admits requests against the memory budget, and fixes and counts
/// the errors tonic answers without the handler.
#[derive(Clone)]
pub(crate) struct Front<S> {
    inner: S,
    receiver: Arc<Receiver>,
}

impl<S> Front<S> {
    /// `inner` behind admission by `receiver`'s budget.
    pub(crate) fn new(inner: S, receiver: Arc<Receiver>) -> Self {
        Self { inner, receiver }
    }
}

impl<S: NamedService> NamedService for Front<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = std::result::Result<T, Infallible>> + Send>>;

impl<S> Service<http::Request<Body>> for Front<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // Call the instance that was polled ready; keep a fresh clone for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let rx = Arc::clone(&self.receiver);
        Box::pin(async move {
            let start = Instant::now();
            let (declared, mut req) = declared_size(req).await;
            let charge = match declared {
                Some((bytes, compressed)) if bytes <= rx.max_body_bytes() + PREFIX => {
                    match rx.admit(bytes, compressed).await {
                        Ok(c) => Some(Arc::new(c)),
                        Err(e) => return Ok(reject(e, start)),
                    }
                }
                // Unknown or over the limit: tonic refuses it before reading the message.
                _ => None,
            };
            if let Some(c) = &charge {
                req.extensions_mut().insert(Admitted(Arc::clone(c)));
            }
            let handled = Arc::new(AtomicBool::new(false));
            req.extensions_mut().insert(Handled(Arc::clone(&handled)));
            let mut resp = inner.call(req).await?;
            if !handled.load(Ordering::Relaxed) {
                fix_unhandled(&mut resp, start);
            }
            // The handler has finished: the edge took the batch (or refused it).
            drop(charge);
            Ok(resp)
        })
    }
}

/// The UNAVAILABLE (or RESOURCE_EXHAUSTED) answer to a request the budget refused, counted.
fn reject(e: crate::Error, start: Instant) -> http::Response<Body> {
    let (reason, status) = status_of(e);
    metrics::request_rejected(Protocol::Grpc, reason);
    metrics::request(Protocol::Grpc, code_label(status.code()), start.elapsed());
    tracing::debug!(
        reason = reason.as_str(),
        "Rejected OTLP/gRPC request before reading it."
    );
    status.into_http::<Body>()
}

/// The body size the request declares (`content-length`, else the message prefix) and whether
/// it is compressed; the request comes back with its body intact.
async fn declared_size(req: http::Request<Body>) -> (Option<(usize, bool)>, http::Request<Body>) {
    let gzip_header = req
        .headers()
        .get("grpc-encoding")
        .is_some_and(|v| v.as_bytes() != b"identity");
    let content_length = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = content_length {
        return (Some((n, gzip_header)), req);
    }
    let (parts, body) = req.into_parts();
    let (prefix, body) = peek_prefix(body).await;
    let declared = prefix.map(|p| {
        let len = u32::from_be_bytes([p[1], p[2], p[3], p[4]]);
        (PREFIX.saturating_add(len as usize), p[0] != 0)
    });
    (declared, http::Request::from_parts(parts, body))
}

/// Reads frames until the message prefix is buffered; returns it (if the body had one) and a
/// body that replays everything read, then the rest.
async fn peek_prefix(mut body: Body) -> (Option<[u8; PREFIX]>, Body) {
    let mut frames = Vec::new();
    let mut head = [0u8; PREFIX];
    let mut have = 0;
    let mut ended = false;
    while have < PREFIX {
        match body.frame().await {
            None => {
                ended = true;
                break;
            }
            Some(Err(e)) => {
                frames.push(Err(e));
                ended = true;
                break;
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let take = (PREFIX - have).min(data.len());
                    head[have..have + take].copy_from_slice(&data[..take]);
                    have += take;
                }
                frames.push(Ok(frame));
            }
        }
    }
    let read = futures::stream::iter(frames);
    let replay = if ended {
        Body::new(StreamBody::new(read))
    } else {
        Body::new(StreamBody::new(read.chain(BodyStream::new(body))))
    };
    ((have == PREFIX).then_some(head), replay)
}

/// Maps and counts an error answered by tonic before the handler ran.
fn fix_unhandled(resp: &mut http::Response<Body>, start: Instant) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Full;

    /// The prefix is found across frames and the replayed body is byte-identical.
    #[tokio::test]
    async fn peek_replays_everything() {
        let mut chunks = Vec::new();
        for part in [&[1u8, 0, 0][..], &[1, 2, 9, 9], &[8]] {
            let frame = Full::new(Bytes::copy_from_slice(part)).frame().await;
            chunks.push(
                frame
                    .expect("a frame")
                    .map_err(|_| tonic::Status::internal("x")),
            );
        }
        let body = Body::new(StreamBody::new(futures::stream::iter(chunks)));
        let (prefix, replay) = peek_prefix(body).await;
        assert_eq!(prefix, Some([1, 0, 0, 1, 2]));
        let all = replay.collect().await.expect("body").to_bytes();
        assert_eq!(&all[..], &[1, 0, 0, 1, 2, 9, 9, 8]);
    }

    /// A body shorter than the prefix has none, and still replays.
    #[tokio::test]
    async fn short_body_has_no_prefix() {
        let body = Body::new(Full::new(Bytes::from_static(&[0, 0])));
        let (prefix, replay) = peek_prefix(body).await;
        assert_eq!(prefix, None);
        let all = replay.collect().await.expect("body").to_bytes();
        assert_eq!(&all[..], &[0, 0]);
    }
}
