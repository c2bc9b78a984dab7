//! One table: its manifest of Parquet files, its in-memory buffer and the flush that moves rows
//! from the second to the first.
//!
//! Invariant: every appended row is, at any instant, in exactly one of the buffer or a manifest
//! file. A flush encodes a copy of the buffered batches, writes the file, and only then — under
//! the same lock a [`Table::snapshot`] takes — removes exactly those batches from the buffer and
//! adds the file. Batches appended while the write runs stay buffered for the next flush.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::cmp::eq;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampNanosecondType};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parking_lot::Mutex;
use phoenix_model::config::StorageConfig;
use phoenix_model::schema::col;

use crate::encode::{flush_codec, FileEncoder};
use crate::layout::{file_path, hour_of};
use crate::metrics::{
    BUFFERED_ROWS, BYTES_WRITTEN, FILES_DELETED, FILES_WRITTEN, FLUSH_DURATION, FLUSH_ERRORS,
    ROWS_WRITTEN,
};
use crate::{Error, Result};

/// One Parquet file of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Object path relative to the tables root (`metrics/date=…/hour=…/…parquet`).
    pub path: Path,
    /// Smallest time in the file, in ns since the epoch.
    pub min_time: i64,
    /// Largest time in the file, in ns since the epoch.
    pub max_time: i64,
    /// Object size in bytes.
    pub size: u64,
    /// Row count when known (files written by this process); `None` for files found by listing.
    pub rows: Option<u64>,
}

/// A consistent view of a table: every row is in exactly one file or one buffered batch.
#[derive(Debug, Clone, Default)]
pub struct TableSnapshot {
    /// Flushed files, ordered by `min_time`.
    pub files: Vec<FileMeta>,
    /// Rows not flushed yet, in the table schema.
    pub buffered: Vec<RecordBatch>,
}

impl TableSnapshot {
    /// Rows in the buffered batches.
    pub fn buffered_rows(&self) -> usize {
        self.buffered.iter().map(RecordBatch::num_rows).sum()
    }
}

/// What one successful flush wrote.
#[derive(Debug, Clone, Default)]
pub struct FlushReport {
    /// Files written (one per hour partition that had buffered rows).
    pub files: Vec<FileMeta>,
    /// Rows written.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// A buffered batch with an id, so a flush removes exactly what it wrote.
#[derive(Debug, Clone)]
struct Chunk {
    id: u64,
    batch: RecordBatch,
    /// Edge position of the delivery the rows came from, when the edge has one.
    ack: Option<u64>,
}

/// Mutable state, guarded by one lock so snapshots are consistent.
#[derive(Debug, Default)]
struct State {
    /// Buffered batches by hour index; each batch lies within its hour.
    buffer: BTreeMap<i64, Vec<Chunk>>,
    buffered_rows: usize,
    /// Arrow memory of the buffered batches.
    buffered_bytes: usize,
    files: Vec<FileMeta>,
    next_id: u64,
}

#[derive(Debug)]
struct Inner {
    name: String,
    cfg: StorageConfig,
    schema: SchemaRef,
    time_col: usize,
    store: Arc<dyn ObjectStore>,
    encoder: FileEncoder,
    state: Mutex<State>,
    /// Serializes flushes, so two never write the same batches.
    flush_lock: tokio::sync::Mutex<()>,
    /// One compaction at a time per table.
    pub(crate) compact_lock: tokio::sync::Mutex<()>,
    flush_errors: AtomicU64,
    last_flush_unix_ms: AtomicU64,
    /// Rows and bytes this process flushed, for [`Table::bytes_per_row`].
    rows_written: AtomicU64,
    bytes_written: AtomicU64,
    /// Rows and bytes of the files this process's compactions wrote.
    rows_compacted: AtomicU64,
    bytes_compacted: AtomicU64,
    /// Splits edge positions into (source partition, next offset), when the edge has sources.
    positions: std::sync::OnceLock<PositionSplit>,
    /// Parsed [`crate::POSITIONS_KEY`] of files already read (files are immutable).
    position_cache:
        Mutex<std::collections::HashMap<Path, Arc<BTreeMap<u32, crate::positions::Stored>>>>,
}

/// Splits an edge position into `(source, next offset)`; `None` for positions without a
/// source. Set on a table fed from partitioned sources (Kafka) so that each file records, per
/// source, how far it holds (see [`crate::POSITIONS_KEY`]).
pub type PositionSplit = fn(u64) -> Option<(u32, u64)>;

/// A table: Parquet files plus an in-memory buffer. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct Table {
    inner: Arc<Inner>,
}

impl Table {
    /// The object store the table's files live in.
    pub(crate) fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.inner.store)
    }

    /// A table with the given manifest.
    pub(crate) fn new(
        name: &str,
        schema: SchemaRef,
        store: Arc<dyn ObjectStore>,
        cfg: &StorageConfig,
        mut files: Vec<FileMeta>,
    ) -> Result<Table> {
        let time_col = time_column_index(&schema).ok_or_else(|| Error::Schema {
            table: name.to_string(),
            reason: "no non-null Timestamp(ns) column to partition by".into(),
        })?;
        let encoder = FileEncoder::new(&schema, time_col, flush_codec(cfg)?, cfg.row_group_rows)?;
        files.sort_by(|a, b| (a.min_time, &a.path).cmp(&(b.min_time, &b.path)));
        Ok(Table {
            inner: Arc::new(Inner {
                name: name.to_string(),
                cfg: cfg.clone(),
                schema,
                time_col,
                store,
                encoder,
                state: Mutex::new(State {
                    files,
                    ..State::default()
                }),
                flush_lock: tokio::sync::Mutex::new(()),
                compact_lock: tokio::sync::Mutex::new(()),
                flush_errors: AtomicU64::new(0),
                last_flush_unix_ms: AtomicU64::new(0),
                rows_written: AtomicU64::new(0),
                bytes_written: AtomicU64::new(0),
                rows_compacted: AtomicU64::new(0),
                bytes_compacted: AtomicU64::new(0),
                positions: std::sync::OnceLock::new(),
                position_cache: Mutex::new(std::collections::HashMap::new()),
            }),
        })
    }

    /// Makes every file written from now on record, per source, the highest position and the
    /// newest time of its rows ([`crate::POSITIONS_KEY`]). Set once; later calls are ignored.
    pub fn set_position_split(&self, split: PositionSplit) {
        let _ = self.inner.positions.set(split);
    }

    /// The position split set by [`Table::set_position_split`].
    pub fn position_split(&self) -> Option<PositionSplit> {
        self.inner.positions.get().copied()
    }

    /// Merges a fresh listing into the manifest: adds listed files it lacks, and drops files
    /// that were in `known` (the manifest when the listing started) but are no longer listed.
    /// Returns how many files were added.
    pub(crate) fn sync_files(&self, known: &[Path], listed: Vec<FileMeta>) -> usize {
        let listed_paths: HashSet<Path> = listed.iter().map(|f| f.path.clone()).collect();
        let known: HashSet<&Path> = known.iter().collect();
        let mut st = self.inner.state.lock();
        let present: HashSet<Path> = st.files.iter().map(|f| f.path.clone()).collect();
        st.files
            .retain(|f| !known.contains(&f.path) || listed_paths.contains(&f.path));
        let mut added = 0;
        for f in listed {
            // A known file that is no longer present left the manifest while the listing ran
            // (compaction, retention): its object may still be listed until deleted.
            if !present.contains(&f.path) && !known.contains(&f.path) {
                st.files.push(f);
                added += 1;
            }
        }
        if added > 0 {
            st.files
                .sort_by(|a, b| (a.min_time, &a.path).cmp(&(b.min_time, &b.path)));
        }
        added
    }

    /// Index of the partitioning time column.
    pub(crate) fn time_col(&self) -> usize {
        self.inner.time_col
    }

    /// How the table's files are encoded.
    pub(crate) fn encoder(&self) -> &FileEncoder {
        &self.inner.encoder
    }

    /// The compaction lock (one compaction at a time per table).
    pub(crate) fn compact_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.compact_lock
    }

    /// Records row counts learned from footers, so policy checks need no second read.
    pub(crate) fn set_rows(&self, rows: &[(Path, u64)]) {
        let mut st = self.inner.state.lock();
        for f in st.files.iter_mut() {
            if f.rows.is_none() {
                if let Some((_, r)) = rows.iter().find(|(p, _)| *p == f.path) {
                    f.rows = Some(*r);
                }
            }
        }
    }

    /// Replaces `inputs` by `output` in the manifest in one step (snapshots see either all
    /// inputs or the output). Returns `false`, changing nothing, when an input already left
    /// the manifest (retention, refresh), since the output would then bring its rows back.
    pub(crate) fn swap_files(&self, inputs: &[Path], output: FileMeta) -> bool {
        let doomed: HashSet<&Path> = inputs.iter().collect();
        let mut st = self.inner.state.lock();
        let present = st.files.iter().filter(|f| doomed.contains(&f.path)).count();
        if present != doomed.len() {
            return false;
        }
        st.files.retain(|f| !doomed.contains(&f.path));
        let at = st
            .files
            .partition_point(|f| (f.min_time, &f.path) < (output.min_time, &output.path));
        st.files.insert(at, output);
        true
    }

    /// The parsed positions of a file read before.
    pub(crate) fn cached_positions(
        &self,
        path: &Path,
    ) -> Option<Arc<BTreeMap<u32, crate::positions::Stored>>> {
        self.inner.position_cache.lock().get(path).cloned()
    }

    /// Remembers the parsed positions of a file and returns them.
    pub(crate) fn cache_positions(
        &self,
        path: Path,
        positions: BTreeMap<u32, crate::positions::Stored>,
    ) -> Arc<BTreeMap<u32, crate::positions::Stored>> {
        let positions = Arc::new(positions);
        self.inner
            .position_cache
            .lock()
            .insert(path, Arc::clone(&positions));
        positions
    }

    /// Parquet bytes per stored row: over the files this process's compactions wrote once
    /// there are any (what a row costs for the rest of its retention), else over the files it
    /// flushed (LZ4 by default, so an overestimate until the first hour is compacted); `None`
    /// before the first flush.
    pub fn bytes_per_row(&self) -> Option<f64> {
        let ratio = |rows: &AtomicU64, bytes: &AtomicU64| {
            let rows = rows.load(Ordering::Relaxed);
            (rows > 0).then(|| bytes.load(Ordering::Relaxed) as f64 / rows as f64)
        };
        let inner = &self.inner;
        ratio(&inner.rows_compacted, &inner.bytes_compacted)
            .or_else(|| ratio(&inner.rows_written, &inner.bytes_written))
    }

    /// Counts a file that compaction wrote, for [`Table::bytes_per_row`].
    pub(crate) fn record_compacted(&self, rows: u64, bytes: u64) {
        self.inner.rows_compacted.fetch_add(rows, Ordering::Relaxed);
        self.inner
            .bytes_compacted
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// The table name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The storage settings (flush policy, retention) this table was opened with.
    pub fn config(&self) -> &StorageConfig {
        &self.inner.cfg
    }

    /// The table schema.
    pub fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.inner.schema)
    }

    /// Name of the time column that partitions the table and names its files.
    pub fn time_column(&self) -> &str {
        self.inner.schema.field(self.inner.time_col).name()
    }

    /// Rows currently buffered.
    pub fn buffered_rows(&self) -> usize {
        self.inner.state.lock().buffered_rows
    }

    /// Arrow memory held by buffered batches, in bytes.
    pub fn buffered_bytes(&self) -> usize {
        self.inner.state.lock().buffered_bytes
    }

    /// Files currently in the manifest.
    pub fn file_count(&self) -> usize {
        self.inner.state.lock().files.len()
    }

    /// Partition flushes that failed since the table was opened.
    pub fn flush_errors(&self) -> u64 {
        self.inner.flush_errors.load(Ordering::Relaxed)
    }

    /// Wall-clock time of the last flush that wrote everything it attempted (ms since epoch).
    pub fn last_flush_unix_ms(&self) -> Option<u64> {
        match self.inner.last_flush_unix_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// Adds a batch to the buffer, split by hour partition if it spans several hours.
    ///
    /// # Errors
    /// [`Error::Schema`] when the batch does not have the table schema or has null times;
    /// [`Error::Arrow`] if a kernel fails. Nothing is buffered on error.
    pub fn append(&self, batch: RecordBatch) -> Result<()> {
        self.append_acked(batch, None)
    }

    /// Buffers a batch that came from edge position `ack`; flushed files record the highest
    /// position they hold (see [`crate::ACK_MAX_KEY`]).
    ///
    /// # Errors
    /// As [`Table::append`].
    pub fn append_acked(&self, batch: RecordBatch, ack: Option<u64>) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if batch.schema().fields() != self.inner.schema.fields() {
            return Err(self.schema_error("batch schema differs from the table schema"));
        }
        let parts = self.split_by_hour(&batch)?;
        let rows = {
            let mut st = self.inner.state.lock();
            for (hour, part) in parts {
                let id = st.next_id;
                st.next_id += 1;
                st.buffered_rows += part.num_rows();
                st.buffered_bytes += part.get_array_memory_size();
                st.buffer.entry(hour).or_default().push(Chunk {
                    id,
                    batch: part,
                    ack,
                });
            }
            st.buffered_rows
        };
        self.report_buffered(rows);
        Ok(())
    }

    /// Files and buffered batches, taken under one lock: a concurrent flush never makes a row
    /// disappear or appear twice.
    pub fn snapshot(&self) -> TableSnapshot {
        let st = self.inner.state.lock();
        TableSnapshot {
            files: st.files.clone(),
            buffered: st
                .buffer
                .values()
                .flat_map(|chunks| chunks.iter().map(|c| c.batch.clone()))
                .collect(),
        }
    }

    /// Writes each hour partition's buffered rows as one sorted Parquet file.
    ///
    /// Partitions are independent: one failing leaves its rows buffered (for a later retry)
    /// while the others complete. Flushes are serialized; appends continue during a flush.
    ///
    /// # Errors
    /// [`Error::Flush`] when at least one partition failed.
    pub async fn flush(&self) -> Result<FlushReport> {
        let _serial = self.inner.flush_lock.lock().await;
        let work: Vec<(i64, Vec<Chunk>)> = {
            let st = self.inner.state.lock();
            st.buffer.iter().map(|(h, c)| (*h, c.clone())).collect()
        };
        let mut report = FlushReport::default();
        if work.is_empty() {
            return Ok(report);
        }
        let started = Instant::now();
        let partitions = work.len();
        let mut failures = Vec::new();
        for (hour, chunks) in work {
            match self.write_partition(hour, &chunks).await {
                Ok(meta) => {
                    self.commit_partition(hour, &chunks, meta.clone());
                    let rows = meta.rows.unwrap_or(0);
                    self.inner.rows_written.fetch_add(rows, Ordering::Relaxed);
                    self.inner
                        .bytes_written
                        .fetch_add(meta.size, Ordering::Relaxed);
                    report.rows += rows;
                    report.bytes += meta.size;
                    report.files.push(meta);
                }
                Err(error) => {
                    tracing::warn!(table = %self.inner.name, hour, %error, "Partition flush failed; rows stay buffered.");
                    metrics::counter!(FLUSH_ERRORS, "table" => self.inner.name.clone())
                        .increment(1);
                    failures.push(error);
                }
            }
        }
        metrics::histogram!(FLUSH_DURATION).record(started.elapsed().as_secs_f64());
        if failures.is_empty() {
            self.inner
                .last_flush_unix_ms
                .store(now_unix_ms(), Ordering::Relaxed);
            tracing::debug!(table = %self.inner.name, files = report.files.len(), rows = report.rows, bytes = report.bytes, "Flushed.");
            Ok(report)
        } else {
            let failed = failures.len();
            self.inner
                .flush_errors
                .fetch_add(failed as u64, Ordering::Relaxed);
            let first = failures.swap_remove(0);
            Err(Error::Flush {
                table: self.inner.name.clone(),
                failed,
                partitions,
                first: Box::new(first),
            })
        }
    }

    /// Deletes files whose newest row is older than `cutoff_ns`; returns how many went.
    ///
    /// Files leave the manifest before their objects are deleted, so queries stop planning them
    /// first; a file whose delete fails goes back into the manifest.
    ///
    /// # Errors
    /// The first delete failure (other files are still attempted).
    pub async fn delete_files_older_than(&self, cutoff_ns: i64) -> Result<usize> {
        let doomed: Vec<FileMeta> = {
            let mut st = self.inner.state.lock();
            let (old, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut st.files)
                .into_iter()
                .partition(|f| f.max_time < cutoff_ns);
            st.files = keep;
            old
        };
        let mut deleted = 0;
        let mut first_err = None;
        for file in doomed {
            match self.inner.store.delete(&file.path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(source) => {
                    let err = Error::store("delete", &file.path, source);
                    tracing::warn!(table = %self.inner.name, path = %file.path, error = %err, "Retention delete failed.");
                    let mut st = self.inner.state.lock();
                    st.files.push(file);
                    st.files
                        .sort_by(|a, b| (a.min_time, &a.path).cmp(&(b.min_time, &b.path)));
                    first_err.get_or_insert(err);
                }
            }
        }
        if deleted > 0 {
            tracing::info!(table = %self.inner.name, deleted, "Deleted files past retention.");
            metrics::counter!(FILES_DELETED, "table" => self.inner.name.clone(), "reason" => "retention")
                .increment(deleted as u64);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }

    /// Encodes and uploads one partition's chunks; the buffer is untouched.
    async fn write_partition(&self, hour: i64, chunks: &[Chunk]) -> Result<FileMeta> {
        let inner = Arc::clone(&self.inner);
        let batches: Vec<RecordBatch> = chunks.iter().map(|c| c.batch.clone()).collect();
        // Partitioned positions are not WAL sequence numbers: they go to `phoenix.positions`
        // only, so a later WAL replay on the same storage is not misled by them.
        let ack_max = match self.inner.positions.get() {
            Some(_) => None,
            None => chunks.iter().filter_map(|c| c.ack).max(),
        };
        let sources = self.inner.positions.get().map(|split| {
            crate::positions::summarize(
                *split,
                chunks.iter().map(|c| (c.ack, &c.batch)),
                self.inner.time_col,
            )
        });
        // A flush the sink cut at its byte limit is at most one append past it; twice the
        // limit means a batch that arrived whole (a window close), which is flushed in slices.
        let whole_up_to =
            usize::try_from(self.inner.cfg.flush_max_bytes.saturating_mul(2)).unwrap_or(usize::MAX);
        // Sorting and compressing are CPU-bound; keep them off the async workers.
        let file = tokio::task::spawn_blocking(move || {
            inner
                .encoder
                .encode_sorted(&batches, ack_max, sources.as_deref(), whole_up_to)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        let (bytes, min_time, max_time, rows) =
            (file.bytes, file.min_time, file.max_time, file.rows);
        let path = file_path(&self.inner.name, hour, min_time, max_time);
        let size = bytes.len() as u64;
        self.inner
            .store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| Error::store("put", &path, e))?;
        Ok(FileMeta {
            path,
            min_time,
            max_time,
            size,
            rows: Some(rows),
        })
    }

    /// Swaps flushed chunks for their file, atomically for snapshots.
    fn commit_partition(&self, hour: i64, chunks: &[Chunk], meta: FileMeta) {
        let flushed: HashSet<u64> = chunks.iter().map(|c| c.id).collect();
        let name = self.inner.name.clone();
        let (rows, size) = (meta.rows.unwrap_or(0), meta.size);
        let buffered = {
            let mut st = self.inner.state.lock();
            let (mut removed, mut removed_bytes) = (0, 0);
            if let Some(list) = st.buffer.get_mut(&hour) {
                list.retain(|c| {
                    let gone = flushed.contains(&c.id);
                    if gone {
                        removed += c.batch.num_rows();
                        removed_bytes += c.batch.get_array_memory_size();
                    }
                    !gone
                });
                if list.is_empty() {
                    st.buffer.remove(&hour);
                }
            }
            st.buffered_rows -= removed;
            st.buffered_bytes = st.buffered_bytes.saturating_sub(removed_bytes);
            let at = st
                .files
                .partition_point(|f| (f.min_time, &f.path) < (meta.min_time, &meta.path));
            st.files.insert(at, meta);
            st.buffered_rows
        };
        metrics::counter!(ROWS_WRITTEN, "table" => name.clone()).increment(rows);
        metrics::counter!(BYTES_WRITTEN, "table" => name.clone()).increment(size);
        metrics::counter!(FILES_WRITTEN, "table" => name).increment(1);
        self.report_buffered(buffered);
    }

    /// Splits a batch into per-hour pieces (one piece when it lies within an hour).
    pub(crate) fn split_by_hour(&self, batch: &RecordBatch) -> Result<Vec<(i64, RecordBatch)>> {
        let times = batch
            .column(self.inner.time_col)
            .as_primitive::<TimestampNanosecondType>();
        if times.null_count() > 0 {
            return Err(self.schema_error("time column has nulls"));
        }
        let (Some(min), Some(max)) = (arrow::compute::min(times), arrow::compute::max(times))
        else {
            return Ok(Vec::new());
        };
        if hour_of(min) == hour_of(max) {
            return Ok(vec![(hour_of(min), batch.clone())]);
        }
        let hours: Int64Array = arrow::compute::kernels::arity::unary(times, hour_of);
        let distinct: BTreeSet<i64> = hours.values().iter().copied().collect();
        let mut parts = Vec::with_capacity(distinct.len());
        for hour in distinct {
            let mask = eq(&hours, &Int64Array::new_scalar(hour))?;
            parts.push((hour, filter_record_batch(batch, &mask)?));
        }
        Ok(parts)
    }

    fn schema_error(&self, reason: &str) -> Error {
        Error::Schema {
            table: self.inner.name.clone(),
            reason: reason.to_string(),
        }
    }

    fn report_buffered(&self, rows: usize) {
        metrics::gauge!(BUFFERED_ROWS, "table" => self.inner.name.clone()).set(rows as f64);
    }
}

/// The column that partitions a table: `time` if present, else the first non-null
/// `Timestamp(ns)` column.
fn time_column_index(schema: &SchemaRef) -> Option<usize> {
    let ok = |i: usize| {
        let f = schema.field(i);
        matches!(f.data_type(), DataType::Timestamp(TimeUnit::Nanosecond, _)) && !f.is_nullable()
    };
    match schema.index_of(col::TIME) {
        Ok(i) if ok(i) => Some(i),
        _ => (0..schema.fields().len()).find(|&i| ok(i)),
    }
}

/// Wall-clock now in ms since the epoch.
pub(crate) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{metrics_batch, TestPoint};
    use object_store::memory::InMemory;
    use phoenix_model::metrics_schema;

    fn table() -> Table {
        Table::new(
            "metrics",
            metrics_schema(),
            Arc::new(InMemory::new()),
            &StorageConfig::default(),
            vec![],
        )
        .expect("table")
    }

    /// A batch over three hours (out of order) becomes three single-hour pieces, rows intact.
    #[test]
    fn append_splits_by_hour() {
        let t = table();
        let h = crate::HOUR_NANOS;
        let batch = metrics_batch(&[
            TestPoint::gauge("m", "s", 2 * h + 1, 1.0),
            TestPoint::gauge("m", "s", 5, 2.0),
            TestPoint::gauge("m", "s", 2 * h + 2, 3.0),
            TestPoint::gauge("m", "s", h, 4.0),
        ]);
        t.append(batch).expect("append");
        let snap = t.snapshot();
        let sizes: Vec<usize> = snap.buffered.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [1, 1, 2]);
        for b in &snap.buffered {
            let times = b.column(0).as_primitive::<TimestampNanosecondType>();
            let hours: BTreeSet<i64> = times.values().iter().map(|&v| hour_of(v)).collect();
            assert_eq!(hours.len(), 1);
        }
        assert_eq!(t.buffered_rows(), 4);
    }

    /// The partition column is `time`, or the first non-null ns timestamp of other schemas.
    #[test]
    fn time_column_choice() {
        use arrow::datatypes::{Field, Schema};
        assert_eq!(time_column_index(&metrics_schema()), Some(0));
        let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        let usage = Arc::new(Schema::new(vec![
            Field::new("metric", DataType::Utf8, false),
            Field::new("minute", ts.clone(), false),
        ]));
        assert_eq!(time_column_index(&usage), Some(1));
        let none = Arc::new(Schema::new(vec![Field::new("minute", ts, true)]));
        assert_eq!(time_column_index(&none), None);
    }
}
