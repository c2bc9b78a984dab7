//! Anomaly detection over metric streams. The linfa-based detector arrives with its own issue;
//! this crate exists so the workspace has its final shape.
