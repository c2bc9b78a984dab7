//! The attributes processor's parameters (defined and validated in `phoenix-model`) and its
//! builder.

pub use phoenix_model::pipeline::AttributesConfig;

use super::metrics::AttributesMetrics;
use super::runtime::Attributes;
use crate::Result;

/// Builds the runtime processor `id`; each action list is compiled into one fate per key.
///
/// # Errors
/// None today; the signature matches the other builders.
pub fn build(id: &str, config: &AttributesConfig) -> Result<Attributes> {
    Ok(Attributes::new(
        config.actions.clone(),
        config.resource_actions.clone(),
        AttributesMetrics::new(id),
    ))
}
