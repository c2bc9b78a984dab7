//! Kafka transport for Phoenix graph edges.
