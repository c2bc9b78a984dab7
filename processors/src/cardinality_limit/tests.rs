//! Cardinality limiter tests: exact totals through overflow for every summable type, stable
//! admission, expiry, gauges, counters, and totals independent of batch boundaries.

use std::collections::{BTreeMap, BTreeSet};

use phoenix_model::pipeline::{CardinalityLimitConfig, InitialValueMode};
use proptest::prelude::*;

use super::config::build_at;
use super::{CardinalityLimit, OVERFLOW_KEY, OVERFLOW_VALUE};
use crate::testing::{batch, rows, Row};

const SEC: i64 = 1_000_000_000;

fn limiter(max_series: u64) -> CardinalityLimit {
    let config = CardinalityLimitConfig {
        max_series,
        metric: Vec::new(),
        expire_after_secs: 600,
        initial_value: InitialValueMode::Auto,
    };
    // The clock starts at 0, after the fixtures' start times: `auto` keeps no first point.
    build_at("card", &config, 0).expect("builds")
}

/// Runs `input` through `p` in chunks of `chunk` rows at clock `now`.
fn run(p: &mut CardinalityLimit, input: &[Row], chunk: usize) -> Vec<Row> {
    input
        .chunks(chunk.max(1))
        .flat_map(|part| rows(&p.process_now(batch(part), SEC).expect("processes")))
        .collect()
}

fn is_overflow(r: &Row) -> bool {
    r.attributes == [(OVERFLOW_KEY.to_string(), Some(OVERFLOW_VALUE.to_string()))]
}

/// `series` delta sums of `metric`, `points` points each, interleaved by time.
fn delta_sums(metric: &str, series: usize, points: usize) -> Vec<Row> {
    (0..points as i64)
        .flat_map(|t| {
            (0..series).map(move |s| {
                let v = ((s * 7 + t as usize * 3) % 11) as f64;
                Row::sum(metric, "svc", "delta", Some(t * SEC), (t + 1) * SEC, v)
                    .attr("id", &s.to_string())
            })
        })
        .collect()
}

/// Cap 10 over 100 series of delta sums: the value total is kept exactly, at most 10 series
/// plus one overflow series come out, the overflow series has exactly the overflow attribute
/// and the recipe's `series_id`, and one overflow point per time.
#[test]
fn delta_sum_totals() {
    let input = delta_sums("reqs", 100, 5);
    let mut p = limiter(10);
    let out = run(&mut p, &input, input.len());
    let total = |rows: &[Row]| rows.iter().map(|r| r.value.expect("value")).sum::<f64>();
    assert_eq!(total(&out), total(&input));
    let series: BTreeSet<u64> = out.iter().map(|r| r.series_id).collect();
    assert_eq!(series.len(), 11);
    let overflow: Vec<&Row> = out.iter().filter(|r| is_overflow(r)).collect();
    assert_eq!(overflow.len(), 5, "one folded point per time");
    let mut expected =
        Row::sum("reqs", "svc", "delta", None, 0, 0.0).attr(OVERFLOW_KEY, OVERFLOW_VALUE);
    expected.rehash();
    assert!(overflow.iter().all(|r| r.series_id == expected.series_id));
    assert!(overflow
        .iter()
        .all(|r| r.hist.temporality.as_deref() == Some("delta")));
    assert_eq!(p.admitted(), 10);
}

/// The first 10 series seen stay admitted in later batches, even when new series come first
/// there; their rows pass unchanged.
#[test]
fn admission_is_stable() {
    let first = delta_sums("m", 30, 1);
    let mut later = delta_sums("m", 100, 1);
    later.reverse();
    let mut p = limiter(10);
    let out1 = run(&mut p, &first, 1000);
    let admitted: BTreeSet<u64> = first[..10].iter().map(|r| r.series_id).collect();
    let kept = |out: &[Row]| -> BTreeSet<u64> {
        out.iter()
            .filter(|r| !is_overflow(r))
            .map(|r| r.series_id)
            .collect()
    };
    assert_eq!(kept(&out1), admitted);
    let out2 = run(&mut p, &later, 1000);
    assert_eq!(kept(&out2), admitted);
    for r in out2.iter().filter(|r| !is_overflow(r)) {
        assert!(later.contains(r), "admitted rows pass unchanged");
    }
}

/// An admitted series idle longer than `expire_after_secs` frees its slot for a new series.
#[test]
fn idle_series_free_slots() {
    let a = delta_sums("m", 2, 1);
    let b: Vec<Row> = delta_sums("m", 3, 1)[2..].to_vec();
    let mut p = limiter(2);
    assert_eq!(p.process_now(batch(&a), SEC).expect("a").num_rows(), 2);
    let out = rows(&p.process_now(batch(&b), 100 * SEC).expect("b"));
    assert!(is_overflow(&out[0]), "full");
    // Only series 0 keeps sending; series 1 goes idle and expires.
    p.process_now(batch(&a[..1]), 400 * SEC)
        .expect("keep alive");
    let out = rows(&p.process_now(batch(&b), 701 * SEC).expect("b again"));
    assert!(!is_overflow(&out[0]), "admitted into the freed slot");
    assert_eq!(p.admitted(), 2);
}

/// Cumulative counters with restarts: admitted series pass unchanged; the overflow series is
/// delta and its values sum to the exact increase of every overflowed series after its first
/// point.
#[test]
fn cumulative_sum_totals() {
    let mut input = Vec::new();
    let mut exact: BTreeMap<u64, f64> = BTreeMap::new();
    for s in 0..100i64 {
        let mut start = -SEC;
        let mut value = (s % 13) as f64;
        let mut increase = 0.0;
        for t in 1..=6i64 {
            if t > 1 {
                let inc = ((s * t) % 9) as f64;
                if (s + t) % 5 == 0 {
                    start = t * 10 * SEC - 1;
                    value = inc;
                } else {
                    value += inc;
                }
                increase += inc;
            }
            let r = Row::sum("c", "svc", "cumulative", Some(start), t * 10 * SEC, value)
                .attr("id", &s.to_string());
            exact.insert(r.series_id, increase);
            input.push(r);
        }
    }
    input.sort_by_key(|r| r.time_ns);
    for chunk in [100, 33, input.len()] {
        let mut p = limiter(10);
        let out = run(&mut p, &input, chunk);
        let admitted: BTreeSet<u64> = out
            .iter()
            .filter(|r| !is_overflow(r))
            .map(|r| r.series_id)
            .collect();
        assert_eq!(admitted.len(), 10);
        let passed: Vec<&Row> = input
            .iter()
            .filter(|r| admitted.contains(&r.series_id))
            .collect();
        let got: Vec<&Row> = out.iter().filter(|r| !is_overflow(r)).collect();
        assert_eq!(got, passed);
        let overflow: f64 = out
            .iter()
            .filter(|r| is_overflow(r))
            .inspect(|r| assert_eq!(r.hist.temporality.as_deref(), Some("delta")))
            .map(|r| r.value.expect("value"))
            .sum();
        let expected: f64 = exact
            .iter()
            .filter(|(id, _)| !admitted.contains(id))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(overflow, expected, "chunk {chunk}");
    }
}

/// Totals of histogram rows: count, sum and each bucket.
fn hist_totals(rows: &[Row]) -> (u64, f64, Vec<u64>) {
    let mut buckets = vec![0u64; 3];
    let (mut count, mut sum) = (0, 0.0);
    for r in rows {
        count += r.hist.count.expect("count");
        sum += r.hist.sum.expect("sum");
        for (t, b) in buckets
            .iter_mut()
            .zip(r.hist.bucket_counts.as_ref().expect("buckets"))
        {
            *t += b;
        }
    }
    (count, sum, buckets)
}

/// Delta histograms: count, sum and every bucket total are kept; min/max of folded points
/// are the min/max of their members.
#[test]
fn delta_histogram_totals() {
    let bounds = [1.0, 10.0];
    let input: Vec<Row> = (0..4i64)
        .flat_map(|t| {
            (0..100u64).map(move |s| {
                let b = [s % 3, (s + t as u64) % 4, s % 2];
                let mut r = Row::histogram(
                    "lat",
                    "svc",
                    "delta",
                    Some(t),
                    t + 1,
                    &bounds,
                    &b,
                    Some((s + 1) as f64),
                );
                r.hist.min = Some(s as f64);
                r.hist.max = Some(s as f64 + 1.0);
                r.attr("id", &s.to_string())
            })
        })
        .collect();
    let mut p = limiter(10);
    let out = run(&mut p, &input, 150);
    assert_eq!(hist_totals(&out), hist_totals(&input));
    let overflow: Vec<&Row> = out.iter().filter(|r| is_overflow(r)).collect();
    assert!(overflow
        .iter()
        .all(|r| r.hist.bounds.as_deref() == Some(&bounds[..])));
    let lowest = overflow
        .iter()
        .filter_map(|r| r.hist.min)
        .fold(f64::MAX, f64::min);
    assert_eq!(lowest, 10.0, "series 10 is the first overflowed");
}

/// Cumulative histograms: the overflow deltas add up to the exact increase of count, sum and
/// each bucket of the overflowed series.
#[test]
fn cumulative_histogram_totals() {
    let bounds = [1.0, 10.0];
    let mut input = Vec::new();
    let mut increase: Vec<Row> = Vec::new();
    for s in 0..60u64 {
        let mut b = [s % 2, 0, 1];
        for t in 0..5i64 {
            let mut step = [0u64; 3];
            if t > 0 {
                step = [1, s % 3, (t as u64) % 2];
                for (x, d) in b.iter_mut().zip(step) {
                    *x += d;
                }
            }
            let sum = (b[0] + 2 * b[1] + 3 * b[2]) as f64;
            let r = Row::histogram(
                "lat",
                "svc",
                "cumulative",
                Some(-SEC),
                t + 1,
                &bounds,
                &b,
                Some(sum),
            )
            .attr("id", &s.to_string());
            if s >= 6 {
                let step_sum = (step[0] + 2 * step[1] + 3 * step[2]) as f64;
                increase.push(Row::histogram(
                    "x",
                    "svc",
                    "delta",
                    None,
                    0,
                    &bounds,
                    &step,
                    Some(step_sum),
                ));
            }
            input.push(r);
        }
    }
    input.sort_by_key(|r| r.time_ns);
    let mut p = limiter(6);
    let out = run(&mut p, &input, 70);
    let overflow: Vec<Row> = out.iter().filter(|r| is_overflow(r)).cloned().collect();
    assert_eq!(hist_totals(&overflow), hist_totals(&increase));
    assert!(overflow
        .iter()
        .all(|r| r.hist.min.is_none() && r.hist.max.is_none()));
}

/// Gauges fold to the last value (input order) per time; no point is counted as dropped, the
/// overflow counter counts every folded point and the state gauge shows the admitted series.
#[test]
fn gauges_and_counters() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let input: Vec<Row> = (0..5)
        .map(|s| Row::gauge("temp", "svc", SEC, s as f64).attr("id", &s.to_string()))
        .collect();
    let out = metrics::with_local_recorder(&recorder, || {
        let mut p = limiter(2);
        rows(&p.process_now(batch(&input), SEC).expect("processes"))
    });
    assert_eq!(out.len(), 3);
    assert_eq!(out[..2], input[..2]);
    assert!(is_overflow(&out[2]));
    assert_eq!(out[2].value, Some(4.0));
    let text = handle.render();
    assert!(
        text.contains("phoenix_cardinality_overflow_datapoints_total{processor=\"card\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("phoenix_processor_state_series{processor=\"card\"} 2"),
        "{text}"
    );
    assert!(
        text.lines()
            .filter(|l| l.starts_with("phoenix_processor_datapoints_dropped_total"))
            .all(|l| l.ends_with(" 0")),
        "nothing dropped: {text}"
    );
}

/// Unselected metrics, cumulative exponential histograms and different services are handled
/// apart: one overflow series per metric and resource.
#[test]
fn selection_and_resources() {
    let mut input = delta_sums("a", 5, 1);
    input.extend(delta_sums("b", 5, 1));
    input
        .extend((0..5).map(|s| {
            Row::sum("a", "other", "delta", Some(0), SEC, 1.0).attr("id", &s.to_string())
        }));
    let config = CardinalityLimitConfig {
        max_series: 2,
        metric: vec!["a".into()],
        expire_after_secs: 600,
        initial_value: InitialValueMode::Auto,
    };
    let mut p = build_at("card", &config, 0).expect("builds");
    let out = rows(&p.process_now(batch(&input), SEC).expect("processes"));
    let b_rows = out.iter().filter(|r| r.metric == "b").count();
    assert_eq!(b_rows, 5, "unselected metric untouched");
    let overflow: BTreeSet<String> = out
        .iter()
        .filter(|r| is_overflow(r))
        .map(|r| r.service.clone())
        .collect();
    assert_eq!(
        overflow,
        BTreeSet::from(["other".to_string(), "svc".to_string()])
    );
    // 2 admitted for metric a (both from svc), 3 svc + 5 other overflowed into 2 points.
    assert_eq!(out.len(), 5 + 2 + 2);
}

/// Totals per metric of a run: delta sum values, overflow values of the cumulative metric,
/// histogram count, sum and buckets; plus the admitted set.
fn totals(out: &[Row]) -> (f64, f64, (u64, f64, Vec<u64>), BTreeSet<u64>) {
    let d = out
        .iter()
        .filter(|r| r.metric == "d")
        .map(|r| r.value.expect("v"))
        .sum();
    let c = out
        .iter()
        .filter(|r| r.metric == "c" && is_overflow(r))
        .map(|r| r.value.expect("v"))
        .sum();
    let h: Vec<Row> = out.iter().filter(|r| r.metric == "h").cloned().collect();
    let admitted = out
        .iter()
        .filter(|r| !is_overflow(r))
        .map(|r| r.series_id)
        .collect();
    (d, c, hist_totals(&h), admitted)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Totals (delta sums, cumulative overflow increases, histogram count/sum/buckets) and
    /// the admitted set do not depend on how the input is split into batches or on the row
    /// order inside a batch.
    #[test]
    fn totals_independent_of_batching(
        series in 1usize..30,
        points in 1i64..6,
        cap in 1u64..8,
        values in proptest::collection::vec(0u8..50, 64),
        cuts in proptest::collection::vec(1usize..40, 1..12),
        reverse in any::<bool>(),
    ) {
        let mut input = Vec::new();
        let mut level = vec![0.0f64; series];
        for t in 0..points {
            for s in 0..series {
                let v = f64::from(values[(s * 7 + t as usize) % values.len()]);
                level[s] += v;
                let id = s.to_string();
                input.push(Row::sum("d", "svc", "delta", Some(t), t + 1, v).attr("id", &id));
                input.push(Row::sum("c", "svc", "cumulative", Some(-1), t + 1, level[s]).attr("id", &id));
                let b = [v as u64 % 3, v as u64 % 5, 1];
                input.push(Row::histogram("h", "svc", "delta", Some(t), t + 1, &[1.0, 2.0], &b, Some(v)).attr("id", &id));
            }
        }
        let mut whole = limiter(cap);
        let expected = totals(&rows(&whole.process_now(batch(&input), SEC).expect("whole")));
        let mut split = limiter(cap);
        let mut out = Vec::new();
        let mut at = 0;
        let mut cut = cuts.iter().cycle();
        while at < input.len() {
            let end = (at + cut.next().copied().unwrap_or(1)).min(input.len());
            let mut part = input[at..end].to_vec();
            // Rows of one batch may come in any order (once every series has been seen, so
            // the order of first sightings, which decides admission, is unchanged).
            if reverse && part.iter().all(|r| r.time_ns > 1) {
                part.reverse();
            }
            out.extend(rows(&split.process_now(batch(&part), SEC).expect("part")));
            at = end;
        }
        prop_assert_eq!(totals(&out), expected.clone());
        let d_in: f64 = input.iter().filter(|r| r.metric == "d").map(|r| r.value.expect("v")).sum();
        prop_assert_eq!(expected.0, d_in);
    }
}

/// Overflow histograms with other bounds, another unit or another sample rate are not folded
/// together: each combination is its own point.
#[test]
fn folds_only_alike_points() {
    let h = |s: u64, bounds: &[f64]| {
        Row::histogram(
            "lat",
            "svc",
            "delta",
            Some(0),
            SEC,
            bounds,
            &[1, 1, 1],
            Some(1.0),
        )
        .attr("id", &s.to_string())
    };
    let mut input = vec![h(0, &[1.0, 2.0]), h(1, &[1.0, 2.0]), h(2, &[1.0, 2.0])];
    input.push(h(3, &[1.0, 5.0]));
    let mut sampled = h(4, &[1.0, 2.0]);
    sampled.sample_rate = 0.5;
    input.push(sampled);
    let mut p = limiter(1);
    let out = rows(&p.process_now(batch(&input), SEC).expect("processes"));
    let overflow: Vec<&Row> = out.iter().filter(|r| is_overflow(r)).collect();
    let counts: Vec<(Option<u64>, f64)> = overflow
        .iter()
        .map(|r| (r.hist.count, r.sample_rate))
        .collect();
    assert_eq!(counts, vec![(Some(6), 1.0), (Some(3), 1.0), (Some(3), 0.5)]);
}
