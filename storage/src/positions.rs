//! Idempotent consumption of partitioned sources (Kafka): every file records, per source
//! partition, how far into that partition its rows go, and a new owner of a partition skips
//! what a file already holds.
//!
//! A table fed from partitions gets a [`PositionSplit`] that turns a delivery's edge position
//! into `(partition, next offset)`. Each file then carries [`POSITIONS_KEY`]: for every
//! partition with rows in it, the highest next offset and the newest `time` of those rows.
//! Deliveries of one partition reach a sink in offset order and a flush writes every row
//! buffered for an hour, so every row of hour `h` from partition `p` below the recorded offset
//! is in that file or an earlier one of hour `h`. [`position_dedup`] wraps the sink edge of one
//! partition's graph: it looks up, once per hour, what the table's files (any node's: it lists
//! the object store) hold for that partition and drops rows already stored. For windowed
//! tables (rows emitted by a rollup, in window order) it also drops rows whose window starts
//! at or before the newest stored one, since a successor may close a window later than the
//! node that stored it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use arrow::array::{AsArray, BooleanArray};
use arrow::compute::kernels::cmp::gt;
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::TimestampNanosecondType;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use futures::TryStreamExt;
use object_store::path::Path;
use phoenix_model::edge::{AckToken, Delivery, EdgeError, EdgeReceiver};

use crate::layout::partition_prefix;
use crate::replay::read_footer;
use crate::table::PositionSplit;
use crate::{Error, Result, Table};

/// Key-value metadata key: per source partition, `partition:next_offset:max_time_ns`, comma
/// separated, for the rows of the file that came from it.
pub const POSITIONS_KEY: &str = "phoenix.positions";

/// Attempts at reading what is stored before a delivery passes unfiltered.
const LOOKUP_ATTEMPTS: u32 = 5;

/// How far one partition's rows in one file (or hour) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Highest next offset (position) of the rows.
    pub next: u64,
    /// Newest `time` of the rows, in ns.
    pub max_time: i64,
}

/// The [`POSITIONS_KEY`] value for the given chunks `(position, rows)`.
pub(crate) fn summarize<'a>(
    split: PositionSplit,
    chunks: impl Iterator<Item = (Option<u64>, &'a RecordBatch)>,
    time_col: usize,
) -> String {
    let mut per: BTreeMap<u32, Stored> = BTreeMap::new();
    for (ack, batch) in chunks {
        let Some((source, next)) = ack.and_then(split) else {
            continue;
        };
        let times = batch
            .column(time_col)
            .as_primitive::<TimestampNanosecondType>();
        let max_time = arrow::compute::max(times).unwrap_or(i64::MIN);
        let e = per.entry(source).or_insert(Stored {
            next,
            max_time: i64::MIN,
        });
        e.next = e.next.max(next);
        e.max_time = e.max_time.max(max_time);
    }
    per.iter()
        .map(|(s, st)| format!("{s}:{}:{}", st.next, st.max_time))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a [`POSITIONS_KEY`] value; malformed entries are skipped.
pub fn parse_positions(value: &str) -> BTreeMap<u32, Stored> {
    value
        .split(',')
        .filter_map(|entry| {
            let mut it = entry.split(':');
            let source = it.next()?.parse().ok()?;
            let next = it.next()?.parse().ok()?;
            let max_time = it.next()?.parse().ok()?;
            Some((source, Stored { next, max_time }))
        })
        .collect()
}

/// What the files of `table` in hour `hour` hold from `source`, over every file in the object
/// store (written by any node), not only those this process knows.
///
/// # Errors
/// A failed listing or an unreadable footer.
pub async fn stored_in_hour(table: &Table, hour: i64, source: u32) -> Result<Option<Stored>> {
    let store = table.store();
    let prefix = Path::from(partition_prefix(table.name(), hour));
    let objects: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::store("list", &prefix, e))?;
    let mut out: Option<Stored> = None;
    for meta in objects {
        if !meta.location.as_ref().ends_with(".parquet") {
            continue;
        }
        let positions = match table.cached_positions(&meta.location) {
            Some(p) => p,
            None => {
                let footer = read_footer(store.as_ref(), &meta.location, meta.size).await?;
                let parsed = footer
                    .file_metadata()
                    .key_value_metadata()
                    .and_then(|kv| kv.iter().find(|k| k.key == POSITIONS_KEY))
                    .and_then(|k| k.value.as_deref())
                    .map(parse_positions)
                    .unwrap_or_default();
                table.cache_positions(meta.location.clone(), parsed)
            }
        };
        if let Some(st) = positions.get(&source) {
            out = Some(match out {
                None => *st,
                Some(o) => Stored {
                    next: o.next.max(st.next),
                    max_time: o.max_time.max(st.max_time),
                },
            });
        }
    }
    Ok(out)
}

/// Wraps the edge of the sink writing `table` for the graph of partition `source`: rows the
/// table's files already hold from that partition are dropped (see the module docs).
/// `windowed`: the table is fed by a rollup, so rows of windows up to the newest stored one
/// are dropped too. Deliveries keep their positions, so commits flow as before.
pub fn position_dedup(
    table: Table,
    rx: Box<dyn EdgeReceiver>,
    source: u32,
    windowed: bool,
) -> Box<dyn EdgeReceiver> {
    let Some(split) = table.position_split() else {
        return rx;
    };
    Box::new(PositionDedup {
        inner: rx,
        table,
        split,
        source,
        windowed,
        stored: HashMap::new(),
        dropped_rows: 0,
    })
}

/// See [`position_dedup`].
struct PositionDedup {
    inner: Box<dyn EdgeReceiver>,
    table: Table,
    split: PositionSplit,
    source: u32,
    windowed: bool,
    /// What the table held from `source` per hour, looked up once (this graph's lifetime is
    /// one ownership of the partition: only this graph adds files for it meanwhile).
    stored: HashMap<i64, Option<Stored>>,
    dropped_rows: u64,
}

impl PositionDedup {
    async fn stored(&mut self, hour: i64) -> Option<Stored> {
        if let Some(s) = self.stored.get(&hour) {
            return *s;
        }
        let mut backoff = Duration::from_millis(200);
        for attempt in 1..=LOOKUP_ATTEMPTS {
            match stored_in_hour(&self.table, hour, self.source).await {
                Ok(s) => {
                    tracing::debug!(table = %self.table.name(), partition = self.source, hour, stored = ?s, "Looked up stored positions.");
                    self.stored.insert(hour, s);
                    return s;
                }
                Err(error) => {
                    tracing::warn!(table = %self.table.name(), partition = self.source, hour, attempt, %error, "Cannot read stored positions; retrying.");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        // Storing again (at-least-once) beats stalling the partition forever.
        tracing::error!(table = %self.table.name(), partition = self.source, hour, "Stored positions unreadable; rows pass unchecked.");
        self.stored.insert(hour, None);
        None
    }

    async fn filter(&mut self, batch: RecordBatch, next: u64) -> RecordBatch {
        let parts = match self.table.split_by_hour(&batch) {
            Ok(parts) => parts,
            // The sink reports a batch the table cannot take; leave it to do so.
            Err(_) => return batch,
        };
        let time_col = self.table.time_col();
        let mut keep = Vec::with_capacity(parts.len());
        for (hour, part) in parts {
            let Some(st) = self.stored(hour).await else {
                keep.push(part);
                continue;
            };
            if next <= st.next {
                self.dropped_rows += part.num_rows() as u64;
                continue;
            }
            if !self.windowed {
                keep.push(part);
                continue;
            }
            let times = part
                .column(time_col)
                .as_primitive::<TimestampNanosecondType>();
            // Same type as the column (its time zone included), or the kernel refuses.
            let bound =
                arrow::array::PrimitiveArray::<TimestampNanosecondType>::from(vec![st.max_time])
                    .with_timezone_opt(times.timezone());
            let newer: BooleanArray = match gt(times, &arrow::array::Scalar::new(bound)) {
                Ok(m) => m,
                Err(error) => {
                    tracing::warn!(table = %self.table.name(), %error, "Window filter failed; rows pass.");
                    keep.push(part);
                    continue;
                }
            };
            let rows = part.num_rows();
            match filter_record_batch(&part, &newer) {
                Ok(kept) => {
                    self.dropped_rows += (rows - kept.num_rows()) as u64;
                    keep.push(kept);
                }
                Err(_) => keep.push(part),
            }
        }
        concat_batches(&batch.schema(), &keep).unwrap_or(batch)
    }
}

#[async_trait]
impl EdgeReceiver for PositionDedup {
    async fn recv(&mut self) -> Option<Delivery> {
        let d = self.inner.recv().await?;
        let Some((source, next)) = (self.split)(d.ack.0) else {
            return Some(d);
        };
        if source != self.source || d.batch.num_rows() == 0 {
            return Some(d);
        }
        let before = self.dropped_rows;
        let batch = self.filter(d.batch, next).await;
        if self.dropped_rows > before {
            metrics::counter!(crate::metrics::ROWS_SKIPPED, "table" => self.table.name().to_string())
                .increment(self.dropped_rows - before);
            tracing::info!(table = %self.table.name(), partition = source, position = next, skipped = self.dropped_rows - before, "Skipped rows a file already holds.");
        }
        Some(Delivery { batch, ack: d.ack })
    }

    async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError> {
        self.inner.commit(upto).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metadata value round-trips and malformed entries are ignored.
    #[test]
    fn positions_round_trip() {
        let parsed = parse_positions("3:17:100,bad,5:2:-4");
        assert_eq!(
            parsed.get(&3),
            Some(&Stored {
                next: 17,
                max_time: 100
            })
        );
        assert_eq!(
            parsed.get(&5),
            Some(&Stored {
                next: 2,
                max_time: -4
            })
        );
        assert_eq!(parsed.len(), 2);
    }
}
