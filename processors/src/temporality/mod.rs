//! `type: temporality`: cumulative ↔ delta conversion of sums and explicit histograms, per
//! stream, as the OTel metrics data model describes.
//!
//! See `README.md` for the keys and the rules. Exponential histograms, gauges and summaries
//! pass through unchanged.

mod accumulate;
mod config;
mod metrics;
mod runtime;
#[cfg(test)]
mod tests;
pub(crate) mod view;

use phoenix_model::pipeline::ProcessorParams;

pub use config::{build, InitialValueMode, TargetTemporality, TemporalityConfig};
pub(crate) use config::{initial_value, secs_to_ns};
pub use metrics::{REASON_INITIAL, REASON_NO_VALUE, REASON_OUT_OF_ORDER, STATE_SERIES};
pub use runtime::Temporality;

use crate::processor::{Processor, Registration};

/// The YAML `type:` name.
pub const TYPE: &str = TemporalityConfig::TYPE;

/// Registration in [`crate::processor::REGISTRY`].
pub const REGISTRATION: Registration = Registration {
    type_name: TYPE,
    build: |id, params| match params {
        ProcessorParams::Temporality(c) => {
            Some(build(id, c).map(|p| Box::new(p) as Box<dyn Processor>))
        }
        _ => None,
    },
};
