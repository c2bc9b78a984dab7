//! Throughput of the processor graph's processors on decoded OTLP batches: one group per
//! processor (`filter`, `attributes`, `sample`, `temporality`, `cardinality_limit`,
//! `aggregate`; others add theirs here). Each iteration runs a fresh processor over a sequence
//! of scrapes, so per-stream state is built and used.
#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use arrow::record_batch::RecordBatch;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use phoenix_model::pipeline::{
    CardinalityLimitConfig, InitialValueMode, TargetTemporality, TemporalityConfig,
};
use phoenix_processors::Processor;

const BASE_NS: u64 = 1_700_000_000_000_000_000;
const INTERVAL_NS: u64 = 10_000_000_000;
/// Series per scrape: 10 metrics × 1,000 attribute sets.
const METRICS: usize = 10;
const PER_METRIC: usize = 1_000;
const SCRAPES: usize = 10;

fn kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn attributes(i: usize) -> Vec<KeyValue> {
    vec![
        kv("host", format!("host-{}", i % 50)),
        kv("route", format!("/api/{}", i % 20)),
        kv("instance", format!("i-{i}")),
    ]
}

/// Scrape `k` of every series as cumulative counters (`histogram: false`) or cumulative
/// histograms, or their delta counterparts.
fn request(
    k: usize,
    histogram: bool,
    temporality: AggregationTemporality,
) -> ExportMetricsServiceRequest {
    let time = BASE_NS + k as u64 * INTERVAL_NS;
    let start = if temporality == AggregationTemporality::Cumulative {
        BASE_NS - INTERVAL_NS
    } else {
        time - INTERVAL_NS
    };
    let scale = if temporality == AggregationTemporality::Cumulative {
        k as u64 + 1
    } else {
        1
    };
    let metrics = (0..METRICS)
        .map(|m| {
            let data = if histogram {
                metric::Data::Histogram(Histogram {
                    aggregation_temporality: temporality as i32,
                    data_points: (0..PER_METRIC)
                        .map(|i| {
                            let buckets = vec![scale * (i as u64 % 3), scale * 2, scale];
                            HistogramDataPoint {
                                attributes: attributes(i),
                                start_time_unix_nano: start,
                                time_unix_nano: time,
                                count: buckets.iter().sum(),
                                sum: Some(scale as f64 * 12.5),
                                bucket_counts: buckets,
                                explicit_bounds: vec![10.0, 100.0],
                                ..Default::default()
                            }
                        })
                        .collect(),
                })
            } else {
                metric::Data::Sum(Sum {
                    aggregation_temporality: temporality as i32,
                    is_monotonic: true,
                    data_points: (0..PER_METRIC)
                        .map(|i| NumberDataPoint {
                            attributes: attributes(i),
                            start_time_unix_nano: start,
                            time_unix_nano: time,
                            value: Some(number_data_point::Value::AsDouble(
                                (scale * (i as u64 % 7 + 1)) as f64,
                            )),
                            ..Default::default()
                        })
                        .collect(),
                })
            };
            Metric {
                name: format!(
                    "bench.{}.{m}",
                    if histogram { "latency" } else { "requests" }
                ),
                unit: "1".to_string(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "bench".into())],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

/// [`SCRAPES`] decoded batches of [`request`].
fn scrapes(histogram: bool, temporality: AggregationTemporality) -> Vec<RecordBatch> {
    // Fixture timestamps are fixed in the past: no ingest time window.
    let limits =
        phoenix_ingest::DecodeLimits::from_config(&Default::default()).without_time_window();
    (0..SCRAPES)
        .map(|k| {
            phoenix_ingest::decode(&request(k, histogram, temporality), &limits)
                .ok()
                .and_then(|d| d.batch)
                .expect("fixture decodes")
        })
        .collect()
}

/// Benchmarks `build()` run over `batches`, counting datapoints.
fn bench_run(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    batches: &[RecordBatch],
    build: impl Fn() -> Box<dyn Processor>,
) {
    let points: usize = batches.iter().map(RecordBatch::num_rows).sum();
    group.throughput(Throughput::Elements(points as u64));
    group.bench_function(name, |b| {
        b.iter_batched(
            || (build(), batches.to_vec()),
            |(mut p, batches)| {
                batches
                    .into_iter()
                    .map(|batch| p.process(batch).expect("processes").num_rows())
                    .sum::<usize>()
            },
            BatchSize::LargeInput,
        )
    });
}

fn temporality(c: &mut Criterion) {
    let mut group = c.benchmark_group("temporality");
    group.sample_size(10);
    let to = |to| {
        move || {
            let config = TemporalityConfig {
                to,
                metric: Vec::new(),
                initial_value: InitialValueMode::Auto,
                stale_after_secs: 300,
            };
            Box::new(phoenix_processors::temporality::build("t", &config).expect("builds"))
                as Box<dyn Processor>
        }
    };
    let cumulative_sums = scrapes(false, AggregationTemporality::Cumulative);
    bench_run(
        &mut group,
        "sum_to_delta",
        &cumulative_sums,
        to(TargetTemporality::Delta),
    );
    let cumulative_hists = scrapes(true, AggregationTemporality::Cumulative);
    bench_run(
        &mut group,
        "histogram_to_delta",
        &cumulative_hists,
        to(TargetTemporality::Delta),
    );
    let delta_sums = scrapes(false, AggregationTemporality::Delta);
    bench_run(
        &mut group,
        "sum_to_cumulative",
        &delta_sums,
        to(TargetTemporality::Cumulative),
    );
    group.finish();
}

fn cardinality_limit(c: &mut Criterion) {
    let mut group = c.benchmark_group("cardinality_limit");
    group.sample_size(10);
    let cap = |max_series| {
        move || {
            let config = CardinalityLimitConfig {
                max_series,
                metric: Vec::new(),
                expire_after_secs: 600,
                initial_value: InitialValueMode::Auto,
            };
            Box::new(phoenix_processors::cardinality_limit::build("c", &config).expect("builds"))
                as Box<dyn Processor>
        }
    };
    let delta_sums = scrapes(false, AggregationTemporality::Delta);
    bench_run(
        &mut group,
        "delta_sums_all_admitted",
        &delta_sums,
        cap(PER_METRIC as u64),
    );
    bench_run(
        &mut group,
        "delta_sums_90pct_overflow",
        &delta_sums,
        cap(100),
    );
    let cumulative_sums = scrapes(false, AggregationTemporality::Cumulative);
    bench_run(
        &mut group,
        "cumulative_sums_90pct_overflow",
        &cumulative_sums,
        cap(100),
    );
    let delta_hists = scrapes(true, AggregationTemporality::Delta);
    bench_run(
        &mut group,
        "delta_histograms_90pct_overflow",
        &delta_hists,
        cap(100),
    );
    group.finish();
}

/// Benchmarks `build()` run over `batches` and flushed, counting datapoints.
fn bench_flushed(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    batches: &[RecordBatch],
    build: impl Fn() -> Box<dyn Processor>,
) {
    let points: usize = batches.iter().map(RecordBatch::num_rows).sum();
    group.throughput(Throughput::Elements(points as u64));
    group.bench_function(name, |b| {
        b.iter_batched(
            || (build(), batches.to_vec()),
            |(mut p, batches)| {
                let out: usize = batches
                    .into_iter()
                    .enumerate()
                    .map(|(i, batch)| p.process_at(batch, i as u64).expect("processes").num_rows())
                    .sum();
                out + p.flush().expect("flushes").map_or(0, |b| b.num_rows())
            },
            BatchSize::LargeInput,
        )
    });
}

/// 12 scrapes (two minutes) of 10,000 gauge series (attributes host × region × instance).
fn gauge_scrapes() -> Vec<RecordBatch> {
    let limits =
        phoenix_ingest::DecodeLimits::from_config(&Default::default()).without_time_window();
    let first = phoenix_ingest::decode(
        &phoenix_benches::gauge_request(METRICS * PER_METRIC, BASE_NS),
        &limits,
    )
    .ok()
    .and_then(|d| d.batch)
    .expect("fixture decodes");
    (0..12)
        .map(|k| phoenix_benches::shift_time(&first, k * phoenix_benches::INTERVAL_NS))
        .collect()
}

fn aggregate(c: &mut Criterion) {
    use phoenix_model::pipeline::{
        AggregateConfig, GaugeFunction, Interval, LatePolicy, OutputTemporality,
    };
    use std::time::Duration;
    let mut group = c.benchmark_group("aggregate");
    group.sample_size(10);
    let rollup = |group_by: Option<Vec<String>>, quantiles: Vec<f64>| {
        move || {
            let config = AggregateConfig {
                window: Interval(Duration::from_secs(60)),
                allowed_lateness: Interval(Duration::from_secs(10)),
                late_policy: LatePolicy::Drop,
                group_by: group_by.clone(),
                group_by_resource: vec!["service.name".into()],
                functions: GaugeFunction::ALL.to_vec(),
                quantiles: quantiles.clone(),
                relative_error: 0.01,
                output_temporality: OutputTemporality::Delta,
                initial_value: InitialValueMode::Auto,
                max_series: 1_000_000,
                idle_timeout: Interval(Duration::from_secs(600)),
                idle_grace: Interval(Duration::from_secs(5)),
            };
            Box::new(phoenix_processors::aggregate::build("a", &config).expect("builds"))
                as Box<dyn Processor>
        }
    };
    let gauges = gauge_scrapes();
    let by_region = Some(vec!["region".to_string()]);
    bench_flushed(
        &mut group,
        "gauges_spatial",
        &gauges,
        rollup(by_region.clone(), Vec::new()),
    );
    bench_flushed(
        &mut group,
        "gauges_spatial_quantiles",
        &gauges,
        rollup(by_region, vec![0.5, 0.9, 0.99]),
    );
    bench_flushed(
        &mut group,
        "gauges_temporal",
        &gauges,
        rollup(None, Vec::new()),
    );
    let cumulative_sums = scrapes(false, AggregationTemporality::Cumulative);
    bench_flushed(
        &mut group,
        "counters_temporal",
        &cumulative_sums,
        rollup(None, Vec::new()),
    );
    bench_flushed(
        &mut group,
        "counters_spatial",
        &cumulative_sums,
        rollup(Some(vec!["route".to_string()]), Vec::new()),
    );
    group.finish();
}

/// A processor built from its YAML parameters (`type: …, key: …`), as a config file has them.
fn from_yaml(params: &str) -> Box<dyn Processor> {
    let text = format!(
        "pipeline:\n  processors:\n    p: {{ inputs: [otlp], {params} }}\n  sinks:\n    metrics: {{ inputs: [p] }}\n"
    );
    let config = phoenix_model::Config::from_yaml("bench.yaml", &text, &[]).expect("valid");
    phoenix_processors::build_processor("p", &config.pipeline.processors["p"].params)
        .expect("builds")
}

fn filter(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter");
    group.sample_size(10);
    let gauges = gauge_scrapes();
    bench_run(&mut group, "metric_glob", &gauges, || {
        from_yaml(r#"type: filter, drop: { metric: ["bench.gauge.1*"] }"#)
    });
    bench_run(&mut group, "metric_regex_and_attribute", &gauges, || {
        from_yaml(
            r#"type: filter, keep: { metric: ['/bench\.gauge\.[0-4]\d*/'], attributes: { region: region-1 } }"#,
        )
    });
    group.finish();
}

fn attributes_processor(c: &mut Criterion) {
    let mut group = c.benchmark_group("attributes");
    group.sample_size(10);
    let gauges = gauge_scrapes();
    bench_run(&mut group, "drop_rename_hash", &gauges, || {
        from_yaml(
            "type: attributes, actions: [{ drop: [instance] }, { rename: { from: host, to: host.id } }, { hash: [region] }]",
        )
    });
    bench_run(&mut group, "move_to_resource", &gauges, || {
        from_yaml("type: attributes, actions: [{ move_to_resource: [host] }]")
    });
    group.finish();
}

fn sample(c: &mut Criterion) {
    let mut group = c.benchmark_group("sample");
    group.sample_size(10);
    let gauges = gauge_scrapes();
    bench_run(&mut group, "series_10pct", &gauges, || {
        from_yaml("type: sample, ratio: 0.1")
    });
    // Two minutes of 10 s scrapes into 1-minute points; flushed, so every interval is emitted.
    bench_flushed(&mut group, "downsample_gauges_last", &gauges, || {
        from_yaml("type: sample, downsample: { interval: 1m, function: last }")
    });
    bench_flushed(&mut group, "downsample_gauges_mean", &gauges, || {
        from_yaml("type: sample, downsample: { interval: 1m, function: mean }")
    });
    let delta_sums = scrapes(false, AggregationTemporality::Delta);
    bench_flushed(&mut group, "downsample_delta_sums", &delta_sums, || {
        from_yaml("type: sample, downsample: { interval: 1m }")
    });
    let cumulative_hists = scrapes(true, AggregationTemporality::Cumulative);
    bench_flushed(
        &mut group,
        "downsample_cumulative_histograms",
        &cumulative_hists,
        || from_yaml("type: sample, downsample: { interval: 1m }"),
    );
    group.finish();
}

/// The embedded default's stages (`cap`, `rollup_1m`, usage accounting) on loadgen-shaped
/// traffic: 10,000 series, 60 points each per minute (`examples/stage_cost.rs` counts their
/// instructions under callgrind).
fn default_pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("default_pipeline");
    group.sample_size(10);
    let batches = phoenix_benches::loadgen_batches(10, 120, BASE_NS, 1_000_000_000);
    bench_run(&mut group, "cap", &batches, || {
        from_yaml("type: cardinality_limit, max_series: 100000")
    });
    bench_flushed(&mut group, "rollup_1m", &batches, || {
        from_yaml("type: aggregate, window: 1m, allowed_lateness: 30s, max_series: 100000")
    });
    let points: usize = batches.iter().map(RecordBatch::num_rows).sum();
    group.throughput(Throughput::Elements(points as u64));
    group.bench_function("usage_in_and_out", |b| {
        let out = phoenix_processors::Flow::Out(std::sync::Arc::from("metrics"));
        b.iter(|| {
            let usage = phoenix_processors::UsageRecorder::new();
            for batch in &batches {
                usage
                    .record(batch, &phoenix_processors::Flow::In)
                    .expect("records");
                usage.record(batch, &out).expect("records");
            }
            usage
                .drain(None, |_| 100.0)
                .expect("drains")
                .map(|d| d.num_rows())
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    filter,
    attributes_processor,
    sample,
    temporality,
    cardinality_limit,
    aggregate,
    default_pipeline
);
criterion_main!(benches);
