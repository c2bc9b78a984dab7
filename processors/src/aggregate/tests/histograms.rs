//! Histograms: bucket-wise merges, shared bounds, cumulative inputs.

use phoenix_model::pipeline::OutputTemporality;

use super::fixture::{config, run, Out, Rng, MIN, P, SEC, T0};

const BOUNDS: [f64; 4] = [0.01, 0.1, 1.0, 10.0];

/// Random bucket counts for `BOUNDS`.
fn buckets(rng: &mut Rng) -> Vec<u64> {
    (0..=BOUNDS.len()).map(|_| rng.below(50)).collect()
}

fn only_row(out: &[Out], time: i64) -> &Out {
    let rows: Vec<&Out> = out.iter().filter(|r| r.time == time).collect();
    assert_eq!(rows.len(), 1, "one row at {time}");
    rows[0]
}

/// Delta histograms of 5 hosts, 6 per host per window, merged across hosts: buckets, count,
/// sum, min and max equal the plain merge of the raw points.
#[test]
fn delta_merged_bucket_wise() {
    let mut rng = Rng(9);
    let mut points = Vec::new();
    for k in 0..12 {
        for h in 0..5 {
            let b = buckets(&mut rng);
            let lo = rng.unit();
            let sum = (rng.below(10_000) as f64) / 8.0;
            points.push(P::histogram(
                "lat",
                &format!("h{h}"),
                "delta",
                T0 + k * 10 * SEC + h,
                &BOUNDS,
                &b,
                sum,
                Some((lo, lo + 20.0)),
            ));
        }
    }
    let mut c = config();
    c.group_by = Some(Vec::new());
    let out = run(&c, std::slice::from_ref(&points));
    assert_eq!(out.len(), 2);
    for w in [T0, T0 + MIN] {
        let mine: Vec<&P> = points
            .iter()
            .filter(|p| p.time - p.time.rem_euclid(MIN) == w)
            .collect();
        let mut counts = vec![0u64; BOUNDS.len() + 1];
        let (mut sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
        for p in &mine {
            for (c, b) in counts.iter_mut().zip(p.buckets.as_ref().expect("buckets")) {
                *c += b;
            }
            sum += p.sum.expect("sum");
            min = min.min(p.min.expect("min"));
            max = max.max(p.max.expect("max"));
        }
        let r = only_row(&out, w);
        assert_eq!(r.buckets.as_deref(), Some(&counts[..]));
        assert_eq!(r.bounds.as_deref(), Some(&BOUNDS[..]));
        assert_eq!(r.count, Some(counts.iter().sum()));
        assert_eq!((r.sum, r.min, r.max), (Some(sum), Some(min), Some(max)));
        assert_eq!(
            (r.kind.as_str(), r.temporality.as_deref()),
            ("histogram", Some("delta"))
        );
    }
}

/// Hosts with different bounds merge onto the bounds they share, exactly in counts.
#[test]
fn different_bounds_merge_on_shared() {
    let a = P::histogram(
        "lat",
        "a",
        "delta",
        T0,
        &[1.0, 2.0, 5.0],
        &[1, 2, 3, 4],
        10.0,
        None,
    );
    let b = P::histogram(
        "lat",
        "b",
        "delta",
        T0 + 1,
        &[2.0, 4.0, 5.0],
        &[10, 20, 30, 40],
        20.0,
        None,
    );
    let mut c = config();
    c.group_by = Some(Vec::new());
    let out = run(&c, &[vec![a, b]]);
    let r = only_row(&out, T0);
    // Shared [2, 5]: a → [1+2, 3, 4], b → [10, 20+30, 40].
    assert_eq!(r.bounds.as_deref(), Some(&[2.0, 5.0][..]));
    assert_eq!(r.buckets.as_deref(), Some(&[13, 53, 44][..]));
    assert_eq!((r.count, r.sum, r.min), (Some(110), Some(30.0), None));
}

/// Cumulative histograms become per-host deltas (a reset counts whole) before the merge;
/// min/max are unknown for non-reset deltas; cumulative output adds the windows up.
#[test]
fn cumulative_inputs() {
    let mk = |h: &str, s: i64, b: &[u64], sum: f64| {
        let mut p = P::histogram(
            "lat",
            h,
            "cumulative",
            T0 + s * SEC,
            &[1.0],
            b,
            sum,
            Some((0.5, 3.0)),
        );
        p.start = Some(T0 - MIN);
        p
    };
    let points = vec![
        mk("a", 0, &[1, 1], 3.0),
        mk("b", 1, &[5, 0], 2.5),
        mk("a", 30, &[2, 4], 9.0),
        mk("b", 31, &[6, 1], 5.0),
        mk("a", 70, &[3, 4], 9.5),
        mk("b", 71, &[1, 0], 0.5), // reset
    ];
    let mut c = config();
    c.group_by = Some(Vec::new());
    let out = run(&c, std::slice::from_ref(&points));
    let w0 = only_row(&out, T0);
    // First points whole (keep), then increases: a [2,4], b [6,1].
    assert_eq!(w0.buckets.as_deref(), Some(&[8, 5][..]));
    assert_eq!(
        (w0.count, w0.sum, w0.min, w0.max),
        (Some(13), Some(14.0), None, None)
    );
    let w1 = only_row(&out, T0 + MIN);
    assert_eq!(w1.buckets.as_deref(), Some(&[2, 0][..]));
    assert_eq!((w1.count, w1.sum), (Some(2), Some(1.0)));
    c.output_temporality = OutputTemporality::Cumulative;
    let out = run(&c, &[points]);
    let w1 = only_row(&out, T0 + MIN);
    assert_eq!(w1.buckets.as_deref(), Some(&[10, 5][..]));
    assert_eq!(
        (w1.count, w1.sum, w1.start),
        (Some(15), Some(15.0), Some(T0))
    );
}
