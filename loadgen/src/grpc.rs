//! OTLP/gRPC transport: tonic's client with a codec that sends the pre-encoded bytes as is.

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;
use tonic::client::Grpc;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use tonic_types::StatusExt;

use crate::args::Compression;
use crate::error::{LoadgenError, Result};
use crate::outcome::{grpc_retryable, partially_rejected, Outcome};
use crate::worker::{CONNECT_TIMEOUT, REQUEST_TIMEOUT};

/// The OTLP metrics export method.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// One gRPC connection (HTTP/2 channel) sending one request at a time.
#[derive(Debug)]
pub(crate) struct GrpcSender {
    client: Grpc<Channel>,
}

impl GrpcSender {
    /// A lazily connecting channel to `endpoint`.
    ///
    /// # Errors
    /// [`LoadgenError::Invalid`] if tonic refuses the URL.
    pub(crate) fn new(endpoint: &str, compression: Compression) -> Result<Self> {
        let ep = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| LoadgenError::invalid("endpoint (--endpoint)", e.to_string()))?
            .tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        let mut client = Grpc::new(ep.connect_lazy())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(16 * 1024 * 1024);
        if compression == Compression::Gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        Ok(GrpcSender { client })
    }

    /// Sends one encoded `ExportMetricsServiceRequest`.
    pub(crate) async fn send(&mut self, body: Bytes) -> Outcome {
        if self.client.ready().await.is_err() {
            return Outcome::Failed;
        }
        let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
        match self.client.unary(Request::new(body), path, RawCodec).await {
            Ok(resp) => Outcome::Accepted {
                rejected: partially_rejected(resp.get_ref()),
            },
            Err(status) => classify(&status),
        }
    }
}

/// Maps a failed call to an outcome. Statuses tonic made from a local transport error
/// carry their cause as `source`; statuses the server sent do not.
fn classify(status: &Status) -> Outcome {
    if std::error::Error::source(status).is_some() {
        return Outcome::Failed;
    }
    if grpc_retryable(status.code()) {
        let after = status.get_details_retry_info().and_then(|r| r.retry_delay);
        Outcome::Retryable { after }
    } else {
        Outcome::Rejected
    }
}

/// Sends `Bytes` untouched and decodes the response with prost.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportMetricsServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

/// Copies the pre-encoded message into tonic's frame buffer.
#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.len());
        dst.put_slice(&item);
        Ok(())
    }
}

/// Decodes `ExportMetricsServiceResponse`.
#[derive(Debug, Clone, Copy, Default)]
struct ResponseDecoder;

impl Decoder for ResponseDecoder {
    type Item = ExportMetricsServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportMetricsServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("bad ExportMetricsServiceResponse: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tonic::Code;
    use tonic_types::{ErrorDetails, StatusExt};

    /// Server statuses classify by code; RetryInfo becomes the retry delay.
    #[test]
    fn classify_server_statuses() {
        assert_eq!(
            classify(&Status::invalid_argument("bad")),
            Outcome::Rejected
        );
        assert_eq!(
            classify(&Status::unavailable("busy")),
            Outcome::Retryable { after: None }
        );
        let details = ErrorDetails::with_retry_info(Some(Duration::from_millis(1500)));
        let st = Status::with_error_details(Code::ResourceExhausted, "full", details);
        assert_eq!(
            classify(&st),
            Outcome::Retryable {
                after: Some(Duration::from_millis(1500))
            }
        );
    }
}
