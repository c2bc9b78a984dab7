//! `type: sample`: consistent series sampling with `sample_rate` recorded for re-weighting,
//! and time downsampling (one point per series per interval, on the aggregator's windows).
//!
//! See `README.md` for the keys, the downsampling semantics per metric type, and the accuracy
//! of re-weighted sums ([`estimate`]).

mod config;
#[cfg(test)]
mod coverage_tests;
pub mod estimate;
mod metrics;
mod runtime;
#[cfg(test)]
mod tests;

use phoenix_model::pipeline::ProcessorParams;

pub use config::{build, DownsampleConfig, DownsampleFunction, SampleConfig};
pub use estimate::{reweighted_sum, reweighted_sum_rates, Estimate};
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
