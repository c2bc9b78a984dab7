//! Temporary: measures decode throughput.
use std::time::Instant;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as AnyV, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point::Value, Gauge, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use phoenix_ingest::{decode, DecodeLimits};
use prost::Message;

fn kv(k: &str, v: AnyV) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        key_strindex: 0,
    }
}

fn main() {
    let mut rms = Vec::new();
    for r in 0..10 {
        let res = vec![
            kv("service.name", AnyV::StringValue(format!("svc-{r}"))),
            kv(
                "host.name",
                AnyV::StringValue(format!("host-{r}.example.internal")),
            ),
            kv("k8s.pod.name", AnyV::StringValue(format!("pod-{r}-abcdef"))),
            kv("k8s.namespace.name", AnyV::StringValue("production".into())),
            kv("cloud.region", AnyV::StringValue("eu-west-1".into())),
            kv("process.pid", AnyV::IntValue(1234 + r)),
        ];
        let mut metrics = Vec::new();
        for m in 0..10 {
            let points: Vec<_> = (0..100)
                .map(|i| NumberDataPoint {
                    attributes: vec![
                        kv(
                            "http.route",
                            AnyV::StringValue(format!("/api/v1/items/{}", i % 20)),
                        ),
                        kv("http.method", AnyV::StringValue("GET".into())),
                        kv("http.status_code", AnyV::IntValue(200 + (i % 3))),
                        kv("success", AnyV::BoolValue(true)),
                        kv("instance", AnyV::StringValue(format!("i-{i}"))),
                    ],
                    start_time_unix_nano: 1_700_000_000_000_000_000,
                    time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                    value: Some(Value::AsDouble(i as f64 * 1.5)),
                    ..Default::default()
                })
                .collect();
            let data = if m % 2 == 0 {
                Data::Gauge(Gauge {
                    data_points: points,
                })
            } else {
                Data::Sum(Sum {
                    data_points: points,
                    aggregation_temporality: 2,
                    is_monotonic: true,
                })
            };
            metrics.push(Metric {
                name: format!("metric.name.{m}"),
                unit: "ms".into(),
                data: Some(data),
                ..Default::default()
            });
        }
        rms.push(ResourceMetrics {
            resource: Some(Resource {
                attributes: res,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            schema_url: String::new(),
        });
    }
    let req = ExportMetricsServiceRequest {
        resource_metrics: rms,
    };
    let bytes = req.encode_to_vec();
    let limits = DecodeLimits {
        max_attributes: 128,
        max_attribute_value_bytes: 16384,
        max_decoded_bytes: usize::MAX,
    };
    let iters = 300;
    let points = 10_000 * iters;
    let t = Instant::now();
    for _ in 0..iters {
        let d = decode(&req, &limits).expect("decode");
        assert_eq!(d.accepted, 10_000);
    }
    let e = t.elapsed().as_secs_f64();
    println!("arrow decode only: {:.2} M dp/s", points as f64 / e / 1e6);
    let t = Instant::now();
    for _ in 0..iters {
        let r = ExportMetricsServiceRequest::decode(&bytes[..]).expect("pb");
        let d = decode(&r, &limits).expect("decode");
        assert_eq!(d.accepted, 10_000);
    }
    let e = t.elapsed().as_secs_f64();
    println!(
        "protobuf + arrow: {:.2} M dp/s ({} bytes/request)",
        points as f64 / e / 1e6,
        bytes.len()
    );
}
