//! Shared fixtures of Phoenix's criterion benchmarks.
