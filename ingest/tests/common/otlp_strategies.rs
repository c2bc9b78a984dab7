//! proptest strategies for OTLP metrics requests of every kind and value (all five metric
//! types, nested and non-string attribute values, non-ASCII and over-limit strings, exemplars,
//! missing or empty resources and scopes), shared by the decoder's differential tests
//! (`ingest/tests/wire_differential.rs`) and the check pass's count tests
//! (`ingest/src/decode/wire/check/tests.rs`), which include this file by path.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value as AnyV, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use proptest::prelude::*;

/// Clock of every test: points at `T` are inside the window.
pub(crate) const T: u64 = 1_700_000_000_000_000_000;

pub(crate) fn attr_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a",
        "b",
        "service.name",
        "host",
        "",
        "é",
        "a key far longer than the value limit",
    ])
    .prop_map(str::to_string)
}

pub(crate) fn text() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "",
        "x",
        "svc",
        "quo\"te\n",
        "ünï",
        "a string far past the limit",
    ])
    .prop_map(str::to_string)
}

pub(crate) fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(1.5),
        Just(-3.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MAX),
        any::<f64>(),
    ]
}

pub(crate) fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        Just(None),
        text().prop_map(|s| Some(AnyV::StringValue(s))),
        any::<bool>().prop_map(|b| Some(AnyV::BoolValue(b))),
        any::<i64>().prop_map(|i| Some(AnyV::IntValue(i))),
        double().prop_map(|d| Some(AnyV::DoubleValue(d))),
        prop::collection::vec(any::<u8>(), 0..5).prop_map(|b| Some(AnyV::BytesValue(b))),
        any::<i32>().prop_map(|i| Some(AnyV::StringValueStrindex(i))),
    ]
    .prop_map(|value| AnyValue { value });
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|values| AnyValue {
                value: Some(AnyV::ArrayValue(ArrayValue { values })),
            }),
            prop::collection::vec((attr_key(), prop::option::of(inner)), 0..3).prop_map(|kvs| {
                AnyValue {
                    value: Some(AnyV::KvlistValue(KeyValueList {
                        values: kvs
                            .into_iter()
                            .map(|(key, value)| KeyValue {
                                key,
                                value,
                                key_strindex: 0,
                            })
                            .collect(),
                    })),
                }
            }),
        ]
    })
}

pub(crate) fn attrs() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec(
        (attr_key(), prop::option::of(any_value()), 0..2i32).prop_map(
            |(key, value, key_strindex)| KeyValue {
                key,
                value,
                key_strindex,
            },
        ),
        0..5,
    )
}

pub(crate) fn time() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (0..1_000_000u64).prop_map(|d| T + d),
        1 => Just(0),
        1 => Just(1),
        1 => Just(u64::MAX),
        1 => Just(T + 3_600_000_000_000),
    ]
}

pub(crate) fn exemplars() -> impl Strategy<Value = Vec<Exemplar>> {
    prop::collection::vec(
        (
            attrs(),
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..9),
        )
            .prop_map(|(filtered_attributes, time_unix_nano, span_id)| Exemplar {
                filtered_attributes,
                time_unix_nano,
                span_id,
                trace_id: vec![1; 16],
                value: Some(exemplar::Value::AsDouble(1.0)),
            }),
        0..2,
    )
}

pub(crate) fn number_point() -> impl Strategy<Value = NumberDataPoint> {
    (
        attrs(),
        time(),
        time(),
        prop_oneof![
            Just(None),
            any::<i64>().prop_map(|i| Some(number_data_point::Value::AsInt(i))),
            double().prop_map(|d| Some(number_data_point::Value::AsDouble(d))),
        ],
        0..3u32,
        exemplars(),
    )
        .prop_map(
            |(attributes, time, start, value, flags, exemplars)| NumberDataPoint {
                attributes,
                start_time_unix_nano: start,
                time_unix_nano: time,
                exemplars,
                flags,
                value,
            },
        )
}

pub(crate) fn histogram_point() -> impl Strategy<Value = HistogramDataPoint> {
    (
        (attrs(), time(), 0..2u32, exemplars()),
        prop::collection::vec(double(), 0..4),
        prop::collection::vec(0..4u64, 0..5),
        prop::option::of(double()),
        prop::option::of(double()),
        any::<bool>(),
    )
        .prop_map(
            |((attributes, time, flags, exemplars), mut bounds, buckets, sum, min, sorted)| {
                if sorted {
                    bounds.retain(|b| b.is_finite());
                    bounds.sort_by(f64::total_cmp);
                    bounds.dedup();
                }
                let count = if sorted { buckets.iter().sum() } else { 7 };
                HistogramDataPoint {
                    attributes,
                    time_unix_nano: time,
                    count,
                    sum,
                    bucket_counts: buckets,
                    explicit_bounds: bounds,
                    exemplars,
                    flags,
                    min,
                    max: Some(9.0),
                    ..Default::default()
                }
            },
        )
}

pub(crate) fn buckets() -> impl Strategy<Value = Option<Buckets>> {
    prop::option::of(
        (any::<i32>(), prop::collection::vec(any::<u64>(), 0..4)).prop_map(
            |(offset, bucket_counts)| Buckets {
                offset,
                bucket_counts,
            },
        ),
    )
}

pub(crate) fn exp_point() -> impl Strategy<Value = ExponentialHistogramDataPoint> {
    (
        (attrs(), time(), 0..2u32, exemplars()),
        (
            any::<i32>(),
            any::<u64>(),
            double(),
            prop::option::of(double()),
        ),
        buckets(),
        buckets(),
    )
        .prop_map(
            |(
                (attributes, time, flags, exemplars),
                (scale, zero_count, zt, sum),
                positive,
                negative,
            )| {
                ExponentialHistogramDataPoint {
                    attributes,
                    time_unix_nano: time,
                    count: 3,
                    sum,
                    scale,
                    zero_count,
                    positive,
                    negative,
                    flags,
                    exemplars,
                    min: None,
                    max: Some(2.0),
                    zero_threshold: zt,
                    ..Default::default()
                }
            },
        )
}

pub(crate) fn summary_point() -> impl Strategy<Value = SummaryDataPoint> {
    (
        attrs(),
        time(),
        double(),
        0..2u32,
        prop::collection::vec((0.0..1.0f64, -5.0..5.0f64), 0..3),
    )
        .prop_map(|(attributes, time, sum, flags, qs)| SummaryDataPoint {
            attributes,
            time_unix_nano: time,
            count: 4,
            sum,
            quantile_values: qs
                .into_iter()
                .map(|(quantile, value)| ValueAtQuantile { quantile, value })
                .collect(),
            flags,
            ..Default::default()
        })
}

pub(crate) fn data() -> impl Strategy<Value = Option<Data>> {
    let n = 0..4;
    prop_oneof![
        1 => Just(None),
        3 => prop::collection::vec(number_point(), n.clone())
            .prop_map(|data_points| Some(Data::Gauge(Gauge { data_points }))),
        3 => (prop::collection::vec(number_point(), n.clone()), 0..4i32, any::<bool>()).prop_map(
            |(data_points, aggregation_temporality, is_monotonic)| Some(Data::Sum(Sum {
                data_points,
                aggregation_temporality,
                is_monotonic,
            }))
        ),
        2 => (prop::collection::vec(histogram_point(), n.clone()), 0..3i32).prop_map(
            |(data_points, aggregation_temporality)| Some(Data::Histogram(Histogram {
                data_points,
                aggregation_temporality,
            }))
        ),
        2 => (prop::collection::vec(exp_point(), n.clone()), 0..3i32).prop_map(
            |(data_points, aggregation_temporality)| Some(Data::ExponentialHistogram(
                ExponentialHistogram {
                    data_points,
                    aggregation_temporality,
                }
            ))
        ),
        2 => prop::collection::vec(summary_point(), n)
            .prop_map(|data_points| Some(Data::Summary(Summary { data_points }))),
    ]
}

pub(crate) fn metric() -> impl Strategy<Value = Metric> {
    (
        prop::sample::select(vec!["", "m", "http.requests", "ünï"]),
        text(),
        text(),
        data(),
        attrs(),
    )
        .prop_map(|(name, unit, description, data, metadata)| Metric {
            name: name.into(),
            description,
            unit,
            metadata,
            data,
        })
}

pub(crate) fn request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let scope = (
        prop::option::of((text(), text(), attrs())),
        prop::collection::vec(metric(), 0..4),
        text(),
    )
        .prop_map(|(scope, metrics, schema_url)| ScopeMetrics {
            scope: scope.map(|(name, version, attributes)| InstrumentationScope {
                name,
                version,
                attributes,
                dropped_attributes_count: 1,
            }),
            metrics,
            schema_url,
        });
    let resource = (
        prop::option::of(attrs()),
        prop::collection::vec(scope, 0..3),
        text(),
    )
        .prop_map(|(attrs, scope_metrics, schema_url)| ResourceMetrics {
            resource: attrs.map(|attributes| Resource {
                attributes,
                dropped_attributes_count: 2,
                entity_refs: vec![],
            }),
            scope_metrics,
            schema_url,
        });
    prop::collection::vec(resource, 0..3)
        .prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}
