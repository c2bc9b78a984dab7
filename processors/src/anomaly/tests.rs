//! Tests of the `anomaly` processor: passthrough, values scored per kind, selector, bounds.

use std::collections::BTreeMap;

use phoenix_model::pipeline::{AnomalyConfig, MatchConfig, MetricKind};

use super::value::bucket_quantile;
use super::{build, to_batch, AnomalyProcessor, AnomalyRecorder};
use crate::processor::Processor;
use crate::testing::{batch, rows, Row};

const SEC: i64 = 1_000_000_000;

/// A config whose detector warms up fast enough for short test series.
fn config() -> AnomalyConfig {
    AnomalyConfig {
        detector: BTreeMap::from([
            ("min_history".to_string(), 40.0),
            ("min_calibration".to_string(), 48.0),
        ]),
        ..AnomalyConfig::default()
    }
}

fn processor(cfg: &AnomalyConfig) -> (AnomalyProcessor, AnomalyRecorder) {
    let rec = AnomalyRecorder::default();
    (build("detect", cfg, rec.clone()).expect("builds"), rec)
}

/// A wiggly baseline value around 100 for point `i` (deterministic, not periodic in 8).
fn wiggle(i: i64) -> f64 {
    100.0 + ((i * 7919) % 13) as f64 - 6.0
}

/// Every batch comes out identical to the input (same schema, same rows, same order).
#[test]
fn passes_input_through_unchanged() {
    let (mut p, _) = processor(&config());
    let input: Vec<Row> = (0..50)
        .map(|i| Row::gauge("cpu", "svc", i * SEC, wiggle(i)).attr("host", "a"))
        .chain((0..5).map(|i| Row::sum("req", "svc", "delta", None, i * SEC, 1.0)))
        .collect();
    let b = batch(&input);
    let out = p.process(b.clone()).expect("processes");
    assert_eq!(out, b);
    assert_eq!(rows(&out), input);
}

/// A spike in a gauge raises one `point` row with its series, attributes, value and an
/// explanation; the flat series next to it raises none.
#[test]
fn gauge_spike_is_recorded() {
    let (mut p, rec) = processor(&config());
    for i in 0..300 {
        let v = if i == 250 { 1000.0 } else { wiggle(i) };
        let spiky = Row::gauge("cpu", "svc", i * SEC, v).attr("host", "a");
        let calm = Row::gauge("cpu", "svc", i * SEC, wiggle(i)).attr("host", "b");
        p.process(batch(&[spiky, calm])).expect("processes");
    }
    let drained = rec.drain().expect("drains").expect("some anomaly");
    let got = drained.num_rows();
    assert!(got >= 1, "{got}");
    let batch = drained;
    let value = batch.column_by_name("value").expect("value");
    let value = value
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .expect("f64");
    let idx = (0..got)
        .find(|&i| value.value(i) == 1000.0)
        .expect("the spike is among the rows");
    let text = arrow::util::display::array_value_to_string(
        batch.column_by_name("explanation").expect("explanation"),
        idx,
    )
    .expect("text");
    assert!(text.starts_with("value 1000 vs expected"), "{text}");
    let attrs = arrow::util::display::array_value_to_string(
        batch.column_by_name("attributes").expect("attributes"),
        idx,
    )
    .expect("attrs");
    assert!(attrs.contains("host") && attrs.contains('a'), "{attrs}");
    let ids = batch.column_by_name("series_id").expect("series_id");
    let ids = ids
        .as_any()
        .downcast_ref::<arrow::array::UInt64Array>()
        .expect("u64");
    let spiky = Row::gauge("cpu", "svc", 0, 0.0).attr("host", "a").series_id;
    assert!(
        ids.iter().all(|id| id == Some(spiky)),
        "the calm series raised no anomaly"
    );
    assert_eq!(p.series(), 2);
}

/// Cumulative sums are scored as the rate of their deltas, across a counter reset: a steady
/// 10/s counter that restarts from 0 scores a rate of 10 throughout (no negative or huge
/// rate at the reset), and the first point only seeds the state.
#[test]
fn cumulative_rate_with_reset() {
    let cfg = config();
    let (mut p, _) = processor(&cfg);
    let mut seen = Vec::new();
    let input: Vec<Row> = (0..20)
        .map(|i| {
            let (start, base) = if i < 10 { (0, 0) } else { (10 * SEC, 10) };
            Row::sum(
                "req",
                "svc",
                "cumulative",
                Some(start),
                (i + 1) * SEC,
                10.0 * (i + 1 - base) as f64,
            )
        })
        .collect();
    let input_batch = batch(&input);
    let view = crate::aggregate::input::Input::new(&input_batch).expect("view");
    let mut cumulative =
        crate::delta::CumulativeState::new_at(crate::delta::InitialValue::Drop, i64::MAX, 0);
    let mut buf = Vec::new();
    for row in 0..input.len() {
        seen.push(super::value::scored_value(
            &view,
            row,
            view.class(row),
            None,
            None,
            &mut cumulative,
            &mut buf,
        ));
    }
    assert_eq!(seen[0], None, "first point seeds the stream");
    for (i, v) in seen.iter().enumerate().skip(1) {
        assert_eq!(*v, Some(10.0), "point {i}");
    }
    p.process(input_batch).expect("processes");
    assert_eq!(p.series(), 1);
}

/// Delta histograms score their mean, or with `histogram_quantile` the interpolated quantile;
/// delta sums score value per second of their interval.
#[test]
fn histogram_mean_quantile_and_delta_rate() {
    let bounds = [10.0, 20.0, 30.0];
    let h = Row::histogram(
        "lat",
        "svc",
        "delta",
        Some(0),
        2 * SEC,
        &bounds,
        &[0, 4, 4, 0],
        Some(120.0),
    );
    let s = Row::sum("req", "svc", "delta", Some(0), 4 * SEC, 20.0);
    let b = batch(&[h, s]);
    let view = crate::aggregate::input::Input::new(&b).expect("view");
    let mut cumulative =
        crate::delta::CumulativeState::new_at(crate::delta::InitialValue::Drop, i64::MAX, 0);
    let mut buf = Vec::new();
    let mut v = |row, q| {
        super::value::scored_value(
            &view,
            row,
            view.class(row),
            None,
            q,
            &mut cumulative,
            &mut buf,
        )
    };
    assert_eq!(v(0, None), Some(15.0), "mean = sum / count");
    assert_eq!(
        v(0, Some(0.5)),
        Some(20.0),
        "median at the 10..20 / 20..30 edge"
    );
    assert_eq!(v(0, Some(0.75)), Some(25.0));
    assert_eq!(v(1, None), Some(5.0), "20 over 4 s");
    assert_eq!(bucket_quantile(0.99, &bounds, &[0, 0, 0, 5]), Some(30.0));
    assert_eq!(bucket_quantile(0.5, &bounds, &[0, 0, 0, 0]), None);
}

/// Only series matching `select` get state; `max_series` caps the state and counts the
/// series it turned away.
#[test]
fn selector_and_series_bound() {
    let cfg = AnomalyConfig {
        select: Some(MatchConfig {
            metric: vec!["http.*".into()],
            kind: vec![MetricKind::Gauge],
            ..MatchConfig::default()
        }),
        max_series: 3,
        ..config()
    };
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let (series, text) = metrics::with_local_recorder(&recorder, || {
        let (mut p, _) = processor(&cfg);
        let input: Vec<Row> = (0..10)
            .map(|i| Row::gauge("http.latency", "svc", SEC, 1.0).attr("i", &i.to_string()))
            .chain(
                (0..10)
                    .map(|i| Row::gauge("db.latency", "svc", SEC, 1.0).attr("i", &i.to_string())),
            )
            .collect();
        p.process(batch(&input)).expect("processes");
        (p.series(), handle.render())
    });
    assert_eq!(series, 3);
    assert!(
        text.contains(
            "phoenix_anomaly_skipped_points_total{processor=\"detect\",reason=\"max_series\"} 7"
        ),
        "{text}"
    );
    assert!(
        text.contains("phoenix_anomaly_series{processor=\"detect\"} 3"),
        "{text}"
    );
}

/// Idle series are forgotten after `idle_expiry_secs` of wall clock.
#[test]
fn idle_series_expire() {
    let (mut p, _) = processor(&AnomalyConfig {
        idle_expiry_secs: 60,
        ..config()
    });
    p.process(batch(&[Row::gauge("m", "s", SEC, 1.0)]))
        .expect("processes");
    assert_eq!(p.series(), 1);
    let now = crate::delta::wall_clock_ns();
    p.expire(now + 30 * SEC);
    assert_eq!(p.series(), 1);
    p.expire(now + 120 * SEC);
    assert_eq!(p.series(), 0);
    assert_eq!(p.open(), 0);
}

/// A bad detector key fails the build with the key named.
#[test]
fn bad_detector_key() {
    let cfg = AnomalyConfig {
        detector: BTreeMap::from([("nope".to_string(), 1.0)]),
        ..AnomalyConfig::default()
    };
    let Err(e) = build("d", &cfg, AnomalyRecorder::default()) else {
        panic!("builds");
    };
    assert!(e.to_string().contains("detector.nope"), "{e}");
    assert_eq!(to_batch(&[]).expect("empty").num_rows(), 0);
}

/// Throughput figure (ignored; run with `cargo test --release -p phoenix-processors
/// anomaly::tests::throughput -- --ignored --nocapture`): 1,000 gauge series × 2,000 points in
/// batches of 1,000 rows through the processor; prints points per second. Asserts only that
/// every point was scored.
#[test]
#[ignore]
fn throughput() {
    let series: i64 = 1_000;
    let points: i64 = 2_000;
    let (mut p, _) = processor(&AnomalyConfig {
        max_series: series as usize,
        ..AnomalyConfig::default()
    });
    let batches: Vec<_> = (0..points)
        .map(|i| {
            let rows: Vec<Row> = (0..series)
                .map(|s| {
                    Row::gauge("bench", "svc", (i + 1) * SEC, wiggle(i + s))
                        .attr("s", &s.to_string())
                })
                .collect();
            batch(&rows)
        })
        .collect();
    let started = std::time::Instant::now();
    for b in batches {
        p.process(b).expect("processes");
    }
    let secs = started.elapsed().as_secs_f64();
    let total = (series * points) as f64;
    println!(
        "anomaly processor: {total} points in {secs:.2} s = {:.0} points/s ({:.2} µs/point)",
        total / secs,
        secs * 1e6 / total
    );
    assert_eq!(p.series(), series as usize);
}
