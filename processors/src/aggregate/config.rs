//! The aggregator's parameters (defined and validated in `phoenix-model`) and its builder.

pub use phoenix_model::pipeline::AggregateConfig;
use phoenix_model::pipeline::{
    DownsampleConfig, GaugeFunction, InitialValueMode, LatePolicy, OutputTemporality,
};
use sketches_ddsketch::Config as SketchConfig;

use super::downsample::Mode;
use super::group::Grouping;
use super::metrics::AggregateMetrics;
use super::runtime::Aggregate;
use crate::delta::InitialValue;
use crate::{Error, Result};

/// Ratio of largest to smallest magnitude (per sign) a quantile sketch covers without
/// collapsing its lowest bins, so within which its relative-error guarantee holds.
pub const SKETCH_DYNAMIC_RANGE: f64 = 1e12;

/// Most bins of a quantile sketch per sign at relative error `alpha`: enough for
/// [`SKETCH_DYNAMIC_RANGE`], and at least the crate's default 2048. Bins are allocated only
/// over the range the values span, 128 at a time.
pub fn sketch_bins(alpha: f64) -> u32 {
    let gamma = (1.0 + alpha) / (1.0 - alpha);
    let needed = (SKETCH_DYNAMIC_RANGE.ln() / gamma.ln()).ceil() + 2.0;
    // alpha is in (0, 0.5), so `needed` is finite and positive; the cast saturates anyway.
    (needed as u32).max(2048)
}
/// Values of magnitude at most this count as 0 in a quantile sketch.
pub const SKETCH_MIN_VALUE: f64 = 1e-9;

/// Runtime form of the parameters.
pub(super) struct Settings {
    /// Window length (ns).
    pub window_ns: i64,
    /// Allowed lateness (ns).
    pub lateness_ns: i64,
    /// Idle expiry (ns).
    pub idle_ns: i64,
    /// What late points do.
    pub late_policy: LatePolicy,
    /// Temporality of output sums and histograms.
    pub temporality: OutputTemporality,
    /// Gauge functions, in output order.
    pub functions: Vec<GaugeFunction>,
    /// Gauge quantiles, in output order (after the functions).
    pub quantiles: Vec<f64>,
    /// Sketch parameters, when quantiles are configured.
    pub sketch: Option<SketchConfig>,
    /// Most output series.
    pub max_series: usize,
    /// Rollup or downsampling.
    pub mode: Mode,
    /// Wall-clock idleness after which event time follows the wall clock (ns).
    pub idle_grace_ns: i64,
}

/// Suffix of a quantile's output name: `p50`, `p99`, `p99.9`.
pub(super) fn quantile_suffix(q: f64) -> String {
    // Round to 4 decimals of a percent so 0.999 prints as 99.9, not 99.89999999999999.
    let percent = (q * 1e6).round() / 1e4;
    format!("p{percent}")
}

/// Builds the runtime aggregator `id`.
///
/// # Errors
/// [`Error::Build`] for parameters validation rejects (it reports them first).
pub fn build(id: &str, config: &AggregateConfig) -> Result<Aggregate> {
    let err = |reason: String| Error::Build {
        id: id.to_string(),
        type_name: AggregateConfig::TYPE.to_string(),
        reason,
    };
    let window_ns = config.window.as_nanos_i64();
    if window_ns <= 0 {
        return Err(err("window must be positive".into()));
    }
    if config.quantiles.iter().any(|q| !(0.0..=1.0).contains(q)) {
        return Err(err("quantiles must be in [0, 1]".into()));
    }
    if !(config.relative_error > 0.0 && config.relative_error < 0.5) {
        return Err(err("relative_error must be in (0, 0.5)".into()));
    }
    if config.max_series == 0 {
        return Err(err("max_series must be at least 1".into()));
    }
    let grouping = match &config.group_by {
        None => Grouping::Temporal,
        Some(keys) => Grouping::Spatial {
            attributes: keys.clone(),
            resource: config.group_by_resource.clone(),
        },
    };
    let suffixes = config
        .functions
        .iter()
        .map(|f| f.as_str().to_string())
        .chain(config.quantiles.iter().map(|&q| quantile_suffix(q)))
        .collect();
    let settings = Settings {
        window_ns,
        lateness_ns: config.allowed_lateness.as_nanos_i64(),
        // Series must outlive their windows (validation requires idle >= window).
        idle_ns: config.idle_timeout.as_nanos_i64().max(window_ns),
        late_policy: config.late_policy,
        temporality: config.output_temporality,
        functions: config.functions.clone(),
        quantiles: config.quantiles.clone(),
        sketch: (!config.quantiles.is_empty()).then(|| {
            SketchConfig::new(
                config.relative_error,
                sketch_bins(config.relative_error),
                SKETCH_MIN_VALUE,
            )
        }),
        max_series: config.max_series,
        mode: Mode::Rollup,
        idle_grace_ns: config.idle_grace.as_nanos_i64(),
    };
    let initial = match config.initial_value {
        InitialValueMode::Auto => InitialValue::Auto,
        InitialValueMode::Keep => InitialValue::Keep,
        InitialValueMode::Drop => InitialValue::Drop,
    };
    Ok(Aggregate::new(
        settings,
        grouping,
        suffixes,
        initial,
        AggregateMetrics::new(id),
    ))
}

/// Builds the downsampler of the `sample` processor `id`: the aggregator in downsampling mode,
/// per input series, keeping names and ids.
///
/// # Errors
/// [`Error::Build`] for parameters validation rejects (it reports them first).
pub fn downsampler(id: &str, config: &DownsampleConfig) -> Result<Aggregate> {
    let window_ns = config.interval.as_nanos_i64();
    if window_ns <= 0 || config.max_series == 0 {
        return Err(Error::Build {
            id: id.to_string(),
            type_name: phoenix_model::pipeline::SampleConfig::TYPE.to_string(),
            reason: "downsample.interval must be positive and max_series at least 1".into(),
        });
    }
    let settings = Settings {
        window_ns,
        lateness_ns: config.allowed_lateness.as_nanos_i64(),
        idle_ns: config.idle_timeout.as_nanos_i64().max(window_ns),
        late_policy: config.late_policy,
        temporality: OutputTemporality::Delta,
        functions: Vec::new(),
        quantiles: Vec::new(),
        sketch: None,
        max_series: config.max_series,
        mode: Mode::Downsample(config.function),
        idle_grace_ns: config.idle_grace.as_nanos_i64(),
    };
    Ok(Aggregate::new(
        settings,
        Grouping::Temporal,
        Vec::new(),
        InitialValue::Keep,
        AggregateMetrics::new(id),
    ))
}
