//! The temporality processor's parameters (defined and validated in `phoenix-model`) and its
//! builder.

use phoenix_model::pattern::AnyOf;
pub use phoenix_model::pipeline::{InitialValueMode, TargetTemporality, TemporalityConfig};

use super::metrics::TemporalityMetrics;
use super::runtime::Temporality;
use crate::delta::{wall_clock_ns, InitialValue};
use crate::{Error, Result};

/// The delta module's mode for a configured `initial_value`.
pub(crate) fn initial_value(mode: InitialValueMode) -> InitialValue {
    match mode {
        InitialValueMode::Auto => InitialValue::Auto,
        InitialValueMode::Keep => InitialValue::Keep,
        InitialValueMode::Drop => InitialValue::Drop,
    }
}

/// Seconds as nanoseconds, saturating.
pub(crate) fn secs_to_ns(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000)
}

/// Builds the runtime processor `id`.
///
/// # Errors
/// [`Error::Build`] for `stale_after_secs: 0` or a metric pattern that does not compile
/// (validation reports both first).
pub fn build(id: &str, config: &TemporalityConfig) -> Result<Temporality> {
    build_at(id, config, wall_clock_ns())
}

/// As [`build`], with the state's clock starting at `now_ns` (tests, replays).
pub(crate) fn build_at(id: &str, config: &TemporalityConfig, now_ns: i64) -> Result<Temporality> {
    let err = |reason: String| Error::Build {
        id: id.to_string(),
        type_name: TemporalityConfig::TYPE.to_string(),
        reason,
    };
    if config.stale_after_secs == 0 {
        return Err(err("stale_after_secs must be at least 1".into()));
    }
    let metric = AnyOf::parse(&config.metric).map_err(|(_, e)| err(e))?;
    Ok(Temporality::new(
        config.to,
        metric,
        initial_value(config.initial_value),
        secs_to_ns(config.stale_after_secs),
        TemporalityMetrics::new(id),
        now_ns,
    ))
}
