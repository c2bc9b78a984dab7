//! Typed access to the columns of a metrics batch, and map-column helpers.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, MapArray, RecordBatch, StringArray, StructArray,
    UInt64Array,
};
use arrow::buffer::{BooleanBuffer, OffsetBuffer};
use arrow::compute::filter_record_batch;
use arrow::datatypes::DataType;

use crate::{Error, Result};

/// The column `name` of `batch` as `T`.
///
/// # Errors
/// [`Error::Column`] when it is missing or of another type.
pub(crate) fn column<'a, T: Array + 'static>(
    batch: &'a RecordBatch,
    name: &'static str,
) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or(Error::Column(name))
}

/// A Utf8 column.
pub(crate) fn strings<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a StringArray> {
    column::<StringArray>(batch, name)
}

/// A `Map<Utf8, Utf8>` column with its keys and values.
pub(crate) fn string_map<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<MapView<'a>> {
    map_view(column::<MapArray>(batch, name)?, name)
}

/// A `Map<Utf8, Utf8>` array with its keys and values; `name` labels errors.
pub(crate) fn map_view<'a>(map: &'a MapArray, name: &'static str) -> Result<MapView<'a>> {
    let keys = map
        .keys()
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or(Error::Column(name))?;
    let values = map
        .values()
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or(Error::Column(name))?;
    Ok(MapView { map, keys, values })
}

/// A UInt64 column.
pub(crate) fn u64s<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a UInt64Array> {
    column::<UInt64Array>(batch, name)
}

/// A Float64 column.
pub(crate) fn f64s<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a Float64Array> {
    column::<Float64Array>(batch, name)
}

/// Equality of two short strings (metric and service names, kinds) without a `memcmp` call:
/// rows compare these against the previous row's, and the call was most of the cost.
#[inline]
pub(crate) fn short_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Two overlapping fixed-width loads cover every length in the range.
    let word = |s: &[u8], at: usize| -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let half = |s: &[u8], at: usize| -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[at..at + 4]);
        u32::from_le_bytes(w)
    };
    match n {
        0 => true,
        1..=3 => a == b,
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// A `Map<Utf8, Utf8>` column seen as rows of `(key, value)` entries.
#[derive(Clone, Copy)]
pub(crate) struct MapView<'a> {
    /// The map array (its data type is reused for rebuilt maps).
    pub map: &'a MapArray,
    /// Entry keys.
    pub keys: &'a StringArray,
    /// Entry values (null for an attribute without a value).
    pub values: &'a StringArray,
}

impl<'a> MapView<'a> {
    /// Entry index range of `row`.
    #[inline]
    pub fn range(&self, row: usize) -> std::ops::Range<usize> {
        let offsets = self.map.value_offsets();
        offsets[row] as usize..offsets[row + 1] as usize
    }

    /// Key of entry `i`.
    #[inline]
    pub fn key(&self, i: usize) -> &'a str {
        self.keys.value(i)
    }

    /// Value of entry `i`, `None` when null.
    #[inline]
    pub fn value(&self, i: usize) -> Option<&'a str> {
        self.values.is_valid(i).then(|| self.values.value(i))
    }

    /// Value of the first entry of `row` named `key`: `None` when absent, `Some(None)` when
    /// present without a value.
    #[inline]
    pub fn get(&self, row: usize, key: &str) -> Option<Option<&'a str>> {
        self.range(row)
            .find(|&i| self.key(i) == key)
            .map(|i| self.value(i))
    }
}

/// Assembles a map column of type `like` from entry keys, values and row offsets.
///
/// # Errors
/// [`Error::Arrow`] when the parts are inconsistent (a bug).
pub(crate) fn build_map(
    like: &DataType,
    keys: ArrayRef,
    values: ArrayRef,
    offsets: Vec<i32>,
) -> Result<ArrayRef> {
    let DataType::Map(entries_field, ordered) = like else {
        return Err(Error::Column("map"));
    };
    let DataType::Struct(fields) = entries_field.data_type() else {
        return Err(Error::Column("map"));
    };
    let entries = StructArray::try_new(fields.clone(), vec![keys, values], None)?;
    let offsets = OffsetBuffer::new(offsets.into());
    let map = MapArray::try_new(entries_field.clone(), offsets, entries, None, *ordered)?;
    Ok(Arc::new(map))
}

/// Replaces the named columns of `batch`.
///
/// # Errors
/// [`Error::Column`] for a name not in the schema, [`Error::Arrow`] for a bad column.
pub(crate) fn replace(
    batch: &RecordBatch,
    columns: &[(&'static str, ArrayRef)],
) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut cols = batch.columns().to_vec();
    for (name, array) in columns {
        let i = schema.index_of(name).map_err(|_| Error::Column(name))?;
        cols[i] = array.clone();
    }
    Ok(RecordBatch::try_new(schema, cols)?)
}

/// The rows of `batch` that `keep` does not keep, projected to the columns usage accounting
/// reads (`time`, `metric`, `service`, `series_id`), for [`crate::Processor::take_dropped`].
///
/// # Errors
/// [`Error::Column`] when one of those columns is missing.
pub(crate) fn dropped_rows(batch: &RecordBatch, keep: &BooleanBuffer) -> Result<RecordBatch> {
    let keys = usage_keys(batch)?;
    Ok(filter_record_batch(&keys, &BooleanArray::new(!keep, None))?)
}

/// `batch` projected to the columns usage accounting reads (`time`, `metric`, `service`,
/// `series_id`): the shape of every processor's dropped rows.
///
/// # Errors
/// [`Error::Column`] when one of those columns is missing.
pub(crate) fn usage_keys(batch: &RecordBatch) -> Result<RecordBatch> {
    use phoenix_model::schema::col;
    let schema = batch.schema();
    let indices = [col::TIME, col::METRIC, col::SERVICE, col::SERIES_ID]
        .iter()
        .map(|name| schema.index_of(name).map_err(|_| Error::Column(name)))
        .collect::<Result<Vec<_>>>()?;
    Ok(batch.project(&indices)?)
}

#[cfg(test)]
mod tests {
    use super::short_eq;

    /// `short_eq` agrees with `==` for every length class, including strings that differ only
    /// in a middle, first or last byte.
    #[test]
    fn short_eq_matches_std_eq() {
        let base = "abcdefghijklmnopqrstuvwxyz";
        for n in 0..=base.len() {
            let a = &base[..n];
            assert!(short_eq(a, a), "len {n}");
            for i in 0..n {
                let mut b = a.as_bytes().to_vec();
                b[i] = b'#';
                let b = String::from_utf8(b).expect("ascii");
                assert!(!short_eq(a, &b), "len {n} differs at {i}");
            }
            assert!(!short_eq(a, &base[..n.saturating_sub(1)]) || n == 0);
        }
    }
}
