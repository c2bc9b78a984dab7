//! Series affinity: which partition each row goes to, and splitting a batch accordingly.
//!
//! A row's partition is `series_id % partitions`. `series_id` is already a well-mixed hash of
//! the series identity, so this spreads series evenly and every datapoint of a series goes to
//! one partition, hence one consumer: stateful processors see all of a series.

use arrow::array::{Array, UInt32Array, UInt64Array};
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use phoenix_model::schema::col;

use crate::{Error, Result};

/// The partition of a series among `partitions`.
pub fn partition_of(series_id: u64, partitions: u32) -> i32 {
    // Fits in i32: Kafka partition counts are i32 and `partitions` came from one.
    (series_id % u64::from(partitions.max(1))) as i32
}

/// Splits `batch` into one batch per partition present, in partition order; rows keep their
/// relative order within a partition.
///
/// One pass counts rows per partition, one builds a gather index grouping rows by partition
/// (a counting sort), then a single `take` reorders every column and the parts are zero-copy
/// slices of it.
///
/// # Errors
/// [`Error::Payload`] when the batch has no non-null `series_id` column.
pub fn split_by_partition(batch: &RecordBatch, partitions: u32) -> Result<Vec<(i32, RecordBatch)>> {
    let partitions = partitions.max(1);
    let ids = batch
        .column_by_name(col::SERIES_ID)
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .ok_or_else(|| Error::Payload("batch has no UInt64 series_id column".into()))?;
    if ids.null_count() > 0 {
        return Err(Error::Payload("series_id has nulls".into()));
    }
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let values = ids.values();
    let first = partition_of(values[0], partitions);
    if values
        .iter()
        .all(|&id| partition_of(id, partitions) == first)
    {
        return Ok(vec![(first, batch.clone())]);
    }
    let mut counts = vec![0u32; partitions as usize];
    for &id in values.iter() {
        counts[partition_of(id, partitions) as usize] += 1;
    }
    let mut starts = Vec::with_capacity(counts.len());
    let mut acc = 0u32;
    for &c in &counts {
        starts.push(acc);
        acc += c;
    }
    let mut cursor = starts.clone();
    let mut index = vec![0u32; values.len()];
    for (row, &id) in values.iter().enumerate() {
        let p = partition_of(id, partitions) as usize;
        index[cursor[p] as usize] = row as u32;
        cursor[p] += 1;
    }
    let grouped = take_record_batch(batch, &UInt32Array::from(index))
        .map_err(|e| Error::Payload(format!("reordering rows by partition: {e}")))?;
    Ok(counts
        .iter()
        .zip(starts)
        .enumerate()
        .filter(|(_, (&count, _))| count > 0)
        .map(|(p, (&count, start))| (p as i32, grouped.slice(start as usize, count as usize)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{metrics_batch, rows_of};

    /// Every row lands in its series' partition, order within a partition is kept, none is lost.
    #[test]
    fn splits_by_series_keeping_order() {
        let rows: Vec<(u64, i64)> = (0..100).map(|i| (i % 13, i as i64)).collect();
        let batch = metrics_batch(&rows);
        let parts = split_by_partition(&batch, 4).expect("split");
        let mut total = 0;
        let mut seen = Vec::new();
        for (p, part) in &parts {
            seen.push(*p);
            let got = rows_of(part);
            total += got.len();
            assert!(got.iter().all(|(id, _)| partition_of(*id, 4) == *p));
            let want: Vec<(u64, i64)> = rows
                .iter()
                .copied()
                .filter(|(id, _)| partition_of(*id, 4) == *p)
                .collect();
            assert_eq!(got, want);
        }
        assert_eq!(total, rows.len());
        assert_eq!(seen, vec![0, 1, 2, 3]);
    }

    /// A batch of one partition is passed through whole; an empty batch yields nothing.
    #[test]
    fn single_partition_and_empty() {
        let batch = metrics_batch(&[(8, 1), (4, 2), (0, 3)]);
        let parts = split_by_partition(&batch, 4).expect("split");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].0, 0);
        assert_eq!(parts[0].1.num_rows(), 3);
        assert!(split_by_partition(&metrics_batch(&[]), 4)
            .expect("split")
            .is_empty());
    }
}
