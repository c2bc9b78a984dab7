//! Admission control by bytes (`ingest.max_in_flight_bytes`) against real servers: a budget
//! that holds one small request at a time, concurrent requests beyond it, requests refused
//! before their body arrives, and requests larger than the whole budget.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use phoenix_ingest::decode::estimated_memory;
use phoenix_ingest::{DecodeLimits, MIN_ADMIT_BYTES};
use phoenix_model::config::IngestConfig;
use prost::Message;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::codegen::Service;
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt;

/// A budget of 1.5 × the least admission charge: one small request fits, two never do.
const BUDGET: usize = MIN_ADMIT_BYTES * 3 / 2;
/// How long the test edge holds each batch (so admitted requests keep their charge).
const EDGE_DELAY_MS: u64 = 1000;
/// Concurrent requests sent at once.
const CONCURRENT: usize = 6;

fn budget_config() -> IngestConfig {
    IngestConfig {
        max_in_flight_bytes: BUDGET,
        admission_timeout_ms: 50,
        ..config(1 << 20)
    }
}

/// A request whose estimated memory exceeds [`BUDGET`].
fn big_request() -> ExportMetricsServiceRequest {
    gauge_request(
        "big",
        (0..400)
            .map(|i| point(f64::from(i), vec![string_kv("series", &format!("s-{i}"))]))
            .collect(),
    )
}

/// The fixtures are sized as the tests assume: a good request fits alone, a big one never.
#[test]
fn fixture_sizes() {
    let limits = DecodeLimits::from_config(&budget_config()).without_time_window();
    let small = estimated_memory(&good_request(), &limits);
    assert!(small <= MIN_ADMIT_BYTES, "{small}");
    const { assert!(2 * MIN_ADMIT_BYTES > BUDGET) };
    let big = estimated_memory(&big_request(), &limits);
    assert!(big > BUDGET, "{big}");
}

async fn post(s: &Server, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(s.http_url())
        .header("content-type", "application/x-protobuf")
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("send")
}

/// Waits until the budget is back to zero (the server drops a charge right before answering).
async fn assert_budget_returns_to_zero(s: &Server) {
    for _ in 0..100 {
        if s.receiver.budget().in_flight() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "budget still holds {} bytes",
        s.receiver.budget().in_flight()
    );
}

/// HTTP: of concurrent requests beyond the budget, the admitted one succeeds and the rest get
/// 503 with Retry-After (counted as `memory_budget`); the budget returns to zero and the
/// server then accepts again.
#[tokio::test]
async fn http_concurrent_beyond_budget_get_503() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // The test runtime is single-threaded, so the server's tasks see this recorder too.
    let _guard = metrics::set_default_local_recorder(&recorder);
    let s = start(false, budget_config()).await;
    s.edge.delay_ms.store(EDGE_DELAY_MS, Ordering::SeqCst);
    let body = good_request().encode_to_vec();
    let sends = (0..CONCURRENT).map(|_| post(&s, body.clone()));
    let responses = futures::future::join_all(sends).await;
    let mut ok = 0;
    let mut refused = 0;
    for resp in responses {
        match resp.status() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert_eq!(resp.headers()["retry-after"], "1");
                let status = tonic_types::pb::Status::decode(resp.bytes().await.expect("body"))
                    .expect("google.rpc.Status");
                assert_eq!(status.code, 14);
                assert!(
                    status.message.contains("memory budget"),
                    "{}",
                    status.message
                );
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, refused), (1, CONCURRENT - 1));
    assert_eq!(s.edge.rows(), 3);
    assert_budget_returns_to_zero(&s).await;
    let text = handle.render();
    let rejected = sample(
        &text,
        "phoenix_ingest_requests_rejected_total",
        &[("protocol", "http"), ("reason", "memory_budget")],
    );
    assert_eq!(rejected, Some((CONCURRENT - 1) as f64));
    assert_eq!(
        sample(&text, "phoenix_ingest_in_flight_bytes", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "phoenix_ingest_memory_budget_bytes", &[]),
        Some(BUDGET as f64)
    );
    s.edge.delay_ms.store(0, Ordering::SeqCst);
    assert_eq!(post(&s, body).await.status(), StatusCode::OK);
    assert_eq!(s.edge.rows(), 6);
    s.stop().await;
}

/// HTTP: while the budget is held, a request declaring a large body is answered 503 without
/// the server waiting for (or reading) its body, which the client never sends.
#[tokio::test]
async fn http_refused_before_body_is_read() {
    let s = start(false, budget_config()).await;
    s.edge.delay_ms.store(EDGE_DELAY_MS * 2, Ordering::SeqCst);
    let holder = {
        let body = good_request().encode_to_vec();
        let url = s.http_url();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .map(|r| r.status())
        })
    };
    // Let the holder get admitted.
    for _ in 0..100 {
        if s.receiver.budget().in_flight() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(s.receiver.budget().in_flight() > 0, "holder admitted");
    let mut tcp = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/metrics HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\n\
         content-length: 500000\r\n\r\n",
        s.addr
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut answer))
        .await
        .expect("answered without the body")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]).to_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert_eq!(holder.await.expect("join").expect("holder"), StatusCode::OK);
    assert_budget_returns_to_zero(&s).await;
    s.stop().await;
}

/// HTTP: a request needing more memory than the whole budget is 413 (not retryable), even on
/// an idle server, and leaves nothing charged.
#[tokio::test]
async fn http_over_whole_budget_is_413() {
    let s = start(false, budget_config()).await;
    let resp = post(&s, big_request().encode_to_vec()).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.edge.rows(), 0);
    assert_budget_returns_to_zero(&s).await;
    assert_eq!(
        post(&s, good_request().encode_to_vec()).await.status(),
        StatusCode::OK
    );
    s.stop().await;
}

async fn grpc_client(s: &Server) -> MetricsServiceClient<Channel> {
    MetricsServiceClient::connect(s.grpc_url())
        .await
        .expect("connect")
}

/// gRPC: of concurrent requests beyond the budget, the admitted one succeeds and the rest get
/// UNAVAILABLE with RetryInfo; the budget returns to zero.
#[tokio::test]
async fn grpc_concurrent_beyond_budget_get_unavailable() {
    let s = start(true, budget_config()).await;
    s.edge.delay_ms.store(EDGE_DELAY_MS, Ordering::SeqCst);
    let c = grpc_client(&s).await;
    let sends = (0..CONCURRENT).map(|_| {
        let mut c = c.clone();
        async move { c.export(good_request()).await }
    });
    let results = futures::future::join_all(sends).await;
    let mut ok = 0;
    let mut refused = 0;
    for r in results {
        match r {
            Ok(_) => ok += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(status.message().contains("memory budget"), "{status:?}");
                let retry = status.get_error_details().retry_info().cloned();
                assert_eq!(
                    retry.and_then(|r| r.retry_delay),
                    Some(Duration::from_secs(1))
                );
                refused += 1;
            }
        }
    }
    assert_eq!((ok, refused), (1, CONCURRENT - 1));
    assert_eq!(s.edge.rows(), 3);
    assert_budget_returns_to_zero(&s).await;
    s.edge.delay_ms.store(0, Ordering::SeqCst);
    grpc_client(&s)
        .await
        .export(good_request())
        .await
        .expect("accepted once the budget is free");
    s.stop().await;
}

/// gRPC: while the budget is held, a request whose message prefix declares a large message is
/// answered UNAVAILABLE from the prefix alone: the client never sends the message.
#[tokio::test]
async fn grpc_refused_before_message_is_read() {
    let s = start(true, budget_config()).await;
    s.edge.delay_ms.store(EDGE_DELAY_MS * 2, Ordering::SeqCst);
    let holder = {
        let mut c = grpc_client(&s).await;
        tokio::spawn(async move { c.export(good_request()).await.map(|_| ()) })
    };
    for _ in 0..100 {
        if s.receiver.budget().in_flight() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(s.receiver.budget().in_flight() > 0, "holder admitted");
    // Only the prefix (uncompressed, 500 000 bytes declared) is ever sent.
    let mut prefix = BytesMut::with_capacity(5);
    prefix.put_u8(0);
    prefix.put_u32(500_000);
    let frame = Full::new(Bytes::from(prefix))
        .frame()
        .await
        .expect("a frame")
        .map_err(|_| tonic::Status::internal("unreachable"));
    let stream = futures::stream::iter([frame]).chain(futures::stream::pending());
    let body = tonic::body::Body::new(StreamBody::new(stream));
    let req = http::Request::builder()
        .method("POST")
        .uri(format!(
            "{}/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            s.grpc_url()
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .expect("request");
    let mut channel = Channel::from_shared(s.grpc_url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .expect("ready");
    let resp = tokio::time::timeout(Duration::from_secs(5), channel.call(req))
        .await
        .expect("answered without the message")
        .expect("response");
    assert_eq!(resp.headers()["grpc-status"], "14");
    holder.await.expect("join").expect("holder accepted");
    assert_budget_returns_to_zero(&s).await;
    s.stop().await;
}

/// gRPC: a request needing more memory than the whole budget is RESOURCE_EXHAUSTED.
#[tokio::test]
async fn grpc_over_whole_budget_is_resource_exhausted() {
    let s = start(true, budget_config()).await;
    let err = grpc_client(&s)
        .await
        .export(big_request())
        .await
        .expect_err("too large for the budget");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(s.edge.rows(), 0);
    assert_budget_returns_to_zero(&s).await;
    s.stop().await;
}
