//! Downsampling (the `sample` processor's `downsample:`, run on this engine): every expected
//! row is computed independently in plain Rust per series and interval.

use std::collections::BTreeMap;
use std::time::Duration;

use phoenix_model::pipeline::{
    DownsampleConfig, DownsampleFunction, Interval, LatePolicy, SampleConfig,
};
use proptest::prelude::*;

use super::fixture::{batch, read, sorted, window_of, Out, Rng, P, SEC, T0};
use crate::processor::Processor;
use crate::sample::build;

const FUNCTIONS: [DownsampleFunction; 5] = [
    DownsampleFunction::First,
    DownsampleFunction::Last,
    DownsampleFunction::Min,
    DownsampleFunction::Max,
    DownsampleFunction::Mean,
];

/// A 1-minute downsampler with 10 s lateness.
pub(super) fn config(function: DownsampleFunction) -> SampleConfig {
    SampleConfig {
        ratio: None,
        seed: 0,
        metric: Vec::new(),
        downsample: Some(DownsampleConfig {
            interval: Interval(Duration::from_secs(60)),
            function,
            allowed_lateness: Interval(Duration::from_secs(10)),
            late_policy: LatePolicy::Drop,
            max_series: 100_000,
            idle_timeout: Interval(Duration::from_secs(600)),
            idle_grace: Interval(Duration::from_secs(5)),
        }),
    }
}

/// Feeds `batches` (positions 1, 2, …) to the `sample` processor, then flushes.
fn run(c: &SampleConfig, batches: &[Vec<P>]) -> Vec<Out> {
    let mut s = build("ds", c).expect("builds");
    let mut out = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        out.extend(read(
            &s.process_at(batch(b), i as u64 + 1).expect("processes"),
        ));
    }
    if let Some(b) = s.flush().expect("flushes") {
        out.extend(read(&b));
    }
    out
}

/// The expected output row standing for `p` with fields replaced.
fn row_of(p: &P, time: i64, start: Option<i64>) -> Out {
    Out {
        time,
        start,
        metric: p.metric.clone(),
        kind: p.kind.into(),
        temporality: p.temporality.map(Into::into),
        monotonic: p.monotonic,
        service: "svc".into(),
        resource: p.resource.clone(),
        attributes: p.attributes.clone(),
        series_id: p.series_id(),
        value: p.value,
        count: p.count,
        sum: p.sum,
        min: p.min,
        max: p.max,
        bounds: p.bounds.clone(),
        buckets: p.buckets.clone(),
        sample_rate: p.sample_rate,
    }
}

/// The exact downsampled rows of `points` under `f` (1-minute intervals), computed directly:
/// group by (series, temporality, interval), then pick or merge as documented.
fn expected(points: &[P], f: DownsampleFunction) -> Vec<Out> {
    let mut groups: BTreeMap<(u64, Option<&str>, i64), Vec<&P>> = BTreeMap::new();
    for p in points {
        groups
            .entry((p.series_id(), p.temporality, window_of(p.time, 60 * SEC)))
            .or_default()
            .push(p);
    }
    let mut out = Vec::new();
    for ((_, temporality, _), ps) in groups {
        let first = *ps.iter().min_by_key(|p| p.time).expect("non-empty");
        let last = *ps.iter().max_by_key(|p| p.time).expect("non-empty");
        let latest = last.time;
        let earliest_start = ps.iter().filter_map(|p| p.start).min();
        match (first.kind, temporality) {
            ("gauge", _) => {
                let values: Vec<f64> = ps.iter().filter_map(|p| p.value).collect();
                let pick = |want: f64| {
                    // Ties: the earliest point.
                    *ps.iter()
                        .filter(|p| p.value == Some(want))
                        .min_by_key(|p| p.time)
                        .expect("present")
                };
                let chosen = match f {
                    DownsampleFunction::First => first,
                    DownsampleFunction::Last => last,
                    DownsampleFunction::Min => {
                        pick(values.iter().copied().fold(f64::MAX, f64::min))
                    }
                    DownsampleFunction::Max => {
                        pick(values.iter().copied().fold(f64::MIN, f64::max))
                    }
                    DownsampleFunction::Mean => {
                        let mean = values.iter().sum::<f64>() / values.len() as f64;
                        out.push(Out {
                            value: Some(mean),
                            ..row_of(first, latest, earliest_start)
                        });
                        continue;
                    }
                };
                out.push(row_of(chosen, chosen.time, chosen.start));
            }
            (_, Some("cumulative")) => {
                let chosen = if f == DownsampleFunction::First {
                    first
                } else {
                    last
                };
                out.push(row_of(chosen, chosen.time, chosen.start));
            }
            ("sum", _) => out.push(Out {
                value: Some(ps.iter().filter_map(|p| p.value).sum()),
                ..row_of(first, latest, earliest_start)
            }),
            _ => {
                let mut buckets = vec![0u64; first.buckets.as_ref().map_or(0, Vec::len)];
                for p in &ps {
                    for (b, c) in buckets.iter_mut().zip(p.buckets.iter().flatten()) {
                        *b += c;
                    }
                }
                let opt_fold = |get: fn(&P) -> Option<f64>, op: fn(f64, f64) -> f64| {
                    ps.iter()
                        .map(|p| get(p))
                        .try_fold(None, |acc: Option<f64>, v| {
                            v.map(|v| Some(acc.map_or(v, |a| op(a, v))))
                        })
                        .flatten()
                };
                out.push(Out {
                    count: Some(ps.iter().filter_map(|p| p.count).sum()),
                    sum: opt_fold(|p| p.sum, |a, b| a + b),
                    min: opt_fold(|p| p.min, f64::min),
                    max: opt_fold(|p| p.max, f64::max),
                    buckets: Some(buckets),
                    ..row_of(first, latest, earliest_start)
                });
            }
        }
    }
    out
}

/// Series of every kind over five minutes, points 1–20 s apart with integer values (so sums
/// are exact in any order), in time order.
fn population(rng: &mut Rng) -> Vec<P> {
    let mut points = Vec::new();
    let bounds = [1.0, 10.0, 100.0];
    for s in 0..12 {
        let host = format!("h{s}");
        let mut t = T0 + s * SEC;
        let (mut total, mut hist) = (0.0, [0u64; 4]);
        let counter_start = Some(T0 - 60 * SEC);
        while t < T0 + 300 * SEC {
            let v = (rng.below(50) as f64) - 10.0;
            let p = match s % 5 {
                0 | 1 => P::gauge("cpu", &host, t, v),
                2 => P {
                    start: Some(t - 5 * SEC),
                    ..P::delta("requests", &host, t, v.abs())
                },
                3 => {
                    total += v.abs();
                    P::counter("bytes", &host, counter_start, t, total)
                }
                _ => {
                    let add = [rng.below(3), rng.below(3), rng.below(3), rng.below(2)];
                    if s == 4 {
                        let p = P {
                            start: Some(t - 5 * SEC),
                            ..P::histogram(
                                "latency",
                                &host,
                                "delta",
                                t,
                                &bounds,
                                &add,
                                v.abs(),
                                Some((0.5, v.abs() + 1.0)),
                            )
                        };
                        t += (1 + rng.below(20) as i64) * SEC;
                        points.push(p);
                        continue;
                    }
                    for (h, a) in hist.iter_mut().zip(add) {
                        *h += a;
                    }
                    P {
                        start: counter_start,
                        ..P::histogram(
                            "latency_c",
                            &host,
                            "cumulative",
                            t,
                            &bounds,
                            &hist,
                            total,
                            None,
                        )
                    }
                }
            };
            points.push(p);
            t += (1 + rng.below(20) as i64) * SEC;
        }
    }
    points.sort_by_key(|p| p.time);
    points
}

/// Every function, every kind, in order in one batch: rows equal the independent computation
/// exactly (names, series ids, timestamps, values, buckets), and delta totals are conserved.
#[test]
fn exact_per_series_and_interval() {
    let points = population(&mut Rng(7));
    for f in FUNCTIONS {
        let got = sorted(run(&config(f), std::slice::from_ref(&points)));
        let want = sorted(expected(&points, f));
        assert_eq!(got.len(), want.len(), "{f:?}: row count");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{f:?}");
        }
        let total = |rows: &mut dyn Iterator<Item = Option<f64>>| rows.flatten().sum::<f64>();
        assert_eq!(
            total(
                &mut got
                    .iter()
                    .filter(|r| r.metric == "requests")
                    .map(|r| r.value)
            ),
            total(
                &mut points
                    .iter()
                    .filter(|p| p.metric == "requests")
                    .map(|p| p.value)
            ),
            "no delta is lost"
        );
    }
}

/// A series sampled and downsampled keeps its `sample_rate`; unselected metrics pass through
/// untouched; points late for a closed interval are counted in `phoenix_late_datapoints_total`
/// and dropped.
#[test]
fn ratio_selector_and_late_points() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let mut c = config(DownsampleFunction::Last);
    c.ratio = Some(0.5);
    c.metric = vec!["cpu".into()];
    let mut points: Vec<P> = (0..40)
        .flat_map(|s| {
            (0..3).map(move |k| P::gauge("cpu", &format!("h{s}"), T0 + k * 10 * SEC, k as f64))
        })
        .collect();
    points.push(P::gauge("other", "h", T0, 1.0));
    points.push(P::gauge("other", "h", T0 + SEC, 2.0));
    // A series the sampler keeps (by the documented rule), for the late point.
    let kept = (0..40)
        .map(|s| format!("h{s}"))
        .find(|h| {
            let id = P::gauge("cpu", h, T0, 0.0).series_id();
            crate::sample::keeps(id, 0, crate::sample::threshold(0.5))
        })
        .expect("some series kept");
    let (got, late) = metrics::with_local_recorder(&recorder, || {
        let mut s = build("ds", &c).expect("builds");
        let mut got = read(&s.process_at(batch(&points), 1).expect("processes"));
        // Moves the watermark past the first interval, then a point for it arrives.
        got.extend(read(
            &s.process_at(batch(&[P::gauge("cpu", &kept, T0 + 90 * SEC, 5.0)]), 2)
                .expect("processes"),
        ));
        let late = s
            .process_at(batch(&[P::gauge("cpu", &kept, T0 + 30 * SEC, 9.0)]), 3)
            .expect("processes");
        assert_eq!(late.num_rows(), 0);
        let dropped = s.take_dropped().map(|b| b.num_rows());
        got.extend(read(&s.flush().expect("flushes").expect("rows")));
        (got, dropped)
    });
    let others: Vec<&Out> = got.iter().filter(|r| r.metric == "other").collect();
    assert_eq!(others.len(), 2, "unselected rows pass as they are");
    assert!(others.iter().all(|r| r.sample_rate == 1.0));
    let cpu: Vec<&Out> = got
        .iter()
        .filter(|r| r.metric == "cpu" && r.time < T0 + 60 * SEC)
        .collect();
    let expected_kept = (0..40)
        .filter(|s| {
            let id = P::gauge("cpu", &format!("h{s}"), T0, 0.0).series_id();
            crate::sample::keeps(id, 0, crate::sample::threshold(0.5))
        })
        .count();
    assert_eq!(cpu.len(), expected_kept, "one row per kept series");
    assert!(cpu
        .iter()
        .all(|r| r.sample_rate == 0.5 && r.value == Some(2.0) && r.time == T0 + 20 * SEC));
    assert_eq!(late, Some(1), "the late point is dropped");
    let text = handle.render();
    assert!(
        text.contains("phoenix_late_datapoints_total{processor=\"ds\"} 1"),
        "{text}"
    );
}

/// One batch with rows the sampler drops (an unsampled series) and a row the downsampler drops
/// (a late point of a sampled series): it is processed, and both drops are reported for usage
/// accounting.
#[test]
fn sampled_and_late_drops_in_one_batch() {
    let mut c = config(DownsampleFunction::Last);
    c.ratio = Some(0.5);
    let keeps = |h: &String| {
        let id = P::gauge("cpu", h, T0, 0.0).series_id();
        crate::sample::keeps(id, 0, crate::sample::threshold(0.5))
    };
    let hosts: Vec<String> = (0..40).map(|s| format!("h{s}")).collect();
    let kept = hosts.iter().find(|h| keeps(h)).expect("some series kept");
    let unsampled = hosts
        .iter()
        .find(|h| !keeps(h))
        .expect("some series dropped");
    let mut s = build("ds", &c).expect("builds");
    // Moves the watermark past the first interval.
    s.process_at(batch(&[P::gauge("cpu", kept, T0 + 90 * SEC, 5.0)]), 1)
        .expect("processes");
    let both = [
        P::gauge("cpu", kept, T0 + 30 * SEC, 9.0),
        P::gauge("cpu", unsampled, T0 + 95 * SEC, 1.0),
        P::gauge("cpu", unsampled, T0 + 96 * SEC, 2.0),
    ];
    let out = s
        .process_at(batch(&both), 2)
        .expect("sampled and late drops in one batch");
    assert_eq!(out.num_rows(), 0);
    let dropped = s.take_dropped().expect("dropped rows");
    assert_eq!(dropped.num_rows(), 3, "two sampled out, one late");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the batch boundaries and the arrival order within the lateness, every
    /// function gives the same rows as in-order arrival in one batch.
    #[test]
    fn independent_of_batches_and_order(seed in any::<u64>(), f in 0usize..5) {
        let f = FUNCTIONS[f];
        let mut rng = Rng(seed);
        let points = population(&mut rng);
        let lateness = 10 * SEC;
        let mut arrival: Vec<(i64, P)> = points
            .iter()
            .map(|p| (p.time + rng.below(lateness as u64) as i64, p.clone()))
            .collect();
        arrival.sort_by_key(|(k, _)| *k);
        let mut batches = Vec::new();
        let mut rest: Vec<P> = arrival.into_iter().map(|(_, p)| p).collect();
        while !rest.is_empty() {
            let n = (1 + rng.below(12) as usize).min(rest.len());
            batches.push(rest.drain(..n).collect::<Vec<_>>());
        }
        let reference = sorted(run(&config(f), std::slice::from_ref(&points)));
        let shuffled = sorted(run(&config(f), &batches));
        prop_assert_eq!(&reference, &shuffled);
        prop_assert_eq!(reference, sorted(expected(&points, f)));
    }
}
