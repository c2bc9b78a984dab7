//! The cardinality limiter's parameters (defined and validated in `phoenix-model`) and its
//! builder.

use phoenix_model::pattern::AnyOf;
pub use phoenix_model::pipeline::CardinalityLimitConfig;

use super::metrics::CardinalityMetrics;
use super::runtime::CardinalityLimit;
use crate::delta::wall_clock_ns;
use crate::temporality::{initial_value, secs_to_ns};
use crate::{Error, Result};

/// Builds the runtime limiter `id`.
///
/// # Errors
/// [`Error::Build`] for a zero `max_series` or `expire_after_secs`, or a metric pattern that
/// does not compile (validation reports them first).
pub fn build(id: &str, config: &CardinalityLimitConfig) -> Result<CardinalityLimit> {
    build_at(id, config, wall_clock_ns())
}

/// As [`build`], with the state's clock starting at `now_ns` (tests, replays).
pub(crate) fn build_at(
    id: &str,
    config: &CardinalityLimitConfig,
    now_ns: i64,
) -> Result<CardinalityLimit> {
    let err = |reason: String| Error::Build {
        id: id.to_string(),
        type_name: CardinalityLimitConfig::TYPE.to_string(),
        reason,
    };
    if config.max_series == 0 {
        return Err(err("max_series must be at least 1".into()));
    }
    if config.expire_after_secs == 0 {
        return Err(err("expire_after_secs must be at least 1".into()));
    }
    let metric = AnyOf::parse(&config.metric).map_err(|(_, e)| err(e))?;
    Ok(CardinalityLimit::new(
        usize::try_from(config.max_series).unwrap_or(usize::MAX),
        metric,
        secs_to_ns(config.expire_after_secs),
        initial_value(config.initial_value),
        CardinalityMetrics::new(id),
        now_ns,
    ))
}
