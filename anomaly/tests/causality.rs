//! Causality: a point's score depends only on the points up to it.

use phoenix_anomaly::offline::{parse, score_rows};
use phoenix_anomaly::synth::{generate, Rng, SynthConfig};
use phoenix_anomaly::DetectorConfig;

fn scores(values: &[f64]) -> Vec<f64> {
    let mut csv = String::from("timestamp,value\n");
    for (i, v) in values.iter().enumerate() {
        csv.push_str(&format!("{i},{v}\n"));
    }
    let rows = parse(&csv).expect("valid csv");
    score_rows(&rows, &DetectorConfig::default())
        .expect("valid config")
        .iter()
        .map(|s| s.score)
        .collect()
}

/// Scenario: score a labeled series, then rewrite everything after time t (noise, a spike, a
/// level shift, truncation) and score again, for several t. Guarantee: every score at or before
/// t is bit-identical.
#[test]
fn changing_the_future_never_changes_the_past() {
    let series = generate(&SynthConfig {
        series_per_kind: 1,
        normal_series: 0,
        length: 1000,
        ..SynthConfig::default()
    });
    let base: Vec<f64> = series[2].values.clone(); // a level-shift series
    let reference = scores(&base);
    let mut rng = Rng::new(11);
    for t in [0usize, 250, 777, base.len() - 2] {
        let mut changed = base.clone();
        for (k, v) in changed.iter_mut().enumerate().skip(t + 1) {
            *v = match k % 3 {
                0 => *v + 1000.0 * rng.normal(),
                1 => -*v,
                _ => 1e6,
            };
        }
        let after = scores(&changed);
        assert_eq!(after[..=t], reference[..=t], "scores up to t={t} changed");
        let truncated = scores(&base[..=t]);
        assert_eq!(
            truncated[..],
            reference[..=t],
            "truncating after t={t} changed scores"
        );
    }
    // The rewrite must matter somewhere after t, or the test proves nothing.
    let mut spiked = base.clone();
    spiked[900] += 1e4;
    assert_ne!(scores(&spiked)[900..], reference[900..]);
}
