//! Determinism: the same input always yields the same output, whatever else the detector scored.

use phoenix_anomaly::offline::score_csv;
use phoenix_anomaly::synth::{generate, SynthConfig};
use phoenix_anomaly::{Detector, DetectorConfig};

/// Scenario: score the same CSV twice through the `phoenix anomaly score` code path.
/// Guarantee: byte-identical output.
#[test]
fn csv_scoring_is_deterministic() {
    let series = generate(&SynthConfig {
        series_per_kind: 1,
        normal_series: 0,
        length: 1000,
        ..SynthConfig::default()
    });
    for s in series.iter().step_by(2) {
        let input = s.to_csv();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        score_csv(&input, &mut a, &DetectorConfig::default()).expect("valid input");
        score_csv(&input, &mut b, &DetectorConfig::default()).expect("valid input");
        assert_eq!(a, b, "{}", s.name);
        assert_eq!(
            String::from_utf8(a).expect("utf-8").lines().count(),
            s.values.len() + 1
        );
    }
}

/// Scenario: one detector scores two series interleaved point by point (as a streaming
/// processor does), vs each alone. Guarantee: identical scores; series do not leak into each
/// other through the shared scratch buffers.
#[test]
fn interleaved_series_do_not_interact() {
    let series = generate(&SynthConfig {
        series_per_kind: 1,
        normal_series: 0,
        length: 800,
        ..SynthConfig::default()
    });
    let (a, b) = (&series[0].values, &series[3].values);
    let alone = |values: &[f64]| -> Vec<f64> {
        let mut d = Detector::new(DetectorConfig::default()).expect("valid config");
        let mut st = d.new_state();
        values
            .iter()
            .map(|&v| d.score(&mut st, v).expect("finite").score)
            .collect()
    };
    let mut d = Detector::new(DetectorConfig::default()).expect("valid config");
    let (mut sa, mut sb) = (d.new_state(), d.new_state());
    let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
    for (&x, &y) in a.iter().zip(b) {
        out_a.push(d.score(&mut sa, x).expect("finite").score);
        out_b.push(d.score(&mut sb, y).expect("finite").score);
    }
    assert_eq!(out_a, alone(&a[..out_a.len()]));
    assert_eq!(out_b, alone(&b[..out_b.len()]));
}
