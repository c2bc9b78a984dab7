//! Calibration of one model's raw scores into tail probabilities.
//!
//! Raw scores of different models and series live on unrelated scales, so each is compared
//! with that model's own recent raw scores. Below the tail threshold the probability is the
//! empirical fraction of recent raw scores at least as large (conformal). Above it, the
//! exceedances follow a generalized Pareto tail (peaks over threshold, as in SPOT) fit by
//! probability-weighted moments, so heavy-tailed series are recognised as such. The shape is
//! never taken lighter than exponential, and `1 / count` is added to it: the exponential's
//! posterior predictive with `count` exceedances is a Pareto tail of that shape, which keeps
//! a sparsely sampled tail from promising more than it knows. The tail is refit with the
//! models, so it is versioned with them.
//!
//! Tails are fit to squared raw scores: for Gaussian residuals and distances the square has an
//! exponential tail, so light-tailed series get the sharp probabilities they deserve, while the
//! fitted shape still widens the tail of heavy-tailed ones.
//!
//! Squared raw scores are stored as 16-bit log codes (0.6% relative resolution), which halves
//! the memory of f32 and lets a series keep twice as many for the same budget.

use crate::ring::Ring;

/// Probability attached to the cap used when recording a raw score; keeps one outlier from
/// inflating the tail for the next `calibration` points while still letting a lasting change
/// of regime raise the tail step by step.
const RECORD_CAP_P: f64 = 1e-3;
/// Log-code resolution: codes per doubling.
const CODE_STEPS: f64 = 128.0;
/// Log-code offset: code 1 is 2^-256, code 65535 about 2^256.
const CODE_OFFSET: f64 = 256.0;
/// Heaviest tail shape used (a generalized Pareto tail has a mean below 1).
const MAX_SHAPE: f64 = 0.9;

/// The 16-bit log code of a raw score (0 for zero or less).
fn encode(s: f64) -> u16 {
    if s.is_nan() || s <= 0.0 {
        return 0;
    }
    ((s.log2() + CODE_OFFSET) * CODE_STEPS)
        .round()
        .clamp(1.0, f64::from(u16::MAX)) as u16
}

/// The raw score of a 16-bit log code.
fn decode(c: u16) -> f64 {
    if c == 0 {
        0.0
    } else {
        (f64::from(c) / CODE_STEPS - CODE_OFFSET).exp2()
    }
}

/// Fitted tail of recent raw scores.
#[derive(Debug, Clone, Copy, Default)]
struct Tail {
    /// Raw scores above this are in the tail.
    threshold: f32,
    /// Generalized Pareto scale of the excesses.
    sigma: f32,
    /// Generalized Pareto shape of the excesses (> 0).
    xi: f32,
    /// Fraction of recent raw scores above `threshold`.
    fraction: f32,
    /// Whether a tail has been fit.
    fitted: bool,
}

impl Tail {
    /// Survival of an excess `x` over the threshold.
    fn survival(&self, x: f64) -> f64 {
        let (sigma, xi) = (f64::from(self.sigma), f64::from(self.xi));
        (1.0 + xi * x / sigma).powf(-1.0 / xi)
    }

    /// Excess whose survival is `q`.
    fn excess_at(&self, q: f64) -> f64 {
        let (sigma, xi) = (f64::from(self.sigma), f64::from(self.xi));
        sigma / xi * (q.powf(-xi) - 1.0)
    }
}

/// Recent raw scores of one model and their fitted tail.
#[derive(Debug, Clone)]
pub(crate) struct Calibrator {
    recent: Ring<u16>,
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
    pub(crate) fn refit(&mut self, tail_fraction: f64, scratch: &mut Vec<u16>) {
        scratch.clear();
        scratch.extend_from_slice(self.recent.raw());
        let n = scratch.len();
        if n == 0 {
            return;
        }
        scratch.sort_unstable();
        let idx = (((1.0 - tail_fraction) * n as f64) as usize).min(n - 1);
        let threshold_code = scratch[idx];
        let threshold = decode(threshold_code);
        let excesses = scratch.iter().skip(idx).filter(|&&c| c > threshold_code);
        let count = excesses.clone().count();
        // Probability-weighted moments of the (ascending) excesses.
        let (mut a0, mut a1) = (0.0f64, 0.0f64);
        for (j, &c) in excesses.enumerate() {
            let y = decode(c) - threshold;
            a0 += y;
            a1 += (1.0 - (j as f64 + 0.65) / count as f64) * y;
        }
        let median = decode(scratch[n / 2]);
        // A floor keeps the tail finite when it is all ties (a flat series).
        let floor = (0.05 * (threshold - median)).max(1e-30);
        let (mean_excess, shape) = if count >= 2 {
            let (a0, a1) = (a0 / count as f64, a1 / count as f64);
            let denom = a0 - 2.0 * a1;
            let shape = if denom > 0.0 {
                2.0 - a0 / denom
            } else {
                MAX_SHAPE
            };
            (a0, shape)
        } else {
            (a0, 0.0)
        };
        let shape = if shape.is_finite() {
            shape.clamp(0.0, MAX_SHAPE)
        } else {
            0.0
        };
        let count = count.max(1);
        // Mean excess of a generalized Pareto tail is sigma / (1 - xi).
        let sigma = (mean_excess * (1.0 - shape)).max(floor);
        self.tail = Tail {
            threshold: threshold as f32,
            sigma: sigma as f32,
            xi: (shape + 1.0 / count as f64) as f32,
            fraction: count as f32 / n as f32,
            fitted: true,
        };
    }

    /// Probability that a raw score at least `s` (>= 0) comes from recent behaviour.
    pub(crate) fn p_value(&self, s: f64) -> f64 {
        let s = s * s;
        let t = &self.tail;
        if !t.fitted || s.is_nan() {
            return 1.0;
        }
        let u = f64::from(t.threshold);
        if s > u {
            return f64::from(t.fraction) * t.survival(s - u);
        }
        let code = encode(s);
        let raw = self.recent.raw();
        let at_least = raw.iter().filter(|&&c| c >= code).count();
        ((at_least.max(1)) as f64 / raw.len().max(1) as f64).max(f64::from(t.fraction))
    }

    /// Records raw score `s` (>= 0), capped at the tail's `RECORD_CAP_P` quantile.
    pub(crate) fn record(&mut self, s: f64) {
        let s = s * s;
        let t = &self.tail;
        let capped = if t.fitted && f64::from(t.fraction) > RECORD_CAP_P {
            let cap = f64::from(t.threshold) + t.excess_at(RECORD_CAP_P / f64::from(t.fraction));
            s.min(cap)
        } else {
            s
        };
        self.recent.push(encode(capped));
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.recent.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Rng;

    fn fitted(values: impl Iterator<Item = f64>, cap: usize) -> Calibrator {
        let mut c = Calibrator::new(cap);
        for v in values {
            c.record(v);
        }
        c.refit(0.1, &mut Vec::new());
        c
    }

    /// Scenario: uniform raw scores in [0, 1). Guarantee: p-values fall with the score and a far
    /// outlier gets a tiny probability.
    #[test]
    fn p_values_are_monotone_and_extrapolate() {
        let c = fitted((0..256).map(|i| f64::from(i) / 256.0), 256);
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
        let c = fitted(std::iter::repeat_n(0.0, 64), 64);
        assert!(c.p_value(0.0) >= 0.1);
        assert!(c.p_value(0.01) < 1e-6);
    }

    /// Scenario: heavy-tailed (Pareto, shape 1/3) vs Gaussian raw scores. Guarantee: the same
    /// far value is much less surprising under the heavy tail, and a 6-sigma Gaussian value
    /// gets a probability near its true one (2e-9), not the exponential tail's 1e-5.
    #[test]
    fn heavy_tails_are_recognised() {
        let mut rng = Rng::new(3);
        let gauss = fitted((0..512).map(|_| rng.normal().abs()), 512);
        let pareto = fitted(
            (0..512).map(|_| (1.0 - rng.unit()).powf(-1.0 / 3.0) - 1.0),
            512,
        );
        // Compare at the same multiple of each sample's 99th percentile.
        let far_gauss = gauss.p_value(2.58 * 3.0);
        let far_pareto = pareto.p_value(3.64 * 3.0);
        assert!(
            far_pareto > 100.0 * far_gauss,
            "{far_pareto} vs {far_gauss}"
        );
        let six = gauss.p_value(6.0);
        assert!(six < 1e-7, "{six}");
    }

    /// Scenario: encode/decode round trip. Guarantee: 0.3% relative precision, order kept.
    #[test]
    fn log_codes() {
        for s in [1e-12, 0.5, 1.0, 3.7, 1e9, 1e30] {
            let back = decode(encode(s));
            assert!((back / s - 1.0).abs() < 6e-3, "{s} -> {back}");
        }
        assert!(encode(2.0) > encode(1.99));
        assert_eq!(encode(0.0), 0);
    }
}
