//! Aggregator tests: every expected value is computed independently in plain Rust over the
//! raw points.

mod checkpoint;
mod counters;
mod downsample;
mod fixture;
mod gauges;
mod histograms;
mod idle;
mod late;
mod props;
