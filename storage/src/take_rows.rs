//! Reorders a batch's rows: Arrow's `take`, with a faster path for map columns.
//!
//! Arrow's `take` copies a list or map column one row at a time through `MutableArrayData`
//! (a dynamic call per row and child column); in the flush sort that was two thirds of the
//! server's `memmove` time. Here the entries of every taken row are gathered with one `take`
//! per child column instead.
//!
//! A column whose rows are all equal (all null, or one value throughout: `kind`, `unit`,
//! `scope`, the histogram columns of a gauge-only flush) reads the same in any order, so it is
//! kept as it is instead of copied.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBufferBuilder, MapArray, RecordBatch, StringArray,
    StructArray, UInt32Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::take;
use arrow::datatypes::DataType;
use arrow::datatypes::{Float64Type, Int32Type, TimestampNanosecondType, UInt32Type, UInt64Type};

use crate::Result;

/// The rows of `batch` at `indices` (each in bounds), in that order.
pub(crate) fn take_rows(batch: &RecordBatch, indices: &UInt32Array) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| take_column(c, indices))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

fn take_column(column: &ArrayRef, indices: &UInt32Array) -> Result<ArrayRef> {
    if indices.len() <= column.len() && indices.null_count() == 0 && all_equal(column) {
        return Ok(column.slice(0, indices.len()));
    }
    match column.as_map_opt() {
        Some(map) if map.null_count() == 0 && indices.null_count() == 0 => {
            Ok(Arc::new(take_map(map, indices)?))
        }
        _ => Ok(take(column.as_ref(), indices, None)?),
    }
}

/// Whether every row of `column` is null, or every row holds the same value (checked for the
/// string and primitive types of the metrics schema; other types answer `false`). Stops at
/// the first row that differs, so a varying column costs a row or two.
fn all_equal(column: &ArrayRef) -> bool {
    if column.null_count() == column.len() {
        return true;
    }
    if column.null_count() > 0 {
        return false;
    }
    fn same<T: PartialEq>(mut values: impl Iterator<Item = T>) -> bool {
        match values.next() {
            Some(first) => values.all(|v| v == first),
            None => true,
        }
    }
    if let Some(a) = column.as_string_opt::<i32>() {
        return same_strings(a);
    }
    if let Some(a) = column.as_boolean_opt() {
        return same(a.iter());
    }
    if let Some(a) = column.as_primitive_opt::<Float64Type>() {
        // Bitwise, so NaN equals NaN and -0.0 differs from 0.0: the copy must read the same.
        return same(a.values().iter().map(|v| v.to_bits()));
    }
    if let Some(a) = column.as_primitive_opt::<TimestampNanosecondType>() {
        return same(a.values().iter());
    }
    if let Some(a) = column.as_primitive_opt::<UInt64Type>() {
        return same(a.values().iter());
    }
    if let Some(a) = column.as_primitive_opt::<UInt32Type>() {
        return same(a.values().iter());
    }
    if let Some(a) = column.as_primitive_opt::<Int32Type>() {
        return same(a.values().iter());
    }
    false
}

/// Whether every value of a non-null string array is the same, without comparing row by row:
/// all values have one length `len` and the bytes repeat with period `len`.
pub(crate) fn same_strings(a: &StringArray) -> bool {
    let offsets = a.value_offsets();
    let (Some(&first), Some(&second)) = (offsets.first(), offsets.get(1)) else {
        return true;
    };
    let len = second - first;
    let equal_lengths = offsets.windows(2).all(|w| w[1] - w[0] == len);
    if !equal_lengths {
        return false;
    }
    let Some(&last) = offsets.last() else {
        return true;
    };
    let bytes = &a.value_data()[first as usize..last as usize];
    let len = len as usize;
    // One compare of the whole buffer with itself shifted by one value.
    bytes.len() <= len || bytes[len..] == bytes[..bytes.len() - len]
}

/// `take` for a map column without null rows.
///
/// A taken row's entries are one contiguous range of the entries, so string keys and values
/// are copied a row's range at a time (one copy for all of a row's entries); other children
/// take the rows' entry indices.
fn take_map(map: &MapArray, indices: &UInt32Array) -> Result<MapArray> {
    let DataType::Map(field, ordered) = map.data_type() else {
        return Ok(take(map, indices, None)?.as_map().clone());
    };
    let offsets = map.value_offsets();
    let mut new_offsets: Vec<i32> = Vec::with_capacity(indices.len() + 1);
    new_offsets.push(0);
    let mut entries_len = 0_i32;
    for &i in indices.values() {
        // At most the input's entry count, whose offsets are i32 already.
        entries_len += offsets[i as usize + 1] - offsets[i as usize];
        new_offsets.push(entries_len);
    }
    let entries = map.entries();
    let mut child_indices: Option<UInt32Array> = None;
    let columns = entries
        .columns()
        .iter()
        .map(|column| -> Result<ArrayRef> {
            if let Some(strings) = column.as_string_opt::<i32>() {
                if let Some(taken) =
                    take_string_ranges(strings, offsets, indices, entries_len as usize)?
                {
                    return Ok(Arc::new(taken));
                }
            }
            let child = child_indices
                .get_or_insert_with(|| entry_indices(offsets, indices, entries_len as usize));
            Ok(take(column.as_ref(), child, None)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let nulls = match entries.nulls() {
        Some(_) => {
            let child = child_indices
                .get_or_insert_with(|| entry_indices(offsets, indices, entries_len as usize));
            take(entries, child, None)?.nulls().cloned()
        }
        None => None,
    };
    let entries = StructArray::try_new(entries.fields().clone(), columns, nulls)?;
    Ok(MapArray::try_new(
        Arc::clone(field),
        OffsetBuffer::new(new_offsets.into()),
        entries,
        None,
        *ordered,
    )?)
}

/// Indices of the entries of the rows at `indices`, in order.
fn entry_indices(offsets: &[i32], indices: &UInt32Array, len: usize) -> UInt32Array {
    let mut child: Vec<u32> = Vec::with_capacity(len);
    for &i in indices.values() {
        child.extend(offsets[i as usize] as u32..offsets[i as usize + 1] as u32);
    }
    UInt32Array::from(child)
}

/// The strings in the entry ranges `offsets[i]..offsets[i + 1]` for each `i` of `indices`,
/// concatenated (`entries` strings); `None` when the result would not fit i32 offsets.
fn take_string_ranges(
    strings: &StringArray,
    offsets: &[i32],
    indices: &UInt32Array,
    entries: usize,
) -> Result<Option<StringArray>> {
    let value_offsets = strings.value_offsets();
    let range = |i: u32| {
        (
            offsets[i as usize] as usize,
            offsets[i as usize + 1] as usize,
        )
    };
    let mut bytes = 0_usize;
    for &i in indices.values() {
        let (start, end) = range(i);
        bytes += (value_offsets[end] - value_offsets[start]) as usize;
    }
    if i32::try_from(bytes).is_err() {
        return Ok(None);
    }
    let data = strings.value_data();
    let mut values: Vec<u8> = Vec::with_capacity(bytes);
    let mut new_offsets: Vec<i32> = Vec::with_capacity(entries + 1);
    new_offsets.push(0);
    for &i in indices.values() {
        let (start, end) = range(i);
        let (from, to) = (value_offsets[start], value_offsets[end]);
        // Fits: the total is below i32::MAX.
        let shift = values.len() as i32 - from;
        for &o in &value_offsets[start + 1..=end] {
            new_offsets.push(o + shift);
        }
        values.extend_from_slice(&data[from as usize..to as usize]);
    }
    let nulls = match strings.nulls() {
        Some(nulls) => {
            let mut taken = BooleanBufferBuilder::new(new_offsets.len() - 1);
            for &i in indices.values() {
                let (start, end) = range(i);
                taken.append_buffer(&nulls.inner().slice(start, end - start));
            }
            Some(NullBuffer::new(taken.finish()))
        }
        None => None,
    };
    Ok(Some(StringArray::try_new(
        OffsetBuffer::new(new_offsets.into()),
        values.into(),
        nulls,
    )?))
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

    /// Maps whose values hold nulls, including empty maps, taken from a sliced map column with
    /// repeated indices, equal Arrow's `take`.
    #[test]
    fn map_with_null_values_equals_arrow_take() {
        use arrow::array::{MapBuilder, StringBuilder};
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for row in 0..30_u32 {
            for k in 0..(row % 4) {
                b.keys().append_value(format!("k{k}"));
                if (row + k) % 3 == 0 {
                    b.values().append_null();
                } else {
                    b.values().append_value(format!("v{row}.{k}"));
                }
            }
            b.append(true).expect("map row");
        }
        let map: ArrayRef = Arc::new(b.finish());
        let map = map.slice(2, 25);
        let idx = UInt32Array::from(vec![24, 0, 3, 3, 7, 11, 1, 2, 5]);
        let ours = take_column(&map, &idx).expect("take_column");
        let arrows = take(map.as_ref(), &idx, None).expect("take");
        assert_eq!(ours.to_data(), arrows.to_data());
        ours.to_data().validate_full().expect("valid");
    }

    /// Constant and all-null columns are kept as they are (no copy), and the result still
    /// equals Arrow's `take`, also when a column differs in its last row only or holds 0.0
    /// and -0.0 (equal as numbers, not as bits).
    #[test]
    fn constant_columns_are_kept() {
        let mut points: Vec<TestPoint> = (0..20_i64)
            .map(|i| TestPoint::gauge("m", "svc", i, if i % 2 == 0 { 0.0 } else { -0.0 }))
            .collect();
        points.push(TestPoint::gauge("m", "other", 20, 0.0));
        let batch = metrics_batch(&points);
        let idx = UInt32Array::from_iter_values((0..21_u32).rev());
        let ours = take_rows(&batch, &idx).expect("take_rows");
        assert_eq!(ours, take_record_batch(&batch, &idx).expect("take"));
        let kept = |name: &str| {
            let (a, b) = (batch.column_by_name(name), ours.column_by_name(name));
            let (a, b) = (a.expect("in"), b.expect("out"));
            a.to_data().buffers().first().map(|x| x.as_ptr())
                == b.to_data().buffers().first().map(|x| x.as_ptr())
        };
        assert!(kept("metric"), "a constant column is not copied");
        assert!(
            !kept("service"),
            "a column differing in one row is reordered"
        );
        assert!(!kept("value"), "0.0 and -0.0 differ");
        for name in ["count", "bounds"] {
            assert_eq!(batch.column_by_name(name).expect(name).null_count(), 21);
        }
    }
}
