//! Kafka transport for Phoenix's graph edges.
//!
//! The ingest topic carries Arrow IPC batches ([`payload`]) partitioned by series
//! ([`partition`]), so every series has one writer and one consumer. [`KafkaSender`] is the
//! [`phoenix_model::EdgeSender`] ingest nodes write to: it returns only once the broker has
//! acknowledged every part (acks=all, idempotent producer). [`KafkaReceiver`] is the
//! [`phoenix_model::EdgeReceiver`] processing nodes read from, in a consumer group with manual
//! offset commits: a commit records offsets only for messages whose deliveries are durable
//! downstream; unreadable messages go to the dead-letter topic. [`BusMonitor`] exposes owned
//! partitions and lag for health.

pub mod client;
pub mod error;
pub mod metrics;
pub mod monitor;
pub mod partition;
pub mod payload;
pub mod position;
pub mod receiver;
pub mod sender;
pub mod testing;
pub mod topics;

pub use error::{Error, Result};
pub use monitor::{BusMonitor, PartitionStatus, RevokeHook};
pub use position::{position, split_position};
pub use receiver::{
    KafkaReceiver, PartitionCommitter, PartitionEdge, ReceiverHandle, ReceiverOptions, Routed,
};
pub use sender::KafkaSender;
pub use topics::{ensure_topics, Topics};
