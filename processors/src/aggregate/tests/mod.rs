//! Aggregator tests: every expected value is computed independently in plain Rust over the
//! raw points.

mod counters;
mod fixture;
mod gauges;
mod histograms;
mod late;
mod props;
