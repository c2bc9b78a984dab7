//! Calibration of one model's raw scores into tail probabilities.
//!
//! Raw scores of different models and series live on unrelated scales, so each is compared
//! with that model's own recent raw scores: below the tail threshold the probability is the
//! empirical fraction of recent raw scores at least as large (conformal); above it, the
//! exceedances are modeled as exponential (peaks over threshold, as in SPOT), which
//! extrapolates past the largest value seen without assuming Gaussian noise. The tail is refit
//! with the models, so it is versioned with them.

use crate::ring::Ring;

/// Probability attached to the cap used when recording a raw score; keeps one outlier from
/// inflating the tail for the next `calibration` points while still letting a lasting change
/// of regime raise the tail step by step.
const RECORD_CAP_P: f64 = 1e-3;

/// Fitted tail of recent raw scores.
#[derive(Debug, Clone, Copy, Default)]
struct Tail {
    /// Raw scores above this are in the tail.
    threshold: f32,
    /// Mean excess over `threshold` of the tail raw scores (scale of the exponential).
    mean_excess: f32,
    /// Fraction of recent raw scores above `threshold`.
    fraction: f32,
    /// Whether a tail has been fit.
    fitted: bool,
}

/// Recent raw scores of one model and their fitted tail.
#[derive(Debug, Clone)]
pub(crate) struct Calibrator {
    recent: Ring<f32>,
    tail: Tail,
}

impl Calibrator {
    /// An empty calibrator keeping `cap` raw scores.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            recent: Ring::new(cap),
            tail: Tail::default(),
        }
    }

    /// Raw scores held.
    pub(crate) fn len(&self) -> usize {
        self.recent.len()
    }

    /// Whether a tail has been fit.
    pub(crate) fn fitted(&self) -> bool {
        self.tail.fitted
    }

    /// Refits the tail on the raw scores held; `scratch` is reused for sorting.
    pub(crate) fn refit(&mut self, tail_fraction: f64, scratch: &mut Vec<f32>) {
        scratch.clear();
        scratch.extend_from_slice(self.recent.raw());
        let n = scratch.len();
        if n == 0 {
            return;
        }
        scratch.sort_unstable_by(f32::total_cmp);
        let idx = (((1.0 - tail_fraction) * n as f64) as usize).min(n - 1);
        let threshold = scratch[idx];
        let above = &scratch[idx..];
        let (mut sum, mut count) = (0.0f64, 0usize);
        for &x in above.iter().filter(|&&x| x > threshold) {
            sum += f64::from(x - threshold);
            count += 1;
        }
        let median = scratch[n / 2];
        // A floor keeps the exponential finite when the tail is all ties (a flat series).
        let floor = (0.05 * f64::from(threshold - median)).max(1e-9);
        let mean_excess = if count > 0 { sum / count as f64 } else { 0.0 };
        self.tail = Tail {
            threshold,
            mean_excess: mean_excess.max(floor) as f32,
            fraction: (count.max(1) as f32) / n as f32,
            fitted: true,
        };
    }

    /// Probability that a raw score at least `s` comes from recent behaviour.
    pub(crate) fn p_value(&self, s: f64) -> f64 {
        let t = &self.tail;
        if !t.fitted || s.is_nan() {
            return 1.0;
        }
        let u = f64::from(t.threshold);
        if s > u {
            return f64::from(t.fraction) * (-(s - u) / f64::from(t.mean_excess)).exp();
        }
        let raw = self.recent.raw();
        let at_least = raw.iter().filter(|&&x| f64::from(x) >= s).count();
        ((at_least.max(1)) as f64 / raw.len().max(1) as f64).max(f64::from(t.fraction))
    }

    /// Records raw score `s`, capped at the tail's `RECORD_CAP_P` quantile.
    pub(crate) fn record(&mut self, s: f64) {
        let t = &self.tail;
        let capped = if t.fitted && f64::from(t.fraction) > RECORD_CAP_P {
            let cap = f64::from(t.threshold)
                + f64::from(t.mean_excess) * (f64::from(t.fraction) / RECORD_CAP_P).ln();
            s.min(cap)
        } else {
            s
        };
        self.recent.push(capped.min(f64::from(f32::MAX)) as f32);
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.recent.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: uniform raw scores in [0, 1). Guarantee: p-values fall with the score and a far
    /// outlier gets a tiny probability.
    #[test]
    fn p_values_are_monotone_and_extrapolate() {
        let mut c = Calibrator::new(256);
        for i in 0..256 {
            c.record(f64::from(i) / 256.0);
        }
        let mut scratch = Vec::new();
        c.refit(0.1, &mut scratch);
        let p_mid = c.p_value(0.5);
        let p_hi = c.p_value(0.99);
        let p_far = c.p_value(3.0);
        assert!((0.45..0.55).contains(&p_mid), "{p_mid}");
        assert!(p_hi < p_mid && p_far < p_hi, "{p_mid} {p_hi} {p_far}");
        assert!(p_far < 1e-6, "{p_far}");
    }

    /// Scenario: all-zero raw scores (a constant series). Guarantee: zero is unsurprising,
    /// anything above it is very surprising.
    #[test]
    fn flat_history() {
        let mut c = Calibrator::new(64);
        for _ in 0..64 {
            c.record(0.0);
        }
        c.refit(0.1, &mut Vec::new());
        assert!(c.p_value(0.0) >= 0.1);
        assert!(c.p_value(0.01) < 1e-10);
    }
}
