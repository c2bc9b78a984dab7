//! OTLP decoding: prost alone, Phoenix's protobuf → Arrow through prost and through the
//! zero-copy wire reader, and Arrow building from already-parsed messages.
#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use phoenix_ingest::{decode as to_arrow, decode_protobuf, DecodeLimits};
use prost::Message;

fn decode(c: &mut Criterion) {
    let points = 1000;
    let request = phoenix_benches::gauge_request(points, 1_700_000_000_000_000_000);
    let bytes = request.encode_to_vec();
    let limits = DecodeLimits::from_config(&Default::default()).without_time_window();
    let mut group = c.benchmark_group("otlp_decode");
    group.throughput(Throughput::Elements(points as u64));
    group.bench_function("prost_only_1000_gauges", |b| {
        b.iter(|| {
            ExportMetricsServiceRequest::decode(bytes.as_slice()).map(|r| r.resource_metrics.len())
        })
    });
    group.bench_function("protobuf_to_arrow_1000_gauges", |b| {
        b.iter(|| {
            ExportMetricsServiceRequest::decode(bytes.as_slice())
                .ok()
                .and_then(|r| to_arrow(&r, &limits).ok())
                .map(|d| d.accepted)
        })
    });
    group.bench_function("wire_to_arrow_1000_gauges", |b| {
        b.iter(|| decode_protobuf(bytes.as_slice(), &limits).map(|d| d.accepted))
    });
    group.bench_function("arrow_build_only_1000_gauges", |b| {
        b.iter(|| to_arrow(&request, &limits).map(|d| d.accepted))
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
