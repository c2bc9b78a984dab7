//! Columns appended in runs of one repeated value: the metric, scope and resource columns,
//! which every point of one metric (scope, resource) shares.
//!
//! A run of `n` rows costs a few doubling copies of the value's bytes and one arithmetic fill
//! of its offsets, where `StringBuilder` / `MapBuilder` pay a call, a copy and capacity checks
//! per row. The arrays are validated once when finished. A string column with one value
//! throughout (a request's unit, scope or service, usually) is only counted, and finished by
//! Arrow's `new_repeated`, which needs no validation; a second value writes it out as runs.

use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{Array, ArrayRef, MapArray, StringArray, StructArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, FieldRef};
use arrow::error::ArrowError;

/// A Utf8 column built from runs of a repeated block of values.
#[derive(Debug)]
pub(crate) struct RunStrings {
    /// While nothing is written: the one value (`None`: null) of every item so far, and how
    /// many items there are.
    uniform: Option<(Option<String>, usize)>,
    /// Whether items went to the buffers below (then `uniform` is `None`).
    written: bool,
    values: Vec<u8>,
    /// Arrow offsets: one more than the items, starting at 0.
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl RunStrings {
    /// Sized for `items` values of `bytes` bytes in all.
    pub(crate) fn with_capacity(items: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(items + 1);
        offsets.push(0);
        Self {
            uniform: None,
            written: false,
            values: Vec::with_capacity(bytes),
            offsets,
            nulls: NullBufferBuilder::new(items),
        }
    }

    /// Number of items appended.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.offsets.len() - 1 + self.uniform.as_ref().map_or(0, |(_, n)| *n)
    }

    /// Appends `value` `n` times.
    pub(crate) fn append_n(&mut self, value: &str, n: usize) -> Result<(), ArrowError> {
        if self.extends_uniform(Some(value), n)? {
            return Ok(());
        }
        self.write_n(value, n)
    }

    /// Appends `n` nulls.
    pub(crate) fn append_nulls(&mut self, n: usize) -> Result<(), ArrowError> {
        if !self.extends_uniform(None, n)? {
            self.write_nulls(n);
        }
        Ok(())
    }

    /// Counts `n` items of `value` into the uniform value if they extend it (true); else
    /// writes the uniform items out, so the caller writes these (false).
    fn extends_uniform(&mut self, value: Option<&str>, n: usize) -> Result<bool, ArrowError> {
        if n == 0 {
            return Ok(true);
        }
        if self.written {
            return Ok(false);
        }
        match &mut self.uniform {
            None => {
                self.uniform = Some((value.map(str::to_owned), n));
                return Ok(true);
            }
            Some((held, count)) if held.as_deref() == value => {
                *count += n;
                return Ok(true);
            }
            Some(_) => {}
        }
        self.write_uniform()?;
        Ok(false)
    }

    /// Ends the uniform state: its items go to the buffers.
    fn write_uniform(&mut self) -> Result<(), ArrowError> {
        self.written = true;
        match self.uniform.take() {
            Some((Some(value), n)) => self.write_n(&value, n),
            Some((None, n)) => {
                self.write_nulls(n);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn write_n(&mut self, value: &str, n: usize) -> Result<(), ArrowError> {
        self.repeat(value.as_bytes(), &[value.len()], n)?;
        self.nulls.append_n_non_nulls(n);
        Ok(())
    }

    fn write_nulls(&mut self, n: usize) {
        let last = self.offsets[self.offsets.len() - 1];
        self.offsets.extend(std::iter::repeat_n(last, n));
        self.nulls.append_n_nulls(n);
    }

    /// Appends the items of `block` (nulls included), the whole block `n` times over.
    pub(crate) fn append_block_n(
        &mut self,
        block: &StringArray,
        n: usize,
    ) -> Result<(), ArrowError> {
        self.write_uniform()?;
        let offsets = block.value_offsets();
        let (first, last) = (
            offsets[0].unsigned_abs(),
            offsets[block.len()].unsigned_abs(),
        );
        let bytes = block
            .value_data()
            .get(first as usize..last as usize)
            .unwrap_or_default();
        let lens: Vec<usize> = (0..block.len())
            .map(|i| block.value_length(i) as usize)
            .collect();
        self.repeat(bytes, &lens, n)?;
        match block.nulls() {
            Some(nulls) => (0..n).for_each(|_| self.nulls.append_buffer(nulls)),
            None => self.nulls.append_n_non_nulls(n * block.len()),
        }
        Ok(())
    }

    /// Appends `n` copies of the items whose lengths are `lens` and bytes `bytes`.
    fn repeat(&mut self, bytes: &[u8], lens: &[usize], n: usize) -> Result<(), ArrowError> {
        let start = self.values.len();
        let total = bytes.len().saturating_mul(n);
        let overflow = || ArrowError::OffsetOverflowError(start.saturating_add(total));
        if i32::try_from(start.saturating_add(total)).is_err() {
            return Err(overflow());
        }
        if n == 0 {
            return Ok(());
        }
        // Both fit in i32 (checked above), as does every offset in between.
        let base = start as i32;
        let block = bytes.len() as i32;
        self.offsets.reserve(n * lens.len());
        if let [len] = lens {
            let len = *len as i32;
            self.offsets
                .extend((1..=n as i32).map(|i| base + (i - 1) * block + len));
        } else {
            for i in 0..n as i32 {
                let mut end = base + i * block;
                for len in lens {
                    end += *len as i32;
                    self.offsets.push(end);
                }
            }
        }
        // Doubling copies: log2(n) calls for the bytes of n copies.
        self.values.reserve(total);
        self.values.extend_from_slice(bytes);
        while self.values.len() - start < total {
            let have = self.values.len() - start;
            self.values
                .extend_from_within(start..start + have.min(total - have));
        }
        Ok(())
    }

    /// The column (validated: offsets and UTF-8, unless it holds one value throughout).
    pub(crate) fn finish(mut self) -> Result<StringArray, ArrowError> {
        match self.uniform.take() {
            Some((Some(value), n)) => return Ok(StringArray::new_repeated(value, n)),
            Some((None, n)) => return Ok(StringArray::new_null(n)),
            None => {}
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        StringArray::try_new(offsets, Buffer::from_vec(self.values), self.nulls.finish())
    }
}

/// A `Map<Utf8, Utf8>` column of non-null maps built from runs of one repeated map.
#[derive(Debug)]
pub(crate) struct RunMaps {
    keys: RunStrings,
    values: RunStrings,
    offsets: Vec<i32>,
}

impl RunMaps {
    /// Sized for `rows` maps of `entries` entries and `bytes` bytes in all.
    pub(crate) fn with_capacity(rows: usize, entries: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            keys: RunStrings::with_capacity(entries, bytes / 2),
            values: RunStrings::with_capacity(entries, bytes / 2 + bytes % 2),
            offsets,
        }
    }

    /// Appends the map of `keys` and `values` (of equal length) to `n` rows.
    pub(crate) fn append_n(
        &mut self,
        keys: &StringArray,
        values: &StringArray,
        n: usize,
    ) -> Result<(), ArrowError> {
        self.keys.append_block_n(keys, n)?;
        self.values.append_block_n(values, n)?;
        let base = self.offsets[self.offsets.len() - 1];
        // The keys column is below i32::MAX items, as its byte offsets are.
        let k =
            i32::try_from(keys.len()).map_err(|_| ArrowError::OffsetOverflowError(keys.len()))?;
        let n = i32::try_from(n).map_err(|_| ArrowError::OffsetOverflowError(n))?;
        self.offsets.extend((1..=n).map(|i| base + i * k));
        Ok(())
    }

    /// The column, typed as `data_type` (a `Map` of two Utf8 fields).
    pub(crate) fn finish(self, data_type: &DataType) -> Result<ArrayRef, ArrowError> {
        let DataType::Map(entries_field, ordered) = data_type else {
            return Err(ArrowError::InvalidArgumentError(format!(
                "RunMaps builds a map column, not {data_type}"
            )));
        };
        let DataType::Struct(fields) = entries_field.data_type() else {
            return Err(ArrowError::InvalidArgumentError(format!(
                "map entries must be a struct, not {}",
                entries_field.data_type()
            )));
        };
        let entries = StructArray::try_new(
            fields.clone(),
            vec![
                Arc::new(self.keys.finish()?) as ArrayRef,
                Arc::new(self.values.finish()?),
            ],
            None,
        )?;
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        let field: FieldRef = entries_field.clone();
        Ok(Arc::new(MapArray::try_new(
            field, offsets, entries, None, *ordered,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{MapBuilder, StringBuilder};

    #[test]
    fn runs_equal_the_same_values_appended_one_by_one() -> Result<(), ArrowError> {
        let mut runs = RunStrings::with_capacity(0, 0);
        let mut one_by_one = StringBuilder::new();
        for (value, n) in [(Some("abc"), 3), (None, 2), (Some(""), 4), (Some("é-x"), 9)] {
            match value {
                Some(v) => runs.append_n(v, n)?,
                None => runs.append_nulls(n)?,
            }
            (0..n).for_each(|_| one_by_one.append_option(value));
        }
        runs.append_n("never", 0)?;
        assert_eq!(runs.len(), 18);
        assert_eq!(runs.finish()?, one_by_one.finish());
        Ok(())
    }

    #[test]
    fn one_value_throughout_is_repeated_without_writing() -> Result<(), ArrowError> {
        let cases: [&[(Option<&str>, usize)]; 4] = [
            &[(Some("ms"), 3), (Some("ms"), 0), (Some("ms"), 7)],
            &[(None, 2), (None, 5)],
            &[],
            // A null run after a value ends the uniform state, and the reverse.
            &[(Some("ms"), 2), (None, 1), (Some("ms"), 2)],
        ];
        for runs_of in cases {
            let mut runs = RunStrings::with_capacity(0, 0);
            let mut one_by_one = StringBuilder::new();
            for &(value, n) in runs_of {
                match value {
                    Some(v) => runs.append_n(v, n)?,
                    None => runs.append_nulls(n)?,
                }
                (0..n).for_each(|_| one_by_one.append_option(value));
            }
            let expected = one_by_one.finish();
            assert_eq!(runs.len(), expected.len());
            let got = runs.finish()?;
            assert_eq!(got.len(), expected.len());
            assert_eq!(got.null_count(), expected.null_count(), "{runs_of:?}");
            assert!(got.iter().eq(expected.iter()), "{runs_of:?}");
        }
        Ok(())
    }

    #[test]
    fn map_runs_equal_the_maps_appended_one_by_one() -> Result<(), ArrowError> {
        let keys = StringArray::from(vec!["service.name", "host.name", "empty"]);
        let values = StringArray::from(vec![Some("api"), Some("h-1"), None]);
        let other_keys = StringArray::from(vec!["k"]);
        let other_values = StringArray::from(vec![Some("v")]);
        let mut builder = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        let mut runs = RunMaps::with_capacity(0, 0, 0);
        for (k, v, n) in [
            (&keys, &values, 5),
            (&other_keys, &other_values, 1),
            (&keys, &values, 7),
        ] {
            runs.append_n(k, v, n)?;
            for _ in 0..n {
                let (kb, vb) = builder.entries();
                kb.append_array(k)?;
                vb.append_array(v)?;
                builder.append(true)?;
            }
        }
        let expected = builder.finish();
        let got = runs.finish(expected.data_type())?;
        assert_eq!(got.to_data(), expected.to_data());
        Ok(())
    }
}
