//! The sampler's parameters (defined and validated in `phoenix-model`) and its builder.

use phoenix_model::pattern::AnyOf;
pub use phoenix_model::pipeline::{DownsampleConfig, DownsampleFunction, SampleConfig};

use super::metrics::SampleMetrics;
use super::runtime::Sample;
use crate::aggregate::downsampler;
use crate::{Error, Result};

/// Builds the runtime sampler `id`.
///
/// # Errors
/// [`Error::Build`] for a ratio outside (0, 1], neither `ratio` nor `downsample`, bad
/// downsampling parameters or a metric pattern that does not compile (validation reports
/// them first).
pub fn build(id: &str, config: &SampleConfig) -> Result<Sample> {
    let err = |reason: String| Error::Build {
        id: id.to_string(),
        type_name: SampleConfig::TYPE.to_string(),
        reason,
    };
    if let Some(ratio) = config.ratio {
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(err(format!("ratio {ratio} is outside (0, 1]")));
        }
    }
    if config.ratio.is_none() && config.downsample.is_none() {
        return Err(err("set `ratio`, `downsample` or both".into()));
    }
    let metric = AnyOf::parse(&config.metric).map_err(|(_, e)| err(e))?;
    let downsample = config
        .downsample
        .as_ref()
        .map(|d| downsampler(id, d))
        .transpose()?;
    Ok(Sample::new(
        config.ratio,
        config.seed,
        metric,
        downsample,
        SampleMetrics::new(id),
    ))
}
