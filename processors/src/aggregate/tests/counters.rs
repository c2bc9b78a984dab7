//! Sums: cumulative → delta with resets and restarts before summing, output temporality.

use std::collections::BTreeMap;

use phoenix_model::pipeline::{InitialValueMode, OutputTemporality};

use super::fixture::{config, id_of, run, window_of, Entries, Out, Rng, MIN, P, SEC, T0};

/// The OTel rules written plainly: per series in time order, the first point counts whole
/// (`keep`) or not at all (`drop`); a value drop or a start change is a reset (the whole value
/// counts); otherwise the increase counts. Equal times after the first are ignored.
fn reference_deltas(points: &[P], keep_first: bool) -> BTreeMap<u64, Vec<(i64, f64)>> {
    let mut by_series: BTreeMap<u64, Vec<&P>> = BTreeMap::new();
    for p in points {
        by_series.entry(p.series_id()).or_default().push(p);
    }
    let mut out = BTreeMap::new();
    for (id, mut ps) in by_series {
        ps.sort_by_key(|p| p.time);
        let mut deltas = Vec::new();
        let mut prev: Option<(Option<i64>, i64, f64)> = None;
        for p in ps {
            let v = p.value.expect("value");
            let d = match prev {
                None => keep_first.then_some(v),
                Some((_, t, _)) if p.time == t => continue,
                Some((start, _, pv)) => {
                    let restarted = matches!((start, p.start), (Some(a), Some(b)) if a != b);
                    Some(if restarted || v < pv { v } else { v - pv })
                }
            };
            if let Some(d) = d {
                deltas.push((p.time, d));
            }
            prev = Some((p.start.or(prev.and_then(|x| x.0)), p.time, v));
        }
        out.insert(id, deltas);
    }
    out
}

/// Window sums of the reference deltas per output key, adding series in ascending id and each
/// series' deltas in time order (the aggregator's documented order).
fn reference_sums(
    points: &[P],
    keep_first: bool,
    key: impl Fn(&P) -> u64,
) -> BTreeMap<(u64, i64), f64> {
    let first: BTreeMap<u64, &P> = points.iter().map(|p| (p.series_id(), p)).collect();
    let mut sums = BTreeMap::new();
    for (id, deltas) in reference_deltas(points, keep_first) {
        let k = key(first[&id]);
        for (t, d) in deltas {
            *sums.entry((k, window_of(t, MIN))).or_insert(0.0) += d;
        }
    }
    sums
}

fn sums_of(out: &[Out]) -> BTreeMap<(u64, i64), f64> {
    out.iter()
        .map(|r| ((r.series_id, r.time), r.value.expect("value")))
        .collect()
}

/// One counter with a reset (value drop), a restart (new start time, higher value) and
/// points out of order within the lateness: each window's delta equals the reference, for
/// both first-point modes.
#[test]
fn resets_restarts_out_of_order() {
    let s1 = Some(T0 - MIN);
    let s2 = Some(T0 + 150 * SEC);
    let values = [
        (0, s1, 100.0),
        (20, s1, 110.0),
        (40, s1, 130.5),
        (60, s1, 131.0),
        (80, s1, 20.0), // reset: value dropped
        (100, s1, 25.0),
        (140, s1, 40.0),
        (160, s2, 60.0), // restart: start moved, value grew
        (180, s2, 61.0),
        (200, s2, 70.25),
        (230, s2, 71.0),
    ];
    let points: Vec<P> = values
        .iter()
        .map(|&(s, start, v)| P::counter("req", "h", start, T0 + s * SEC, v))
        .collect();
    // Arrival: swap neighbours (each ≤ 20 s apart; lateness 30 s).
    let mut arrival = points.clone();
    arrival.swap(1, 2);
    arrival.swap(4, 5);
    arrival.swap(7, 8);
    for (mode, keep) in [
        (InitialValueMode::Keep, true),
        (InitialValueMode::Drop, false),
    ] {
        let mut c = config();
        c.initial_value = mode;
        c.allowed_lateness = phoenix_model::pipeline::Interval(std::time::Duration::from_secs(30));
        let out = run(&c, &[arrival[..4].to_vec(), arrival[4..].to_vec()]);
        let expected = reference_sums(&points, keep, P::series_id);
        assert_eq!(sums_of(&out), expected, "{mode:?}");
        // Window 1 holds 131-130.5 and the reset's whole 20 and 25-20.
        assert_eq!(
            expected[&(points[0].series_id(), T0 + MIN)],
            0.5 + 20.0 + 5.0
        );
        for r in &out {
            assert_eq!(
                (r.kind.as_str(), r.temporality.as_deref(), r.monotonic),
                ("sum", Some("delta"), Some(true))
            );
            assert_eq!(r.start, Some(r.time), "delta rows start at their window");
        }
    }
}

/// Random counters (fractional increments, resets, restarts) of 16 hosts on 2 routes,
/// shuffled within the lateness and split into batches: each route's window sum equals the
/// exact sum of its series' increases.
#[test]
fn spatial_sum_of_increases() {
    let mut rng = Rng(5);
    let mut points = Vec::new();
    for h in 0..16 {
        let route = ["/a", "/b"][h % 2];
        let (mut v, mut start) = (rng.unit() * 1000.0, T0 - MIN);
        for k in 0..40 {
            let t = T0 + k * 6 * SEC + h as i64 * 100;
            match rng.below(20) {
                0 => v = rng.unit() * 10.0, // crash: counter restarts below
                1 => {
                    start = t - SEC; // restart with a new start time
                    v += rng.unit();
                }
                _ => v += (rng.below(1000) as f64) * 0.125 + rng.unit(),
            }
            points
                .push(P::counter("req", &format!("h{h}"), Some(start), t, v).attr("route", route));
        }
    }
    // Arrival order: by time + jitter in [0, lateness), so nothing is late.
    let mut arrival: Vec<(i64, P)> = points
        .iter()
        .map(|p| (p.time + (rng.unit() * 10.0 * SEC as f64) as i64, p.clone()))
        .collect();
    arrival.sort_by_key(|(k, _)| *k);
    let arrival: Vec<P> = arrival.into_iter().map(|(_, p)| p).collect();
    let batches: Vec<Vec<P>> = arrival.chunks(37).map(<[P]>::to_vec).collect();
    let mut c = config();
    c.group_by = Some(vec!["route".into()]);
    let out = run(&c, &batches);
    let resource: Entries = vec![("service.name".into(), Some("svc".into()))];
    let expected = reference_sums(&points, true, |p| {
        id_of(&p.metric, &resource, &p.attributes)
    });
    assert_eq!(sums_of(&out), expected);
    assert_eq!(out.len(), 2 * 4, "2 routes × 4 windows");
}

/// Delta inputs summed per window; `output_temporality: cumulative` emits running totals that
/// start at the series' first window.
#[test]
fn delta_inputs_and_cumulative_output() {
    let points: Vec<P> = (0..180)
        .map(|i| {
            P::delta(
                "bytes",
                &format!("h{}", i % 3),
                T0 + i * SEC,
                (i % 7) as f64 + 0.5,
            )
        })
        .collect();
    let mut c = config();
    c.group_by = Some(Vec::new());
    let delta = run(&c, std::slice::from_ref(&points));
    let mut window = BTreeMap::new();
    for p in &points {
        *window.entry(window_of(p.time, MIN)).or_insert(0.0) += p.value.expect("value");
    }
    let got: BTreeMap<i64, f64> = delta
        .iter()
        .map(|r| (r.time, r.value.expect("value")))
        .collect();
    assert_eq!(got, window);
    c.output_temporality = OutputTemporality::Cumulative;
    let cumulative = run(&c, &[points]);
    let mut total = 0.0;
    for (r, (w, v)) in cumulative.iter().zip(&window) {
        total += v;
        assert_eq!((r.time, r.value, r.start), (*w, Some(total), Some(T0)));
        assert_eq!(r.temporality.as_deref(), Some("cumulative"));
    }
    assert_eq!(cumulative.len(), 3);
}

/// A non-monotonic cumulative sum: a drop is a negative delta, not a reset, and the output is
/// marked non-monotonic.
#[test]
fn non_monotonic_cumulative() {
    let mut points: Vec<P> = [(0, 10.0), (30, 4.0), (70, 9.0), (90, 1.0)]
        .iter()
        .map(|&(s, v)| P::counter("queue", "h", Some(T0 - MIN), T0 + s * SEC, v))
        .collect();
    for p in &mut points {
        p.monotonic = Some(false);
    }
    let out = run(&config(), &[points]);
    let got: Vec<(i64, Option<f64>, Option<bool>)> =
        out.iter().map(|r| (r.time, r.value, r.monotonic)).collect();
    assert_eq!(
        got,
        [
            (T0, Some(10.0 - 6.0), Some(false)),
            (T0 + MIN, Some(5.0 - 8.0), Some(false))
        ]
    );
}
