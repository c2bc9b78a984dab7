//! Temporality tests: exact increases through resets and restarts, round trips, drops by
//! reason, pass-through and expiry.

use std::collections::BTreeMap;

use phoenix_model::pipeline::{InitialValueMode, TargetTemporality, TemporalityConfig};

use super::config::build_at;
use super::{build, Temporality};
use crate::processor::Processor;
use crate::testing::{batch, rows, Row};

const SEC: i64 = 1_000_000_000;

fn config(to: TargetTemporality, initial: InitialValueMode) -> TemporalityConfig {
    TemporalityConfig {
        to,
        metric: Vec::new(),
        initial_value: initial,
        stale_after_secs: 300,
    }
}

/// A processor whose clock starts at 0, far after the fixtures' start times (so `auto` treats
/// their first points as already counted elsewhere).
fn processor(to: TargetTemporality, initial: InitialValueMode) -> Temporality {
    build_at("t", &config(to, initial), 0).expect("builds")
}

/// A small deterministic generator (no test dependency on `rand`).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Cumulative counter streams with restarts (new start time, value from 0) and resets seen
/// only as a value drop; returns the rows in time order and each series' exact increase after
/// its first point (computed from the increments, not from the rows).
fn counters(series: usize, points: usize, seed: u64) -> (Vec<Row>, BTreeMap<u64, f64>) {
    let mut rng = Lcg(seed);
    let mut out = Vec::new();
    let mut exact = BTreeMap::new();
    for s in 0..series {
        let mut start = Some(-100 * SEC);
        let mut value = (rng.next() % 50) as f64;
        let mut increase = 0.0;
        for p in 0..points {
            let time = (p as i64 + 1) * 10 * SEC + s as i64;
            if p > 0 {
                let inc = (rng.next() % 20) as f64;
                match rng.next() % 10 {
                    // Restart with a start time: the counter counted `inc` since then.
                    // (Start-less series stay so: a start appearing is no reset signal.)
                    0 if start.is_some() => {
                        start = Some(time - 3 * SEC);
                        value = inc + 1.0;
                        increase += inc + 1.0;
                    }
                    // Reset without start times: only the drop tells.
                    1 if start.is_none() && value > 20.0 => {
                        value = inc;
                        increase += inc;
                    }
                    _ => {
                        value += inc;
                        increase += inc;
                    }
                }
            }
            // Some series carry no start time at all.
            let row = Row::sum("reqs", "svc", "cumulative", start, time, value)
                .attr("id", &s.to_string());
            out.push(row);
            if p == 0 && s % 3 == 0 {
                start = None;
                out.last_mut().expect("row").hist.start_ns = None;
            }
        }
        let id = out.last().expect("row").series_id;
        exact.insert(id, increase);
    }
    (out, exact)
}

/// Feeds `input` in batches of `chunk` rows, each shuffled, and returns every output row.
fn run(p: &mut Temporality, input: &[Row], chunk: usize, rng: &mut Lcg) -> Vec<Row> {
    let mut out = Vec::new();
    for part in input.chunks(chunk) {
        let mut part = part.to_vec();
        rng.shuffle(&mut part);
        out.extend(rows(&p.process_now(batch(&part), SEC).expect("processes")));
    }
    out
}

/// Across restarts and value-drop resets, the deltas of each series sum exactly to its
/// increase after the first point (dropped under `drop`), whatever the batch split and row
/// order; deltas are labelled `delta`, never overlap and end at their point's time.
#[test]
fn deltas_sum_to_exact_increase() {
    let (mut input, exact) = counters(40, 30, 7);
    // Batches carry time slices (as exporters send), so sort by time first.
    input.sort_by_key(|r| r.time_ns);
    for chunk in [1, 7, 100, input.len()] {
        let mut p = processor(TargetTemporality::Delta, InitialValueMode::Drop);
        let out = run(&mut p, &input, chunk, &mut Lcg(chunk as u64));
        assert_eq!(out.len(), input.len() - 40, "only first points dropped");
        let mut got: BTreeMap<u64, f64> = BTreeMap::new();
        let mut last_time: BTreeMap<u64, i64> = BTreeMap::new();
        let mut by_series: Vec<&Row> = out.iter().collect();
        by_series.sort_by_key(|r| (r.series_id, r.time_ns));
        for r in by_series {
            assert_eq!(r.hist.temporality.as_deref(), Some("delta"));
            let start = r.hist.start_ns.expect("delta start");
            assert!(start < r.time_ns);
            if let Some(prev) = last_time.get(&r.series_id) {
                assert!(start >= *prev, "deltas never overlap");
            }
            last_time.insert(r.series_id, r.time_ns);
            *got.entry(r.series_id).or_default() += r.value.expect("value");
        }
        assert_eq!(got, exact, "chunk {chunk}");
    }
}

/// `keep` emits first points whole; `auto` emits them only for counters that started after
/// the processor did (start set and not equal to the time).
#[test]
fn initial_value_modes() {
    let old = Row::sum("m", "svc", "cumulative", Some(-SEC), 5 * SEC, 10.0).attr("k", "old");
    let fresh = Row::sum("m", "svc", "cumulative", Some(SEC), 5 * SEC, 4.0).attr("k", "new");
    let zero = Row::sum("m", "svc", "cumulative", Some(5 * SEC), 5 * SEC, 1.0).attr("k", "z");
    let input = [old.clone(), fresh.clone(), zero.clone()];
    let mut keep = processor(TargetTemporality::Delta, InitialValueMode::Keep);
    let got = rows(&keep.process_now(batch(&input), SEC).expect("processes"));
    assert_eq!(got.len(), 3);
    let mut auto = processor(TargetTemporality::Delta, InitialValueMode::Auto);
    let got = rows(&auto.process_now(batch(&input), SEC).expect("processes"));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].series_id, fresh.series_id);
    assert_eq!((got[0].value, got[0].hist.start_ns), (Some(4.0), Some(SEC)));
    let dropped = auto.take_dropped().expect("dropped rows");
    assert_eq!(dropped.num_rows(), 2);
    assert!(auto.take_dropped().is_none(), "taken once");
}

/// Histograms: delta count, sum and buckets; min/max only on whole (first kept or reset)
/// points; a count drop resets.
#[test]
fn histogram_deltas() {
    let b = [1.0, 5.0];
    let h = |t, buckets: &[u64], sum| {
        let mut r = Row::histogram(
            "lat",
            "svc",
            "cumulative",
            Some(0),
            t,
            &b,
            buckets,
            Some(sum),
        );
        r.hist.min = Some(0.5);
        r.hist.max = Some(9.0);
        r
    };
    let input = [
        h(10, &[1, 1, 0], 3.0),
        h(20, &[2, 3, 1], 20.0),
        h(30, &[0, 1, 0], 2.0),
    ];
    let mut p = processor(TargetTemporality::Delta, InitialValueMode::Keep);
    let got = rows(&p.process_now(batch(&input), SEC).expect("processes"));
    let fields: Vec<_> = got
        .iter()
        .map(|r| {
            (
                r.hist.start_ns,
                r.hist.count,
                r.hist.sum,
                r.hist.bucket_counts.clone(),
                r.hist.min,
                r.hist.bounds.clone(),
            )
        })
        .collect();
    let bounds = Some(b.to_vec());
    assert_eq!(
        fields,
        vec![
            (
                Some(0),
                Some(2),
                Some(3.0),
                Some(vec![1, 1, 0]),
                Some(0.5),
                bounds.clone()
            ),
            (
                Some(10),
                Some(4),
                Some(17.0),
                Some(vec![1, 2, 1]),
                None,
                bounds.clone()
            ),
            (
                Some(20),
                Some(1),
                Some(2.0),
                Some(vec![0, 1, 0]),
                Some(0.5),
                bounds
            ),
        ]
    );
}

/// cumulative → delta (`keep`) → cumulative gives back the original sums and histograms
/// (count, sum, buckets, start), restarts included, for streams with start times.
#[test]
fn round_trip() {
    let (counters, _) = counters(12, 20, 3);
    let mut input: Vec<Row> = counters
        .into_iter()
        .filter(|r| {
            r.attributes[0]
                .1
                .as_deref()
                .is_some_and(|s| s.parse::<u32>().is_ok_and(|s| s % 3 != 0))
        })
        .collect();
    let b = [1.0];
    for s in 0..5u64 {
        let mut c = [0u64, 0];
        for p in 0..10i64 {
            c[(p as usize + s as usize) % 2] += p as u64 + 1;
            let sum = (c[0] + c[1]) as f64;
            input.push(
                Row::histogram(
                    "lat",
                    "svc",
                    "cumulative",
                    Some(-SEC),
                    p * SEC + 1,
                    &b,
                    &c,
                    Some(sum),
                )
                .attr("s", &s.to_string()),
            );
        }
    }
    assert!(input.iter().all(|r| r.hist.start_ns.is_some()));
    input.sort_by_key(|r| r.time_ns);
    let mut to_delta = processor(TargetTemporality::Delta, InitialValueMode::Keep);
    let mut to_cumulative = processor(TargetTemporality::Cumulative, InitialValueMode::Auto);
    let mut back = Vec::new();
    for part in input.chunks(37) {
        let d = to_delta.process_now(batch(part), SEC).expect("to delta");
        back.extend(rows(
            &to_cumulative.process_now(d, SEC).expect("to cumulative"),
        ));
    }
    let key = |r: &Row| (r.series_id, r.time_ns);
    let mut expected = input.clone();
    expected.sort_by_key(key);
    back.sort_by_key(key);
    assert_eq!(back, expected);
}

/// A start-less stream comes back as a cumulative series starting at its first point's time,
/// with the same increases.
#[test]
fn round_trip_without_start() {
    let input: Vec<Row> = [5.0, 7.0, 2.0, 9.0]
        .iter()
        .enumerate()
        .map(|(i, v)| Row::sum("m", "svc", "cumulative", None, (i as i64 + 1) * SEC, *v))
        .collect();
    let mut to_delta = processor(TargetTemporality::Delta, InitialValueMode::Keep);
    let mut to_cumulative = processor(TargetTemporality::Cumulative, InitialValueMode::Auto);
    let d = to_delta.process_now(batch(&input), SEC).expect("to delta");
    let back = rows(&to_cumulative.process_now(d, SEC).expect("to cumulative"));
    let got: Vec<_> = back.iter().map(|r| (r.hist.start_ns, r.value)).collect();
    // 5, +2, reset to 2 (seen as a drop), +7.
    assert_eq!(
        got,
        vec![
            (Some(SEC), Some(5.0)),
            (Some(SEC), Some(7.0)),
            (Some(SEC), Some(9.0)),
            (Some(SEC), Some(16.0))
        ]
    );
}

/// Duplicate and late points are dropped, counted with reason `out_of_order` and returned by
/// `take_dropped`; exactly-once points still convert.
#[test]
fn out_of_order_counted() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let r = |t, v| Row::sum("m", "svc", "cumulative", Some(0), t * SEC, v);
    metrics::with_local_recorder(&recorder, || {
        let mut p = build(
            "tmp",
            &config(TargetTemporality::Delta, InitialValueMode::Drop),
        )
        .expect("builds");
        let got = rows(
            &p.process_now(batch(&[r(1, 1.0), r(2, 3.0)]), 0)
                .expect("first"),
        );
        assert_eq!(got.len(), 1);
        // A duplicate of t=2, a late t=1, then t=3.
        let got = rows(
            &p.process_now(batch(&[r(2, 3.0), r(1, 1.0), r(3, 6.0)]), 0)
                .expect("second"),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].value, got[0].hist.start_ns),
            (Some(3.0), Some(2 * SEC))
        );
        assert_eq!(p.take_dropped().expect("dropped").num_rows(), 2);
    });
    let text = handle.render();
    for line in [
        "phoenix_processor_datapoints_dropped_total{processor=\"tmp\",reason=\"out_of_order\"} 2",
        "phoenix_processor_datapoints_dropped_total{processor=\"tmp\",reason=\"initial\"} 1",
        "phoenix_processor_state_series{processor=\"tmp\"} 1",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

/// Gauges, summaries, exponential histograms, rows already in the target temporality and
/// unselected metrics pass unchanged.
#[test]
fn pass_through() {
    let input = vec![
        Row::gauge("g", "svc", 1, 2.0),
        Row::gauge("s", "svc", 1, 2.0).kind("summary"),
        Row::gauge("e", "svc", 1, 2.0).kind("exponential_histogram"),
        Row::sum("already", "svc", "delta", Some(0), 1, 2.0),
        Row::sum("other", "svc", "cumulative", Some(0), 1, 2.0),
    ];
    let mut c = config(TargetTemporality::Delta, InitialValueMode::Keep);
    c.metric = vec!["already".into(), "g*".into()];
    let mut p = build("t", &c).expect("builds");
    assert_eq!(
        rows(&p.process_now(batch(&input), 0).expect("processes")),
        input
    );
    assert!(p.take_dropped().is_none());
}

/// A stream idle for longer than `stale_after_secs` is forgotten: its next point is a first
/// point again.
#[test]
fn idle_streams_expire() {
    let r = |t, v| Row::sum("m", "svc", "cumulative", Some(0), t, v);
    let mut p = processor(TargetTemporality::Delta, InitialValueMode::Drop);
    assert_eq!(
        p.process_now(batch(&[r(1, 1.0)]), SEC)
            .expect("1")
            .num_rows(),
        0
    );
    assert_eq!(
        p.process_now(batch(&[r(2, 2.0)]), 200 * SEC)
            .expect("2")
            .num_rows(),
        1
    );
    assert_eq!(
        p.process_now(batch(&[r(3, 3.0)]), 499 * SEC)
            .expect("3")
            .num_rows(),
        1
    );
    assert_eq!(
        p.process_now(batch(&[r(4, 4.0)]), 900 * SEC)
            .expect("4")
            .num_rows(),
        0
    );
}
