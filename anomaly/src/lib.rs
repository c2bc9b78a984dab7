//! Streaming anomaly detection for metric series, built on linfa.
//!
//! One [`Detector`] (configuration plus scratch buffers, one per thread) scores any number of
//! series; each series keeps its own bounded [`SeriesState`] (about 7.4 KiB with the defaults,
//! see [`DetectorConfig::state_budget_bytes`]). [`Detector::score`] scores one point from the
//! points before it only (causal), then learns from it:
//!
//! 1. raw scores from four signals: the kNN distance of the newest lag window to older windows
//!    (`linfa-nn`), the residual of an autoregressive forecast (`linfa-linear`), the ratio of
//!    short- to long-term residual energy, and the length of a run of repeated values;
//! 2. each raw score is calibrated against that signal's own recent raw scores into a tail
//!    probability (empirical below a threshold, a generalized Pareto tail above it);
//! 3. the smallest probability (Bonferroni-corrected) becomes a score in [0, 1] on HTM's
//!    log-likelihood scale (0.5 = one in 100,000), and after an alarm further scores are damped
//!    while the anomaly lasts.
//!
//! Models (scaler, AR coefficients, calibration tails, repeat rate) are refit every
//! `refit_every` points on the recent history; [`Score::model_version`] records which fit scored
//! a point. Scores are deterministic: no randomness anywhere.
//!
//! [`offline`] is the CSV scorer behind `phoenix anomaly score`; [`synth`] and [`evaluate`]
//! are the labeled-series benchmark (`cargo run --release -p phoenix-anomaly --example evaluate`).

mod ar;
mod calibrate;
mod config;
mod detector;
pub mod evaluate;
mod knn;
pub mod offline;
mod ring;
pub mod synth;

pub use config::DetectorConfig;
pub use detector::{Detector, Direction, Driver, Score, SeriesState};

/// Errors of the detector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid detector config: {0}")]
    InvalidConfig(String),
    /// The value to score is NaN or infinite.
    #[error("value {0} is not finite")]
    NonFiniteValue(f64),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
