//! The sampler's parameters (defined and validated in `phoenix-model`) and its builder.

use phoenix_model::pattern::AnyOf;
pub use phoenix_model::pipeline::SampleConfig;

use super::metrics::SampleMetrics;
use super::runtime::Sample;
use crate::{Error, Result};

/// Builds the runtime sampler `id`.
///
/// # Errors
/// [`Error::Build`] for a ratio outside (0, 1] or a metric pattern that does not compile
/// (validation reports both first).
pub fn build(id: &str, config: &SampleConfig) -> Result<Sample> {
    let err = |reason: String| Error::Build {
        id: id.to_string(),
        type_name: SampleConfig::TYPE.to_string(),
        reason,
    };
    if !(config.ratio > 0.0 && config.ratio <= 1.0) {
        return Err(err(format!("ratio {} is outside (0, 1]", config.ratio)));
    }
    let metric = AnyOf::parse(&config.metric).map_err(|(_, e)| err(e))?;
    Ok(Sample::new(
        config.ratio,
        config.seed,
        metric,
        SampleMetrics::new(id),
    ))
}
