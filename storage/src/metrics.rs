//! Names of the metrics this crate emits (see the README for their meaning).

/// Rows written to Parquet, by `table`.
pub(crate) const ROWS_WRITTEN: &str = "phoenix_storage_rows_written_total";
/// Parquet bytes written, by `table`.
pub(crate) const BYTES_WRITTEN: &str = "phoenix_storage_bytes_written_total";
/// Parquet files written, by `table`.
pub(crate) const FILES_WRITTEN: &str = "phoenix_storage_files_written_total";
/// Partition flushes that failed, by `table`.
pub(crate) const FLUSH_ERRORS: &str = "phoenix_storage_flush_errors_total";
/// Duration of a whole table flush.
pub(crate) const FLUSH_DURATION: &str = "phoenix_storage_flush_duration_seconds";
/// Rows held in memory, not yet in Parquet, by `table`.
pub(crate) const BUFFERED_ROWS: &str = "phoenix_storage_buffered_rows";
/// Files deleted, by `table` and `reason`.
pub(crate) const FILES_DELETED: &str = "phoenix_storage_files_deleted_total";
/// Datapoints the sink could not store, by `table` and `reason`.
pub(crate) const ROWS_DROPPED: &str = "phoenix_storage_rows_dropped_total";
/// Redelivered rows skipped because a file already holds them, by `table`.
pub(crate) const ROWS_SKIPPED: &str = "phoenix_storage_rows_skipped_total";
/// Compactions that swapped a merged file in, by `table`.
pub(crate) const COMPACTIONS: &str = "phoenix_storage_compactions_total";
/// Files merged away by compaction, by `table`.
pub(crate) const COMPACTED_FILES: &str = "phoenix_storage_compacted_files_total";
/// Duration of one compaction.
pub(crate) const COMPACTION_SECONDS: &str = "phoenix_storage_compaction_seconds";
