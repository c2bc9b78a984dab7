//! Detector parameters and their defaults.

use crate::{Error, Result};

/// Tuning shared by every series one [`crate::Detector`] scores.
///
/// Defaults are chosen for robustness across series of any scale and sampling interval; see the
/// crate README section in BENCHMARKS.md for what was measured with them.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Points of history kept per series; every model is fit on this window.
    pub history: usize,
    /// Length of the lag windows the kNN model compares.
    pub window: usize,
    /// Neighbours whose distances are averaged into the kNN raw score.
    pub neighbours: usize,
    /// Most recent windows left out of the kNN search, so a slow change is compared with
    /// older behaviour rather than with itself.
    pub exclusion: usize,
    /// The kNN model compares with every `train_stride`-th older window (1: all of them).
    pub train_stride: usize,
    /// Order of the autoregressive forecast.
    pub ar_order: usize,
    /// Points between model refits (scaler, AR coefficients, calibration tails).
    pub refit_every: usize,
    /// Past raw scores kept per model for calibration.
    pub calibration: usize,
    /// Points seen before the first model fit.
    pub min_history: usize,
    /// Raw scores per model needed before scores are reported (until then the score is 0).
    pub min_calibration: usize,
    /// Fraction of calibration raw scores treated as the tail (peaks over threshold).
    pub tail_fraction: f64,
    /// Score at or above which a point raises an alarm.
    pub alarm_threshold: f64,
    /// Points after an alarm during which scores are damped and no new alarm is raised,
    /// unless the score climbs `rearm_margin` above the alarm's peak.
    pub suppress_for: usize,
    /// Factor applied to scores while an alarm is being suppressed; below `alarm_threshold`, so
    /// no damped score reaches it.
    pub suppress_damping: f64,
    /// Score increase over the current alarm's peak that raises a new alarm during suppression.
    pub rearm_margin: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            history: 1024,
            window: 8,
            neighbours: 3,
            exclusion: 24,
            train_stride: 2,
            ar_order: 8,
            refit_every: 32,
            calibration: 512,
            min_history: 64,
            min_calibration: 128,
            tail_fraction: 0.1,
            alarm_threshold: 0.5,
            suppress_for: 48,
            suppress_damping: 0.3,
            rearm_margin: 0.15,
        }
    }
}

impl DetectorConfig {
    /// Checks that the parameters are consistent.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidConfig(msg));
        if self.window < 2 {
            return bad(format!("window must be at least 2, got {}", self.window));
        }
        if self.neighbours == 0 {
            return bad("neighbours must be at least 1".into());
        }
        if self.train_stride == 0 {
            return bad("train_stride must be at least 1".into());
        }
        if self.ar_order == 0 {
            return bad("ar_order must be at least 1".into());
        }
        if self.refit_every == 0 {
            return bad("refit_every must be at least 1".into());
        }
        let need = self.window + self.exclusion + self.neighbours + 1;
        if self.min_history < need.max(self.ar_order * 4) {
            return bad(format!(
                "min_history ({}) must be at least window + exclusion + neighbours + 1 and 4 * ar_order ({})",
                self.min_history,
                need.max(self.ar_order * 4)
            ));
        }
        if self.history < self.min_history {
            return bad(format!(
                "history ({}) must be at least min_history ({})",
                self.history, self.min_history
            ));
        }
        if self.min_calibration < 8 || self.calibration < self.min_calibration {
            return bad(format!(
                "need 8 <= min_calibration ({}) <= calibration ({})",
                self.min_calibration, self.calibration
            ));
        }
        if !(self.tail_fraction > 0.0 && self.tail_fraction < 0.5) {
            return bad(format!(
                "tail_fraction must be in (0, 0.5), got {}",
                self.tail_fraction
            ));
        }
        if !(self.alarm_threshold > 0.0 && self.alarm_threshold <= 1.0) {
            return bad(format!(
                "alarm_threshold must be in (0, 1], got {}",
                self.alarm_threshold
            ));
        }
        // Damped scores must stay below the threshold, or suppressed points would read as alarms.
        if !(self.suppress_damping >= 0.0 && self.suppress_damping < self.alarm_threshold) {
            return bad(format!(
                "suppress_damping must be in [0, alarm_threshold), got {}",
                self.suppress_damping
            ));
        }
        if self.rearm_margin.is_nan() || self.rearm_margin < 0.0 {
            return bad(format!(
                "rearm_margin must be >= 0, got {}",
                self.rearm_margin
            ));
        }
        Ok(())
    }

    /// Sets one field by name from text (`window=12`), for tools and experiments.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown key or an unparsable value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let int = || {
            value.parse::<usize>().map_err(|_| {
                Error::InvalidConfig(format!("{key}: `{value}` is not a whole number"))
            })
        };
        let float = || {
            value
                .parse::<f64>()
                .map_err(|_| Error::InvalidConfig(format!("{key}: `{value}` is not a number")))
        };
        match key {
            "history" => self.history = int()?,
            "window" => self.window = int()?,
            "neighbours" => self.neighbours = int()?,
            "exclusion" => self.exclusion = int()?,
            "train_stride" => self.train_stride = int()?,
            "ar_order" => self.ar_order = int()?,
            "refit_every" => self.refit_every = int()?,
            "calibration" => self.calibration = int()?,
            "min_history" => self.min_history = int()?,
            "min_calibration" => self.min_calibration = int()?,
            "tail_fraction" => self.tail_fraction = float()?,
            "alarm_threshold" => self.alarm_threshold = float()?,
            "suppress_for" => self.suppress_for = int()?,
            "suppress_damping" => self.suppress_damping = float()?,
            "rearm_margin" => self.rearm_margin = float()?,
            _ => return Err(Error::InvalidConfig(format!("unknown key `{key}`"))),
        }
        Ok(())
    }

    /// Upper bound on [`crate::SeriesState::state_bytes`] for a series scored with this config.
    pub fn state_budget_bytes(&self) -> usize {
        std::mem::size_of::<crate::SeriesState>()
            + self.history * std::mem::size_of::<f32>()
            + 3 * self.calibration * std::mem::size_of::<u16>()
            + self.ar_order * std::mem::size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: default config. Guarantee: it validates, and its budget stays under 8 KiB.
    #[test]
    fn default_is_valid_and_small() {
        let c = DetectorConfig::default();
        c.validate().expect("default config validates");
        assert!(
            c.state_budget_bytes() <= 8 * 1024,
            "{}",
            c.state_budget_bytes()
        );
    }

    /// Scenario: a window shorter than 2. Guarantee: validation names the field.
    #[test]
    fn rejects_tiny_window() {
        let c = DetectorConfig {
            window: 1,
            ..DetectorConfig::default()
        };
        let e = c.validate().expect_err("window 1 is invalid");
        assert!(e.to_string().contains("window"), "{e}");
    }
}
