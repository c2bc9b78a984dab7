//! Phoenix's storage layer: each table is a set of immutable Parquet files in object storage
//! (local folder, S3 or memory) plus an in-memory buffer of rows not yet flushed. Queries see
//! both through one consistent [`TableSnapshot`]; the [`run_sink`] stage feeds a table from a
//! graph edge and acknowledges deliveries once a flush made them durable.
//!
//! Layout: `{table}/date=YYYY-MM-DD/hour=HH/{min_time_ns}-{max_time_ns}-{uuid_v7}.parquet`
//! (Hive-style, readable as-is by DuckDB, Spark or pyarrow). The file name carries the time range
//! of its rows, so time pruning needs no footer read and the manifest is rebuilt from a listing.

mod catalog;
mod compact;
mod encode;
mod error;
mod layout;
mod metrics;
mod parallel;
mod positions;
mod replay;
mod row_groups;
mod sink;
mod sort_order;
mod store;
mod table;
mod take_rows;
pub mod testing;

pub use catalog::Storage;
pub use compact::{
    CompactionReport, MAX_MERGE_INPUTS, OUTPUT_BATCH_ROWS, READ_BATCH_ROWS, REPLACES_KEY,
};
pub use encode::ACK_MAX_KEY;
pub use error::{Error, Result};
pub use layout::{parse_file_name, partition_prefix, HOUR_NANOS};
pub use positions::{parse_positions, position_dedup, stored_in_hour, Stored, POSITIONS_KEY};
pub use replay::dedup_receiver;
pub use sink::run_sink;
pub use store::{build_object_store, OBJECT_STORE_URL};
pub use table::{FileMeta, FlushReport, PositionSplit, Table, TableSnapshot};

/// Name of the table every datapoint lands in.
pub const METRICS_TABLE: &str = "metrics";

/// Key-value metadata key carrying the schema version in every Parquet file.
pub const SCHEMA_VERSION_KEY: &str = "phoenix.schema_version";
