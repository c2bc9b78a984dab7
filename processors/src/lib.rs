//! Phoenix's processor graph: the stages between receivers and table sinks, and the edges that
//! join them. Stages see only the edge traits of `phoenix-model`, so the same graph runs over
//! in-memory channels (embedded default) or a message bus.

pub mod graph;
pub mod memory_edge;
pub mod wal_edge;

pub use graph::{Graph, SinkEdge, DEFAULT_TABLE};
pub use memory_edge::{memory_edge, EdgePermit, MemoryReceiver, MemorySender};
pub use wal_edge::{wal_edge, WalReceiver, WalSender};
