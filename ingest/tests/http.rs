//! OTLP/HTTP receiver against a real server on 127.0.0.1:0.

mod common;

use std::time::Duration;

use arrow::array::{AsArray, MapArray};
use arrow::datatypes::{Float64Type, UInt64Type};
use common::*;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

const PB: &str = "application/x-protobuf";
const JSON: &str = "application/json";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn post(
    s: &Server,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = client()
        .post(s.http_url())
        .header(CONTENT_TYPE, content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header(CONTENT_ENCODING, e);
    }
    req.send().await.expect("send")
}

/// Sends a good protobuf request and checks it is accepted (the server still serves).
async fn assert_serving(s: &Server) {
    let before = s.edge.rows();
    let resp = post(s, PB, None, good_request().encode_to_vec()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(s.edge.rows(), before + 3);
}

async fn json_body(resp: reqwest::Response) -> serde_json::Value {
    let body = resp.bytes().await.expect("body");
    serde_json::from_slice(&body).expect("JSON body")
}

async fn pb_response(resp: reqwest::Response) -> ExportMetricsServiceResponse {
    assert_eq!(resp.headers()[CONTENT_TYPE], PB);
    let body = resp.bytes().await.expect("body");
    ExportMetricsServiceResponse::decode(body).expect("response decodes")
}

async fn rpc_status(resp: reqwest::Response) -> tonic_types::Status {
    assert_eq!(resp.headers()[CONTENT_TYPE], PB);
    let body = resp.bytes().await.expect("body");
    tonic_types::Status::decode(body).expect("google.rpc.Status")
}

/// Protobuf export: 200 in protobuf, no partial_success, every point handed to the edge.
#[tokio::test]
async fn protobuf_happy_path() {
    let s = start(false, config(1 << 20)).await;
    let resp = post(&s, PB, None, good_request().encode_to_vec()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(pb_response(resp).await.partial_success, None);
    assert_eq!(s.edge.rows(), 3);
    s.stop().await;
}

/// The OTLP spec's JSON example (camelCase, u64 as strings, ints as enums) plus ints as
/// numbers, charset parameter and hex exemplar ids decodes into the expected rows.
#[tokio::test]
async fn json_spec_example() {
    let s = start(false, config(1 << 20)).await;
    let body = include_str!("data/metrics.json");
    let resp = post(&s, "application/json; charset=utf-8", None, body.into()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_TYPE], JSON);
    assert_eq!(resp.text().await.expect("text"), "{}");
    let batches = s.edge.batches.lock().expect("lock").clone();
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(b.num_rows(), 5);
    let metric = b
        .column_by_name("metric")
        .expect("metric")
        .as_string::<i32>();
    let names: Vec<_> = (0..5).map(|i| metric.value(i)).collect();
    assert_eq!(
        names,
        [
            "my.counter",
            "my.gauge",
            "my.histogram",
            "my.exponential.histogram",
            "my.int.gauge"
        ]
    );
    let service = b
        .column_by_name("service")
        .expect("service")
        .as_string::<i32>();
    assert_eq!(service.value(0), "my.service");
    let value = b
        .column_by_name("value")
        .expect("value")
        .as_primitive::<Float64Type>();
    assert_eq!(
        (value.value(0), value.value(1), value.value(4)),
        (5.0, 10.0, 42.0)
    );
    let counts = b
        .column_by_name("bucket_counts")
        .expect("bc")
        .as_list::<i32>();
    assert_eq!(
        counts
            .value(2)
            .as_primitive::<UInt64Type>()
            .values()
            .to_vec(),
        vec![1, 1]
    );
    let pos = b
        .column_by_name("exp_positive_counts")
        .expect("pos")
        .as_list::<i32>();
    assert_eq!(
        pos.value(3).as_primitive::<UInt64Type>().values().to_vec(),
        vec![0, 2]
    );
    let t = b
        .column_by_name("temporality")
        .expect("t")
        .as_string::<i32>();
    assert_eq!(t.value(0), "delta");
    let attrs: &MapArray = b.column_by_name("attributes").expect("attrs").as_map();
    let e = attrs.value(4);
    let vals = e.column(1).as_string::<i32>();
    assert_eq!((vals.value(0), vals.value(1)), ("7", "8"));
    s.stop().await;
}

/// gzip bodies are inflated; the response is protobuf.
#[tokio::test]
async fn gzip_body() {
    let s = start(false, config(1 << 20)).await;
    let body = gzip(&good_request().encode_to_vec());
    let resp = post(&s, PB, Some("gzip"), body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(s.edge.rows(), 3);
    s.stop().await;
}

/// A truncated protobuf body is 400 with a google.rpc.Status; the server keeps serving.
#[tokio::test]
async fn truncated_protobuf_is_400() {
    let s = start(false, config(1 << 20)).await;
    let full = good_request().encode_to_vec();
    let resp = post(&s, PB, None, full[..full.len() - 5].to_vec()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let st = rpc_status(resp).await;
    assert_eq!(st.code, 3);
    assert!(st.message.contains("protobuf"), "{}", st.message);
    assert_eq!(s.edge.rows(), 0);
    assert_serving(&s).await;
    s.stop().await;
}

/// A protobuf body with an unknown field, sent twice concatenated (protobuf merge: repeated
/// fields concatenate), is read in place like prost would: 200 and every point of both copies.
#[tokio::test]
async fn protobuf_unknown_fields_and_concatenation() {
    let s = start(false, config(1 << 20)).await;
    let one = good_request().encode_to_vec();
    // Field 99, varint 1: unknown to ExportMetricsServiceRequest.
    let body = [one.clone(), vec![0x98, 0x06, 0x01], one].concat();
    let resp = post(&s, PB, None, body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(pb_response(resp).await.partial_success, None);
    assert_eq!(s.edge.rows(), 6);
    s.stop().await;
}

/// An unknown content type or content encoding is 415 with a JSON body.
#[tokio::test]
async fn unsupported_media_is_415() {
    let s = start(false, config(1 << 20)).await;
    let body = good_request().encode_to_vec();
    for (ct, enc) in [
        ("text/plain", None),
        (PB, Some("br")),
        ("application/protobuf2", None),
    ] {
        let resp = post(&s, ct, enc, body.clone()).await;
        assert_eq!(
            resp.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{ct} {enc:?}"
        );
        assert_eq!(resp.headers()[CONTENT_TYPE], JSON);
        let v = json_body(resp).await;
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("unsupported")),
            "{v}"
        );
    }
    assert_eq!(s.edge.rows(), 0);
    assert_serving(&s).await;
    s.stop().await;
}

/// A 1 GiB gzip bomb (≈1 MB compressed) is refused with 413 while inflating, not inflated.
#[tokio::test]
async fn gzip_bomb_is_413() {
    check_bomb_is_valid_gzip();
    let s = start(false, config(4 << 20)).await;
    let bomb = gzip_bomb(1024);
    assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
    // Without its last 100 bytes the stream is corrupt at the end: a server that inflated it
    // all would answer 400; one that stops at the limit never gets there.
    let cut = bomb[..bomb.len() - 100].to_vec();
    let resp = post(&s, PB, Some("gzip"), bomb).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(rpc_status(resp).await.code, 8);
    let resp = post(&s, PB, Some("gzip"), cut).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_serving(&s).await;
    s.stop().await;
}

/// A body over max_body_bytes is 413, compressed or not.
#[tokio::test]
async fn oversized_body_is_413() {
    let s = start(false, config(64 * 1024)).await;
    let big = vec![b'x'; 100 * 1024];
    let resp = post(&s, PB, None, big.clone()).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Small compressed, too large once inflated.
    let resp = post(&s, JSON, Some("gzip"), gzip(&big)).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.headers()[CONTENT_TYPE], JSON);
    let v = json_body(resp).await;
    assert_eq!(v["code"], 8);
    assert_serving(&s).await;
    s.stop().await;
}

/// NaN and ±Inf points are rejected in partial_success; the good points are accepted.
#[tokio::test]
async fn non_finite_is_partial_success() {
    let s = start(false, config(1 << 20)).await;
    let req = gauge_request(
        "g",
        vec![
            point(1.0, vec![]),
            point(f64::NAN, vec![]),
            point(f64::INFINITY, vec![]),
            point(2.0, vec![]),
        ],
    );
    let resp = post(&s, PB, None, req.encode_to_vec()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ps = pb_response(resp)
        .await
        .partial_success
        .expect("partial success");
    assert_eq!(ps.rejected_data_points, 2);
    assert!(
        ps.error_message.contains("non_finite_value"),
        "{}",
        ps.error_message
    );
    assert!(ps.error_message.contains("\"g\""), "{}", ps.error_message);
    assert_eq!(s.edge.rows(), 2);
    s.stop().await;
}

/// A 1 MB attribute value rejects its point in partial_success (JSON answer for JSON).
#[tokio::test]
async fn huge_attribute_is_partial_success() {
    let s = start(false, config(4 << 20)).await;
    let big = "v".repeat(1 << 20);
    let req = gauge_request(
        "g",
        vec![point(1.0, vec![string_kv("k", &big)]), point(2.0, vec![])],
    );
    let body = serde_json::to_vec(&req).expect("json");
    let resp = post(&s, JSON, None, body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_body(resp).await;
    assert_eq!(v["partialSuccess"]["rejectedDataPoints"], 1);
    let msg = v["partialSuccess"]["errorMessage"]
        .as_str()
        .expect("message");
    assert!(msg.contains("attribute_too_large"), "{msg}");
    assert_eq!(s.edge.rows(), 1);
    s.stop().await;
}

/// Invalid UTF-8 or malformed JSON is 400 with a JSON Status body.
#[tokio::test]
async fn invalid_json_is_400() {
    let s = start(false, config(1 << 20)).await;
    let bad_utf8 =
        b"{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"a\",\"value\":{\"stringValue\":\"\xff\xfe\"}}]}}]}";
    for body in [bad_utf8.to_vec(), b"{\"resourceMetrics\": [".to_vec()] {
        let resp = post(&s, JSON, None, body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let v = json_body(resp).await;
        assert_eq!(v["code"], 3);
    }
    assert_serving(&s).await;
    s.stop().await;
}

/// A full pipeline is 503 with Retry-After and nothing acknowledged; once it drains, 200.
#[tokio::test]
async fn pipeline_full_is_503() {
    let s = start(false, config(1 << 20)).await;
    s.edge.set_full(true);
    let resp = post(&s, PB, None, good_request().encode_to_vec()).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()[RETRY_AFTER], "3");
    assert_eq!(rpc_status(resp).await.code, 14);
    s.edge.set_full(false);
    assert_serving(&s).await;
    s.stop().await;
}

/// A request whose points are all rejected sends nothing and answers 200 with partial_success.
#[tokio::test]
async fn all_rejected_sends_nothing() {
    let s = start(false, config(1 << 20)).await;
    let req = gauge_request("", vec![point(1.0, vec![])]);
    let resp = post(&s, PB, None, req.encode_to_vec()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ps = pb_response(resp).await.partial_success.expect("partial");
    assert_eq!(ps.rejected_data_points, 1);
    assert!(ps.error_message.contains("empty_metric_name"));
    assert!(s.edge.batches.lock().expect("lock").is_empty());
    s.stop().await;
}

/// Shutdown stops the server cleanly; new connections are refused afterwards.
#[tokio::test]
async fn graceful_shutdown() {
    let s = start(false, config(1 << 20)).await;
    assert_serving(&s).await;
    let url = s.http_url();
    s.stop().await;
    let err = client().post(url).header(CONTENT_TYPE, PB).send().await;
    assert!(err.is_err());
}

/// Cancelling while a request waits on the edge still completes that request with 200.
#[tokio::test]
async fn shutdown_finishes_in_flight() {
    let s = start(false, config(1 << 20)).await;
    s.edge
        .delay_ms
        .store(500, std::sync::atomic::Ordering::SeqCst);
    let url = s.http_url();
    let in_flight = tokio::spawn(async move {
        client()
            .post(url)
            .header(CONTENT_TYPE, PB)
            .body(good_request().encode_to_vec())
            .send()
            .await
            .map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let edge = s.edge.clone();
    s.stop().await;
    assert_eq!(
        in_flight.await.expect("task").expect("answered"),
        StatusCode::OK
    );
    assert_eq!(edge.rows(), 3);
}

/// Datapoint and request metrics count accepted, rejected-by-reason and refused work.
#[tokio::test]
async fn metrics_are_counted() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // The test runtime is single-threaded, so the server's tasks see this recorder too.
    let _guard = metrics::set_default_local_recorder(&recorder);
    let s = start(false, config(1 << 20)).await;
    let req = gauge_request("g", vec![point(1.0, vec![]), point(f64::NAN, vec![])]);
    assert_eq!(
        post(&s, PB, None, req.encode_to_vec()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        post(&s, "text/plain", None, vec![]).await.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    s.edge.set_full(true);
    let full = post(&s, PB, None, good_request().encode_to_vec()).await;
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    s.stop().await;
    let text = handle.render();
    let http = ("protocol", "http");
    assert_eq!(
        sample(&text, "phoenix_ingest_datapoints_received_total", &[http]),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "phoenix_ingest_datapoints_accepted_total", &[http]),
        Some(1.0)
    );
    let rejected = "phoenix_ingest_datapoints_rejected_total";
    assert_eq!(
        sample(&text, rejected, &[http, ("reason", "non_finite_value")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, rejected, &[http, ("reason", "pipeline_full")]),
        Some(3.0)
    );
    let req_rejected = "phoenix_ingest_requests_rejected_total";
    assert_eq!(
        sample(
            &text,
            req_rejected,
            &[http, ("reason", "unsupported_media_type")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, req_rejected, &[http, ("reason", "pipeline_full")]),
        Some(1.0)
    );
    let requests = "phoenix_ingest_requests_total";
    assert_eq!(
        sample(&text, requests, &[http, ("status", "200")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, requests, &[http, ("status", "503")]),
        Some(1.0)
    );
    assert!(sample(&text, "phoenix_ingest_request_bytes_total", &[http]).is_some_and(|b| b > 0.0));
    assert!(text.contains("phoenix_ingest_request_duration_seconds"));
}
