//! Gathers rows from several batches into one: Arrow's `interleave`, with faster paths for map
//! and boolean columns.
//!
//! The flush sort reads the buffered batches directly, so each column is copied once, in sorted
//! order, instead of once to concatenate and again to reorder.
//!
//! Arrow copies a map column entry by entry (each key and value string on its own); in the
//! flush sort map strings are most of the bytes. Here a taken row's entries, one contiguous
//! range, are copied at once for string children.
//!
//! A column whose rows are all equal (all null, or one value throughout: `kind`, `unit`,
//! `scope`, the histogram columns of a gauge-only flush) reads the same in any order, so it is
//! reused or concatenated instead of gathered.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, MapArray,
    RecordBatch, StringArray, StructArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer};
use arrow::compute::{concat, interleave};
use arrow::datatypes::{
    DataType, FieldRef, Float64Type, Int32Type, SchemaRef, TimestampNanosecondType, UInt32Type,
    UInt64Type,
};
use arrow::error::ArrowError;

use crate::parallel::{map_tasks, threads_for};
use crate::Result;

/// The rows `order` picks, each a (batch, row) pair in bounds, in that order, as one batch
/// with `schema` (which every batch has).
pub(crate) fn take_rows_from(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    order: &[(usize, usize)],
) -> Result<RecordBatch> {
    Sources::new(schema, batches)?.take(order)
}

/// Batches to take rows from, with the columns that hold one value throughout found once:
/// a flush takes its sorted rows a slice at a time, and that check reads whole columns.
pub(crate) struct Sources<'a> {
    schema: &'a SchemaRef,
    batches: &'a [RecordBatch],
    /// Per column: every row of every batch is null, or all hold the same value.
    constant: Vec<bool>,
    /// Column indices, costliest (most memory: maps, strings) first: columns are gathered
    /// independently, and a large take spreads them over threads in this order.
    by_cost: Vec<usize>,
}

impl<'a> Sources<'a> {
    /// `batches`, each with `schema`.
    pub(crate) fn new(schema: &'a SchemaRef, batches: &'a [RecordBatch]) -> Result<Self> {
        let constant = (0..schema.fields().len())
            .map(|i| {
                let arrays: Vec<&ArrayRef> = batches.iter().map(|b| b.column(i)).collect();
                is_constant(&arrays)
            })
            .collect::<Result<Vec<bool>>>()?;
        let mut costs: Vec<(usize, usize)> = (0..schema.fields().len())
            .map(|i| {
                let bytes = batches
                    .iter()
                    .map(|b| b.column(i).get_array_memory_size())
                    .sum();
                (bytes, i)
            })
            .collect();
        costs.sort_unstable_by_key(|&(bytes, _)| std::cmp::Reverse(bytes));
        Ok(Sources {
            schema,
            batches,
            constant,
            by_cost: costs.into_iter().map(|(_, i)| i).collect(),
        })
    }

    /// The rows `order` picks, each a (batch, row) pair in bounds, in that order.
    pub(crate) fn take(&self, order: &[(usize, usize)]) -> Result<RecordBatch> {
        let (schema, batches) = (self.schema, self.batches);
        if batches.is_empty() || order.is_empty() {
            return Ok(RecordBatch::new_empty(SchemaRef::clone(schema)));
        }
        let taken = map_tasks(self.by_cost.clone(), threads_for(order.len()), |i| {
            let arrays: Vec<&ArrayRef> = batches.iter().map(|b| b.column(i)).collect();
            take_column(&arrays, order, self.constant[i]).map(|a| (i, a))
        })?;
        let mut columns: Vec<Option<ArrayRef>> = vec![None; schema.fields().len()];
        for (i, a) in taken {
            columns[i] = Some(a);
        }
        let columns: Vec<ArrayRef> = columns.into_iter().flatten().collect();
        Ok(RecordBatch::try_new(SchemaRef::clone(schema), columns)?)
    }
}

/// One column's rows at `order` (not empty) from `arrays`, one per batch; `constant` as
/// [`is_constant`] found it.
fn take_column(arrays: &[&ArrayRef], order: &[(usize, usize)], constant: bool) -> Result<ArrayRef> {
    if constant {
        if let Some(column) = constant_rows(arrays, order.len())? {
            return Ok(column);
        }
    }
    let maps: Option<Vec<&MapArray>> = arrays
        .iter()
        .map(|a| {
            a.as_map_opt()
                .filter(|m| m.null_count() == 0 && m.entries().null_count() == 0)
        })
        .collect();
    if let Some(maps) = maps {
        if let DataType::Map(field, ordered) = arrays[0].data_type() {
            return Ok(Arc::new(take_maps(&maps, order, field, *ordered)?));
        }
    }
    let booleans: Option<Vec<&BooleanArray>> = arrays.iter().map(|a| a.as_boolean_opt()).collect();
    if let Some(booleans) = booleans {
        // Arrow's `interleave` copies booleans through `MutableArrayData`, a call per row.
        return Ok(Arc::new(take_booleans(&booleans, order)));
    }
    let arrays: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
    Ok(interleave(&arrays, order)?)
}

/// Whether a column holds one value (or only nulls) in every batch.
fn is_constant(arrays: &[&ArrayRef]) -> Result<bool> {
    let non_empty: Vec<&dyn Array> = arrays
        .iter()
        .filter(|a| !a.is_empty())
        .map(|a| a.as_ref())
        .collect();
    if non_empty.is_empty() || !non_empty.iter().all(|a| all_equal(*a)) {
        return Ok(false);
    }
    // Each batch is constant: so is the whole column when the batches' first rows are equal.
    if non_empty.len() > 1 {
        let firsts: Vec<ArrayRef> = non_empty.iter().map(|a| a.slice(0, 1)).collect();
        let firsts: Vec<&dyn Array> = firsts.iter().map(|a| a.as_ref()).collect();
        return Ok(all_equal(concat(&firsts)?.as_ref()));
    }
    Ok(true)
}

/// `len` rows of a column [`is_constant`] found constant, built without a gather: a slice of
/// a long enough batch, nulls, or the batches concatenated; `None` when there are fewer than
/// `len` rows.
fn constant_rows(arrays: &[&ArrayRef], len: usize) -> Result<Option<ArrayRef>> {
    let non_empty: Vec<&dyn Array> = arrays
        .iter()
        .filter(|a| !a.is_empty())
        .map(|a| a.as_ref())
        .collect();
    let Some(&first) = non_empty.first() else {
        return Ok(None);
    };
    if let Some(a) = non_empty.iter().find(|a| a.len() >= len) {
        return Ok(Some(a.slice(0, len)));
    }
    if first.null_count() == first.len() {
        return Ok(Some(new_null_array(first.data_type(), len)));
    }
    // Only as many batches as `len` rows need: a compaction slice of 8k rows has tens of
    // batches to pick from.
    let mut rows = 0;
    let needed: Vec<&dyn Array> = non_empty
        .iter()
        .take_while(|a| {
            let more = rows < len;
            rows += a.len();
            more
        })
        .copied()
        .collect();
    if rows < len {
        return Ok(None);
    }
    Ok(Some(concat(&needed)?.slice(0, len)))
}

/// Whether every row of `column` is null, or every row holds the same value (checked for the
/// string and primitive types of the metrics schema; other types answer `false`). Stops at
/// the first row that differs, so a varying column costs a row or two.
fn all_equal(column: &dyn Array) -> bool {
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

/// The booleans at `order` from `arrays`.
fn take_booleans(arrays: &[&BooleanArray], order: &[(usize, usize)]) -> BooleanArray {
    let values = BooleanBuffer::collect_bool(order.len(), |i| {
        let (b, row) = order[i];
        arrays[b].values().value(row)
    });
    let nulls = arrays.iter().any(|a| a.null_count() > 0).then(|| {
        NullBuffer::new(BooleanBuffer::collect_bool(order.len(), |i| {
            let (b, row) = order[i];
            arrays[b].is_valid(row)
        }))
    });
    BooleanArray::new(values, nulls)
}

/// The rows at `order` of map columns without null rows or null entries, one per batch.
///
/// A taken row's entries are one contiguous range of its batch's entries, so string keys and
/// values are copied a row's range at a time; other children gather the entries one by one.
fn take_maps(
    maps: &[&MapArray],
    order: &[(usize, usize)],
    field: &FieldRef,
    ordered: bool,
) -> Result<MapArray> {
    let ranges: Vec<(usize, Range<usize>)> = order
        .iter()
        .map(|&(b, row)| {
            let o = maps[b].value_offsets();
            (b, o[row] as usize..o[row + 1] as usize)
        })
        .collect();
    let mut offsets: Vec<i32> = Vec::with_capacity(order.len() + 1);
    offsets.push(0);
    let mut entries = 0_usize;
    for (_, range) in &ranges {
        entries += range.len();
        offsets.push(i32::try_from(entries).map_err(|_| ArrowError::OffsetOverflowError(entries))?);
    }
    let Some(first) = maps.first() else {
        return Err(ArrowError::InvalidArgumentError("no map column to take from".into()).into());
    };
    let mut entry_order: Option<Vec<(usize, usize)>> = None;
    let columns = (0..first.entries().num_columns())
        .map(|c| -> Result<ArrayRef> {
            let children: Vec<&dyn Array> = maps
                .iter()
                .map(|m| m.entries().column(c).as_ref())
                .collect();
            let strings: Option<Vec<&StringArray>> =
                children.iter().map(|a| a.as_string_opt::<i32>()).collect();
            if let Some(strings) = strings {
                if let Some(taken) = take_string_ranges(&strings, &ranges, entries)? {
                    return Ok(Arc::new(taken));
                }
            }
            let entry_order = entry_order.get_or_insert_with(|| {
                ranges
                    .iter()
                    .flat_map(|(b, range)| range.clone().map(move |e| (*b, e)))
                    .collect()
            });
            Ok(interleave(&children, entry_order)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let entries = StructArray::try_new(first.entries().fields().clone(), columns, None)?;
    Ok(MapArray::try_new(
        Arc::clone(field),
        OffsetBuffer::new(offsets.into()),
        entries,
        None,
        ordered,
    )?)
}

/// The strings of each (batch, entry range) of `ranges`, concatenated (`entries` strings);
/// `None` when the result would not fit i32 offsets.
fn take_string_ranges(
    strings: &[&StringArray],
    ranges: &[(usize, Range<usize>)],
    entries: usize,
) -> Result<Option<StringArray>> {
    let bytes: usize = ranges
        .iter()
        .map(|(b, r)| {
            let o = strings[*b].value_offsets();
            (o[r.end] - o[r.start]) as usize
        })
        .sum();
    if i32::try_from(bytes).is_err() {
        return Ok(None);
    }
    let mut values: Vec<u8> = Vec::with_capacity(bytes);
    let mut offsets: Vec<i32> = Vec::with_capacity(entries + 1);
    offsets.push(0);
    for (b, r) in ranges {
        let value_offsets = strings[*b].value_offsets();
        let (from, to) = (value_offsets[r.start], value_offsets[r.end]);
        // Fits: the total is below i32::MAX.
        let shift = values.len() as i32 - from;
        offsets.extend(
            value_offsets[r.start + 1..=r.end]
                .iter()
                .map(|&o| o + shift),
        );
        values.extend_from_slice(&strings[*b].value_data()[from as usize..to as usize]);
    }
    let nulls = match strings.iter().any(|s| s.null_count() > 0) {
        true => {
            let mut taken = BooleanBufferBuilder::new(entries);
            for (b, r) in ranges {
                match strings[*b].nulls() {
                    Some(nulls) => taken.append_buffer(&nulls.inner().slice(r.start, r.len())),
                    None => taken.append_n(r.len(), true),
                }
            }
            Some(NullBuffer::new(taken.finish()))
        }
        false => None,
    };
    Ok(Some(StringArray::try_new(
        OffsetBuffer::new(offsets.into()),
        values.into(),
        nulls,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{map_with_null_values, metrics_batch, TestPoint};
    use arrow::array::UInt32Array;
    use arrow::compute::{interleave_record_batch, take, take_record_batch};

    /// Gauges `0..n` of one metric whose `i`th point has `i % 4` attributes.
    fn varying_maps(n: u32, service: &str) -> RecordBatch {
        let points: Vec<TestPoint> = (0..n)
            .map(|i| {
                let mut p = TestPoint::gauge("m", service, i64::from(i), f64::from(i));
                for k in 0..(i % 4) {
                    p = p.attr(&format!("k{k}"), &format!("v{}", i * k));
                }
                p
            })
            .collect();
        metrics_batch(&points)
    }

    fn assert_valid(batch: &RecordBatch) {
        for c in batch.columns() {
            c.to_data().validate_full().expect("valid column");
        }
    }

    /// From one sliced batch, with empty maps, repeated and reversed rows, the result is
    /// exactly Arrow's `take`.
    #[test]
    fn one_batch_equals_arrow_take() {
        let batch = varying_maps(50, "svc").slice(3, 40);
        let rows = [39_u32, 0, 5, 5, 17, 2, 38, 1, 0];
        let order: Vec<(usize, usize)> = rows.iter().map(|&r| (0, r as usize)).collect();
        let ours = take_rows_from(&batch.schema(), std::slice::from_ref(&batch), &order)
            .expect("take_rows_from");
        let arrows = take_record_batch(&batch, &UInt32Array::from(rows.to_vec())).expect("take");
        assert_eq!(ours, arrows);
        assert_valid(&ours);
    }

    /// From several batches (sliced, one empty, different services and map sizes), rows in
    /// any order and repeated give exactly Arrow's `interleave`.
    #[test]
    fn several_batches_equal_arrow_interleave() {
        let batches = [
            varying_maps(30, "a").slice(2, 25),
            varying_maps(10, "b").slice(10, 0),
            varying_maps(17, "c"),
            varying_maps(40, "a").slice(7, 9),
        ];
        let order = [
            (2, 16),
            (0, 0),
            (3, 8),
            (0, 24),
            (2, 0),
            (3, 0),
            (0, 3),
            (0, 3),
            (2, 5),
        ];
        let ours = take_rows_from(&batches[0].schema(), &batches, &order).expect("take_rows_from");
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        assert_eq!(
            ours,
            interleave_record_batch(&refs, &order).expect("interleave")
        );
        assert_valid(&ours);
    }

    /// Maps with null values and empty maps, from sliced columns of two batches with repeated
    /// rows, equal Arrow's `interleave`; one column alone equals Arrow's `take`.
    #[test]
    fn maps_with_null_values_equal_arrow() {
        let a = map_with_null_values(30, "a").slice(2, 25);
        let b = map_with_null_values(11, "b").slice(1, 10);
        let order = [
            (0, 24),
            (1, 9),
            (0, 3),
            (0, 3),
            (1, 0),
            (0, 7),
            (1, 4),
            (0, 11),
        ];
        let ours = take_column(&[&a, &b], &order, false).expect("take_column");
        let arrows = interleave(&[a.as_ref(), b.as_ref()], &order).expect("interleave");
        assert_eq!(ours.to_data(), arrows.to_data());
        ours.to_data().validate_full().expect("valid");

        let rows = [24_u32, 0, 3, 3, 7, 11, 1, 2, 5];
        let order: Vec<(usize, usize)> = rows.iter().map(|&r| (0, r as usize)).collect();
        let ours = take_column(&[&a], &order, false).expect("take_column");
        let arrows = take(a.as_ref(), &UInt32Array::from(rows.to_vec()), None).expect("take");
        assert_eq!(ours.to_data(), arrows.to_data());
    }

    /// Constant and all-null columns are not gathered (a long enough batch is reused), and the
    /// result still equals Arrow's `take`, also when a column differs in its last row only or
    /// holds 0.0 and -0.0 (equal as numbers, not as bits).
    #[test]
    fn constant_columns_are_kept() {
        let mut points: Vec<TestPoint> = (0..20_i64)
            .map(|i| TestPoint::gauge("m", "svc", i, if i % 2 == 0 { 0.0 } else { -0.0 }))
            .collect();
        points.push(TestPoint::gauge("m", "other", 20, 0.0));
        let batch = metrics_batch(&points);
        let rows: Vec<u32> = (0..21).rev().collect();
        let order: Vec<(usize, usize)> = rows.iter().map(|&r| (0, r as usize)).collect();
        let ours = take_rows_from(&batch.schema(), std::slice::from_ref(&batch), &order)
            .expect("take_rows_from");
        let arrows = take_record_batch(&batch, &UInt32Array::from(rows)).expect("take");
        assert_eq!(ours, arrows);
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

    /// Columns constant within each batch but different between batches (`kind` gauge then
    /// sum, `temporality` null then cumulative, `monotonic` null then true) come out row by
    /// row; columns constant across all batches (`unit`, `scope`, `metric`, all-null
    /// histogram columns) still equal Arrow's `interleave`, also taking fewer rows than any
    /// batch holds and more than one does.
    #[test]
    fn constants_that_differ_between_batches() {
        let gauges = metrics_batch(
            &(0..6)
                .map(|i| TestPoint::gauge("m", "svc", i, 1.0))
                .collect::<Vec<_>>(),
        );
        let sums = metrics_batch(
            &(0..4)
                .map(|i| TestPoint::gauge("m", "svc", i, 2.0).counter())
                .collect::<Vec<_>>(),
        );
        let batches = [gauges, sums];
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        let orders: [&[(usize, usize)]; 3] = [
            &[
                (1, 0),
                (0, 0),
                (1, 3),
                (0, 5),
                (0, 1),
                (1, 1),
                (0, 2),
                (1, 2),
                (0, 3),
                (0, 4),
            ],
            &[(0, 4), (0, 1), (1, 2)],
            &[(1, 1), (1, 0), (1, 2), (1, 3), (1, 0), (1, 1), (1, 3)],
        ];
        for order in orders {
            let ours =
                take_rows_from(&batches[0].schema(), &batches, order).expect("take_rows_from");
            assert_eq!(
                ours,
                interleave_record_batch(&refs, order).expect("interleave")
            );
            assert_valid(&ours);
        }
    }
}
