//! Sampler tests: decisions against the documented hash rule, stability, and ratio accuracy.
//! Downsampling tests are in `aggregate/tests/downsample.rs` (they share its fixture), the
//! estimator's coverage in `coverage_tests.rs`.

use std::collections::{BTreeMap, BTreeSet};

use phoenix_model::pipeline::SampleConfig;

use super::build;
use super::threshold;
use crate::processor::Processor;
use crate::testing::{batch, rows, Row};

fn config(ratio: f64, seed: u64, metric: &[&str]) -> SampleConfig {
    SampleConfig {
        ratio: Some(ratio),
        seed,
        metric: metric.iter().map(|s| s.to_string()).collect(),
        downsample: None,
    }
}

/// `n` series of metric `m`, `points` points each, interleaved as exporters send them.
fn series(metric: &str, n: usize, points: usize) -> Vec<Row> {
    (0..points)
        .flat_map(|p| {
            (0..n).map(move |s| {
                Row::gauge(metric, "svc", p as i64, s as f64).attr("id", &s.to_string())
            })
        })
        .collect()
}

/// The plain rule: keep iff XXH3(series_id LE, seed ^ SAMPLE_SEED) < ratio·2^64.
fn reference_keeps(id: u64, seed: u64, ratio: f64) -> bool {
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(&id.to_le_bytes(), seed ^ 0x5048_4e58_5341_4d50);
    (h as f64) < ratio * 18_446_744_073_709_551_616.0
}

/// Kept rows are exactly those the documented rule keeps, every point of a kept series is kept
/// (across batches), and their `sample_rate` is multiplied by the ratio.
#[test]
fn consistent_by_series() {
    let input = series("m", 300, 4);
    let mut s = build("s", &config(0.3, 0, &[])).expect("builds");
    // Two batches: the decision must not depend on batch boundaries.
    let mut got = rows(&s.process(batch(&input[..500])).expect("processes"));
    got.extend(rows(&s.process(batch(&input[500..])).expect("processes")));
    let expected: Vec<Row> = input
        .iter()
        .filter(|r| reference_keeps(r.series_id, 0, 0.3))
        .map(|r| Row {
            sample_rate: 0.3,
            ..r.clone()
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
    let mut per_series: BTreeMap<u64, usize> = BTreeMap::new();
    for r in &got {
        *per_series.entry(r.series_id).or_default() += 1;
    }
    assert!(
        per_series.values().all(|&n| n == 4),
        "a kept series keeps all its points"
    );
}

/// Over 20 000 series at ratio 0.1, the kept fraction is within 5 binomial standard deviations
/// (sd = sqrt(0.1·0.9/20000) ≈ 0.0021, so |kept − 0.1| < 0.0106); same for seeds 1..=5.
#[test]
fn ratio_accuracy() {
    let n = 20_000;
    let input = series("m", n, 1);
    let sd = (0.1_f64 * 0.9 / n as f64).sqrt();
    for seed in 0..=5 {
        let mut s = build("s", &config(0.1, seed, &[])).expect("builds");
        let kept = s.process(batch(&input)).expect("processes").num_rows();
        let fraction = kept as f64 / n as f64;
        assert!(
            (fraction - 0.1).abs() < 5.0 * sd,
            "seed {seed}: kept {fraction}"
        );
    }
}

/// Samplers with different seeds keep nearly independent subsets (overlap ≈ ratio²).
#[test]
fn seeds_are_independent() {
    let input = series("m", 10_000, 1);
    let kept = |seed| -> BTreeSet<u64> {
        let mut s = build("s", &config(0.5, seed, &[])).expect("builds");
        rows(&s.process(batch(&input)).expect("processes"))
            .iter()
            .map(|r| r.series_id)
            .collect()
    };
    let (a, b) = (kept(1), kept(2));
    let overlap = a.intersection(&b).count() as f64 / 10_000.0;
    // Expected 0.25, sd = sqrt(0.25·0.75/10000) ≈ 0.0043.
    assert!((overlap - 0.25).abs() < 0.0217, "overlap {overlap}");
}

/// Only selected metrics are sampled; others pass with `sample_rate` unchanged. Ratio 1 keeps
/// everything.
#[test]
fn metric_selector_and_ratio_one() {
    let mut input = series("noisy.requests", 200, 1);
    input.extend(series("quiet", 50, 1));
    let mut s = build("s", &config(0.25, 0, &["noisy.*"])).expect("builds");
    let got = rows(&s.process(batch(&input)).expect("processes"));
    let expected: Vec<Row> = input
        .iter()
        .filter(|r| r.metric == "quiet" || reference_keeps(r.series_id, 0, 0.25))
        .map(|r| Row {
            sample_rate: if r.metric == "quiet" { 1.0 } else { 0.25 },
            ..r.clone()
        })
        .collect();
    assert_eq!(got, expected);
    let mut all = build("s", &config(1.0, 0, &[])).expect("builds");
    assert_eq!(rows(&all.process(batch(&input)).expect("processes")), input);
    assert_eq!(threshold(1.0), 1u128 << 64);
}

/// Dropped datapoints are counted with reason `sampled`.
#[test]
fn counts_sampled() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let input = series("m", 1000, 2);
    let kept = metrics::with_local_recorder(&recorder, || {
        let mut s = build("samp", &config(0.2, 0, &[])).expect("builds");
        s.process(batch(&input)).expect("processes").num_rows()
    });
    let line = format!(
        "phoenix_processor_datapoints_dropped_total{{processor=\"samp\",reason=\"sampled\"}} {}",
        input.len() - kept
    );
    assert!(handle.render().contains(&line), "{}", handle.render());
}
