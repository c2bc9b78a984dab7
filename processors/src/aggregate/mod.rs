//! `type: aggregate`: tumbling event-time windows (rollups), temporal or spatial.
//!
//! Rows are routed by event time into epoch-aligned windows of `window`; a window closes once
//! the watermark (newest event time − `allowed_lateness`) reaches its end, and its rows are
//! emitted then. Gauges become one row per function and quantile, sums and explicit
//! histograms are merged per the OTel data model, cumulative inputs converted to deltas (in
//! time order per series, at window close) first. See `README.md` for keys, the output
//! representation and accuracy.
//!
//! - `input` reads a batch's columns and classifies rows;
//! - `group` finds a row's output series (and holds their metadata and running totals);
//! - `window` accumulates a window; `buckets` merges histograms;
//! - `downsample` holds the per-series accumulators of downsampling (the `sample`
//!   processor's `downsample:` runs this engine with [`downsampler`]);
//! - `emit` builds output batches; `runtime` ties them together.
//!
//! [`crate::processor::Processor::tick`] closes the windows of an idle input on the wall
//! clock (see `README.md`, "Idle input").

mod buckets;
mod checkpoint;
mod config;
mod downsample;
mod emit;
mod group;
pub(crate) mod input;
pub mod metrics;
mod runtime;
mod slots;
#[cfg(test)]
mod tests;
mod window;

use phoenix_model::pipeline::ProcessorParams;

pub use config::{
    build, downsampler, sketch_bins, AggregateConfig, SKETCH_DYNAMIC_RANGE, SKETCH_MIN_VALUE,
};
pub use runtime::{Aggregate, MAX_FUTURE_NS};

use crate::processor::{Processor, Registration};

/// The YAML `type:` name.
pub const TYPE: &str = AggregateConfig::TYPE;

/// Registration in [`crate::processor::REGISTRY`].
pub const REGISTRATION: Registration = Registration {
    type_name: TYPE,
    build: |id, params| match params {
        ProcessorParams::Aggregate(c) => {
            Some(build(id, c).map(|p| Box::new(p) as Box<dyn Processor>))
        }
        _ => None,
    },
};
