//! Property: the output does not depend on batch boundaries nor on arrival order within the
//! allowed lateness.

use phoenix_model::pipeline::OutputTemporality;
use proptest::prelude::*;

use super::fixture::{config, run, sorted, Rng, P, SEC, T0};

/// One generated series: kind (0 gauge, 1 delta sum, 2 cumulative counter), route, and its
/// points as (gap in seconds, integer step, reset?).
type Spec = (u8, u8, Vec<(u8, u8, bool)>);

fn points(specs: &[Spec]) -> Vec<P> {
    let mut out = Vec::new();
    for (i, (kind, route, steps)) in specs.iter().enumerate() {
        let host = format!("h{i}");
        let route = ["/a", "/b"][usize::from(*route % 2)];
        let (mut t, mut total) = (T0 + i as i64, 0.0);
        for &(gap, step, reset) in steps {
            t += i64::from(gap) * SEC;
            let step = f64::from(step);
            let p = match kind % 3 {
                0 => P::gauge("g", &host, t, step - 100.0),
                1 => P::delta("d", &host, t, step),
                _ => {
                    total = if reset { step } else { total + step };
                    P::counter("c", &host, Some(T0 - SEC), t, total)
                }
            };
            out.push(p.attr("route", route));
        }
    }
    out.sort_by_key(|p| p.time);
    out
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u8..3,
        0u8..2,
        prop::collection::vec((1u8..40, 0u8..200, prop::bool::weighted(0.1)), 1..30),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// In-order arrival in one batch and jittered arrival (each point delayed by less than
    /// the lateness) in random batches give the same rows, temporal or spatial, delta or
    /// cumulative output; no gauge point is lost.
    #[test]
    fn independent_of_batches_and_order(
        specs in prop::collection::vec(spec(), 1..6),
        seed in any::<u64>(),
        spatial in any::<bool>(),
        cumulative in any::<bool>(),
    ) {
        let points = points(&specs);
        let mut c = config();
        if spatial {
            c.group_by = Some(vec!["route".into()]);
        }
        if cumulative {
            c.output_temporality = OutputTemporality::Cumulative;
        }
        let lateness = 10 * SEC;
        let mut rng = Rng(seed);
        let mut arrival: Vec<(i64, P)> = points
            .iter()
            .map(|p| (p.time + rng.below(lateness as u64) as i64, p.clone()))
            .collect();
        arrival.sort_by_key(|(k, _)| *k);
        let arrival: Vec<P> = arrival.into_iter().map(|(_, p)| p).collect();
        let mut batches = Vec::new();
        let mut rest = &arrival[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(12) as usize).min(rest.len());
            batches.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        let reference = sorted(run(&c, std::slice::from_ref(&points)));
        let shuffled = sorted(run(&c, &batches));
        prop_assert_eq!(&reference, &shuffled);
        let gauges = points.iter().filter(|p| p.kind == "gauge").count() as f64;
        let counted: f64 = reference
            .iter()
            .filter(|r| r.metric == "g.count")
            .filter_map(|r| r.value)
            .sum();
        prop_assert_eq!(counted, gauges);
    }
}
