//! Checkpoints: a processor restored from its checkpoint continues exactly as if it had never
//! stopped, for every kind of held state (gauge accumulators and sketches, delta sums,
//! buffered cumulative points and their per-stream state, histograms, running totals,
//! downsampling picks).

use phoenix_model::pipeline::{DownsampleFunction, OutputTemporality};

use super::fixture::{batch, config, read, Out, Rng, MIN, P, SEC, T0};
use crate::processor::Processor;

/// Mixed points over five windows: gauges, delta sums, cumulative counters (with resets) and
/// cumulative and delta histograms, for a dozen hosts on two routes, in time order.
fn population(rng: &mut Rng) -> Vec<Vec<P>> {
    let bounds = [1.0, 5.0, 10.0];
    let mut points = Vec::new();
    for host in 0..12 {
        let host = format!("h{host}");
        let route = if rng.below(2) == 0 { "/a" } else { "/b" };
        let (mut total, mut hist) = (0.0, [0u64; 4]);
        let mut t = T0 + rng.below(5) as i64 * SEC;
        while t < T0 + 5 * MIN {
            let step = rng.below(50) as f64;
            let v = (rng.unit() * 1000.0).round() / 10.0 - 30.0;
            let p = match rng.below(5) {
                0 => P::gauge("g", &host, t, v),
                1 => P::delta("d", &host, t, step),
                2 => {
                    total = if rng.below(10) == 0 {
                        step
                    } else {
                        total + step
                    };
                    P::counter("c", &host, Some(T0 - SEC), t, total)
                }
                3 => {
                    hist[rng.below(4) as usize] += 1 + rng.below(3);
                    let sum = hist.iter().sum::<u64>() as f64 * 2.5;
                    P::histogram("hc", &host, "cumulative", t, &bounds, &hist, sum, None)
                }
                _ => {
                    let b = [rng.below(3), rng.below(3), rng.below(3), rng.below(3)];
                    P::histogram("hd", &host, "delta", t, &bounds, &b, 7.0, Some((0.5, 12.0)))
                }
            };
            points.push(p.attr("route", route));
            t += (1 + rng.below(9) as i64) * SEC;
        }
    }
    points.sort_by_key(|p| p.time);
    let mut batches = Vec::new();
    let mut rest = &points[..];
    while !rest.is_empty() {
        let n = (1 + rng.below(40) as usize).min(rest.len());
        batches.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    batches
}

/// Every row `make()` emits for `batches` (positions 1, 2, …) and at the final flush; with
/// `cut`, the processor is replaced after `cut` batches by a new one restored from its
/// checkpoint.
fn run(make: &dyn Fn() -> Box<dyn Processor>, batches: &[Vec<P>], cut: Option<usize>) -> Vec<Out> {
    let mut p = make();
    let mut out = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        if cut == Some(i) {
            let mut state = Vec::new();
            p.checkpoint(&mut state)
                .expect("keeps checkpoints")
                .expect("encodes");
            p = make();
            p.restore(&state).expect("restores");
        }
        out.extend(read(
            &p.process_at(batch(b), i as u64 + 1).expect("processes"),
        ));
    }
    if let Some(b) = p.flush().expect("flushes") {
        out.extend(read(&b));
    }
    out
}

/// Cuts at several points (mid-window, at a window close, before anything) give the rows of
/// an uninterrupted run, in the same order.
fn assert_resumes(make: &dyn Fn() -> Box<dyn Processor>, seed: u64) {
    let batches = population(&mut Rng(seed));
    let whole = run(make, &batches, None);
    assert!(
        whole.len() > 50,
        "the population emits rows ({})",
        whole.len()
    );
    let n = batches.len();
    for cut in [0, 1, n / 3, n / 2, n - 1] {
        assert_eq!(
            run(make, &batches, Some(cut)),
            whole,
            "cut after {cut} of {n} batches"
        );
    }
}

/// Temporal rollup with quantiles, delta output.
#[test]
fn temporal_rollup_resumes_exactly() {
    let mut c = config();
    c.quantiles = vec![0.5, 0.99];
    assert_resumes(&|| Box::new(super::fixture::aggregator(&c)), 1);
}

/// Spatial rollup with cumulative output: running totals survive the restart.
#[test]
fn spatial_cumulative_rollup_resumes_exactly() {
    let mut c = config();
    c.group_by = Some(vec!["route".into()]);
    c.output_temporality = OutputTemporality::Cumulative;
    assert_resumes(&|| Box::new(super::fixture::aggregator(&c)), 2);
}

/// The `sample` processor's downsampler keeps its picks across a restart.
#[test]
fn downsampler_resumes_exactly() {
    for (i, function) in [DownsampleFunction::Last, DownsampleFunction::Mean]
        .into_iter()
        .enumerate()
    {
        let c = super::downsample::config(function);
        assert_resumes(
            &|| Box::new(crate::sample::build("ds", &c).expect("builds")),
            3 + i as u64,
        );
    }
}

/// Damaged or foreign bytes are refused, and leave the processor as it was.
#[test]
fn damaged_state_is_refused() {
    let c = config();
    let mut a = super::fixture::aggregator(&c);
    let batches = population(&mut Rng(9));
    for (i, b) in batches.iter().take(5).enumerate() {
        a.process_at(batch(b), i as u64 + 1).expect("processes");
    }
    let mut state = Vec::new();
    a.checkpoint(&mut state)
        .expect("keeps checkpoints")
        .expect("encodes");
    let mut b = super::fixture::aggregator(&c);
    assert!(b.restore(&state[..state.len() / 2]).is_err(), "cut bytes");
    assert!(b.restore(&[7, 0, 0]).is_err(), "another version");
    assert_eq!(b.held_since(), None, "nothing half-restored");
    b.restore(&state).expect("restores");
    assert_eq!(b.held_since(), a.held_since());
}

/// `hosts` series of each of five kinds (gauges, delta sums, cumulative counters,
/// cumulative and delta histograms), one point each every 20 s from `T0` for `steps` steps: a
/// batch per step.
fn many_series(hosts: usize, steps: i64) -> Vec<Vec<P>> {
    let bounds = [1.0, 5.0, 10.0];
    (0..steps)
        .map(|k| {
            let t = T0 + k * 20 * SEC;
            let step = k as u64 + 1;
            (0..hosts)
                .flat_map(|h| {
                    let host = format!("h{h}");
                    let v = (h % 97) as f64 + k as f64 / 4.0;
                    let hist = [step, h as u64 % 3, step * 2, 1];
                    let sum = hist.iter().sum::<u64>() as f64 * 2.5;
                    let route = if h % 2 == 0 { "/a" } else { "/b" };
                    [
                        P::gauge("g", &host, t, v),
                        P::delta("d", &host, t, v),
                        P::counter("c", &host, Some(T0 - SEC), t, v * step as f64),
                        P::histogram("hc", &host, "cumulative", t, &bounds, &hist, sum, None),
                        P::histogram(
                            "hd",
                            &host,
                            "delta",
                            t,
                            &bounds,
                            &hist,
                            sum,
                            Some((0.5, 9.0)),
                        ),
                    ]
                    .map(|p| p.attr("route", route))
                })
                .collect()
        })
        .collect()
}

/// Feeds `batches` to `p` from position `from` on.
fn feed(p: &mut dyn Processor, batches: &[Vec<P>], from: u64) {
    for (i, b) in batches.iter().enumerate() {
        p.process_at(batch(b), from + i as u64).expect("processes");
    }
}

/// Checkpoint bytes of `p`.
fn checkpoint_bytes(p: &dyn Processor) -> Vec<u8> {
    let mut bytes = Vec::new();
    p.checkpoint(&mut bytes)
        .expect("keeps checkpoints")
        .expect("encodes");
    bytes
}

/// A snapshot writes exactly the checkpoint bytes of the state it was taken from, even once
/// the processor has moved on, for rollups (quantile sketches, running totals, cumulative
/// streams, open windows over thousands of series) and the downsampler.
#[test]
fn snapshot_writes_the_checkpoint_bytes() {
    let batches = many_series(2_000, 7);
    let (before, after) = batches.split_at(5);
    let mut temporal = config();
    temporal.quantiles = vec![0.5, 0.99];
    let mut spatial = config();
    spatial.group_by = Some(vec!["route".into()]);
    spatial.output_temporality = OutputTemporality::Cumulative;
    // Temporal: a series per host and metric; spatial: per route and metric.
    for (c, series) in [(temporal, 10_000), (spatial, 10)] {
        let mut a = super::fixture::aggregator(&c);
        feed(&mut a, before, 1);
        assert!(!a.windows.is_empty(), "windows open");
        assert_eq!(a.cumulative.len(), 4_000, "cumulative streams held");
        assert_eq!(a.groups.len(), series, "series held");
        check_snapshot(&mut a, after);
    }
    let mut d = crate::sample::build("ds", &super::downsample::config(DownsampleFunction::Mean))
        .expect("builds");
    feed(&mut d, before, 1);
    assert!(d.held_since().is_some(), "windows open");
    check_snapshot(&mut d, after);
}

/// Takes a snapshot of `p`, feeds it `after`, and checks the snapshot still writes the
/// checkpoint bytes of the state it was taken from.
fn check_snapshot(p: &mut dyn Processor, after: &[Vec<P>]) {
    let bytes = checkpoint_bytes(p);
    let snapshot = p.snapshot().expect("offers snapshots");
    feed(p, after, 100);
    assert_ne!(checkpoint_bytes(p), bytes, "the state moved on");
    let mut written = Vec::new();
    snapshot(&mut written).expect("writes");
    assert!(
        written == bytes,
        "snapshot bytes differ from the checkpoint's"
    );
}
