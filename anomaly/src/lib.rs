//! Streaming anomaly detection for metric series, built on linfa.
//!
//! One [`Detector`] (configuration plus scratch buffers) scores any number of series; each
//! series keeps its own bounded [`SeriesState`]. [`Detector::score`] scores one point from the
//! points before it only (causal), then learns from it. Raw scores from three models
//! (kNN distance of lag windows with `linfa-nn`, an autoregressive forecast residual with
//! `linfa-linear`, and a residual-volatility ratio) are calibrated into tail probabilities,
//! combined, mapped to a score in [0, 1], and damped for a while after an alarm.
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
