//! The filter's parameters (defined in `phoenix-model`, which validates them) and its builder.

use phoenix_model::pattern::{AnyOf, Matcher};
pub use phoenix_model::pipeline::{FilterConfig, MatchConfig};

use super::metrics::FilterMetrics;
use super::runtime::{Condition, Filter};
use crate::{Error, Result};

/// Builds the runtime filter `id`, compiling every pattern once.
///
/// # Errors
/// [`Error::Build`] for a pattern that does not compile (validation reports it first).
pub fn build(id: &str, config: &FilterConfig) -> Result<Filter> {
    let err = |reason: String| Error::Build {
        id: id.to_string(),
        type_name: FilterConfig::TYPE.to_string(),
        reason,
    };
    let keep = config.keep.as_ref().map(compile).transpose().map_err(err)?;
    let drop = config.drop.as_ref().map(compile).transpose().map_err(err)?;
    Ok(Filter::new(keep, drop, FilterMetrics::new(id)))
}

/// Compiles one condition (also used by the `anomaly` processor's selector).
pub(crate) fn compile(m: &MatchConfig) -> Result<Condition, String> {
    let metric = AnyOf::parse(&m.metric).map_err(|(_, e)| e)?;
    let pairs = |map: &std::collections::BTreeMap<String, Option<String>>| {
        map.iter()
            .map(|(k, v)| Ok((k.clone(), v.as_deref().map(Matcher::parse).transpose()?)))
            .collect::<Result<Vec<_>, String>>()
    };
    Ok(Condition {
        metric,
        kinds: m.kind.iter().map(|k| k.as_str()).collect(),
        attributes: pairs(&m.attributes)?,
        resource: pairs(&m.resource)?,
    })
}
