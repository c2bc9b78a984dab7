//! Bounded state: per-series memory stays within the stated budget however long a series runs.

use phoenix_anomaly::synth::Rng;
use phoenix_anomaly::{Detector, DetectorConfig};

/// The per-series state budget stated for the default config (see BENCHMARKS.md).
const BUDGET_BYTES: usize = 8 * 1024;

/// Scenario: the default config. Guarantee: its computed bound is within the stated 8 KiB.
#[test]
fn default_budget_is_within_statement() {
    let budget = DetectorConfig::default().state_budget_bytes();
    assert!(budget <= BUDGET_BYTES, "{budget} > {BUDGET_BYTES}");
}

/// Scenario: one series scored for 6,000 points (several history lengths, many refits).
/// Guarantee: `state_bytes()` never exceeds the budget and stops growing once buffers are full.
#[test]
fn long_series_stays_within_budget() {
    let mut d = Detector::new(DetectorConfig::default()).expect("valid config");
    let budget = d.config().state_budget_bytes();
    let mut st = d.new_state();
    let mut rng = Rng::new(5);
    let mut at_2500 = 0;
    for i in 0..6000 {
        let v = 50.0 + 10.0 * (i as f64 / 288.0 * std::f64::consts::TAU).sin() + rng.normal();
        d.score(&mut st, v).expect("finite");
        assert!(
            st.state_bytes() <= budget,
            "point {i}: {} > {budget}",
            st.state_bytes()
        );
        if i == 2500 {
            at_2500 = st.state_bytes();
        }
    }
    assert_eq!(
        st.state_bytes(),
        at_2500,
        "state kept growing after its buffers filled"
    );
    assert!(st.model_version() > 100, "models were refit periodically");
}

/// Scenario: 100,000 series scored round-robin through one detector, 40 points each.
/// Guarantee: every state, and the total, stays within 100,000 x the per-series budget.
#[test]
fn hundred_thousand_series_within_budget() {
    const SERIES: usize = 100_000;
    let mut d = Detector::new(DetectorConfig::default()).expect("valid config");
    let budget = d.config().state_budget_bytes();
    let mut states: Vec<_> = (0..SERIES).map(|_| d.new_state()).collect();
    let mut rng = Rng::new(9);
    for _ in 0..40 {
        for st in states.iter_mut() {
            d.score(st, rng.normal()).expect("finite");
        }
    }
    let total: usize = states.iter().map(|s| s.state_bytes()).sum();
    assert!(states.iter().all(|s| s.state_bytes() <= budget));
    assert!(total <= SERIES * budget, "{total} > {}", SERIES * budget);
    assert!(
        total >= SERIES * std::mem::size_of_val(&states[0]),
        "accounting counts the structs"
    );
}
