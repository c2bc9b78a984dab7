//! The Arrow schema of the `metrics` table (see `shared/CONTRACT.md`).
//!
//! Every stage — decoder, graph edges, Parquet files, DataFusion — uses this one schema, so a
//! batch never changes shape between decode and row group.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// Version of [`metrics_schema`]; bumped on any change, carried in bus message headers.
pub const SCHEMA_VERSION: u32 = 1;

/// Column names of the `metrics` table, in schema order.
pub mod col {
    /// `time_unix_nano` of the datapoint.
    pub const TIME: &str = "time";
    /// `start_time_unix_nano`, null when absent (0) or not applicable.
    pub const START_TIME: &str = "start_time";
    /// Metric name as sent.
    pub const METRIC: &str = "metric";
    /// One of the [`super::kind`] strings.
    pub const KIND: &str = "kind";
    /// `delta` or `cumulative`; null for gauges and summaries.
    pub const TEMPORALITY: &str = "temporality";
    /// Sums only.
    pub const MONOTONIC: &str = "monotonic";
    /// Metric unit.
    pub const UNIT: &str = "unit";
    /// Resource attribute `service.name`, empty string if absent.
    pub const SERVICE: &str = "service";
    /// All resource attributes.
    pub const RESOURCE: &str = "resource";
    /// Instrumentation scope name.
    pub const SCOPE: &str = "scope";
    /// Datapoint attributes, values rendered as strings.
    pub const ATTRIBUTES: &str = "attributes";
    /// Stable hash of metric, resource and attributes.
    pub const SERIES_ID: &str = "series_id";
    /// Gauge and sum value.
    pub const VALUE: &str = "value";
    /// Histogram / summary count.
    pub const COUNT: &str = "count";
    /// Histogram / summary sum.
    pub const SUM: &str = "sum";
    /// Histogram minimum.
    pub const MIN: &str = "min";
    /// Histogram maximum.
    pub const MAX: &str = "max";
    /// Explicit histogram bucket bounds.
    pub const BOUNDS: &str = "bounds";
    /// Explicit histogram bucket counts.
    pub const BUCKET_COUNTS: &str = "bucket_counts";
    /// 1.0, or the fraction of series a sampler kept.
    pub const SAMPLE_RATE: &str = "sample_rate";
    /// OTLP datapoint flags (bit 0: no recorded value).
    pub const FLAGS: &str = "flags";
    /// Exponential histogram scale.
    pub const EXP_SCALE: &str = "exp_scale";
    /// Exponential histogram zero bucket count.
    pub const EXP_ZERO_COUNT: &str = "exp_zero_count";
    /// Exponential histogram zero threshold.
    pub const EXP_ZERO_THRESHOLD: &str = "exp_zero_threshold";
    /// Exponential histogram positive bucket offset.
    pub const EXP_POSITIVE_OFFSET: &str = "exp_positive_offset";
    /// Exponential histogram positive bucket counts.
    pub const EXP_POSITIVE_COUNTS: &str = "exp_positive_counts";
    /// Exponential histogram negative bucket offset.
    pub const EXP_NEGATIVE_OFFSET: &str = "exp_negative_offset";
    /// Exponential histogram negative bucket counts.
    pub const EXP_NEGATIVE_COUNTS: &str = "exp_negative_counts";
    /// Summary quantile levels (0..=1), parallel to [`QUANTILE_VALUES`].
    pub const QUANTILES: &str = "quantiles";
    /// Summary quantile values, parallel to [`QUANTILES`].
    pub const QUANTILE_VALUES: &str = "quantile_values";
}

/// The `kind` column values.
pub mod kind {
    /// OTLP Gauge.
    pub const GAUGE: &str = "gauge";
    /// OTLP Sum.
    pub const SUM: &str = "sum";
    /// OTLP Histogram (explicit buckets).
    pub const HISTOGRAM: &str = "histogram";
    /// OTLP ExponentialHistogram.
    pub const EXPONENTIAL_HISTOGRAM: &str = "exponential_histogram";
    /// OTLP Summary.
    pub const SUMMARY: &str = "summary";
}

/// The `temporality` column values.
pub mod temporality {
    /// Delta temporality.
    pub const DELTA: &str = "delta";
    /// Cumulative temporality.
    pub const CUMULATIVE: &str = "cumulative";
}

/// Timestamp type of `time` and `start_time`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The `Map<Utf8, Utf8>` type of `resource` and `attributes`, laid out exactly as arrow's
/// `MapBuilder` with default field names builds it.
pub fn string_map_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("keys", DataType::Utf8, false),
            Field::new("values", DataType::Utf8, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// `List<item>` as arrow's `ListBuilder` builds it by default.
pub fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// The schema of the `metrics` table and of every batch on the data path.
pub fn metrics_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(col::TIME, timestamp_type(), false),
                Field::new(col::START_TIME, timestamp_type(), true),
                Field::new(col::METRIC, DataType::Utf8, false),
                Field::new(col::KIND, DataType::Utf8, false),
                Field::new(col::TEMPORALITY, DataType::Utf8, true),
                Field::new(col::MONOTONIC, DataType::Boolean, true),
                Field::new(col::UNIT, DataType::Utf8, false),
                Field::new(col::SERVICE, DataType::Utf8, false),
                Field::new(col::RESOURCE, string_map_type(), false),
                Field::new(col::SCOPE, DataType::Utf8, false),
                Field::new(col::ATTRIBUTES, string_map_type(), false),
                Field::new(col::SERIES_ID, DataType::UInt64, false),
                Field::new(col::VALUE, DataType::Float64, true),
                Field::new(col::COUNT, DataType::UInt64, true),
                Field::new(col::SUM, DataType::Float64, true),
                Field::new(col::MIN, DataType::Float64, true),
                Field::new(col::MAX, DataType::Float64, true),
                Field::new(col::BOUNDS, list_of(DataType::Float64), true),
                Field::new(col::BUCKET_COUNTS, list_of(DataType::UInt64), true),
                Field::new(col::SAMPLE_RATE, DataType::Float64, false),
                Field::new(col::FLAGS, DataType::UInt32, false),
                Field::new(col::EXP_SCALE, DataType::Int32, true),
                Field::new(col::EXP_ZERO_COUNT, DataType::UInt64, true),
                Field::new(col::EXP_ZERO_THRESHOLD, DataType::Float64, true),
                Field::new(col::EXP_POSITIVE_OFFSET, DataType::Int32, true),
                Field::new(col::EXP_POSITIVE_COUNTS, list_of(DataType::UInt64), true),
                Field::new(col::EXP_NEGATIVE_OFFSET, DataType::Int32, true),
                Field::new(col::EXP_NEGATIVE_COUNTS, list_of(DataType::UInt64), true),
                Field::new(col::QUANTILES, list_of(DataType::Float64), true),
                Field::new(col::QUANTILE_VALUES, list_of(DataType::Float64), true),
            ]))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's columns come first, in the contract's order, with the contract's types.
    #[test]
    fn contract_columns_in_order() {
        let schema = metrics_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            &names[..20],
            &[
                "time",
                "start_time",
                "metric",
                "kind",
                "temporality",
                "monotonic",
                "unit",
                "service",
                "resource",
                "scope",
                "attributes",
                "series_id",
                "value",
                "count",
                "sum",
                "min",
                "max",
                "bounds",
                "bucket_counts",
                "sample_rate"
            ]
        );
        assert_eq!(schema.field(0).data_type(), &timestamp_type());
        assert_eq!(
            schema
                .field_with_name("series_id")
                .map(|f| f.data_type().clone())
                .ok(),
            Some(DataType::UInt64)
        );
    }
}
