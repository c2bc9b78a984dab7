//! The detector: per-series state, causal scoring, model refits and alarm suppression.

use crate::calibrate::Calibrator;
use crate::ring::Ring;
use crate::{ar, knn, DetectorConfig, Error, Result};

/// Standardized values are clamped to this magnitude so distances and squares stay finite.
const Z_LIMIT: f64 = 1e12;
/// Weight of the newest squared residual in the short-term residual energy.
const FAST_ALPHA: f64 = 1.0 / 8.0;
/// Weight of the newest squared residual in the long-term residual energy.
const SLOW_ALPHA: f64 = 1.0 / 128.0;
/// Squared residuals are clipped at this multiple of the long-term energy before entering the
/// energies, so a single spike (the forecast model's job) does not read as a volatility change.
const ENERGY_CLIP: f64 = 36.0;
/// Calibrated raw scores: pattern (kNN), forecast residual, volatility.
const CALIBRATED: usize = 3;
/// Models whose p-values are combined (Bonferroni factor): the calibrated ones plus the
/// stuck-value run.
const MODELS: f64 = 4.0;
/// Decades of tail probability that map to a score of 1 (HTM's log-likelihood scale:
/// score 0.5 is a one-in-100,000 point).
const SCORE_DECADES: f64 = 10.0;

/// Which model made a point look anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// No model yet, or nothing stood out.
    None,
    /// The newest lag window is far from every older window (kNN, `linfa-nn`).
    Pattern,
    /// The value is far from the autoregressive forecast (`linfa-linear`).
    Forecast,
    /// The recent residual energy left its long-term level (noisier, or calmer).
    Volatility,
    /// The value has repeated for an unusually long run (a stuck sensor or exporter).
    Stuck,
}

impl Driver {
    /// Stable lower-case name, for tables and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::None => "none",
            Driver::Pattern => "pattern",
            Driver::Forecast => "forecast",
            Driver::Volatility => "volatility",
            Driver::Stuck => "stuck",
        }
    }
}

/// Where the value sits relative to the forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Above the forecast.
    Above,
    /// Below the forecast.
    Below,
    /// Equal to it, or no forecast yet.
    Level,
}

/// The score of one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Anomaly score in [0, 1], damped while an earlier alarm is suppressed. 0.5 means a
    /// one-in-100,000 point under the series' recent behaviour, 1.0 one in 10^10 or rarer.
    pub score: f64,
    /// The score before suppression.
    pub raw_score: f64,
    /// Whether this point raised an alarm (score at or above the alarm threshold, outside
    /// suppression or above the current alarm's peak by the rearm margin).
    pub alarm: bool,
    /// The model that stood out most.
    pub driver: Driver,
    /// Value vs forecast.
    pub direction: Direction,
    /// The autoregressive forecast for this point, in value units (NaN before the first fit).
    pub expected: f64,
    /// Version of the models that scored this point (0: no model yet).
    pub model_version: u32,
}

/// Everything the detector remembers about one series; its size is bounded by
/// [`DetectorConfig::state_budget_bytes`].
#[derive(Debug, Clone)]
pub struct SeriesState {
    /// Recent values as f32 offsets from `center` (re-anchored at each refit), which keeps
    /// full precision for the deviations that matter at half the memory of f64 values.
    history: Ring<f32>,
    /// Raw-score calibrators: pattern (kNN), forecast residual, volatility.
    calib: [Calibrator; CALIBRATED],
    /// AR coefficients on standardized values, lag 1 first.
    coef: Vec<f64>,
    center: f64,
    scale: f64,
    /// Short- and long-term squared-residual energies; `energy_slow < 0` means unset.
    energy_fast: f64,
    energy_slow: f64,
    /// Previous value, and how many times in a row it has been repeated.
    last_value: f64,
    run: u32,
    /// Smoothed fraction of points in the history that repeat their predecessor.
    repeat_rate: f32,
    since_refit: u32,
    seen: u64,
    model_version: u32,
    suppress_left: u32,
    episode_peak: f64,
}

impl SeriesState {
    /// Bytes this state occupies (struct plus heap buffers).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.history.heap_bytes()
            + self.calib.iter().map(Calibrator::heap_bytes).sum::<usize>()
            + self.coef.capacity() * std::mem::size_of::<f64>()
    }

    /// Version of the current models (0 before the first fit); bumps at every refit.
    pub fn model_version(&self) -> u32 {
        self.model_version
    }

    /// Points scored so far.
    pub fn points_seen(&self) -> u64 {
        self.seen
    }

    /// Whether an alarm is being suppressed.
    pub fn suppressing(&self) -> bool {
        self.suppress_left > 0
    }

    /// Spread (standard deviation) of the history at the last refit, in value units (1.0
    /// before the first fit); for explanations such as "expected 100±12".
    pub fn spread(&self) -> f64 {
        self.scale
    }

    /// Offset of `v` from the anchor, as stored in the history.
    fn offset(&self, v: f64) -> f32 {
        ((v - self.center).clamp(-f64::from(f32::MAX), f64::from(f32::MAX))) as f32
    }

    /// Standardized value of a stored offset.
    fn z(&self, offset: f32) -> f64 {
        (f64::from(offset) / self.scale).clamp(-Z_LIMIT, Z_LIMIT)
    }
}

/// Scores points of many series; holds the configuration and scratch buffers (one per thread).
#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectorConfig,
    /// Standardized history plus the newest point.
    z: Vec<f64>,
    /// Sorting buffer for calibration refits.
    sort: Vec<u16>,
}

impl Detector {
    /// A detector with `config`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the config does not validate.
    pub fn new(config: DetectorConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            z: Vec::with_capacity(config.history + 1),
            sort: Vec::with_capacity(config.calibration),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// A fresh state for a new series.
    pub fn new_state(&self) -> SeriesState {
        let c = self.config.calibration;
        SeriesState {
            history: Ring::new(self.config.history),
            calib: [Calibrator::new(c), Calibrator::new(c), Calibrator::new(c)],
            coef: Vec::new(),
            center: 0.0,
            scale: 1.0,
            energy_fast: 0.0,
            energy_slow: -1.0,
            last_value: f64::NAN,
            run: 0,
            repeat_rate: 0.5,
            since_refit: 0,
            seen: 0,
            model_version: 0,
            suppress_left: 0,
            episode_peak: 0.0,
        }
    }

    /// Scores `value`, the next point of the series whose state is `state`, from the points
    /// before it only; then adds it to the history and refits the models when due.
    ///
    /// # Errors
    /// [`Error::NonFiniteValue`] for NaN or infinite values; the state is left unchanged.
    pub fn score(&mut self, state: &mut SeriesState, value: f64) -> Result<Score> {
        if !value.is_finite() {
            return Err(Error::NonFiniteValue(value));
        }
        if state.seen == 0 {
            // Anchor the stored offsets at the first value until the first refit.
            state.center = value;
        }
        state.run = if value == state.last_value {
            state.run.saturating_add(1)
        } else {
            0
        };
        state.last_value = value;
        let mut out = Score {
            score: 0.0,
            raw_score: 0.0,
            alarm: false,
            driver: Driver::None,
            direction: Direction::Level,
            expected: f64::NAN,
            model_version: state.model_version,
        };
        if state.model_version > 0 {
            self.judge(state, value, &mut out);
        }
        self.suppress(state, &mut out);
        let offset = state.offset(value);
        state.history.push(offset);
        state.seen += 1;
        state.since_refit = state.since_refit.saturating_add(1);
        let first = state.model_version == 0 && state.history.len() >= self.config.min_history;
        let due = state.model_version > 0 && state.since_refit as usize >= self.config.refit_every;
        if first || due {
            self.refit(state);
        }
        Ok(out)
    }

    /// Computes the raw scores of `value` under the current models, calibrates and combines
    /// them into `out`, then records them for calibration.
    fn judge(&mut self, st: &mut SeriesState, value: f64, out: &mut Score) {
        let cfg = &self.config;
        self.z.clear();
        let (a, b) = st.history.as_slices();
        self.z.extend(a.iter().chain(b).map(|&o| st.z(o)));
        let z_now = ((value - st.center) / st.scale).clamp(-Z_LIMIT, Z_LIMIT);
        self.z.push(z_now);
        let n = self.z.len();

        let z = &self.z;
        let forecast = ar::predict(&st.coef, |lag| z[n - 1 - lag]);
        out.expected = st.center + st.scale * forecast;
        out.direction = if value > out.expected {
            Direction::Above
        } else if value < out.expected {
            Direction::Below
        } else {
            Direction::Level
        };
        // Raw scores are kept in value units so calibration buffers stay comparable across refits.
        let residual = (z_now - forecast) * st.scale;
        let s_forecast = residual.abs();
        let s_pattern = knn::distance(
            z,
            cfg.window,
            cfg.neighbours,
            cfg.exclusion,
            cfg.train_stride,
        )
        .map(|d| d * st.scale);

        let sq = residual * residual;
        let (fast, slow) = if st.energy_slow < 0.0 {
            (sq, sq)
        } else {
            let clipped = sq.min(ENERGY_CLIP * st.energy_slow.max(f64::MIN_POSITIVE));
            (
                st.energy_fast + FAST_ALPHA * (clipped - st.energy_fast),
                st.energy_slow,
            )
        };
        let eps = 1e-3 * slow + f64::MIN_POSITIVE;
        let s_volatility = ((fast + eps) / (slow + eps)).ln().abs();

        let ready = st
            .calib
            .iter()
            .all(|c| c.fitted() && c.len() >= cfg.min_calibration);
        if ready {
            // A run of r repeats has probability repeat_rate^r under recent behaviour; a run that
            // covers the whole history is the new normal.
            let p_stuck = if st.run > 0 && (st.run as usize) + 1 < st.history.len() {
                f64::from(st.repeat_rate).powf(f64::from(st.run))
            } else {
                1.0
            };
            let p_pattern = s_pattern.map_or(1.0, |s| st.calib[0].p_value(s));
            let p_forecast = st.calib[1].p_value(s_forecast);
            let p = [
                p_pattern,
                // A forecast miss counts only as far as the pattern memory corroborates it
                // (geometric mean): a spike that recurs every day misses the forecast each time,
                // but the kNN has seen its window before.
                if p_forecast < p_pattern {
                    (p_forecast * p_pattern).sqrt()
                } else {
                    p_forecast
                },
                st.calib[2].p_value(s_volatility),
                p_stuck,
            ];
            let (best, p_min) =
                p.iter()
                    .copied()
                    .enumerate()
                    .fold((0, 1.0), |acc, (i, q)| if q < acc.1 { (i, q) } else { acc });
            let combined = (p_min * MODELS).min(1.0);
            let raw = -combined.log10() / SCORE_DECADES;
            out.raw_score = if raw.is_nan() {
                0.0
            } else {
                raw.clamp(0.0, 1.0)
            };
            if out.raw_score > 0.0 {
                out.driver = [
                    Driver::Pattern,
                    Driver::Forecast,
                    Driver::Volatility,
                    Driver::Stuck,
                ][best];
            }
        }

        if let Some(s) = s_pattern {
            st.calib[0].record(s);
        }
        st.calib[1].record(s_forecast);
        st.calib[2].record(s_volatility);
        st.energy_fast = fast;
        st.energy_slow = if st.energy_slow < 0.0 {
            sq
        } else {
            let clipped = sq.min(ENERGY_CLIP * st.energy_slow.max(f64::MIN_POSITIVE));
            st.energy_slow + SLOW_ALPHA * (clipped - st.energy_slow)
        };
    }

    /// Raises an alarm, or damps the score while an earlier alarm is suppressed. An alarm's
    /// suppression lasts as long as scores stay at or above the threshold, plus `suppress_for`.
    fn suppress(&self, st: &mut SeriesState, out: &mut Score) {
        let cfg = &self.config;
        let raw = out.raw_score;
        let window = u32::try_from(cfg.suppress_for).unwrap_or(u32::MAX);
        out.score = raw;
        if st.suppress_left > 0 {
            st.suppress_left -= 1;
            if raw >= cfg.alarm_threshold && raw > st.episode_peak + cfg.rearm_margin {
                out.alarm = true;
            } else {
                out.score = raw * cfg.suppress_damping;
                st.episode_peak = st.episode_peak.max(raw);
                if raw >= cfg.alarm_threshold {
                    st.suppress_left = window;
                }
                return;
            }
        } else if raw >= cfg.alarm_threshold {
            out.alarm = true;
        }
        if out.alarm {
            st.suppress_left = window;
            st.episode_peak = raw;
        }
    }

    /// Refits the scaler, the AR model, the repeat rate and the calibration tails on the
    /// current history.
    fn refit(&mut self, st: &mut SeriesState) {
        let cfg = &self.config;
        let (a, b) = st.history.as_slices();
        let n = (a.len() + b.len()) as f64;
        let mean_offset = a.iter().chain(b).map(|&o| f64::from(o)).sum::<f64>() / n;
        let var = a
            .iter()
            .chain(b)
            .map(|&o| (f64::from(o) - mean_offset).powi(2))
            .sum::<f64>()
            / n;
        let mut repeats = 0usize;
        let mut prev: Option<f32> = None;
        for &o in a.iter().chain(b) {
            repeats += usize::from(prev == Some(o));
            prev = Some(o);
        }
        // Add-one smoothing: a history without repeats still allows an occasional one.
        st.repeat_rate = ((repeats + 1) as f64 / (n + 2.0)) as f32;
        let center = st.center + mean_offset;
        // Re-anchor the stored offsets at the new center.
        let shift = mean_offset as f32;
        for o in st.history.raw_mut() {
            *o -= shift;
        }
        st.center = center;
        // The floor keeps a constant history from dividing by zero; any change is then huge.
        st.scale = var.sqrt().max(center.abs() * 1e-9).max(1e-300);
        self.z.clear();
        let (a, b) = st.history.as_slices();
        self.z.extend(a.iter().chain(b).map(|&o| st.z(o)));
        st.coef = ar::fit(&self.z, cfg.ar_order).unwrap_or_else(|| {
            // Persistence forecast when least squares fails.
            let mut c = vec![0.0; cfg.ar_order];
            c[0] = 1.0;
            c
        });
        for c in &mut st.calib {
            if c.len() >= cfg.min_calibration {
                c.refit(cfg.tail_fraction, &mut self.sort);
            }
        }
        st.model_version = st.model_version.wrapping_add(1).max(1);
        st.since_refit = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(i: usize) -> f64 {
        // Deterministic pseudo-noise in [-1, 1], independent from point to point.
        crate::synth::Rng::new(i as u64).unit() * 2.0 - 1.0
    }

    /// Scenario: a noisy seasonal series with one large spike. Guarantee: the spike gets the
    /// highest score of the series and raises an alarm.
    #[test]
    fn spike_scores_highest() {
        let mut d = Detector::new(DetectorConfig::default()).expect("valid config");
        let mut st = d.new_state();
        let mut best = (0, 0.0);
        for i in 0..1500 {
            let mut v = 100.0 + 10.0 * (i as f64 / 48.0 * std::f64::consts::TAU).sin() + noisy(i);
            if i == 1200 {
                v += 15.0;
            }
            let s = d.score(&mut st, v).expect("finite value");
            assert!((0.0..=1.0).contains(&s.score));
            if s.score > best.1 {
                best = (i, s.score);
            }
        }
        assert_eq!(best.0, 1200, "best {best:?}");
        assert!(best.1 >= 0.5, "best {best:?}");
    }

    /// Scenario: NaN value. Guarantee: typed error, state untouched.
    #[test]
    fn rejects_nan() {
        let mut d = Detector::new(DetectorConfig::default()).expect("valid config");
        let mut st = d.new_state();
        assert!(matches!(
            d.score(&mut st, f64::NAN),
            Err(Error::NonFiniteValue(_))
        ));
        assert_eq!(st.points_seen(), 0);
    }

    /// Scenario: a constant series, then a step. Guarantee: no score on the flat part, the step
    /// scores 1.
    #[test]
    fn constant_then_step() {
        let mut d = Detector::new(DetectorConfig::default()).expect("valid config");
        let mut st = d.new_state();
        for _ in 0..3000 {
            let s = d.score(&mut st, 5.0).expect("finite");
            assert_eq!(s.score, 0.0);
        }
        let s = d.score(&mut st, 6.0).expect("finite");
        assert!(s.score > 0.99, "{s:?}");
        assert!(s.alarm);
    }

    /// Scenario: a large offset (1e9) with small noise. Guarantee: f32 offsets keep the noise
    /// resolvable, so a small spike still stands out.
    #[test]
    fn large_offset_keeps_precision() {
        let mut d = Detector::new(DetectorConfig::default()).expect("valid config");
        let mut st = d.new_state();
        let mut best = (0, 0.0);
        for i in 0..1200 {
            let v = 1e9 + noisy(i) + if i == 1000 { 8.0 } else { 0.0 };
            let s = d.score(&mut st, v).expect("finite");
            if s.score > best.1 {
                best = (i, s.score);
            }
        }
        assert_eq!(best.0, 1000, "best {best:?}");
    }

    /// Scenario: a noisy series that freezes. Guarantee: the frozen run raises a stuck alarm
    /// within a few points.
    #[test]
    fn frozen_value_is_stuck() {
        let mut d = Detector::new(DetectorConfig::default()).expect("valid config");
        let mut st = d.new_state();
        for i in 0..800 {
            let s = d.score(&mut st, 10.0 + noisy(i)).expect("finite");
            assert!(!s.alarm || i < 100, "false alarm at {i}: {s:?}");
        }
        // Frozen at the mean, so only the repetition itself is unusual.
        let frozen = 10.0;
        let mut alarm_at = None;
        for i in 0..20 {
            let s = d.score(&mut st, frozen).expect("finite");
            if s.alarm {
                alarm_at.get_or_insert((i, s.driver));
            }
        }
        let (i, driver) = alarm_at.expect("stuck alarm");
        assert!(i <= 4, "{i}");
        assert_eq!(driver, Driver::Stuck);
    }
}
