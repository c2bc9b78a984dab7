//! Reorders a batch's rows: Arrow's `take`, with a faster path for map columns.
//!
//! Arrow's `take` copies a list or map column one row at a time through `MutableArrayData`
//! (a dynamic call per row and child column); in the flush sort that was two thirds of the
//! server's `memmove` time. Here the entries of every taken row are gathered with one `take`
//! per child column instead.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, MapArray, RecordBatch, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::compute::take;
use arrow::datatypes::DataType;

use crate::Result;

/// The rows of `batch` at `indices`, in that order.
pub(crate) fn take_rows(batch: &RecordBatch, indices: &UInt32Array) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| take_column(c, indices))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

fn take_column(column: &ArrayRef, indices: &UInt32Array) -> Result<ArrayRef> {
    match column.as_map_opt() {
        Some(map) if map.null_count() == 0 && indices.null_count() == 0 => {
            Ok(Arc::new(take_map(map, indices)?))
        }
        _ => Ok(take(column.as_ref(), indices, None)?),
    }
}

/// `take` for a map column without null rows.
fn take_map(map: &MapArray, indices: &UInt32Array) -> Result<MapArray> {
    let DataType::Map(field, ordered) = map.data_type() else {
        return Ok(take(map, indices, None)?.as_map().clone());
    };
    let offsets = map.value_offsets();
    let mut child: Vec<u32> = Vec::with_capacity(map.entries().len());
    let mut new_offsets: Vec<i32> = Vec::with_capacity(indices.len() + 1);
    new_offsets.push(0);
    for &i in indices.values() {
        let (start, end) = (offsets[i as usize], offsets[i as usize + 1]);
        child.extend(start as u32..end as u32);
        // At most the input's entry count, whose offsets are i32 already.
        new_offsets.push(child.len() as i32);
    }
    let entries = take(map.entries(), &UInt32Array::from(child), None)?;
    Ok(MapArray::try_new(
        Arc::clone(field),
        OffsetBuffer::new(new_offsets.into()),
        entries.as_struct().clone(),
        None,
        *ordered,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{metrics_batch, TestPoint};
    use arrow::compute::take_record_batch;

    /// The map fast path gives exactly Arrow's `take`, with empty maps, null map values,
    /// repeated and reversed indices, on a sliced input.
    #[test]
    fn equals_arrow_take() {
        let mut points = Vec::new();
        for i in 0..50_u32 {
            let mut p = TestPoint::gauge("m", "svc", i64::from(i), f64::from(i));
            for k in 0..(i % 4) {
                p = p.attr(&format!("k{k}"), &format!("v{}", i * k));
            }
            points.push(p);
        }
        let batch = metrics_batch(&points).slice(3, 40);
        let idx = UInt32Array::from(vec![39, 0, 5, 5, 17, 2, 38, 1, 0]);
        let ours = take_rows(&batch, &idx).expect("take_rows");
        let arrows = take_record_batch(&batch, &idx).expect("take");
        assert_eq!(ours, arrows);
        ours.columns()
            .iter()
            .for_each(|c| c.to_data().validate_full().expect("valid"));
    }
}
