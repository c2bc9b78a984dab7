//! `type: sample`: consistent series sampling with `sample_rate` recorded for re-weighting.
//!
//! See `README.md` for the keys. Time downsampling (one point per series per interval) is not
//! built yet.

mod config;
mod metrics;
mod runtime;
#[cfg(test)]
mod tests;

use phoenix_model::pipeline::ProcessorParams;

pub use config::{build, SampleConfig};
pub use runtime::{keeps, threshold, Sample};

use crate::processor::{Processor, Registration};

/// The YAML `type:` name.
pub const TYPE: &str = SampleConfig::TYPE;

/// Registration in [`crate::processor::REGISTRY`].
pub const REGISTRATION: Registration = Registration {
    type_name: TYPE,
    build: |id, params| match params {
        ProcessorParams::Sample(c) => Some(build(id, c).map(|p| Box::new(p) as Box<dyn Processor>)),
        _ => None,
    },
};
