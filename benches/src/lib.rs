//! Shared fixtures of Phoenix's criterion benchmarks: OTLP requests shaped like real exporters
//! send them.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// A gauge metric holding `data_points`.
fn gauge(name: String, unit: &str, data_points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name,
        description: String::new(),
        unit: unit.to_string(),
        metadata: vec![],
        data: Some(metric::Data::Gauge(Gauge { data_points })),
    }
}

/// A request with one resource (`resource` attributes) and one scope (`scope`) of `metrics`.
fn request(
    resource: Vec<KeyValue>,
    scope: &str,
    metrics: Vec<Metric>,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: scope.to_string(),
                    version: String::new(),
                    attributes: vec![],
                    dropped_attributes_count: 0,
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// One request of `points` gauge datapoints with three string attributes each: the shape of the
/// peer measurement in issue 5 (1,000 gauge datapoints, 3 attributes, one resource).
pub fn gauge_request(points: usize, base_time_ns: u64) -> ExportMetricsServiceRequest {
    let per_metric = 10;
    let metrics = (0..points.div_ceil(per_metric))
        .map(|m| {
            let data_points = (0..per_metric.min(points - m * per_metric))
                .map(|i| NumberDataPoint {
                    attributes: vec![
                        kv("host", &format!("host-{}", i % 5)),
                        kv("region", &format!("region-{}", i % 3)),
                        kv("instance", &format!("i-{m}-{i}")),
                    ],
                    start_time_unix_nano: 0,
                    time_unix_nano: base_time_ns + (m * per_metric + i) as u64,
                    value: Some(number_data_point::Value::AsDouble(
                        (m * 31 + i * 7) as f64 * 0.25,
                    )),
                    exemplars: vec![],
                    flags: 0,
                })
                .collect();
            gauge(format!("bench.gauge.{m}"), "ms", data_points)
        })
        .collect();
    request(
        vec![kv("service.name", "bench"), kv("host.name", "bench-host")],
        "phoenix-bench",
        metrics,
    )
}

/// Ten seconds, the usual export interval, in nanoseconds.
pub const INTERVAL_NS: i64 = 10_000_000_000;

/// One decoded batch of the [`gauge_request`] fixture: `points` distinct series, one point each.
///
/// # Panics
/// If the fixture does not decode (a bug in the fixture or the decoder).
pub fn gauge_batch(points: usize, base_time_ns: u64) -> arrow::record_batch::RecordBatch {
    let limits =
        phoenix_ingest::DecodeLimits::from_config(&Default::default()).without_time_window();
    phoenix_ingest::decode(&gauge_request(points, base_time_ns), &limits)
        .ok()
        .and_then(|d| d.batch)
        .expect("fixture decodes")
}

/// `batch` with every timestamp moved by `offset_ns`: the same series one scrape later.
///
/// # Panics
/// If the batch lacks the `time` column of the metrics schema.
pub fn shift_time(
    batch: &arrow::record_batch::RecordBatch,
    offset_ns: i64,
) -> arrow::record_batch::RecordBatch {
    use arrow::array::{AsArray, TimestampNanosecondArray};
    use arrow::datatypes::TimestampNanosecondType;
    let idx = batch.schema().index_of("time").expect("time column");
    let times = batch.column(idx).as_primitive::<TimestampNanosecondType>();
    let shifted: TimestampNanosecondArray = times
        .unary::<_, TimestampNanosecondType>(|t| t + offset_ns)
        .with_timezone_opt(times.timezone().map(str::to_string));
    let mut columns = batch.columns().to_vec();
    columns[idx] = std::sync::Arc::new(shifted);
    arrow::record_batch::RecordBatch::try_new(batch.schema(), columns).expect("same schema")
}

/// One request shaped like `phoenix loadgen`'s (default flags): chunk `chunk` of 1,000 gauge
/// series, 100 metrics `gauge_<m>` of 10 series each, attributes `series.id` (unique),
/// `http.route` and `http.request.method`, resource `service.name` = `loadgen-<chunk % 8>` and
/// `host.name` = `loadgen-host-<chunk>`; every point at `time_ns`.
pub fn loadgen_request(chunk: usize, time_ns: u64) -> ExportMetricsServiceRequest {
    const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
    let per_metric = 10;
    let metrics = (0..100)
        .map(|m| {
            let data_points = (0..per_metric)
                .map(|i| {
                    let global = (chunk * 1000 + m * per_metric + i) as u64;
                    NumberDataPoint {
                        attributes: vec![
                            kv("series.id", &format!("{global:016}")),
                            kv("http.route", &format!("/api/v1/items/{}", global % 20)),
                            kv("http.request.method", METHODS[(global / 20 % 4) as usize]),
                        ],
                        start_time_unix_nano: 0,
                        time_unix_nano: time_ns,
                        value: Some(number_data_point::Value::AsDouble(global as f64 * 0.5)),
                        exemplars: vec![],
                        flags: 0,
                    }
                })
                .collect();
            gauge(format!("gauge_{m}"), "1", data_points)
        })
        .collect();
    request(
        vec![
            kv("service.name", &format!("loadgen-{}", chunk % 8)),
            kv("host.name", &format!("loadgen-host-{chunk:05}")),
        ],
        "phoenix-loadgen",
        metrics,
    )
}

/// `scrapes` rounds, `step_ns` apart from `base_time_ns`, of `chunks` decoded
/// [`loadgen_request`] batches (1,000 series each): the end-to-end benchmark's traffic (at
/// 1M datapoints/s over 100k series, a series sends every 100 ms).
///
/// # Panics
/// If the fixture does not decode (a bug in the fixture or the decoder).
pub fn loadgen_batches(
    chunks: usize,
    scrapes: usize,
    base_time_ns: u64,
    step_ns: i64,
) -> Vec<arrow::record_batch::RecordBatch> {
    let limits =
        phoenix_ingest::DecodeLimits::from_config(&Default::default()).without_time_window();
    let first: Vec<_> = (0..chunks)
        .map(|c| {
            phoenix_ingest::decode(&loadgen_request(c, base_time_ns), &limits)
                .ok()
                .and_then(|d| d.batch)
                .expect("fixture decodes")
        })
        .collect();
    (0..scrapes)
        .flat_map(|k| first.iter().map(move |b| shift_time(b, k as i64 * step_ns)))
        .collect()
}

/// `batches` with every `value` replaced by a full-precision random double (SplitMix64 from
/// `seed`).
///
/// # Panics
/// If a batch lacks the `value` column of the metrics schema.
pub fn with_random_values(
    batches: &[arrow::record_batch::RecordBatch],
    seed: u64,
) -> Vec<arrow::record_batch::RecordBatch> {
    let mut x = seed;
    let mut next = move || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64 * 100.0
    };
    batches
        .iter()
        .map(|b| {
            let idx = b.schema().index_of("value").expect("value column");
            let mut columns = b.columns().to_vec();
            columns[idx] = std::sync::Arc::new(arrow::array::Float64Array::from_iter_values(
                (0..b.num_rows()).map(|_| next()),
            ));
            arrow::record_batch::RecordBatch::try_new(b.schema(), columns).expect("same schema")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture holds exactly the requested number of datapoints.
    #[test]
    fn gauge_request_has_requested_points() {
        let req = gauge_request(1000, 1);
        let n: usize = req.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .map(|m| match &m.data {
                Some(metric::Data::Gauge(g)) => g.data_points.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(n, 1000);
    }

    /// Shifting moves every timestamp by exactly the offset and nothing else.
    #[test]
    fn shift_time_moves_only_time() {
        use arrow::array::AsArray;
        use arrow::datatypes::TimestampNanosecondType;
        let b = gauge_batch(100, 1_000);
        let s = shift_time(&b, INTERVAL_NS);
        let t0 = b.column(0).as_primitive::<TimestampNanosecondType>();
        let t1 = s.column(0).as_primitive::<TimestampNanosecondType>();
        assert!(t0
            .iter()
            .zip(t1.iter())
            .all(|(a, b)| b.zip(a).map(|(b, a)| b - a) == Some(INTERVAL_NS)));
        assert_eq!(b.schema(), s.schema());
        assert_eq!(b.column(12), s.column(12));
    }
}
