//! Compaction: merges the small files of one hour partition into one file sorted by the same
//! key, with a streaming k-way merge.
//!
//! Memory bound: at most [`MAX_MERGE_INPUTS`] inputs are open at once; each holds the compressed
//! column chunks of one row group (what the Parquet reader fetches) and one decoded batch of at
//! most [`READ_BATCH_ROWS`] rows with its sort-key row encoding; the output holds up to
//! [`OUTPUT_BATCH_ROWS`] pending row indices and the encoded pages of the row group being
//! written (at most `storage.row_group_rows` rows), and is uploaded in parts. So memory is about
//! `64 × (one input row group compressed + 4096 decoded rows) + one output row group`, whatever
//! the partition size. Hours with more inputs are merged 64 files at a time; the outputs are
//! merged by later passes.
//!
//! Metadata: the output keeps the schema version, carries the highest [`crate::ACK_MAX_KEY`]
//! of its inputs (WAL replay takes the highest per hour, so the hour's figure is unchanged), the
//! per-partition maximum of their [`crate::POSITIONS_KEY`], and [`REPLACES_KEY`]: the names of
//! the inputs, so a listing that still sees them (the process died before the delayed deletes)
//! drops them (see `catalog.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::compute::SortOptions;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, Rows, SortField};
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use parquet::arrow::async_reader::ParquetRecordBatchStream;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::file::metadata::KeyValue;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Handle;

use crate::layout::{compacted_file_path, hour_of};
use crate::metrics::{COMPACTED_FILES, COMPACTIONS, COMPACTION_SECONDS};
use crate::positions::{parse_positions, Stored};
use crate::row_groups::RowGroupWriter;
use crate::store::StoreReader;
use crate::table::FileMeta;
use crate::take_rows::take_rows_from;
use crate::{Error, Result, Table, ACK_MAX_KEY, POSITIONS_KEY};

/// Key-value metadata key of compacted files: the file names (in the same partition folder) of
/// the files it replaced, comma separated.
pub const REPLACES_KEY: &str = "phoenix.replaces";

/// Most files merged by one compaction (files open at once).
pub const MAX_MERGE_INPUTS: usize = 64;
/// Rows decoded per read of one input.
pub const READ_BATCH_ROWS: usize = 4096;
/// Rows per batch handed to the writer.
pub const OUTPUT_BATCH_ROWS: usize = 8192;

/// What one compaction did.
#[derive(Debug, Clone, Default)]
pub struct CompactionReport {
    /// Files merged (they left the manifest; their objects are still to be deleted).
    pub inputs: Vec<FileMeta>,
    /// The merged file (now in the manifest).
    pub output: Option<FileMeta>,
    /// Rows merged.
    pub rows: u64,
    /// Bytes of the inputs.
    pub bytes_before: u64,
    /// Bytes of the output.
    pub bytes_after: u64,
    /// Batches decoded from the inputs.
    pub batches_read: u64,
    /// Most decoded input rows held at any time (the merge never holds all inputs at once).
    pub max_rows_held: u64,
}

/// An opened input: its stream and footer facts.
struct Input {
    meta: FileMeta,
    rows: u64,
    stream: ParquetRecordBatchStream<StoreReader>,
    kv: Vec<KeyValue>,
}

impl Table {
    /// Hour partitions due for compaction at `now_ns` under `storage.compaction`: the hour
    /// ended `min_age_secs` ago and holds at least `min_files` small files.
    pub fn compaction_candidates(&self, now_ns: i64) -> Vec<i64> {
        let cfg = &self.config().compaction;
        let min_age = i64::try_from(cfg.min_age_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000);
        let mut small: BTreeMap<i64, usize> = BTreeMap::new();
        for f in self.snapshot().files {
            if f.rows.is_none_or(|r| is_small(r, cfg.max_file_rows)) {
                *small.entry(hour_of(f.min_time)).or_default() += 1;
            }
        }
        small
            .into_iter()
            .filter(|&(hour, n)| {
                let end = (hour + 1).saturating_mul(crate::HOUR_NANOS);
                n >= cfg.min_files.max(2) && end.saturating_add(min_age) <= now_ns
            })
            .map(|(hour, _)| hour)
            .collect()
    }

    /// Merges up to [`MAX_MERGE_INPUTS`] small files of hour `hour` into one, swaps it into the
    /// manifest for them, and returns what it did; `None` when fewer than two files qualify or
    /// an input left the manifest meanwhile. The inputs' objects are not deleted: call
    /// [`Table::delete_replaced`] once queries planned on them are done.
    ///
    /// # Errors
    /// Reading an input, writing the output, or an input with another schema.
    pub async fn compact_hour(&self, hour: i64) -> Result<Option<CompactionReport>> {
        let _one = self.compact_lock().lock().await;
        let started = Instant::now();
        let max_rows = self.config().compaction.max_file_rows;
        let files: Vec<FileMeta> = self
            .snapshot()
            .files
            .into_iter()
            .filter(|f| hour_of(f.min_time) == hour)
            .collect();
        let store = self.store();
        let mut inputs = Vec::new();
        let mut learned = Vec::new();
        let mut total = 0_u64;
        for f in files {
            if inputs.len() >= MAX_MERGE_INPUTS {
                break;
            }
            if f.rows.is_some_and(|r| !is_small(r, max_rows)) {
                continue;
            }
            let input = open_input(&store, f).await?;
            learned.push((input.meta.path.clone(), input.rows));
            if !is_small(input.rows, max_rows) || total.saturating_add(input.rows) > max_rows {
                continue;
            }
            total += input.rows;
            inputs.push(input);
        }
        self.set_rows(&learned);
        if inputs.len() < 2 {
            return Ok(None);
        }
        let min_time = inputs.iter().map(|i| i.meta.min_time).min().unwrap_or(0);
        let max_time = inputs.iter().map(|i| i.meta.max_time).max().unwrap_or(0);
        let path = compacted_file_path(self.name(), hour, min_time, max_time);
        let kv = merged_metadata(&inputs);
        let metas: Vec<FileMeta> = inputs.iter().map(|i| i.meta.clone()).collect();
        let streams: Vec<_> = inputs.into_iter().map(|i| i.stream).collect();

        let table = self.clone();
        let out_path = path.clone();
        let handle = Handle::current();
        // Decoding, comparing and encoding are CPU-bound: the whole merge runs on a blocking
        // thread, which drives the object store I/O with `block_on`.
        let merged =
            tokio::task::spawn_blocking(move || merge(&handle, &table, streams, out_path, kv))
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
        let (rows, size, batches_read, max_rows_held) = match merged {
            Ok(r) => r,
            Err(e) => {
                // A multipart upload that failed leaves nothing visible; a completed one must go.
                let _ = store.delete(&path).await;
                return Err(e);
            }
        };
        let output = FileMeta {
            path: path.clone(),
            min_time,
            max_time,
            size,
            rows: Some(rows),
        };
        let input_paths: Vec<Path> = metas.iter().map(|m| m.path.clone()).collect();
        if !self.swap_files(&input_paths, output.clone()) {
            tracing::info!(table = %self.name(), hour, "An input left the manifest during compaction; discarding the output.");
            if let Err(error) = store.delete(&path).await {
                tracing::warn!(table = %self.name(), %path, %error, "Cannot delete discarded compaction output.");
            }
            return Ok(None);
        }
        self.record_compacted(rows, size);
        let bytes_before = metas.iter().map(|m| m.size).sum();
        let name = self.name().to_string();
        metrics::counter!(COMPACTIONS, "table" => name.clone()).increment(1);
        metrics::counter!(COMPACTED_FILES, "table" => name).increment(metas.len() as u64);
        metrics::histogram!(COMPACTION_SECONDS).record(started.elapsed().as_secs_f64());
        tracing::info!(table = %self.name(), hour, files = metas.len(), rows, bytes_before, bytes_after = size, "Compacted hour partition.");
        Ok(Some(CompactionReport {
            inputs: metas,
            output: Some(output),
            rows,
            bytes_before,
            bytes_after: size,
            batches_read,
            max_rows_held,
        }))
    }

    /// Deletes the objects of files that compaction replaced; returns how many went (missing
    /// ones count as deleted). Failures are logged: the next startup drops and deletes them.
    pub async fn delete_replaced(&self, paths: &[Path]) -> usize {
        let store = self.store();
        let mut deleted = 0;
        for p in paths {
            match store.delete(p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(error) => {
                    tracing::warn!(table = %self.name(), path = %p, %error, "Cannot delete a compacted file.")
                }
            }
        }
        if deleted > 0 {
            metrics::counter!(crate::metrics::FILES_DELETED, "table" => self.name().to_string(), "reason" => "compacted")
                .increment(deleted as u64);
        }
        deleted
    }
}

/// Files of at least half `max_file_rows` are left as they are.
fn is_small(rows: u64, max_file_rows: u64) -> bool {
    rows < max_file_rows / 2
}

/// Opens one input: reads its footer and prepares a stream of small batches.
async fn open_input(store: &Arc<dyn ObjectStore>, meta: FileMeta) -> Result<Input> {
    let reader = StoreReader {
        store: Arc::clone(store),
        path: meta.path.clone(),
        size: meta.size,
    };
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await?
        .with_batch_size(READ_BATCH_ROWS);
    let file = builder.metadata().file_metadata();
    let rows = u64::try_from(file.num_rows()).unwrap_or(0);
    let kv = file.key_value_metadata().cloned().unwrap_or_default();
    Ok(Input {
        meta,
        rows,
        stream: builder.build()?,
        kv,
    })
}

/// Key-value metadata of the output (the schema version comes with the writer settings).
fn merged_metadata(inputs: &[Input]) -> Vec<KeyValue> {
    let value = |i: &Input, key: &str| {
        i.kv.iter()
            .find(|k| k.key == key)
            .and_then(|k| k.value.clone())
    };
    let mut out = Vec::new();
    let ack = inputs
        .iter()
        .filter_map(|i| value(i, ACK_MAX_KEY)?.parse::<u64>().ok())
        .max();
    if let Some(ack) = ack {
        out.push(KeyValue::new(ACK_MAX_KEY.to_string(), ack.to_string()));
    }
    let mut positions: BTreeMap<u32, Stored> = BTreeMap::new();
    for i in inputs {
        for (p, st) in value(i, POSITIONS_KEY)
            .map(|v| parse_positions(&v))
            .unwrap_or_default()
        {
            let e = positions.entry(p).or_insert(st);
            e.next = e.next.max(st.next);
            e.max_time = e.max_time.max(st.max_time);
        }
    }
    if !positions.is_empty() {
        let v = positions
            .iter()
            .map(|(p, st)| format!("{p}:{}:{}", st.next, st.max_time))
            .collect::<Vec<_>>()
            .join(",");
        out.push(KeyValue::new(POSITIONS_KEY.to_string(), v));
    }
    let names = inputs
        .iter()
        .filter_map(|i| i.meta.path.filename().map(str::to_string))
        .collect::<Vec<_>>()
        .join(",");
    out.push(KeyValue::new(REPLACES_KEY.to_string(), names));
    out
}

/// One input's position in the merge: its current batch and that batch's sort-key rows.
struct Cursor {
    stream: ParquetRecordBatchStream<StoreReader>,
    batch: RecordBatch,
    rows: Rows,
    pos: usize,
    /// Index of `batch` in the merge's pending sources.
    source: usize,
}

/// Streams the inputs' rows in sort-key order into `path`. Returns (rows, bytes, batches read,
/// most rows held).
fn merge(
    handle: &Handle,
    table: &Table,
    streams: Vec<ParquetRecordBatchStream<StoreReader>>,
    path: Path,
    kv: Vec<KeyValue>,
) -> Result<(u64, u64, u64, u64)> {
    let schema = table.schema();
    let keys = table.encoder().sort_keys().to_vec();
    let options = SortOptions {
        descending: false,
        nulls_first: false,
    };
    let converter = RowConverter::new(
        keys.iter()
            .map(|&k| SortField::new_with_options(schema.field(k).data_type().clone(), options))
            .collect(),
    )?;
    let mut merge = Merge {
        handle,
        schema: SchemaRef::clone(&schema),
        keys,
        converter,
        sources: Vec::new(),
        held_rows: 0,
        max_held: 0,
        batches_read: 0,
    };
    let mut cursors: Vec<Cursor> = Vec::with_capacity(streams.len());
    for stream in streams {
        if let Some(c) = merge.open(stream)? {
            cursors.push(c);
        }
    }
    let mut output = Output {
        name: path.to_string(),
        upload: BufWriter::new(table.store(), path),
        file: table
            .encoder()
            .writer(Vec::new(), Some(table.config().compaction.zstd_level))?,
        bytes: 0,
    };
    for k in kv {
        output.file.append_key_value_metadata(k);
    }
    // Min-heap of cursor indices by (current row, input order): ties keep input order.
    let mut heap: Vec<usize> = (0..cursors.len()).collect();
    for i in (0..heap.len() / 2).rev() {
        sift_down(&mut heap, &cursors, i);
    }
    let mut pending: Vec<(usize, usize)> = Vec::with_capacity(OUTPUT_BATCH_ROWS);
    let mut rows = 0_u64;
    while let Some(&top) = heap.first() {
        // Inputs hold each series as a run of rows: take the top cursor's rows while they
        // still sort before the best of the others (the root's smaller child), one compare a
        // row instead of a sift through the heap.
        let runner_up = match heap.len() {
            0 | 1 => None,
            2 => Some(heap[1]),
            _ if before(&cursors, heap[1], heap[2]) => Some(heap[1]),
            _ => Some(heap[2]),
        };
        loop {
            let c = &mut cursors[top];
            pending.push((c.source, c.pos));
            c.pos += 1;
            rows += 1;
            let more = c.pos < c.batch.num_rows()
                && pending.len() < OUTPUT_BATCH_ROWS
                && runner_up.is_none_or(|r| before(&cursors, top, r));
            if !more {
                break;
            }
        }
        let c = &mut cursors[top];
        if c.pos >= c.batch.num_rows() && !merge.advance(c)? {
            let last = heap.len() - 1;
            heap.swap(0, last);
            heap.pop();
        }
        sift_down(&mut heap, &cursors, 0);
        if pending.len() >= OUTPUT_BATCH_ROWS {
            merge.emit(&mut output, &mut pending, &mut cursors, &heap)?;
        }
    }
    merge.emit(&mut output, &mut pending, &mut cursors, &heap)?;
    output.file.finish()?;
    output.upload_written(handle)?;
    handle
        .block_on(output.upload.shutdown())
        .map_err(|e| output.error(e))?;
    Ok((rows, output.bytes, merge.batches_read, merge.max_held))
}

/// The merged file: encoded in memory a row group at a time and uploaded in parts.
struct Output {
    /// The object path, for errors.
    name: String,
    upload: BufWriter,
    file: RowGroupWriter<Vec<u8>>,
    /// Bytes uploaded so far.
    bytes: u64,
}

impl Output {
    /// Hands the finished row groups (and, at the end, the footer) to the upload.
    fn upload_written(&mut self, handle: &Handle) -> Result<()> {
        let bytes = self.file.take_written()?;
        if !bytes.is_empty() {
            handle
                .block_on(self.upload.write_all(&bytes))
                .map_err(|e| self.error(e))?;
            self.bytes += bytes.len() as u64;
        }
        Ok(())
    }

    fn error(&self, source: std::io::Error) -> Error {
        Error::Upload {
            path: self.name.clone(),
            source,
        }
    }
}

/// Merge state shared by the cursors: decoded batches still referenced by pending rows.
struct Merge<'a> {
    handle: &'a Handle,
    schema: SchemaRef,
    keys: Vec<usize>,
    converter: RowConverter,
    sources: Vec<RecordBatch>,
    held_rows: u64,
    max_held: u64,
    batches_read: u64,
}

impl Merge<'_> {
    /// Next non-empty batch of a stream, in the table schema.
    fn next_batch(
        &mut self,
        stream: &mut ParquetRecordBatchStream<StoreReader>,
    ) -> Result<Option<RecordBatch>> {
        while let Some(b) = self.handle.block_on(stream.next()) {
            let b = b?;
            self.batches_read += 1;
            if b.num_rows() == 0 {
                continue;
            }
            return Ok(Some(RecordBatch::try_new(
                SchemaRef::clone(&self.schema),
                b.columns().to_vec(),
            )?));
        }
        Ok(None)
    }

    fn keys_of(&self, batch: &RecordBatch) -> Result<Rows> {
        let cols: Vec<_> = self.keys.iter().map(|&k| batch.column(k).clone()).collect();
        Ok(self.converter.convert_columns(&cols)?)
    }

    fn hold(&mut self, batch: RecordBatch) -> usize {
        self.held_rows += batch.num_rows() as u64;
        self.max_held = self.max_held.max(self.held_rows);
        self.sources.push(batch);
        self.sources.len() - 1
    }

    fn open(
        &mut self,
        mut stream: ParquetRecordBatchStream<StoreReader>,
    ) -> Result<Option<Cursor>> {
        let Some(batch) = self.next_batch(&mut stream)? else {
            return Ok(None);
        };
        let rows = self.keys_of(&batch)?;
        let source = self.hold(batch.clone());
        Ok(Some(Cursor {
            stream,
            batch,
            rows,
            pos: 0,
            source,
        }))
    }

    /// Moves an exhausted cursor to its next batch; `false` at the end of its input.
    fn advance(&mut self, c: &mut Cursor) -> Result<bool> {
        let Some(batch) = self.next_batch(&mut c.stream)? else {
            return Ok(false);
        };
        c.rows = self.keys_of(&batch)?;
        c.source = self.hold(batch.clone());
        c.batch = batch;
        c.pos = 0;
        Ok(true)
    }

    /// Writes the pending rows and keeps only the batches live cursors still point into.
    fn emit(
        &mut self,
        output: &mut Output,
        pending: &mut Vec<(usize, usize)>,
        cursors: &mut [Cursor],
        live: &[usize],
    ) -> Result<()> {
        let schema = self.sources.first().map(RecordBatch::schema);
        if let (Some(schema), false) = (schema, pending.is_empty()) {
            // The flush's gather: maps copied a row's entries at a time, and columns that
            // are all null or constant (most of them for one kind of data) not gathered.
            let out = take_rows_from(&schema, &self.sources, pending)?;
            output.file.write(&out)?;
            output.upload_written(self.handle)?;
            pending.clear();
        }
        self.sources.clear();
        self.held_rows = 0;
        for &i in live {
            let b = cursors[i].batch.clone();
            cursors[i].source = self.hold(b);
        }
        Ok(())
    }
}

/// Whether cursor `a` sorts before cursor `b` (ties: lower input index first).
fn before(cursors: &[Cursor], a: usize, b: usize) -> bool {
    let (ca, cb) = (&cursors[a], &cursors[b]);
    match ca.rows.row(ca.pos).cmp(&cb.rows.row(cb.pos)) {
        std::cmp::Ordering::Equal => a < b,
        o => o == std::cmp::Ordering::Less,
    }
}

fn sift_down(heap: &mut [usize], cursors: &[Cursor], mut i: usize) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut m = i;
        if l < heap.len() && before(cursors, heap[l], heap[m]) {
            m = l;
        }
        if r < heap.len() && before(cursors, heap[r], heap[m]) {
            m = r;
        }
        if m == i {
            return;
        }
        heap.swap(i, m);
        i = m;
    }
}
