//! Phoenix's processor graph: the stages between receivers and table sinks, the processors
//! they run, and the edges that join them. Stages see only the edge traits of `phoenix-model`,
//! so the same graph runs over in-memory channels (embedded default) or a message bus.
//!
//! - [`Graph::build`] turns `pipeline:` into edges and stage tasks;
//! - [`processor`] holds the [`Processor`] trait and the registry of types: [`filter`],
//!   [`attributes`], [`sample`];
//! - [`relay`] carries sinks' commits back to the entry edge, so the WAL is released only
//!   once every sink has stored a record.

pub mod aggregate;
pub mod anomaly;
pub mod attributes;
pub mod cardinality_limit;
pub mod checkpoint;
mod columns;
mod delta;
pub mod error;
pub mod fan_in;
pub mod filter;
pub mod graph;
pub mod memory_edge;
pub mod metrics;
pub mod processor;
pub mod relay;
pub mod sample;
mod series;
mod stage;
pub mod temporality;
#[cfg(test)]
mod testing;
pub mod usage;
pub mod wal_edge;

pub use anomaly::{AnomalyRecorder, AnomalyRow};
pub use checkpoint::{Checkpoints, Resume};
pub use error::{Error, Result};
pub use fan_in::FanIn;
pub use graph::{Graph, SinkEdge, DEFAULT_TABLE};
pub use memory_edge::{memory_edge, EdgePermit, MemoryReceiver, MemorySender};
pub use processor::{build_processor, Processor, Registration, StateSnapshot, REGISTRY};
pub use relay::RelayReceiver;
pub use usage::{Flow, UsageRecorder, UsageTap};
pub use wal_edge::{wal_edge, WalReceiver, WalSender};
