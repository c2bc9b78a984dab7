//! Idempotent WAL replay: drop replayed rows that a flushed file already holds.
//!
//! A sink receives deliveries in edge-position order and flushes all rows buffered for an hour
//! into one file, recording the highest position it holds ([`crate::ACK_MAX_KEY`]). So every
//! row of hour `h` from a delivery at or below that position is already in a file, and a
//! replayed record's rows for hour `h` are kept only if its position is above the highest one
//! recorded for `h`. A crash between writing files and releasing the WAL therefore never stores
//! a row twice.
//!
//! With several sinks, each table has flushed up to its own position, so deduplication happens
//! per sink: [`dedup_receiver`] wraps a sink's edge and drops, from replayed deliveries only,
//! the rows its table already holds. This relies on the processors between the WAL and the
//! sink keeping each row's time and each delivery's position (true of filter, attributes and
//! sample).

use std::collections::BTreeMap;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use phoenix_model::edge::{AckToken, Delivery, EdgeError, EdgeReceiver};

use crate::encode::ACK_MAX_KEY;
use crate::layout::hour_of;
use crate::{Error, Result, Table};

/// Bytes read from a file's end on the first try; footers are usually smaller.
const TAIL_GUESS: u64 = 64 * 1024;

/// Wraps the edge of the sink writing `table` so that deliveries at replayed positions (up to
/// the last of `records`) lose the rows `table` already holds; later deliveries pass as they
/// are. With nothing to replay, `rx` is returned unwrapped.
///
/// # Errors
/// A file footer that cannot be read, or a record that does not fit the table.
pub async fn dedup_receiver(
    table: &Table,
    records: &[(u64, RecordBatch)],
    rx: Box<dyn EdgeReceiver>,
) -> Result<Box<dyn EdgeReceiver>> {
    let Some(until) = records.iter().map(|(pos, _)| *pos).max() else {
        return Ok(rx);
    };
    let mut hours = Vec::new();
    for (_, batch) in records {
        hours.extend(table.split_by_hour(batch)?.into_iter().map(|(h, _)| h));
    }
    hours.sort_unstable();
    hours.dedup();
    let stored = flushed_positions(table, &hours).await?;
    if stored.is_empty() {
        return Ok(rx);
    }
    Ok(Box::new(DedupReceiver {
        inner: rx,
        table: table.clone(),
        stored,
        until,
        dropped_rows: 0,
    }))
}

/// A sink edge that drops replayed rows its table already holds.
struct DedupReceiver {
    inner: Box<dyn EdgeReceiver>,
    table: Table,
    /// Highest position stored per hour.
    stored: BTreeMap<i64, u64>,
    /// Last replayed position; deliveries after it pass untouched.
    until: u64,
    dropped_rows: usize,
}

impl DedupReceiver {
    fn dedup(&mut self, batch: RecordBatch, pos: u64) -> RecordBatch {
        let parts = match self.table.split_by_hour(&batch) {
            Ok(parts) => parts,
            // The sink reports a batch the table cannot take; leave it to do so.
            Err(_) => return batch,
        };
        let mut keep = Vec::with_capacity(parts.len());
        for (hour, part) in parts {
            if self.stored.get(&hour).is_some_and(|&max| pos <= max) {
                self.dropped_rows += part.num_rows();
            } else {
                keep.push(part);
            }
        }
        concat_batches(&batch.schema(), &keep).unwrap_or(batch)
    }
}

#[async_trait]
impl EdgeReceiver for DedupReceiver {
    async fn recv(&mut self) -> Option<Delivery> {
        let d = self.inner.recv().await?;
        if d.ack.0 > self.until {
            if !self.stored.is_empty() {
                tracing::info!(table = %self.table.name(), rows = self.dropped_rows, "Replay done; rows already stored were skipped.");
                self.stored.clear();
            }
            return Some(d);
        }
        if self.stored.is_empty() {
            return Some(d);
        }
        let batch = self.dedup(d.batch, d.ack.0);
        Some(Delivery { batch, ack: d.ack })
    }

    async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError> {
        self.inner.commit(upto).await
    }
}

/// Highest recorded edge position per hour, over the files of the given hours.
async fn flushed_positions(table: &Table, hours: &[i64]) -> Result<BTreeMap<i64, u64>> {
    let mut out = BTreeMap::new();
    let store = table.store();
    for file in table.snapshot().files {
        let hour = hour_of(file.min_time);
        if hours.binary_search(&hour).is_err() {
            continue;
        }
        let meta = read_footer(store.as_ref(), &file.path, file.size).await?;
        let pos = meta
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == ACK_MAX_KEY))
            .and_then(|k| k.value.as_deref())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(pos) = pos {
            let e = out.entry(hour).or_insert(pos);
            *e = (*e).max(pos);
        }
    }
    Ok(out)
}

/// Reads a Parquet footer with at most two range requests.
pub(crate) async fn read_footer(
    store: &dyn ObjectStore,
    path: &Path,
    size: u64,
) -> Result<ParquetMetaData> {
    let mut want = TAIL_GUESS.min(size);
    loop {
        let tail = store
            .get_range(path, size - want..size)
            .await
            .map_err(|e| Error::store("get_range", path, e))?;
        let mut reader = ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Skip);
        match reader.try_parse_sized(&tail, size) {
            Ok(()) => return Ok(reader.finish()?),
            Err(ParquetError::NeedMoreData(needed))
                if (needed as u64) > want && (needed as u64) <= size =>
            {
                want = needed as u64;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
