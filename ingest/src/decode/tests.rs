//! Decoder tests: every metric kind and value kind, validation, series ids.

use arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, Int32Array, ListArray, MapArray, StringArray,
    TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{Float64Type, UInt64Type};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value as AnyV, AnyValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point::Value,
    summary_data_point::ValueAtQuantile, AggregationTemporality, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use phoenix_model::metrics_schema;
use phoenix_model::schema::{col, list_of, string_map_type};

use super::*;

const T: u64 = 1_700_000_000_000_000_000;

fn limits() -> DecodeLimits {
    DecodeLimits {
        max_attributes: 8,
        max_attribute_value_bytes: 64,
        max_decoded_bytes: 1 << 30,
        max_past: None,
        max_future: None,
    }
}

fn kv(k: &str, v: AnyV) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        key_strindex: 0,
    }
}

fn s(k: &str, v: &str) -> KeyValue {
    kv(k, AnyV::StringValue(v.into()))
}

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: "ms".into(),
        data: Some(data),
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn num(time: u64, v: Value, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: time,
        value: Some(v),
        ..Default::default()
    }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    metric(
        name,
        Data::Gauge(Gauge {
            data_points: points,
        }),
    )
}

fn run(req: &ExportMetricsServiceRequest) -> Decoded {
    decode(req, &limits()).expect("decode")
}

fn batch(d: &Decoded) -> &RecordBatch {
    d.batch.as_ref().expect("a batch")
}

fn strings<'a>(b: &'a RecordBatch, name: &str) -> &'a StringArray {
    b.column_by_name(name).expect(name).as_string::<i32>()
}

fn f64s<'a>(b: &'a RecordBatch, name: &str) -> &'a Float64Array {
    b.column_by_name(name)
        .expect(name)
        .as_primitive::<Float64Type>()
}

fn u64s<'a>(b: &'a RecordBatch, name: &str) -> &'a UInt64Array {
    b.column_by_name(name)
        .expect(name)
        .as_primitive::<UInt64Type>()
}

/// Entries of a map cell as `(key, value)` pairs.
fn map_entries(b: &RecordBatch, name: &str, row: usize) -> Vec<(String, Option<String>)> {
    let m: &MapArray = b.column_by_name(name).expect(name).as_map();
    let entries = m.value(row);
    let keys = entries.column(0).as_string::<i32>();
    let vals = entries.column(1).as_string::<i32>();
    (0..entries.len())
        .map(|i| {
            let v = (!vals.is_null(i)).then(|| vals.value(i).to_string());
            (keys.value(i).to_string(), v)
        })
        .collect()
}

fn list_f64(b: &RecordBatch, name: &str, row: usize) -> Option<Vec<f64>> {
    let l: &ListArray = b.column_by_name(name).expect(name).as_list();
    (!l.is_null(row)).then(|| l.value(row).as_primitive::<Float64Type>().values().to_vec())
}

fn list_u64(b: &RecordBatch, name: &str, row: usize) -> Option<Vec<u64>> {
    let l: &ListArray = b.column_by_name(name).expect(name).as_list();
    (!l.is_null(row)).then(|| l.value(row).as_primitive::<UInt64Type>().values().to_vec())
}

/// The batch has exactly `metrics_schema()`: same fields, types and nullability.
#[test]
fn schema_is_exact() {
    let req = request(
        vec![],
        vec![gauge("g", vec![num(T, Value::AsInt(1), vec![])])],
    );
    let d = run(&req);
    let b = batch(&d);
    assert_eq!(b.schema(), metrics_schema());
    assert_eq!(
        b.schema()
            .field_with_name("resource")
            .map(|f| f.data_type().clone())
            .ok(),
        Some(string_map_type())
    );
    assert_eq!(
        b.schema()
            .field_with_name("bounds")
            .map(|f| f.data_type().clone())
            .ok(),
        Some(list_of(arrow::datatypes::DataType::Float64))
    );
}

/// A gauge with int and double points fills the common columns and `value`, nulls elsewhere.
#[test]
fn gauge_int_and_double() {
    let req = request(
        vec![s("service.name", "api"), s("host.name", "h1")],
        vec![gauge(
            "cpu",
            vec![
                num(T, Value::AsInt(-7), vec![s("core", "0")]),
                NumberDataPoint {
                    start_time_unix_nano: T - 10,
                    flags: 0,
                    ..num(T + 1, Value::AsDouble(0.25), vec![s("core", "1")])
                },
            ],
        )],
    );
    let d = run(&req);
    assert_eq!((d.accepted, d.rejected), (2, 0));
    assert!(d.first_error.is_none());
    let b = batch(&d);
    assert_eq!(b.num_rows(), 2);
    let time: &TimestampNanosecondArray = b.column(0).as_primitive();
    assert_eq!(time.values().to_vec(), vec![T as i64, T as i64 + 1]);
    let start: &TimestampNanosecondArray = b.column(1).as_primitive();
    assert!(start.is_null(0));
    assert_eq!(start.value(1), T as i64 - 10);
    assert_eq!(strings(b, col::METRIC).value(0), "cpu");
    assert_eq!(strings(b, col::KIND).value(1), "gauge");
    assert!(strings(b, col::TEMPORALITY).is_null(0));
    assert!(b
        .column_by_name(col::MONOTONIC)
        .expect("monotonic")
        .is_null(0));
    assert_eq!(strings(b, col::UNIT).value(0), "ms");
    assert_eq!(strings(b, col::SERVICE).value(0), "api");
    assert_eq!(strings(b, col::SCOPE).value(0), "lib");
    assert_eq!(
        map_entries(b, col::RESOURCE, 1),
        vec![
            ("service.name".into(), Some("api".into())),
            ("host.name".into(), Some("h1".into()))
        ]
    );
    assert_eq!(
        map_entries(b, col::ATTRIBUTES, 1),
        vec![("core".into(), Some("1".into()))]
    );
    let value = f64s(b, col::VALUE);
    assert_eq!((value.value(0), value.value(1)), (-7.0, 0.25));
    assert_eq!(f64s(b, col::SAMPLE_RATE).values().to_vec(), vec![1.0, 1.0]);
    for c in [
        col::COUNT,
        col::SUM,
        col::MIN,
        col::MAX,
        col::BOUNDS,
        col::EXP_SCALE,
        col::QUANTILES,
    ] {
        assert_eq!(b.column_by_name(c).expect(c).null_count(), 2, "{c}");
    }
}

/// Sums carry temporality (null when unspecified) and monotonic.
#[test]
fn sum_temporality_and_monotonic() {
    let sum = |name: &str, t: AggregationTemporality, mono: bool| {
        metric(
            name,
            Data::Sum(Sum {
                data_points: vec![num(T, Value::AsDouble(3.0), vec![])],
                aggregation_temporality: t as i32,
                is_monotonic: mono,
            }),
        )
    };
    let req = request(
        vec![],
        vec![
            sum("a", AggregationTemporality::Delta, true),
            sum("b", AggregationTemporality::Cumulative, false),
            sum("c", AggregationTemporality::Unspecified, true),
        ],
    );
    let d = run(&req);
    let b = batch(&d);
    let t = strings(b, col::TEMPORALITY);
    assert_eq!(t.value(0), "delta");
    assert_eq!(t.value(1), "cumulative");
    assert!(t.is_null(2));
    let m: &BooleanArray = b
        .column_by_name(col::MONOTONIC)
        .expect("monotonic")
        .as_boolean();
    assert_eq!((m.value(0), m.value(1), m.value(2)), (true, false, true));
    assert_eq!(strings(b, col::KIND).value(0), "sum");
    assert_eq!(
        strings(b, col::SERVICE).value(0),
        "",
        "no service.name → empty"
    );
}

/// Explicit histograms fill count/sum/min/max/bounds/bucket_counts.
#[test]
fn histogram_columns() {
    let p = HistogramDataPoint {
        time_unix_nano: T,
        count: 4,
        sum: Some(10.0),
        min: Some(0.5),
        max: Some(7.0),
        explicit_bounds: vec![1.0, 5.0],
        bucket_counts: vec![1, 2, 1],
        flags: 0,
        ..Default::default()
    };
    let no_sum = HistogramDataPoint {
        sum: None,
        min: None,
        max: None,
        ..p.clone()
    };
    let h = Histogram {
        data_points: vec![p, no_sum],
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
    };
    let d = run(&request(vec![], vec![metric("lat", Data::Histogram(h))]));
    let b = batch(&d);
    assert_eq!(strings(b, col::KIND).value(0), "histogram");
    assert_eq!(strings(b, col::TEMPORALITY).value(0), "cumulative");
    assert!(b.column_by_name(col::MONOTONIC).expect("m").is_null(0));
    assert_eq!(u64s(b, col::COUNT).value(0), 4);
    assert_eq!(f64s(b, col::SUM).value(0), 10.0);
    assert_eq!(f64s(b, col::MIN).value(0), 0.5);
    assert_eq!(f64s(b, col::MAX).value(0), 7.0);
    assert!(f64s(b, col::SUM).is_null(1) && f64s(b, col::MIN).is_null(1));
    assert_eq!(list_f64(b, col::BOUNDS, 0), Some(vec![1.0, 5.0]));
    assert_eq!(list_u64(b, col::BUCKET_COUNTS, 1), Some(vec![1, 2, 1]));
    assert!(f64s(b, col::VALUE).is_null(0));
    assert_eq!(list_f64(b, col::QUANTILES, 0), None);
}

/// Exponential histograms fill the `exp_*` columns; absent buckets are offset 0, empty.
#[test]
fn exponential_histogram_columns() {
    let p = ExponentialHistogramDataPoint {
        time_unix_nano: T,
        count: 6,
        sum: Some(12.5),
        scale: 3,
        zero_count: 1,
        zero_threshold: 0.001,
        positive: Some(Buckets {
            offset: -2,
            bucket_counts: vec![1, 2, 2],
        }),
        negative: None,
        min: Some(-1.0),
        max: Some(9.0),
        ..Default::default()
    };
    let h = ExponentialHistogram {
        data_points: vec![p],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    };
    let d = run(&request(
        vec![],
        vec![metric("e", Data::ExponentialHistogram(h))],
    ));
    let b = batch(&d);
    assert_eq!(strings(b, col::KIND).value(0), "exponential_histogram");
    assert_eq!(strings(b, col::TEMPORALITY).value(0), "delta");
    assert_eq!(u64s(b, col::COUNT).value(0), 6);
    assert_eq!(f64s(b, col::SUM).value(0), 12.5);
    let i32s = |name: &str| -> i32 {
        let a: &Int32Array = b.column_by_name(name).expect(name).as_primitive();
        a.value(0)
    };
    assert_eq!(i32s(col::EXP_SCALE), 3);
    assert_eq!(i32s(col::EXP_POSITIVE_OFFSET), -2);
    assert_eq!(i32s(col::EXP_NEGATIVE_OFFSET), 0);
    assert_eq!(u64s(b, col::EXP_ZERO_COUNT).value(0), 1);
    assert_eq!(f64s(b, col::EXP_ZERO_THRESHOLD).value(0), 0.001);
    assert_eq!(
        list_u64(b, col::EXP_POSITIVE_COUNTS, 0),
        Some(vec![1, 2, 2])
    );
    assert_eq!(list_u64(b, col::EXP_NEGATIVE_COUNTS, 0), Some(vec![]));
    assert_eq!(list_f64(b, col::BOUNDS, 0), None);
}

/// Summaries fill count, sum and the parallel quantile lists.
#[test]
fn summary_columns() {
    let p = SummaryDataPoint {
        time_unix_nano: T,
        count: 10,
        sum: 55.0,
        quantile_values: vec![
            ValueAtQuantile {
                quantile: 0.5,
                value: 5.0,
            },
            ValueAtQuantile {
                quantile: 0.99,
                value: 9.9,
            },
        ],
        ..Default::default()
    };
    let m = metric(
        "rt",
        Data::Summary(Summary {
            data_points: vec![p],
        }),
    );
    let d = run(&request(vec![], vec![m]));
    let b = batch(&d);
    assert_eq!(strings(b, col::KIND).value(0), "summary");
    assert!(strings(b, col::TEMPORALITY).is_null(0));
    assert_eq!(u64s(b, col::COUNT).value(0), 10);
    assert_eq!(f64s(b, col::SUM).value(0), 55.0);
    assert!(f64s(b, col::MIN).is_null(0));
    assert_eq!(list_f64(b, col::QUANTILES, 0), Some(vec![0.5, 0.99]));
    assert_eq!(list_f64(b, col::QUANTILE_VALUES, 0), Some(vec![5.0, 9.9]));
}

/// Non-string attribute values are rendered into the maps; flags are kept.
#[test]
fn attribute_kinds_in_maps() {
    let attrs = vec![
        kv("b", AnyV::BoolValue(true)),
        kv("i", AnyV::IntValue(42)),
        kv("d", AnyV::DoubleValue(0.5)),
        kv("y", AnyV::BytesValue(vec![1, 2, 3])),
        KeyValue {
            key: "n".into(),
            value: None,
            key_strindex: 0,
        },
    ];
    let mut p = num(T, Value::AsInt(1), attrs);
    p.flags = 0;
    let d = run(&request(
        vec![kv("pid", AnyV::IntValue(9))],
        vec![gauge("g", vec![p])],
    ));
    let b = batch(&d);
    assert_eq!(
        map_entries(b, col::ATTRIBUTES, 0),
        vec![
            ("b".into(), Some("true".into())),
            ("i".into(), Some("42".into())),
            ("d".into(), Some("0.5".into())),
            ("y".into(), Some("AQID".into())),
            ("n".into(), None),
        ]
    );
    assert_eq!(
        map_entries(b, col::RESOURCE, 0),
        vec![("pid".into(), Some("9".into()))]
    );
    let flags: &UInt32Array = b.column_by_name(col::FLAGS).expect("flags").as_primitive();
    assert_eq!(flags.value(0), 0);
}

/// series_id: equal for the same series whatever the attribute order, different otherwise,
/// and equal to the documented recipe over rendered values.
#[test]
fn series_ids() {
    let p = |attrs| num(T, Value::AsInt(1), attrs);
    let req = request(
        vec![s("service.name", "api"), kv("pid", AnyV::IntValue(9))],
        vec![gauge(
            "g",
            vec![
                p(vec![s("a", "1"), kv("b", AnyV::BoolValue(true))]),
                p(vec![kv("b", AnyV::BoolValue(true)), s("a", "1")]),
                p(vec![s("a", "2"), kv("b", AnyV::BoolValue(true))]),
            ],
        )],
    );
    let d = run(&req);
    let ids = u64s(batch(&d), col::SERIES_ID);
    assert_eq!(ids.value(0), ids.value(1));
    assert_ne!(ids.value(0), ids.value(2));
    let expected = series_id::series_id(
        "g",
        [("pid", Some("9")), ("service.name", Some("api"))],
        [("b", Some("true")), ("a", Some("1"))],
    );
    assert_eq!(ids.value(0), expected);
}

/// Each validation reason rejects only its point, counts it, and leaves no partial row.
#[test]
fn rejections_leave_no_partial_rows() {
    let good = || num(T, Value::AsInt(1), vec![s("k", "v")]);
    let too_many: Vec<KeyValue> = (0..9).map(|i| s(&format!("k{i}"), "v")).collect();
    let long = "x".repeat(65);
    let bad_hist = HistogramDataPoint {
        time_unix_nano: T,
        count: 5,
        explicit_bounds: vec![1.0],
        bucket_counts: vec![1, 1],
        ..Default::default()
    };
    let req = request(
        vec![],
        vec![
            gauge(
                "g",
                vec![
                    good(),
                    num(0, Value::AsInt(1), vec![]),
                    num(T, Value::AsDouble(f64::NAN), vec![s("k", "v")]),
                    num(T, Value::AsDouble(f64::INFINITY), vec![]),
                    num(T, Value::AsInt(1), too_many),
                    num(T, Value::AsInt(1), vec![s("k", &long)]),
                    num(T, Value::AsInt(1), vec![s(&long, "v")]),
                    num(u64::MAX, Value::AsInt(1), vec![]),
                    good(),
                ],
            ),
            gauge("", vec![good(), good()]),
            metric(
                "h",
                Data::Histogram(Histogram {
                    data_points: vec![bad_hist],
                    aggregation_temporality: 1,
                }),
            ),
        ],
    );
    let d = run(&req);
    assert_eq!(d.accepted, 2);
    assert_eq!(d.rejected, 10);
    let r = &d.rejections;
    assert_eq!(r.get(Reason::MissingTimestamp), 1);
    assert_eq!(r.get(Reason::NonFiniteValue), 2);
    assert_eq!(r.get(Reason::TooManyAttributes), 1);
    assert_eq!(r.get(Reason::AttributeTooLarge), 2);
    assert_eq!(r.get(Reason::TimestampOutOfRange), 1);
    assert_eq!(r.get(Reason::EmptyMetricName), 2);
    assert_eq!(r.get(Reason::InvalidHistogram), 1);
    let b = batch(&d);
    assert_eq!(b.num_rows(), 2);
    // every map row of the accepted points holds exactly its own attribute
    assert_eq!(
        map_entries(b, col::ATTRIBUTES, 1),
        vec![("k".into(), Some("v".into()))]
    );
    let m: &MapArray = b.column_by_name(col::ATTRIBUTES).expect("a").as_map();
    assert_eq!(m.entries().len(), 2);
    let first = d.first_error.as_deref().expect("first error");
    assert!(
        first.contains("\"g\"") && first.contains("missing_timestamp"),
        "{first}"
    );
    let msg = d.error_message().expect("message");
    assert!(msg.starts_with("10 of 12 data points rejected"), "{msg}");
}

/// A resource with an oversized attribute rejects every point under it, not other resources.
#[test]
fn bad_resource_rejects_all_its_points() {
    let mut req = request(
        vec![s("service.name", &"x".repeat(65))],
        vec![gauge(
            "g",
            vec![
                num(T, Value::AsInt(1), vec![]),
                num(T, Value::AsInt(2), vec![]),
            ],
        )],
    );
    let good = request(
        vec![s("service.name", "ok")],
        vec![gauge("g", vec![num(T, Value::AsInt(3), vec![])])],
    );
    req.resource_metrics.extend(good.resource_metrics);
    let too_many: Vec<KeyValue> = (0..9).map(|i| s(&format!("k{i}"), "v")).collect();
    let many = request(
        too_many,
        vec![gauge("g", vec![num(T, Value::AsInt(4), vec![])])],
    );
    req.resource_metrics.extend(many.resource_metrics);
    let d = run(&req);
    assert_eq!(d.accepted, 1);
    assert_eq!(d.rejections.get(Reason::AttributeTooLarge), 2);
    assert_eq!(d.rejections.get(Reason::TooManyAttributes), 1);
    let b = batch(&d);
    assert_eq!(strings(b, col::SERVICE).value(0), "ok");
    assert_eq!(f64s(b, col::VALUE).value(0), 3.0);
}

/// NO_RECORDED_VALUE points are accepted with null values even when NaN.
#[test]
fn no_recorded_value_is_null() {
    let mut p = num(T, Value::AsDouble(f64::NAN), vec![]);
    p.flags = 1;
    let mut q = NumberDataPoint {
        time_unix_nano: T,
        ..Default::default()
    };
    q.flags = 1;
    let d = run(&request(vec![], vec![gauge("g", vec![p, q])]));
    assert_eq!((d.accepted, d.rejected), (2, 0));
    let b = batch(&d);
    assert_eq!(f64s(b, col::VALUE).null_count(), 2);
    let flags: &UInt32Array = b.column_by_name(col::FLAGS).expect("flags").as_primitive();
    assert_eq!(flags.value(0), 1);
}

/// All points rejected → no batch; metrics without data and exemplars are counted.
#[test]
fn empty_outcomes_and_counters() {
    let mut p = num(0, Value::AsInt(1), vec![]);
    p.exemplars = vec![Exemplar::default(), Exemplar::default()];
    let nodata = Metric {
        name: "nodata".into(),
        ..Default::default()
    };
    let d = run(&request(vec![], vec![gauge("g", vec![p]), nodata]));
    assert!(d.batch.is_none());
    assert_eq!((d.accepted, d.rejected), (0, 1));
    assert_eq!(d.exemplars_dropped, 2);
    assert_eq!(d.metrics_without_data, 1);
    let d = run(&ExportMetricsServiceRequest::default());
    assert!(d.batch.is_none() && d.rejected == 0 && d.error_message().is_none());
}

/// A request whose repeated resource attributes would expand past the limit is refused.
#[test]
fn expansion_guard() {
    let points: Vec<_> = (0..1000)
        .map(|i| num(T + i, Value::AsInt(1), vec![]))
        .collect();
    let req = request(vec![s("big", &"x".repeat(60))], vec![gauge("g", points)]);
    let small = DecodeLimits {
        max_decoded_bytes: 100_000,
        ..limits()
    };
    assert!(matches!(decode(&req, &small), Err(Error::TooLarge { .. })));
    assert!(decode(&req, &limits()).is_ok());
}

/// The time window: points older than `max_past` or further than `max_future` from `now` are
/// rejected with their own reasons (named in the message); a long-ago start time is fine.
#[test]
fn timestamp_window_reasons() {
    const DAY: u64 = 86_400_000_000_000;
    const HOUR: u64 = 3_600_000_000_000;
    let lim = DecodeLimits {
        max_past: Some(Duration::from_secs(30 * 86_400)),
        max_future: Some(Duration::from_secs(3_600)),
        ..limits()
    };
    let mut old_start = num(T, Value::AsInt(1), vec![]);
    old_start.start_time_unix_nano = T - 400 * DAY;
    let req = request(
        vec![],
        vec![gauge(
            "g",
            vec![
                num(T - 31 * DAY, Value::AsInt(1), vec![]),
                num(T, Value::AsInt(1), vec![]),
                num(T - 29 * DAY, Value::AsInt(1), vec![]),
                num(T + HOUR / 2, Value::AsInt(1), vec![]),
                num(T + 2 * HOUR, Value::AsInt(1), vec![]),
                old_start,
            ],
        )],
    );
    let now = T as i64;
    let d = decode_at(&req, &lim, now).expect("decode");
    assert_eq!(d.accepted, 4);
    assert_eq!(d.rejections.get(Reason::TimestampTooOld), 1);
    assert_eq!(d.rejections.get(Reason::TimestampInFuture), 1);
    let msg = d.error_message().expect("message");
    assert!(msg.contains("timestamp_too_old"), "{msg}");
    let future = request(
        vec![],
        vec![gauge("f", vec![num(T + 2 * HOUR, Value::AsInt(1), vec![])])],
    );
    let d = decode_at(&future, &lim, now).expect("decode");
    assert!(d.batch.is_none());
    let msg = d.error_message().expect("message");
    assert!(msg.contains("timestamp_in_future"), "{msg}");
    // Without a window the same points are all accepted.
    let d = decode_at(&req, &lim.without_time_window(), now).expect("decode");
    assert_eq!((d.accepted, d.rejected), (6, 0));
}

/// `decode` windows around the wall clock, and `from_config` maps 0 to an open side.
#[test]
fn decode_uses_wall_clock() {
    let cfg = IngestConfig::default();
    let lim = DecodeLimits::from_config(&cfg);
    assert_eq!(lim.max_past, Some(Duration::from_secs(cfg.max_past_secs)));
    assert_eq!(
        lim.max_future,
        Some(Duration::from_secs(cfg.max_future_secs))
    );
    let now = now_unix_nanos() as u64;
    let day = 86_400_000_000_000;
    let req = request(
        vec![],
        vec![gauge(
            "g",
            vec![
                num(now, Value::AsInt(1), vec![]),
                num(now - 365 * day, Value::AsInt(1), vec![]),
                num(now + day, Value::AsInt(1), vec![]),
            ],
        )],
    );
    let d = decode(&req, &lim).expect("decode");
    assert_eq!(d.accepted, 1);
    assert_eq!(d.rejections.get(Reason::TimestampTooOld), 1);
    assert_eq!(d.rejections.get(Reason::TimestampInFuture), 1);
    let open = DecodeLimits::from_config(&IngestConfig {
        max_past_secs: 0,
        max_future_secs: 0,
        ..cfg
    });
    assert_eq!((open.max_past, open.max_future), (None, None));
    assert_eq!(decode(&req, &open).expect("decode").accepted, 3);
}

/// Values that render far longer than estimated (huge doubles print every digit) are caught
/// by the exact count while decoding: the request fails as too large instead of growing.
#[test]
fn rendered_expansion_guard() {
    let attrs: Vec<KeyValue> = (0..8)
        .map(|i| kv(&format!("d{i}"), AnyV::DoubleValue(f64::MAX)))
        .collect();
    let points: Vec<_> = (0..100)
        .map(|i| num(T + i, Value::AsInt(1), attrs.clone()))
        .collect();
    let req = request(vec![], vec![gauge("g", points)]);
    let lim = DecodeLimits {
        max_attribute_value_bytes: 400,
        max_decoded_bytes: 200_000,
        ..limits()
    };
    // The estimate (16 bytes per double) passes; the real 8 × 309 bytes per row do not.
    assert!(Capacity::of::<Prost>(prost_view::resources(&req), 400).estimated_bytes() < 200_000);
    assert!(matches!(decode(&req, &lim), Err(Error::TooLarge { .. })));
    let roomy = DecodeLimits {
        max_decoded_bytes: 1 << 20,
        ..lim
    };
    // Under a roomy limit the reservation grows with the real bytes, before they are built.
    let mut asked = Vec::new();
    let d = decode_reserving(&req, &roomy, T as i64, |n| {
        asked.push(n);
        Ok(())
    })
    .expect("decode");
    assert_eq!(d.accepted, 100);
    assert!(
        asked.len() > 1 && asked.windows(2).all(|w| w[0] < w[1]),
        "{asked:?}"
    );
    let batch_bytes = batch(&d).get_array_memory_size();
    assert!(
        *asked.last().expect("asked") >= batch_bytes,
        "{asked:?} vs {batch_bytes}"
    );
    // A refused growth stops decoding with the reserve's error.
    let mut calls = 0;
    let refused = decode_reserving(&req, &roomy, T as i64, |_| {
        calls += 1;
        if calls > 1 {
            Err(Error::MemoryBudget {
                retry_after: Duration::from_secs(1),
            })
        } else {
            Ok(())
        }
    });
    assert!(matches!(refused, Err(Error::MemoryBudget { .. })));
}

/// A resource whose rendered attributes are large is estimated exactly (they repeat on every
/// row), so the request is refused before anything is built.
#[test]
fn resource_estimate_is_exact() {
    let attrs = vec![kv("big", AnyV::DoubleValue(f64::MAX))];
    let points: Vec<_> = (0..1000)
        .map(|i| num(T + i, Value::AsInt(1), vec![]))
        .collect();
    let req = request(attrs, vec![gauge("g", points)]);
    let cap = Capacity::of::<Prost>(prost_view::resources(&req), 400);
    assert!(
        cap.resource_bytes >= 1000 * (309 + 3),
        "{}",
        cap.resource_bytes
    );
}

/// The memory estimate covers the parsed message and the batch: more than the wire bytes and
/// than the finished batch's buffers.
#[test]
fn memory_estimate_covers_message_and_batch() {
    use prost::Message;
    let points: Vec<_> = (0..200)
        .map(|i| {
            num(
                T + i,
                Value::AsDouble(1.5),
                vec![
                    s("host", "h1"),
                    s("route", "/api/v1/things"),
                    kv("code", AnyV::IntValue(200)),
                ],
            )
        })
        .collect();
    let req = request(
        vec![s("service.name", "svc")],
        vec![gauge("http.duration", points)],
    );
    let est = estimated_memory(&req, &limits());
    let d = run(&req);
    let batch_bytes = batch(&d).get_array_memory_size();
    assert!(est > req.encoded_len(), "{est} vs {}", req.encoded_len());
    assert!(est > batch_bytes, "{est} vs {batch_bytes}");
    eprintln!(
        "wire {} estimate {} batch {}",
        req.encoded_len(),
        est,
        batch_bytes
    );
}

/// Interleaved kinds (and null values) keep every kind-specific column aligned per row.
#[test]
fn mixed_kinds_stay_aligned() {
    let hist = HistogramDataPoint {
        time_unix_nano: T,
        count: 1,
        explicit_bounds: vec![1.0],
        bucket_counts: vec![0, 1],
        ..Default::default()
    };
    let summ = SummaryDataPoint {
        time_unix_nano: T,
        count: 2,
        sum: 3.0,
        ..Default::default()
    };
    let exp = ExponentialHistogramDataPoint {
        time_unix_nano: T,
        count: 3,
        ..Default::default()
    };
    let mut flagged = num(T, Value::AsDouble(f64::NAN), vec![]);
    flagged.flags = 1;
    let req = request(
        vec![],
        vec![
            gauge("a", vec![num(T, Value::AsInt(1), vec![]), flagged]),
            metric(
                "h",
                Data::Histogram(Histogram {
                    data_points: vec![hist],
                    aggregation_temporality: 0,
                }),
            ),
            gauge("b", vec![num(T, Value::AsInt(2), vec![])]),
            metric(
                "s",
                Data::Summary(Summary {
                    data_points: vec![summ],
                }),
            ),
            metric(
                "e",
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![exp],
                    aggregation_temporality: 0,
                }),
            ),
            gauge("c", vec![num(T, Value::AsInt(3), vec![])]),
        ],
    );
    let d = run(&req);
    let b = batch(&d);
    assert_eq!(b.num_rows(), 7);
    let valid = |name: &str| -> Vec<bool> {
        let c = b.column_by_name(name).expect(name);
        (0..c.len()).map(|i| c.is_valid(i)).collect()
    };
    let (t, f) = (true, false);
    assert_eq!(valid(col::VALUE), vec![t, f, f, t, f, f, t]);
    assert_eq!(valid(col::COUNT), vec![f, f, t, f, t, t, f]);
    assert_eq!(valid(col::BOUNDS), vec![f, f, t, f, f, f, f]);
    assert_eq!(valid(col::EXP_SCALE), vec![f, f, f, f, f, t, f]);
    assert_eq!(valid(col::QUANTILES), vec![f, f, f, f, t, f, f]);
    assert_eq!(u64s(b, col::COUNT).value(5), 3);
    assert_eq!(f64s(b, col::VALUE).value(6), 3.0);
    assert_eq!(list_u64(b, col::BUCKET_COUNTS, 2), Some(vec![0, 1]));
}

/// The columns shared by a metric, scope or resource (appended in runs) follow each row: over
/// several resources, scopes and metric kinds, with points rejected inside a metric and a
/// whole metric rejected, through both the protobuf and the prost decoder. The expectation is
/// built row by row from the request, independently of the decoder.
#[test]
fn shared_columns_follow_each_row() {
    let bad = || num(0, Value::AsInt(1), vec![]); // missing timestamp: rejected
    let ok = |v: i64| num(T, Value::AsInt(v), vec![s("k", &v.to_string())]);
    let sum = |name: &str, t: AggregationTemporality, mono: bool, points| Metric {
        unit: "By".into(),
        ..metric(
            name,
            Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: t as i32,
                is_monotonic: mono,
            }),
        )
    };
    let scope = |name: &str, metrics: Vec<Metric>| ScopeMetrics {
        scope: Some(InstrumentationScope {
            name: name.into(),
            ..Default::default()
        }),
        metrics,
        schema_url: String::new(),
    };
    let resource = |attrs: Vec<KeyValue>, scopes| ResourceMetrics {
        resource: Some(Resource {
            attributes: attrs,
            ..Default::default()
        }),
        scope_metrics: scopes,
        schema_url: String::new(),
    };
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![
            resource(
                vec![s("service.name", "api"), s("host.name", "h1")],
                vec![
                    scope(
                        "s1",
                        vec![
                            gauge("g1", vec![ok(1), bad(), ok(2)]),
                            sum("c1", AggregationTemporality::Cumulative, true, vec![ok(3)]),
                            gauge("", vec![ok(4)]), // empty name: the whole metric is rejected
                        ],
                    ),
                    scope("", vec![gauge("g2", vec![bad()])]),
                    scope(
                        "s3",
                        vec![sum(
                            "d1",
                            AggregationTemporality::Delta,
                            false,
                            vec![ok(5), ok(6)],
                        )],
                    ),
                ],
            ),
            resource(vec![], vec![scope("s1", vec![gauge("g1", vec![ok(7)])])]),
            resource(
                vec![s("service.name", "db"), kv("port", AnyV::IntValue(5432))],
                vec![scope("s4", vec![gauge("g3", vec![bad(), ok(8), bad()])])],
            ),
        ],
    };
    // (metric, kind, temporality, monotonic, unit, service, scope, resource) of each accepted
    // row, in request order.
    type Row = (
        String,
        String,
        Option<String>,
        Option<bool>,
        String,
        String,
        String,
        Vec<(String, Option<String>)>,
    );
    let mut expected: Vec<Row> = Vec::new();
    for rm in &req.resource_metrics {
        let attrs = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let rendered: Vec<(String, Option<String>)> = attrs
            .iter()
            .map(|a| {
                let v = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(AnyV::StringValue(s)) => s.clone(),
                    Some(AnyV::IntValue(i)) => i.to_string(),
                    other => panic!("unexpected test value {other:?}"),
                };
                (a.key.clone(), Some(v))
            })
            .collect();
        let service = rendered
            .iter()
            .find(|(k, _)| k == "service.name")
            .and_then(|(_, v)| v.clone())
            .unwrap_or_default();
        for sm in &rm.scope_metrics {
            let scope_name = sm.scope.as_ref().map_or("", |s| &s.name).to_string();
            for m in &sm.metrics {
                let (kind, temporality, monotonic, points) = match m.data.as_ref() {
                    Some(Data::Gauge(g)) => ("gauge", None, None, &g.data_points),
                    Some(Data::Sum(s)) => (
                        "sum",
                        Some(if s.aggregation_temporality == 1 {
                            "delta"
                        } else {
                            "cumulative"
                        }),
                        Some(s.is_monotonic),
                        &s.data_points,
                    ),
                    other => panic!("unexpected test data {other:?}"),
                };
                if m.name.is_empty() {
                    continue;
                }
                for _ in points.iter().filter(|p| p.time_unix_nano != 0) {
                    expected.push((
                        m.name.clone(),
                        kind.into(),
                        temporality.map(str::to_string),
                        monotonic,
                        m.unit.clone(),
                        service.clone(),
                        scope_name.clone(),
                        rendered.clone(),
                    ));
                }
            }
        }
    }
    assert_eq!(expected.len(), 7);
    let body = prost::Message::encode_to_vec(&req);
    let outcomes = [
        ("prost", run(&req)),
        (
            "protobuf",
            decode_protobuf(&body, &limits()).expect("decode"),
        ),
    ];
    for (path, d) in outcomes {
        assert_eq!(d.accepted, expected.len(), "{path}");
        assert_eq!(d.rejected, 5, "{path}");
        let b = batch(&d);
        let opt = |name: &str, row: usize| {
            let a = strings(b, name);
            a.is_valid(row).then(|| a.value(row).to_string())
        };
        let monotonic: &BooleanArray = b
            .column_by_name(col::MONOTONIC)
            .expect("monotonic")
            .as_boolean();
        let got: Vec<Row> = (0..b.num_rows())
            .map(|row| {
                (
                    strings(b, col::METRIC).value(row).to_string(),
                    strings(b, col::KIND).value(row).to_string(),
                    opt(col::TEMPORALITY, row),
                    monotonic.is_valid(row).then(|| monotonic.value(row)),
                    strings(b, col::UNIT).value(row).to_string(),
                    strings(b, col::SERVICE).value(row).to_string(),
                    strings(b, col::SCOPE).value(row).to_string(),
                    map_entries(b, col::RESOURCE, row),
                )
            })
            .collect();
        assert_eq!(got, expected, "{path}");
        let rates = f64s(b, col::SAMPLE_RATE);
        assert!((0..b.num_rows()).all(|r| rates.value(r) == 1.0), "{path}");
        // The rows' own values stay with their shared columns.
        let values: Vec<f64> = (0..b.num_rows())
            .map(|r| f64s(b, col::VALUE).value(r))
            .collect();
        assert_eq!(values, [1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 8.0], "{path}");
    }
}
