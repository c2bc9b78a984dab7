//! OTLP/HTTP transport: `POST /v1/metrics` with a keep-alive connection per sender.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;
use reqwest::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};

use crate::args::Compression;
use crate::error::{LoadgenError, Result};
use crate::outcome::{http_retryable, partially_rejected, Outcome};
use crate::worker::{CONNECT_TIMEOUT, REQUEST_TIMEOUT};

/// One HTTP/1.1 keep-alive connection sending one request at a time.
#[derive(Debug)]
pub(crate) struct HttpSender {
    client: reqwest::Client,
    url: reqwest::Url,
    gzip: bool,
}

impl HttpSender {
    /// A client for `url` (the full `/v1/metrics` URL).
    ///
    /// # Errors
    /// [`LoadgenError::Invalid`] for a bad URL, [`LoadgenError::Client`] if the client fails.
    pub(crate) fn new(url: &str, compression: Compression) -> Result<Self> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| LoadgenError::invalid("endpoint (--endpoint)", e.to_string()))?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| LoadgenError::Client {
                protocol: "http",
                message: e.to_string(),
            })?;
        Ok(HttpSender {
            client,
            url,
            gzip: compression == Compression::Gzip,
        })
    }

    /// The request body for an encoded message: gzip-compressed if asked.
    pub(crate) fn prepare(&self, message: Bytes) -> std::io::Result<Bytes> {
        if !self.gzip {
            return Ok(message);
        }
        let mut gz = GzEncoder::new(
            Vec::with_capacity(message.len() / 4),
            flate2::Compression::fast(),
        );
        gz.write_all(&message)?;
        Ok(Bytes::from(gz.finish()?))
    }

    /// Posts one body prepared by [`HttpSender::prepare`].
    pub(crate) async fn send(&self, body: Bytes) -> Outcome {
        let mut req = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/x-protobuf");
        if self.gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        let Ok(resp) = req.body(body).send().await else {
            return Outcome::Failed;
        };
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get(RETRY_AFTER).and_then(parse_retry_after);
        let is_json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        // Reading the body to its end keeps the connection reusable.
        let Ok(payload) = resp.bytes().await else {
            return Outcome::Failed;
        };
        if (200..300).contains(&status) {
            return Outcome::Accepted {
                rejected: rejected_in(&payload, is_json),
            };
        }
        if http_retryable(status) {
            return Outcome::Retryable { after: retry_after };
        }
        Outcome::Rejected
    }
}

/// Partial-success rejections in a 2xx body (protobuf, or JSON if the server chose it).
fn rejected_in(payload: &[u8], is_json: bool) -> u64 {
    if is_json {
        // proto3 JSON renders int64 as a string, but some servers send a number.
        let v: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        let n = &v["partialSuccess"]["rejectedDataPoints"];
        return n
            .as_u64()
            .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0);
    }
    ExportMetricsServiceResponse::decode(payload)
        .as_ref()
        .map_or(0, partially_rejected)
}

/// `Retry-After` in delay-seconds form (the form OTLP servers send).
fn parse_retry_after(v: &HeaderValue) -> Option<Duration> {
    let secs: f64 = v.to_str().ok()?.trim().parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;

    /// Retry-After seconds parse; dates and junk are ignored.
    #[test]
    fn retry_after() {
        let p = |s: &'static str| parse_retry_after(&HeaderValue::from_static(s));
        assert_eq!(p("2"), Some(Duration::from_secs(2)));
        assert_eq!(p(" 0 "), Some(Duration::ZERO));
        assert_eq!(p("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(p("-1"), None);
        assert_eq!(p("1e300"), None);
    }

    /// Partial success is read from protobuf and JSON bodies; an empty body rejects nothing.
    #[test]
    fn partial_success_bodies() {
        let resp = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 7,
                error_message: "too old".into(),
            }),
        };
        assert_eq!(rejected_in(&resp.encode_to_vec(), false), 7);
        let json = br#"{"partialSuccess":{"rejectedDataPoints":"5","errorMessage":"x"}}"#;
        assert_eq!(rejected_in(json, true), 5);
        assert_eq!(
            rejected_in(br#"{"partialSuccess":{"rejectedDataPoints":3}}"#, true),
            3
        );
        assert_eq!(rejected_in(b"{}", true), 0);
        assert_eq!(rejected_in(b"", false), 0);
    }

    /// gzip bodies decompress to the message.
    #[test]
    fn gzip_prepare() {
        let s =
            HttpSender::new("http://127.0.0.1:1/v1/metrics", Compression::Gzip).expect("client");
        let body = s.prepare(Bytes::from(vec![7u8; 1000])).expect("gzip");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
            .expect("gunzip");
        assert_eq!(out, vec![7u8; 1000]);
    }
}
