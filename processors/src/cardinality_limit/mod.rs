//! `type: cardinality_limit`: admits the first `max_series` series of each metric and folds
//! the points of further series into one overflow series per metric and resource, attributes
//! `{otel.metric.overflow: "true"}`, so totals stay exact.
//!
//! See `README.md` for the keys and the per-type rules.

mod config;
mod merge;
mod metrics;
mod runtime;
#[cfg(test)]
mod tests;

use phoenix_model::pipeline::ProcessorParams;

pub use config::{build, CardinalityLimitConfig};
pub use metrics::OVERFLOW_DATAPOINTS;
pub use runtime::{CardinalityLimit, OVERFLOW_KEY, OVERFLOW_VALUE};

use crate::processor::{Processor, Registration};

/// The YAML `type:` name.
pub const TYPE: &str = CardinalityLimitConfig::TYPE;

/// Registration in [`crate::processor::REGISTRY`].
pub const REGISTRATION: Registration = Registration {
    type_name: TYPE,
    build: |id, params| match params {
        ProcessorParams::CardinalityLimit(c) => {
            Some(build(id, c).map(|p| Box::new(p) as Box<dyn Processor>))
        }
        _ => None,
    },
};
