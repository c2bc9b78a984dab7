//! Phoenix's SQL layer: DataFusion over the storage tables (Parquet files unioned with the
//! in-memory buffer), behind a read-only sandbox with time, memory, row and concurrency limits,
//! and the JSON / CSV / Arrow IPC encodings of results.

mod engine;
mod error;
pub mod format;
mod prune;
mod sandbox;
mod table;

pub use engine::{scanned_files, QueryEngine, QueryOutput};
pub use error::{QueryError, Result};
pub use prune::TimeRange;
pub use table::PhoenixTable;
