//! `type: attributes`: drops, keeps, renames, hashes or moves attribute keys (the main
//! cardinality lever), then recomputes `series_id` (and `service` when the resource changed)
//! with the decoder's recipe.
//!
//! See `README.md` for the keys.

mod config;
mod metrics;
mod rules;
mod runtime;
#[cfg(test)]
mod tests;

use phoenix_model::pipeline::ProcessorParams;

pub use config::{build, AttributesConfig};
pub use runtime::Attributes;

use crate::processor::{Processor, Registration};

/// The YAML `type:` name.
pub const TYPE: &str = AttributesConfig::TYPE;

/// Registration in [`crate::processor::REGISTRY`].
pub const REGISTRATION: Registration = Registration {
    type_name: TYPE,
    build: |id, params| match params {
        ProcessorParams::Attributes(c) => {
            Some(build(id, c).map(|p| Box::new(p) as Box<dyn Processor>))
        }
        _ => None,
    },
};
