//! Writes a table's sorted rows as Parquet row groups, with the `value` column's encoding chosen
//! per row group: each group's values are encoded both with a dictionary and with the table's
//! plain encoding (BYTE_STREAM_SPLIT), and the smaller chunk is kept.
//!
//! Which is smaller depends on the data, so no one setting suits a file. Bounded-precision
//! gauges (two decimals) repeat a few thousand doubles whose mantissas look random to
//! BYTE_STREAM_SPLIT, so dictionary indices are far smaller (1.8 vs 5.0 bytes per value on the
//! regular sample); integer counters climb through many distinct values whose low bytes are
//! zero, so BYTE_STREAM_SPLIT wins (1.4 vs 1.9). Files are sorted by `kind` first and a row group
//! ends where the kind changes, so each group holds one kind of data and gets its own choice.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{
    new_empty_array, Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{Field, Float64Type, SchemaRef};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use phoenix_model::schema::col;

use crate::parallel::{map_tasks, threads_for};
use crate::Result;

/// How a [`RowGroupWriter`] lays out row groups.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Most rows per row group.
    pub(crate) max_rows: usize,
    /// Index of the `kind` column (Utf8): a row group ends where it changes.
    pub(crate) kind_col: Option<usize>,
    /// Parquet leaf index of `value` and the settings that give it a dictionary.
    pub(crate) value_dict: Option<(usize, WriterProperties)>,
}

/// A Parquet file being written row group by row group; see the module docs.
pub(crate) struct RowGroupWriter<W: Write + Send> {
    file: SerializedFileWriter<W>,
    schema: SchemaRef,
    /// Column writers with the table's settings.
    plain: ArrowRowGroupWriterFactory,
    /// Leaf index of `value` and column writers that give it a dictionary.
    dict: Option<(usize, ArrowRowGroupWriterFactory)>,
    max_rows: usize,
    kind_col: Option<usize>,
    /// Index of the `value` column (Float64).
    value_col: Option<usize>,
    /// Parquet leaves of each field, in schema order (a map has two).
    leaves: Vec<usize>,
    group: Option<Group>,
}

/// One field's slice of a row group write: its leaves go to `writers` (and the `value` leaf
/// also to `alt`, the dictionary trial).
struct FieldWrite<'a> {
    field: &'a Field,
    column: &'a ArrayRef,
    writers: &'a mut [ArrowColumnWriter],
    /// Index within this field's leaves of the `value` leaf, with its second writer.
    alt: Option<(usize, &'a mut ArrowColumnWriter)>,
}

impl FieldWrite<'_> {
    fn run(self) -> Result<()> {
        let mut alt = self.alt;
        for (i, leaf) in compute_leaves(self.field, self.column)?
            .into_iter()
            .enumerate()
        {
            if let Some((_, w)) = alt.as_mut().filter(|(at, _)| *at == i) {
                w.write(&leaf)?;
            }
            if let Some(w) = self.writers.get_mut(i) {
                w.write(&leaf)?;
            }
        }
        Ok(())
    }
}

/// The row group being written.
struct Group {
    writers: Vec<ArrowColumnWriter>,
    /// `value` encoded with a dictionary as well.
    dict_value: Option<ArrowColumnWriter>,
    rows: usize,
    /// The kind of every row in the group (`None`: null or no kind column).
    kind: Option<String>,
}

impl<W: Write + Send> RowGroupWriter<W> {
    /// Starts a file in `sink` with `props` (compression, per-column encodings, metadata).
    pub(crate) fn try_new(
        sink: W,
        schema: SchemaRef,
        props: WriterProperties,
        layout: Layout,
    ) -> Result<Self> {
        // `ArrowWriter` stores the Arrow schema in the footer, so readers get the exact types
        // (timestamp time zones, map field names) back.
        let (file, plain) = ArrowWriter::try_new(sink, SchemaRef::clone(&schema), Some(props))?
            .into_serialized_writer()?;
        let dict = match layout.value_dict {
            Some((leaf, props)) => {
                // The factory only takes the schema and settings from this writer.
                let shadow = SerializedFileWriter::new(
                    std::io::sink(),
                    file.schema_descr().root_schema_ptr(),
                    Arc::new(props),
                )?;
                let factory = ArrowRowGroupWriterFactory::new(&shadow, SchemaRef::clone(&schema));
                Some((leaf, factory))
            }
            None => None,
        };
        let value_col = schema.index_of(col::VALUE).ok();
        let leaves = schema
            .fields()
            .iter()
            .map(|f| compute_leaves(f, &new_empty_array(f.data_type())).map(|l| l.len()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Self {
            file,
            value_col,
            leaves,
            schema,
            plain,
            dict,
            max_rows: layout.max_rows.max(1),
            kind_col: layout.kind_col,
            group: None,
        })
    }

    /// Adds a key-value pair to the footer.
    pub(crate) fn append_key_value_metadata(&mut self, kv: KeyValue) {
        self.file.append_key_value_metadata(kv);
    }

    /// Appends sorted rows, ending row groups at kind changes and at the row limit.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let kinds = self
            .kind_col
            .and_then(|i| batch.column(i).as_string_opt::<i32>());
        let n = batch.num_rows();
        let mut start = 0;
        while start < n {
            let kind = kinds.and_then(|k| k.is_valid(start).then(|| k.value(start)));
            let mut group = match self.group.take() {
                Some(g) if g.rows < self.max_rows && g.kind.as_deref() == kind => g,
                open => {
                    if let Some(g) = open {
                        self.close_group(g)?;
                    }
                    let limit = n.min(start + self.max_rows);
                    let end = kinds.map_or(limit, |k| run_end(k, start, limit));
                    let values = self
                        .value_col
                        .and_then(|i| batch.column(i).as_primitive_opt::<Float64Type>())
                        .map(|v| v.slice(start, end - start));
                    let unique = values.as_ref().is_some_and(mostly_unique);
                    self.open_group(kind, !unique)?
                }
            };
            let limit = n.min(start + (self.max_rows - group.rows));
            let end = kinds.map_or(limit, |k| run_end(k, start, limit));
            let slice = batch.slice(start, end - start);
            self.write_fields(&mut group, &slice)?;
            group.rows += end - start;
            self.group = Some(group);
            start = end;
        }
        Ok(())
    }

    /// Writes `slice`'s columns into `group`'s column writers, spread over threads when the
    /// slice is large (costliest columns first).
    fn write_fields(&self, group: &mut Group, slice: &RecordBatch) -> Result<()> {
        let value_leaf = self.dict.as_ref().map(|(leaf, _)| *leaf);
        let mut alt = group.dict_value.as_mut();
        let mut rest: &mut [ArrowColumnWriter] = &mut group.writers;
        let mut first = 0;
        let mut tasks = Vec::with_capacity(self.leaves.len());
        for ((field, column), &n) in self
            .schema
            .fields()
            .iter()
            .zip(slice.columns())
            .zip(&self.leaves)
        {
            let n_here = n.min(rest.len());
            let (writers, tail) = std::mem::take(&mut rest).split_at_mut(n_here);
            rest = tail;
            let alt = match value_leaf {
                Some(v) if (first..first + n).contains(&v) => alt.take().map(|w| (v - first, w)),
                _ => None,
            };
            tasks.push((
                column.get_array_memory_size(),
                FieldWrite {
                    field,
                    column,
                    writers,
                    alt,
                },
            ));
            first += n;
        }
        tasks.sort_by_key(|(cost, _)| std::cmp::Reverse(*cost));
        let tasks = tasks.into_iter().map(|(_, t)| t).collect();
        map_tasks(tasks, threads_for(slice.num_rows()), FieldWrite::run)?;
        Ok(())
    }

    /// Closes the open row group, if any, and writes the footer.
    pub(crate) fn finish(&mut self) -> Result<()> {
        if let Some(g) = self.group.take() {
            self.close_group(g)?;
        }
        self.file.finish()?;
        Ok(())
    }

    /// A new row group; `try_dict`: also encode `value` with a dictionary.
    fn open_group(&self, kind: Option<&str>, try_dict: bool) -> Result<Group> {
        let index = self.file.flushed_row_groups().len();
        let dict_value = match &self.dict {
            Some((leaf, factory)) if try_dict => {
                factory.create_column_writers(index)?.into_iter().nth(*leaf)
            }
            _ => None,
        };
        Ok(Group {
            writers: self.plain.create_column_writers(index)?,
            dict_value,
            rows: 0,
            kind: kind.map(str::to_owned),
        })
    }

    fn close_group(&mut self, mut group: Group) -> Result<()> {
        let value_leaf = self.dict.as_ref().map(|(leaf, _)| *leaf);
        let mut row_group = self.file.next_row_group()?;
        for (leaf, writer) in group.writers.into_iter().enumerate() {
            let mut chunk = writer.close()?;
            if Some(leaf) == value_leaf {
                if let Some(alt) = group.dict_value.take() {
                    let alt = alt.close()?;
                    if alt.close().metadata.compressed_size()
                        < chunk.close().metadata.compressed_size()
                    {
                        chunk = alt;
                    }
                }
            }
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        Ok(())
    }
}

impl RowGroupWriter<Vec<u8>> {
    /// Takes the bytes written so far (whole row groups), so a streaming caller can upload them.
    pub(crate) fn take_written(&mut self) -> Result<Vec<u8>> {
        self.file
            .flush()
            .map_err(parquet::errors::ParquetError::from)?;
        Ok(std::mem::take(self.file.inner_mut()))
    }
}

/// Evenly spaced values [`mostly_unique`] looks at.
const PROBE_VALUES: usize = 4096;
/// Fewest values [`mostly_unique`] judges; compaction writes a group in 8k-row slices whose
/// first is no sample of the group, so it always encodes both ways.
const PROBE_MIN_ROWS: usize = 65_536;

/// Whether a dictionary cannot pay off for `values`: fewer than 1% of an evenly spaced sample
/// repeat. By the birthday bound that means over ~200k distinct values, more than a dictionary
/// page holds (1 MiB: 131,072 doubles), so the dictionary would fall back to plain pages after
/// costing a hash per value. Full-precision gauges (every value new) skip the second encoding;
/// two-decimal gauges (~10k distinct: ~800 repeats expected) keep it.
fn mostly_unique(values: &Float64Array) -> bool {
    if values.len() < PROBE_MIN_ROWS {
        return false;
    }
    let step = values.len() / PROBE_VALUES;
    let mut seen = std::collections::HashSet::with_capacity(PROBE_VALUES);
    let repeats = (0..PROBE_VALUES)
        .filter(|k| !seen.insert(values.value(k * step).to_bits()))
        .count();
    repeats * 100 < PROBE_VALUES
}

/// End of the run of rows from `start` (below `limit`) that share `start`'s kind.
fn run_end(kinds: &StringArray, start: usize, limit: usize) -> usize {
    if kinds.null_count() == 0 {
        return equal_run_end(kinds, start, limit);
    }
    let valid = kinds.is_valid(start);
    let kind = kinds.value(start);
    (start + 1..limit)
        .find(|&i| kinds.is_valid(i) != valid || (valid && kinds.value(i) != kind))
        .unwrap_or(limit)
}

/// [`run_end`] for a non-null column, without comparing row by row: the run is the rows that
/// have the first row's length and whose bytes repeat it, found with block compares.
fn equal_run_end(strings: &StringArray, start: usize, limit: usize) -> usize {
    let offsets = strings.value_offsets();
    let first = offsets[start];
    let len = offsets[start + 1] - first;
    let same_len = offsets[start + 1..=limit]
        .windows(2)
        .position(|w| w[1] - w[0] != len)
        .map_or(limit, |p| start + 1 + p);
    if len == 0 {
        return same_len;
    }
    let bytes = &strings.value_data()[first as usize..offsets[same_len] as usize];
    let len = len as usize;
    // Row `start + 1 + p / len` is the first to differ from its predecessor, which equals
    // `start`'s value.
    match first_difference(&bytes[len..], &bytes[..bytes.len() - len]) {
        Some(p) => start + 1 + p / len,
        None => same_len,
    }
}

/// First index where `a` and `b` (of equal length) differ.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    const BLOCK: usize = 256;
    a.chunks(BLOCK)
        .zip(b.chunks(BLOCK))
        .position(|(x, y)| x != y)
        .and_then(|block| {
            let (x, y) = (&a[block * BLOCK..], &b[block * BLOCK..]);
            x.iter()
                .zip(y)
                .position(|(p, q)| p != q)
                .map(|i| block * BLOCK + i)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64 in [0, 1), so samples are deterministic.
    fn units(n: usize) -> impl Iterator<Item = f64> {
        let mut x = 7_u64;
        (0..n).map(move |_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as f64 / u64::MAX as f64
        })
    }

    /// Runs end at the first row with another value, also when it has the same length, differs
    /// only in its last byte, or is empty; a run never passes the limit.
    #[test]
    fn run_end_finds_the_first_other_value() {
        let rows = ["sum", "sum", "sum", "sun", "gauge", "gauge", "", "", "x"];
        let kinds = StringArray::from(rows.to_vec());
        for start in 0..rows.len() {
            for limit in start + 1..=rows.len() {
                let want = (start + 1..limit)
                    .find(|&i| rows[i] != rows[start])
                    .unwrap_or(limit);
                assert_eq!(run_end(&kinds, start, limit), want, "{start}..{limit}");
            }
        }
        let long: Vec<String> = (0..2000)
            .map(|i| format!("{}", u8::from(i >= 1500)))
            .collect();
        let long = StringArray::from(long);
        assert_eq!(run_end(&long, 3, 2000), 1500);
    }

    /// Full-precision random values are judged unique; two-decimal values in [0, 100] and
    /// integer counters below 40,000 are not; too few values are never judged.
    #[test]
    fn probe_tells_unique_values_from_repeating_ones() {
        let n = 200_000;
        let random = Float64Array::from_iter_values(units(n).map(|u| u * 100.0));
        assert!(mostly_unique(&random));
        let decimals =
            Float64Array::from_iter_values(units(n).map(|u| (u * 10_000.0).round() / 100.0));
        assert!(!mostly_unique(&decimals));
        let counters = Float64Array::from_iter_values(units(n).map(|u| (u * 40_000.0).floor()));
        assert!(!mostly_unique(&counters));
        let few = Float64Array::from_iter_values(units(PROBE_MIN_ROWS - 1));
        assert!(!mostly_unique(&few));
    }
}
