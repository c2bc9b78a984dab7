//! `type: filter`: keeps or drops datapoints by metric name, kind, attributes and resource.
//!
//! See `README.md` for the keys. One boolean mask per batch, applied once with the `filter`
//! kernel; rows are never copied into per-row structures.

mod config;
mod metrics;
mod runtime;
#[cfg(test)]
mod tests;

use phoenix_model::pipeline::ProcessorParams;

pub(crate) use config::compile;
pub use config::{build, FilterConfig, MatchConfig};
pub use runtime::Filter;
pub(crate) use runtime::{condition_mask, Condition};

use crate::processor::{Processor, Registration};

/// The YAML `type:` name.
pub const TYPE: &str = FilterConfig::TYPE;

/// Registration in [`crate::processor::REGISTRY`].
pub const REGISTRATION: Registration = Registration {
    type_name: TYPE,
    build: |id, params| match params {
        ProcessorParams::Filter(c) => Some(build(id, c).map(|p| Box::new(p) as Box<dyn Processor>)),
        _ => None,
    },
};
