//! The Arrow schema of the `usage` table: per minute, metric and service, what entered the
//! processor graph, what its sinks wrote and what its processors dropped (CONTRACT.md).

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::schema::timestamp_type;

/// Name of the table.
pub const USAGE_TABLE: &str = "usage";

/// Column names of the `usage` table, in schema order.
pub mod col {
    /// Start of the minute (event time of the datapoints).
    pub const MINUTE: &str = "minute";
    /// Metric name.
    pub const METRIC: &str = "metric";
    /// `service.name`.
    pub const SERVICE: &str = "service";
    /// Datapoints that entered the graph.
    pub const DATAPOINTS_IN: &str = "datapoints_in";
    /// Datapoints written by the graph's sinks (all tables).
    pub const DATAPOINTS_OUT: &str = "datapoints_out";
    /// Datapoints processors dropped on purpose (filtered, sampled, too late).
    pub const DATAPOINTS_DROPPED: &str = "datapoints_dropped";
    /// Distinct series that entered the graph.
    pub const SERIES_IN: &str = "series_in";
    /// Distinct series written by the sinks.
    pub const SERIES_OUT: &str = "series_out";
    /// Parquet bytes attributable to the rows written, estimated per table by rows.
    pub const BYTES_STORED: &str = "bytes_stored";
}

/// The schema of the `usage` table.
pub fn usage_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(col::MINUTE, timestamp_type(), false),
                Field::new(col::METRIC, DataType::Utf8, false),
                Field::new(col::SERVICE, DataType::Utf8, false),
                Field::new(col::DATAPOINTS_IN, DataType::UInt64, false),
                Field::new(col::DATAPOINTS_OUT, DataType::UInt64, false),
                Field::new(col::DATAPOINTS_DROPPED, DataType::UInt64, false),
                Field::new(col::SERIES_IN, DataType::UInt64, false),
                Field::new(col::SERIES_OUT, DataType::UInt64, false),
                Field::new(col::BYTES_STORED, DataType::UInt64, false),
            ]))
        })
        .clone()
}
