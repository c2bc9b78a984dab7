//! Turns buffered batches into one Parquet file: sort, then encode with per-column settings.

use std::io::Write;

use arrow::array::{new_empty_array, Array, AsArray, RecordBatch, StringArray};
use arrow::compute::{concat, lexsort_to_indices, SortColumn, SortOptions};
use arrow::datatypes::{DataType, SchemaRef, TimestampNanosecondType, UInt64Type};
use bytes::Bytes;
use parquet::arrow::ArrowSchemaConverter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use phoenix_model::config::{FlushCompression, StorageConfig};
use phoenix_model::schema::{col, SCHEMA_VERSION};

use crate::row_groups::{Layout, RowGroupWriter};
use crate::sort_order::{series_time_order, string_ranks};
use crate::{Result, SCHEMA_VERSION_KEY};

/// Columns files are sorted by, in order, when the table has them; the time column comes last.
///
/// `kind` leads so that each row group holds one kind of data (see `row_groups.rs`).
const SORT_PREFIX: [&str; 4] = [col::KIND, col::METRIC, col::SERVICE, col::SERIES_ID];

/// String columns written plain, not as a dictionary. Files are sorted by `kind`, `metric` and
/// `service`, so each holds long runs of one value, which the codec stores as one long match;
/// a dictionary hashes and looks up every row's value instead. For `metric` and `service`
/// that made a flush ~9% slower (`compact_cost -- 6 3 lz4 flush-only`, medians of ten
/// alternating runs: 0.63 → 0.575 CPU-s per M rows) for files 1.3% (flushed) and 0.3% (an
/// hour of regular data) smaller. `metric` and `service` keep their statistics, which is what
/// queries prune on.
const LOW_CARDINALITY_PLAIN: [&str; 6] = [
    col::KIND,
    col::TEMPORALITY,
    col::UNIT,
    col::SCOPE,
    col::METRIC,
    col::SERVICE,
];

/// String columns written without statistics. Parquet compares every row's value with the
/// page's min and max (a tenth of a flush's instructions went to the five string columns'
/// compares); these two are near-constant per metric, so no query gains from pruning on them.
/// `kind`, `metric` and `service` keep theirs: files are sorted by them and queries filter on
/// them.
const NO_STATISTICS: [&str; 2] = [col::UNIT, col::SCOPE];

/// Rows gathered and encoded at a time by [`FileEncoder::encode_sorted`] when a flush is
/// larger than usual: large enough for the parallel gather and encode (32k rows), small
/// enough that the sorted copy stays a fraction of the flush.
const SORTED_SLICE_ROWS: usize = 128 * 1024;

/// Largest data page of a flushed file (Parquet's default is 1 MiB).
///
/// The writer builds each page in a buffer grown by doubling, copies it into a second one,
/// zero-fills a third as large for the codec's output, then compresses: at 1 MiB these are
/// fresh allocations that miss every cache (and, when the allocator has returned them to the
/// OS, fault in again). At 64 KiB they stay in L2 and are reused. A flush took 20% less CPU
/// (`compact_cost -- 6 3 lz4 flush-only`, medians of five alternating runs: 0.69 → 0.55 CPU-s
/// per M rows, and 10x fewer page faults with mimalloc's default purge delay) for 2.6% more
/// bytes. LZ4 looks back 64 KiB at most, so it finds the same matches in the smaller pages.
const FLUSH_PAGE_BYTES: usize = 64 * 1024;

/// Largest data page of a compacted file: zstd compresses a page on its own and finds more in
/// larger ones (64 KiB pages made compacted files 5% larger for the same compaction CPU).
const COMPACTED_PAGE_BYTES: usize = 1024 * 1024;

/// One encoded file and what the manifest records of it.
#[derive(Debug)]
pub(crate) struct EncodedFile {
    /// The Parquet file.
    pub(crate) bytes: Bytes,
    /// Smallest time in it (0 when empty).
    pub(crate) min_time: i64,
    /// Largest time in it (0 when empty).
    pub(crate) max_time: i64,
    /// Rows in it.
    pub(crate) rows: u64,
}

/// How a table's files are encoded.
#[derive(Debug, Clone)]
pub(crate) struct FileEncoder {
    /// The table's schema.
    schema: SchemaRef,
    /// Sort key column indices in the table schema.
    sort_keys: Vec<usize>,
    /// The time column's index (the last sort key).
    time_col: usize,
    /// Writer settings shared by every file of the table.
    props: WriterProperties,
    /// Row group limits and the `value` dictionary alternative.
    layout: Layout,
}

impl FileEncoder {
    /// Settings for a table with `schema` whose time column is `time_col`, its files
    /// compressed with `codec`.
    pub(crate) fn new(
        schema: &SchemaRef,
        time_col: usize,
        codec: Compression,
        row_group_rows: usize,
    ) -> Result<Self> {
        Self::with_value_encoding(schema, time_col, codec, row_group_rows, VALUE_ENCODING)
    }

    /// As [`FileEncoder::new`] with an explicit `value` encoding (`None`: dictionary).
    fn with_value_encoding(
        schema: &SchemaRef,
        time_col: usize,
        codec: Compression,
        row_group_rows: usize,
        value_encoding: Option<Encoding>,
    ) -> Result<Self> {
        let mut sort_keys: Vec<usize> = SORT_PREFIX
            .iter()
            .filter_map(|name| schema.index_of(name).ok())
            .collect();
        sort_keys.push(time_col);

        // `sorting_columns` refers to leaf columns of the Parquet schema, where each map column
        // takes two leaves, so positions are looked up rather than taken from the Arrow schema.
        let descr = ArrowSchemaConverter::new().convert(schema)?;
        let sorting_columns = sort_keys
            .iter()
            .filter_map(|&i| {
                let name = schema.field(i).name();
                descr
                    .columns()
                    .iter()
                    .position(|c| c.path().parts() == [name.clone()])
                    .map(|leaf| SortingColumn {
                        column_idx: leaf as i32,
                        descending: false,
                        nulls_first: false,
                    })
            })
            .collect();

        let mut props = WriterProperties::builder()
            .set_compression(codec)
            .set_max_row_group_row_count(Some(row_group_rows.max(1)))
            .set_data_page_size_limit(FLUSH_PAGE_BYTES)
            .set_dictionary_enabled(true)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_sorting_columns(Some(sorting_columns))
            .set_key_value_metadata(Some(vec![KeyValue::new(
                SCHEMA_VERSION_KEY.to_string(),
                SCHEMA_VERSION.to_string(),
            )]));
        for field in schema.fields() {
            let path = ColumnPath::from(field.name().as_str());
            match field.data_type() {
                // Sorted per series, timestamps advance by near-constant steps: delta encoding
                // stores them in a few bits each, where a dictionary would hold every value.
                DataType::Timestamp(_, _) => {
                    props = props
                        .set_column_dictionary_enabled(path.clone(), false)
                        .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
                }
                // Each series' id repeats once per point in a run (rows are sorted by it): plain
                // values let zstd store a run as one id plus a short match, where a dictionary
                // page of random 64-bit hashes plus RLE indices costs more when series have
                // few points per file (a flush: 2.8 vs 1.6 bytes per datapoint at 5 points per
                // series; the same at 360).
                DataType::UInt64 if field.name() == col::SERIES_ID => {
                    props = props
                        .set_column_dictionary_enabled(path.clone(), false)
                        .set_column_encoding(path, Encoding::PLAIN);
                }
                // A few distinct values in long runs: zstd shrinks plain pages of them to
                // almost nothing, where a dictionary hashes every row's value.
                DataType::Utf8 if LOW_CARDINALITY_PLAIN.contains(&field.name().as_str()) => {
                    if NO_STATISTICS.contains(&field.name().as_str()) {
                        props = props
                            .set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
                    }
                    props = props.set_column_dictionary_enabled(path, false);
                }
                DataType::Float64 if field.name() == col::VALUE => {
                    if let Some(enc) = value_encoding {
                        props = props
                            .set_column_dictionary_enabled(path.clone(), false)
                            .set_column_encoding(path, enc);
                    }
                }
                _ => {}
            }
        }
        // Map keys and values (resource and point attributes): rows are sorted by series, so
        // each series repeats its entries once per point, which zstd stores as one long match;
        // a dictionary hashes every entry of every row instead, and its min/max statistics
        // compare every entry, though no query prunes on a map leaf. Plain without statistics
        // made a flush-sized file 25% faster to encode and 14% smaller (see
        // `map_leaves_are_plain_without_statistics`).
        for leaf in descr.columns() {
            let in_map = match leaf.path().parts() {
                [top, _, ..] => schema
                    .field_with_name(top)
                    .is_ok_and(|f| matches!(f.data_type(), DataType::Map(_, _))),
                _ => false,
            };
            if in_map {
                props = props
                    .set_column_dictionary_enabled(leaf.path().clone(), false)
                    .set_column_statistics_enabled(leaf.path().clone(), EnabledStatistics::None);
            }
        }
        let props = props.build();
        let value_path = ColumnPath::from(col::VALUE);
        let value_leaf = descr.columns().iter().position(|c| c.path() == &value_path);
        let is_float = schema
            .field_with_name(col::VALUE)
            .is_ok_and(|f| f.data_type() == &DataType::Float64);
        let value_dict = value_leaf
            .filter(|_| is_float && value_encoding.is_some())
            .map(|leaf| {
                let with_dict = props
                    .clone()
                    .into_builder()
                    .set_column_dictionary_enabled(value_path, true)
                    .build();
                (leaf, with_dict)
            });
        let kind_col = schema
            .index_of(col::KIND)
            .ok()
            .filter(|&i| schema.field(i).data_type() == &DataType::Utf8);
        Ok(Self {
            schema: SchemaRef::clone(schema),
            sort_keys,
            time_col,
            props,
            layout: Layout {
                max_rows: row_group_rows.max(1),
                kind_col,
                value_dict,
            },
        })
    }

    /// The rows of `batches` (each with the table's schema) as one batch sorted by (kind,
    /// metric, service, series_id, time).
    ///
    /// Sorting groups each series' points together, so consecutive times differ by the scrape
    /// interval (tiny deltas) and values change slowly (zstd finds the repeats); it also makes
    /// each row group cover few metrics and a narrow time span, so min/max statistics prune row
    /// groups and pages for `WHERE metric = …` and time filters.
    ///
    /// The order is computed from the key columns only and the rows are gathered straight from
    /// the batches: concatenating them first would copy every column (the maps' strings most of
    /// all) once more. (Flushes use [`FileEncoder::encode_sorted`], which gathers a slice at a
    /// time; tests compare against this whole sorted batch.)
    #[cfg(test)]
    pub(crate) fn sort_batches(&self, batches: &[RecordBatch]) -> Result<RecordBatch> {
        crate::take_rows::take_rows_from(&self.schema, batches, &self.sorted_rows(batches)?)
    }

    /// The (batch, row) pairs of `batches` in file sort order.
    fn sorted_rows(&self, batches: &[RecordBatch]) -> Result<Vec<(usize, usize)>> {
        let order = match self.packed_sort_order(batches) {
            Some(order) => order,
            None => self.general_sort_order(batches)?,
        };
        // Row `i` of the batches taken as one is `at[i]`: (batch, row in it).
        let at: Vec<(usize, usize)> = batches
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |row| (b, row)))
            .collect();
        Ok(order.iter().map(|&i| at[i as usize]).collect())
    }

    /// A flush file's writer into a buffer of `capacity` bytes, with the highest ack and the
    /// WAL positions it covers in its metadata.
    fn file_writer(
        &self,
        capacity: usize,
        ack_max: Option<u64>,
        positions: Option<&str>,
    ) -> Result<RowGroupWriter<Vec<u8>>> {
        let mut writer = self.writer(Vec::with_capacity(capacity), None)?;
        if let Some(ack) = ack_max {
            writer
                .append_key_value_metadata(KeyValue::new(ACK_MAX_KEY.to_string(), ack.to_string()));
        }
        if let Some(p) = positions {
            writer.append_key_value_metadata(KeyValue::new(
                crate::POSITIONS_KEY.to_string(),
                p.to_string(),
            ));
        }
        Ok(writer)
    }

    /// One file of `batches`' rows in sort order. Batches of more than `whole_up_to` bytes
    /// of Arrow memory are gathered and encoded [`SORTED_SLICE_ROWS`] at a time, so the flush
    /// holds one slice's sorted copy, not a copy of all its rows: a rollup's window close
    /// hands over hundreds of MiB at once (1M series at 1.1M dp/s, runs with a window close:
    /// peak RSS 965 / 993 → 795 MiB with the rollup's exact builder sizes). A flush of the
    /// usual size is gathered in one go: slices cost it ~1.5% more instructions.
    pub(crate) fn encode_sorted(
        &self,
        batches: &[RecordBatch],
        ack_max: Option<u64>,
        positions: Option<&str>,
        whole_up_to: usize,
    ) -> Result<EncodedFile> {
        self.encode_sorted_in(batches, ack_max, positions, whole_up_to, SORTED_SLICE_ROWS)
    }

    /// [`FileEncoder::encode_sorted`] with slices of `slice_rows`.
    fn encode_sorted_in(
        &self,
        batches: &[RecordBatch],
        ack_max: Option<u64>,
        positions: Option<&str>,
        whole_up_to: usize,
        slice_rows: usize,
    ) -> Result<EncodedFile> {
        let order = self.sorted_rows(batches)?;
        let memory: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let slice_rows = if memory > whole_up_to {
            slice_rows.max(1)
        } else {
            order.len().max(1)
        };
        let mut writer = self.file_writer(memory / 4, ack_max, positions)?;
        let sources = crate::take_rows::Sources::new(&self.schema, batches)?;
        let (mut min_time, mut max_time) = (None::<i64>, None::<i64>);
        for slice in order.chunks(slice_rows) {
            let sorted = sources.take(slice)?;
            let times = sorted
                .column(self.time_col)
                .as_primitive::<TimestampNanosecondType>();
            if let Some(t) = arrow::compute::min(times) {
                min_time = Some(min_time.map_or(t, |m| m.min(t)));
            }
            if let Some(t) = arrow::compute::max(times) {
                max_time = Some(max_time.map_or(t, |m| m.max(t)));
            }
            writer.write(&sorted)?;
        }
        writer.finish()?;
        Ok(EncodedFile {
            bytes: Bytes::from(writer.take_written()?),
            min_time: min_time.unwrap_or(0),
            max_time: max_time.unwrap_or(0),
            rows: order.len() as u64,
        })
    }

    /// The sort permutation of the batches' rows taken as one, by the general multi-column sort
    /// (any key types, nulls last) over their concatenated key columns.
    fn general_sort_order(&self, batches: &[RecordBatch]) -> Result<Vec<u32>> {
        let columns = self
            .sort_keys
            .iter()
            .map(|&i| {
                let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
                let values = match parts.as_slice() {
                    [] => new_empty_array(self.schema.field(i).data_type()),
                    parts => concat(parts)?,
                };
                Ok(SortColumn {
                    values,
                    options: Some(SortOptions {
                        descending: false,
                        nulls_first: false,
                    }),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(lexsort_to_indices(&columns, None)?.values().to_vec())
    }

    /// The sort permutation of the batches' rows taken as one, for the usual key shape (string
    /// keys, then a u64 series id, then the time), or `None` for other shapes, for null keys,
    /// and when the string keys' ranks do not fit in 64 bits together.
    ///
    /// Each string key is replaced by its rank among the distinct values, and the ranks are
    /// packed into one u64, so the sort compares fixed-width keys instead of strings: the
    /// string compares of the general multi-column sort were about a tenth of the server's CPU
    /// under load. Rows are then grouped by series rather than sorted one by one (see
    /// `sort_order.rs`). Ties keep input order, so the result is deterministic and equals the
    /// general sort's order.
    fn packed_sort_order(&self, batches: &[RecordBatch]) -> Option<Vec<u32>> {
        let (&t, rest) = self.sort_keys.split_last()?;
        let (&id, string_keys) = rest.split_last()?;
        let n: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let any_null = batches
            .iter()
            .any(|b| self.sort_keys.iter().any(|&k| b.column(k).null_count() > 0));
        if any_null || u32::try_from(n).is_err() {
            return None;
        }
        let (mut ids, mut times) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for b in batches {
            ids.extend_from_slice(b.column(id).as_primitive_opt::<UInt64Type>()?.values());
            let time = b.column(t).as_primitive_opt::<TimestampNanosecondType>()?;
            times.extend_from_slice(time.values());
        }
        // Each key takes as many bits as its largest rank needs.
        let ranks: Vec<(Vec<u32>, u32)> = string_keys
            .iter()
            .map(|&k| {
                let strings: Vec<&StringArray> = batches
                    .iter()
                    .map(|b| b.column(k).as_string_opt::<i32>())
                    .collect::<Option<_>>()?;
                let (ranks, distinct) = string_ranks(&strings);
                let bits = u32::BITS - (distinct.max(1) as u32 - 1).leading_zeros();
                Some((ranks, bits))
            })
            .collect::<Option<_>>()?;
        if ranks.iter().map(|(_, bits)| bits).sum::<u32>() > u64::BITS {
            return None;
        }
        let mut packed = vec![0_u64; n];
        for (r, bits) in &ranks {
            // `bits` is at most 32 (ranks are u32), so the shift never overflows.
            for (p, &r) in packed.iter_mut().zip(r) {
                *p = (*p << bits) | u64::from(r);
            }
        }
        Some(series_time_order(&packed, &ids, &times))
    }
}

impl FileEncoder {
    /// Sort key column indices in the table schema, most significant first.
    pub(crate) fn sort_keys(&self) -> &[usize] {
        &self.sort_keys
    }

    /// A writer of one of the table's files into `sink`, with zstd at `zstd_level` instead of
    /// the table's codec, and pages of [`COMPACTED_PAGE_BYTES`], when given (compaction).
    pub(crate) fn writer<W: Write + Send>(
        &self,
        sink: W,
        zstd_level: Option<i32>,
    ) -> Result<RowGroupWriter<W>> {
        let at_level = |p: &WriterProperties| -> Result<WriterProperties> {
            Ok(match zstd_level {
                Some(level) => p
                    .clone()
                    .into_builder()
                    .set_compression(zstd(level)?)
                    .set_data_page_size_limit(COMPACTED_PAGE_BYTES)
                    .build(),
                None => p.clone(),
            })
        };
        let mut layout = self.layout.clone();
        if let Some((_, dict)) = layout.value_dict.as_mut() {
            *dict = at_level(dict)?;
        }
        RowGroupWriter::try_new(
            sink,
            SchemaRef::clone(&self.schema),
            at_level(&self.props)?,
            layout,
        )
    }

    /// Encodes an already sorted batch as a complete Parquet file (tests; flushes use
    /// [`FileEncoder::encode_sorted`]).
    #[cfg(test)]
    pub(crate) fn encode(
        &self,
        batch: &RecordBatch,
        ack_max: Option<u64>,
        positions: Option<&str>,
    ) -> Result<Bytes> {
        let mut writer = self.file_writer(batch.get_array_memory_size() / 4, ack_max, positions)?;
        writer.write(batch)?;
        writer.finish()?;
        Ok(Bytes::from(writer.take_written()?))
    }
}

/// Key-value metadata key: the highest edge position (WAL sequence number) whose rows the file
/// holds. Every row of the file's hour from a delivery at or below it is in this file or an
/// earlier one, which is what makes WAL replay idempotent.
pub const ACK_MAX_KEY: &str = "phoenix.ack_max";

/// Encoding of the `value` column (`None`: dictionary with plain fallback); per row group,
/// the writer keeps a dictionary instead when that is smaller (see `row_groups.rs`).
///
/// BYTE_STREAM_SPLIT puts the same byte of every double together, so zstd sees long runs of
/// equal sign/exponent bytes; on the realistic sample in the tests it makes the whole file less
/// than half the size of dictionary encoding (see `value_encoding_choice_is_smaller`).
const VALUE_ENCODING: Option<Encoding> = Some(Encoding::BYTE_STREAM_SPLIT);

/// zstd at `level` (1..=22).
fn zstd(level: i32) -> Result<Compression> {
    Ok(Compression::ZSTD(ZstdLevel::try_new(level)?))
}

/// The codec of a flushed file under `cfg` (`storage.flush_compression`).
pub(crate) fn flush_codec(cfg: &StorageConfig) -> Result<Compression> {
    match cfg.flush_compression {
        FlushCompression::Lz4 => Ok(Compression::LZ4_RAW),
        FlushCompression::Zstd => zstd(cfg.zstd_level),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{metrics_batch, TestPoint};
    use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use phoenix_model::metrics_schema;
    use phoenix_model::schema::kind;
    use std::ops::Range;

    fn encoder(value_encoding: Option<Encoding>, row_group_rows: usize) -> FileEncoder {
        FileEncoder::with_value_encoding(
            &metrics_schema(),
            0,
            zstd(3).expect("zstd level"),
            row_group_rows,
            value_encoding,
        )
        .expect("encoder")
    }

    /// A day of 10 s samples for 200 series: half slowly moving gauges with two decimals,
    /// half monotonically increasing counters.
    fn realistic() -> RecordBatch {
        let mut points = Vec::new();
        for s in 0..200_u32 {
            let metric = if s % 2 == 0 {
                "cpu.utilization"
            } else {
                "http.requests"
            };
            let service = format!("svc-{}", s % 7);
            let mut v = f64::from(s % 50);
            for t in 0..360_i64 {
                v = if s % 2 == 0 {
                    ((v + f64::from((s * 7 + t as u32) % 5) * 0.25 - 0.5) * 100.0).round() / 100.0
                } else {
                    v + f64::from((s + t as u32) % 13)
                };
                let mut p = TestPoint::gauge(
                    metric,
                    &service,
                    1_700_000_000_000_000_000 + t * 10_000_000_000,
                    v,
                );
                p.series_id = u64::from(s).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                points.push(p.attr("instance", &format!("i-{s}")));
            }
        }
        metrics_batch(&points)
    }

    /// The packed fast path gives exactly the general multi-column sort's order, on rows with
    /// many ties in every key (shuffled, so neither input order nor grouping helps), split
    /// over several batches.
    #[test]
    fn packed_sort_equals_general_sort() {
        let mut points = Vec::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for i in 0..5_000_u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let metric = ["m.b", "m.a", "m.ab", "m", "z"][(x % 5) as usize];
            let service = ["svc", "api", "", "api2"][((x >> 8) % 4) as usize];
            let mut p = TestPoint::gauge(metric, service, ((x >> 16) % 7) as i64, i as f64);
            p.series_id = (x >> 24) % 11;
            points.push(p);
        }
        let batch = metrics_batch(&points);
        // Several batches, one empty: the order is over their rows taken as one.
        let parts = [
            batch.slice(0, 1_700),
            batch.slice(1_700, 0),
            batch.slice(1_700, 3_300),
        ];
        let enc = encoder(None, 1024);
        let packed = enc
            .packed_sort_order(&parts)
            .expect("metrics shape takes the fast path");
        let general = enc.general_sort_order(&parts).expect("lexsort");
        let key = |idx: &[u32]| -> Vec<(String, String, u64, i64)> {
            let idx = UInt32Array::from(idx.to_vec());
            let b = arrow::compute::take_record_batch(&batch, &idx).expect("take");
            let m = b
                .column_by_name("metric")
                .expect("m")
                .as_string::<i32>()
                .clone();
            let s = b
                .column_by_name("service")
                .expect("s")
                .as_string::<i32>()
                .clone();
            let id = b
                .column_by_name("series_id")
                .expect("id")
                .as_primitive::<UInt64Type>()
                .clone();
            let t = b
                .column(0)
                .as_primitive::<TimestampNanosecondType>()
                .clone();
            (0..b.num_rows())
                .map(|i| {
                    (
                        m.value(i).into(),
                        s.value(i).into(),
                        id.value(i),
                        t.value(i),
                    )
                })
                .collect()
        };
        let (a, b) = (key(&packed), key(&general));
        assert!(a.windows(2).all(|w| w[0] <= w[1]), "packed order is sorted");
        assert_eq!(a, b);
    }

    /// `batch` sorted by `enc`.
    fn sort(enc: &FileEncoder, batch: &RecordBatch) -> RecordBatch {
        enc.sort_batches(std::slice::from_ref(batch)).expect("sort")
    }

    /// `batches` concatenated, then reordered by the packed sort of the whole: what the flush
    /// did before it sorted the batches without concatenating them.
    fn sort_of_concat(enc: &FileEncoder, batches: &[RecordBatch]) -> RecordBatch {
        let all = arrow::compute::concat_batches(&metrics_schema(), batches).expect("concat");
        let order = enc
            .packed_sort_order(std::slice::from_ref(&all))
            .expect("fast path");
        arrow::compute::take_record_batch(&all, &UInt32Array::from(order)).expect("take")
    }

    /// Points of series `series` (two metrics, three services, `s % 4` attributes) at times
    /// `times`; sums instead of gauges when `counter`.
    fn series_points(series: Range<u32>, times: Range<i64>, counter: bool) -> RecordBatch {
        let mut points = Vec::new();
        for t in times {
            for s in series.clone() {
                let metric = ["b.metric", "a.metric"][s as usize % 2];
                let service = format!("svc-{}", s % 3);
                let mut p = TestPoint::gauge(metric, &service, t * 10, f64::from(s) + t as f64)
                    .resource("host", &format!("h{}", s % 5));
                p.series_id = u64::from(s).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                for k in 0..s % 4 {
                    p = p.attr(&format!("k{k}"), &format!("v{s}.{k}"));
                }
                points.push(if counter { p.counter() } else { p });
            }
        }
        metrics_batch(&points)
    }

    /// `batch` with attribute maps of `row % 4` entries, every third value null.
    fn null_valued_attributes(batch: &RecordBatch) -> RecordBatch {
        let mut columns = batch.columns().to_vec();
        columns[batch
            .schema()
            .index_of(col::ATTRIBUTES)
            .expect("attributes")] = crate::testing::map_with_null_values(batch.num_rows(), "n");
        RecordBatch::try_new(batch.schema(), columns).expect("same schema")
    }

    /// Sorting several batches gives exactly the rows, order and Arrow data of sorting their
    /// concatenation: different series, series repeated across batches (later batches with
    /// earlier times, and equal times whose ties keep batch order), maps with different entry
    /// counts and null values, sliced and empty batches, and columns constant within each
    /// batch but different between them (`kind`, `temporality`, `monotonic`); a list of one
    /// batch too.
    /// A flush gathered and encoded a slice at a time writes the same file as the whole
    /// sorted batch encoded at once, and reports its rows and time range.
    #[test]
    fn sliced_flush_writes_the_same_file() {
        // Row groups of 5,000 rows (and cut where the kind changes) span slice boundaries.
        let enc = encoder(VALUE_ENCODING, 5_000);
        // Gauges (sorted first) hold the earliest times, sums the latest: each end of the
        // time range is in another slice.
        let batches = [
            series_points(0..300, 0..20, false),
            series_points(100..400, 50..60, true),
            null_valued_attributes(&series_points(50..150, 20..30, false)),
            series_points(0..200, 60..65, true),
        ];
        let whole = enc.sort_batches(&batches).expect("sort");
        let want = enc.encode(&whole, Some(9), Some("p")).expect("encode");
        let times = whole.column(0).as_primitive::<TimestampNanosecondType>();
        for slice in [4096, 5000, usize::MAX] {
            let got = enc
                .encode_sorted_in(&batches, Some(9), Some("p"), 0, slice)
                .expect("sliced");
            assert_eq!(got.rows, whole.num_rows() as u64);
            assert_eq!(Some(got.min_time), arrow::compute::min(times));
            assert_eq!(Some(got.max_time), arrow::compute::max(times));
            if slice == usize::MAX {
                // One slice writes the very same file. Smaller slices may cut pages elsewhere
                // (a page ends at the first write batch past its size, and map leaves have
                // several values per row), so they are compared by content below.
                assert_eq!(got.bytes, want, "slice {slice}");
            }
            let read: Vec<RecordBatch> =
                parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(got.bytes, 7_777)
                    .expect("reader")
                    .collect::<std::result::Result<_, _>>()
                    .expect("read");
            let read = arrow::compute::concat_batches(&whole.schema(), &read).expect("concat");
            assert_eq!(read, whole, "slice {slice}");
        }
    }

    #[test]
    fn sort_batches_equals_sort_of_concat() {
        let enc = encoder(None, 1024);
        let batches = [
            series_points(0..10, 5..8, false),
            series_points(20..26, 0..4, true).slice(3, 15),
            null_valued_attributes(&series_points(4..14, 0..6, false)).slice(7, 40),
            series_points(0..3, 6..7, false),
            series_points(0..10, 0..1, false).slice(4, 0),
            series_points(20..22, 9..10, true),
        ];
        let sorted = enc.sort_batches(&batches).expect("sort_batches");
        assert_eq!(sorted, sort_of_concat(&enc, &batches));
        assert_eq!(sorted.num_rows(), 30 + 15 + 40 + 3 + 2);
        for c in sorted.columns() {
            c.to_data().validate_full().expect("valid column");
        }
        let kinds = sorted.column_by_name(col::KIND).expect("kind");
        let kinds: Vec<&str> = kinds.as_string::<i32>().iter().flatten().collect();
        assert_eq!(kinds.iter().filter(|k| **k == kind::SUM).count(), 17);

        for one in [&batches[2], &batches[1]] {
            let alone = enc.sort_batches(std::slice::from_ref(one)).expect("one");
            assert_eq!(alone, sort_of_concat(&enc, std::slice::from_ref(one)));
            for c in alone.columns() {
                c.to_data().validate_full().expect("valid column");
            }
        }
        assert_eq!(enc.sort_batches(&[]).expect("none").num_rows(), 0);
    }

    /// Sorting and encoding spread over threads give exactly what one thread gives: the same
    /// sorted batch and the same file bytes, for several batches mixing kinds, maps with null
    /// values and slices, with the `value` dictionary trial on.
    #[test]
    fn threads_give_the_same_sort_and_file() {
        use crate::parallel::FORCE_THREADS;
        let enc = encoder(None, 4096);
        let batches = [
            series_points(0..300, 0..40, false),
            null_valued_attributes(&series_points(100..400, 40..80, true)).slice(5, 9000),
            series_points(0..50, 80..90, false),
        ];
        let run = |threads| {
            FORCE_THREADS.with(|f| f.set(Some(threads)));
            let sorted = enc.sort_batches(&batches).expect("sort_batches");
            let file = enc.encode(&sorted, None, None).expect("encode");
            FORCE_THREADS.with(|f| f.set(None));
            (sorted, file)
        };
        let (serial, serial_file) = run(1);
        let (parallel, parallel_file) = run(3);
        assert_eq!(serial, sort_of_concat(&enc, &batches));
        assert_eq!(parallel, serial);
        assert_eq!(parallel_file, serial_file);
        // And the file holds exactly the sorted rows.
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(parallel_file)
                .expect("parquet")
                .with_batch_size(1 << 20)
                .build()
                .expect("reader");
        let read: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("batches");
        let read = arrow::compute::concat_batches(&read[0].schema(), &read).expect("concat");
        assert_eq!(read.num_rows(), parallel.num_rows());
        for (got, want) in read.columns().iter().zip(parallel.columns()) {
            assert_eq!(got.to_data(), want.to_data());
        }
    }

    /// A schema off the fast path (a nullable `metric` holding nulls) sorts several batches
    /// with the general sort, exactly as sorting their concatenation does.
    #[test]
    fn general_sort_of_batches_equals_sort_of_concat() {
        use arrow::datatypes::{Field, Schema};
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new(col::TIME, DataType::Int64, false),
            Field::new(col::METRIC, DataType::Utf8, true),
            Field::new(
                col::ATTRIBUTES,
                phoenix_model::schema::string_map_type(),
                false,
            ),
        ]));
        let enc =
            FileEncoder::new(&schema, 0, zstd(3).expect("zstd level"), 1024).expect("encoder");
        let batch = |metrics: &[Option<&str>], t0: i64| {
            let n = metrics.len();
            let attrs = metrics_batch(
                &(0..n as i64)
                    .map(|i| TestPoint::gauge("m", "s", i, 0.0).attr("row", &format!("{t0}+{i}")))
                    .collect::<Vec<_>>(),
            );
            RecordBatch::try_new(
                SchemaRef::clone(&schema),
                vec![
                    std::sync::Arc::new(arrow::array::Int64Array::from_iter_values(
                        (0..n as i64).map(|i| t0 - i),
                    )),
                    std::sync::Arc::new(StringArray::from(metrics.to_vec())),
                    ArrayRef::clone(attrs.column_by_name(col::ATTRIBUTES).expect("attributes")),
                ],
            )
            .expect("batch")
        };
        let batches = [
            batch(&[Some("b"), None, Some("a"), Some("b")], 10),
            batch(&[None, Some("a"), Some("c")], 20).slice(1, 2),
            batch(&[Some("a"), Some("b"), None], 5),
        ];
        assert!(enc.packed_sort_order(&batches).is_none(), "null keys");
        let all = arrow::compute::concat_batches(&schema, &batches).expect("concat");
        let order = enc
            .general_sort_order(std::slice::from_ref(&all))
            .expect("lexsort");
        let want =
            arrow::compute::take_record_batch(&all, &UInt32Array::from(order)).expect("take");
        let got = enc.sort_batches(&batches).expect("sort_batches");
        assert_eq!(got, want);
        for c in got.columns() {
            c.to_data().validate_full().expect("valid column");
        }
    }

    /// Sorting orders rows by metric, service, series and time.
    #[test]
    fn sorts_by_series_then_time() {
        let batch = metrics_batch(&[
            TestPoint::gauge("b", "s", 5, 1.0),
            TestPoint::gauge("a", "s", 9, 2.0),
            TestPoint::gauge("a", "s", 3, 3.0),
            TestPoint::gauge("a", "r", 7, 4.0),
        ]);
        let sorted = sort(&encoder(None, 1024), &batch);
        let values: Vec<f64> = sorted
            .column_by_name("value")
            .expect("value")
            .as_primitive::<arrow::datatypes::Float64Type>()
            .values()
            .to_vec();
        assert_eq!(values, [4.0, 3.0, 2.0, 1.0]);
    }

    /// Files carry sorting columns, the schema version, delta-encoded times and bounded row groups.
    #[test]
    fn file_metadata() {
        let enc = encoder(VALUE_ENCODING, 10_000);
        let batch = sort(&enc, &realistic());
        let bytes = enc.encode(&batch, None, None).expect("encode");
        let options = parquet::file::serialized_reader::ReadOptionsBuilder::new()
            .with_page_index()
            .build();
        let reader = SerializedFileReader::new_with_options(bytes, options).expect("parquet");
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), batch.num_rows() as i64);
        assert_eq!(meta.num_row_groups(), batch.num_rows().div_ceil(10_000));
        let kv = meta
            .file_metadata()
            .key_value_metadata()
            .expect("kv metadata");
        assert!(kv.iter().any(|k| k.key == SCHEMA_VERSION_KEY
            && k.value.as_deref() == Some(&*SCHEMA_VERSION.to_string())));
        let rg = meta.row_group(0);
        let sorting = rg.sorting_columns().expect("sorting columns");
        let names: Vec<String> = sorting
            .iter()
            .map(|s| rg.column(s.column_idx as usize).column_path().string())
            .collect();
        assert_eq!(names, ["kind", "metric", "service", "series_id", "time"]);
        let time = rg.column(0);
        assert_eq!(time.column_path().string(), "time");
        assert!(
            time.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED),
            "{:?}",
            time.encodings().collect::<Vec<_>>()
        );
        assert!(time.dictionary_page_offset().is_none());
        assert!(
            meta.column_index().is_some(),
            "page-level statistics (column index) are written"
        );
        assert!(batch.column(0).null_count() == 0);
    }

    /// Map keys and values are written plain (no dictionary page) and without statistics;
    /// low-cardinality strings are plain, `kind` with statistics, `unit` and `scope` without;
    /// `metric` and `service` plain with statistics; and the map entries read back as written.
    #[test]
    fn map_leaves_are_plain_without_statistics() {
        let enc = encoder(VALUE_ENCODING, 1024 * 1024);
        let batch = sort(&enc, &realistic());
        let bytes = enc.encode(&batch, None, None).expect("encode");
        let reader = SerializedFileReader::new(bytes.clone()).expect("parquet");
        let rg = reader.metadata().row_group(0);
        let mut map_leaves = 0;
        for c in rg.columns() {
            let path = c.column_path().string();
            if path.starts_with("attributes.") || path.starts_with("resource.") {
                map_leaves += 1;
                assert!(
                    c.dictionary_page_offset().is_none(),
                    "{path} has a dictionary"
                );
                assert!(c.statistics().is_none(), "{path} has statistics");
            } else if path == "metric" || path == "service" {
                assert!(
                    c.dictionary_page_offset().is_none(),
                    "{path} has a dictionary"
                );
                assert!(c.statistics().is_some(), "{path} lost its statistics");
            } else if path == "kind" || path == "unit" || path == "scope" {
                assert!(
                    c.dictionary_page_offset().is_none(),
                    "{path} has a dictionary"
                );
                assert_eq!(
                    c.statistics().is_some(),
                    path == "kind",
                    "{path}: statistics"
                );
            }
        }
        assert_eq!(map_leaves, 4, "keys and values of both maps");
        let read: Vec<RecordBatch> =
            parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(bytes, 1 << 20)
                .expect("reader")
                .collect::<std::result::Result<_, _>>()
                .expect("read");
        let read = arrow::compute::concat_batches(&batch.schema(), &read).expect("concat");
        for name in ["attributes", "resource"] {
            assert_eq!(
                read.column_by_name(name).expect("read").to_data(),
                batch.column_by_name(name).expect("written").to_data(),
                "{name}"
            );
        }
    }

    /// Largest data page (uncompressed bytes) of any column in `file`.
    fn largest_page(file: &Bytes) -> usize {
        let reader = SerializedFileReader::new(file.clone()).expect("parquet");
        let mut largest = 0;
        for g in 0..reader.num_row_groups() {
            let rg = reader.get_row_group(g).expect("row group");
            for c in 0..rg.num_columns() {
                for page in rg.get_column_page_reader(c).expect("pages") {
                    let page = page.expect("page");
                    if matches!(page.page_type(), parquet::basic::PageType::DATA_PAGE) {
                        largest = largest.max(page.buffer().len());
                    }
                }
            }
        }
        largest
    }

    /// Flushed files are written in pages of about `FLUSH_PAGE_BYTES` (a page ends at the
    /// first write batch past it); compaction keeps Parquet's larger pages, which zstd
    /// compresses better.
    #[test]
    fn flush_pages_are_small_and_compacted_pages_large() {
        let batch = regular_size::regular(200, 360, false);
        let enc = encoder(VALUE_ENCODING, 1024 * 1024);
        let flushed = enc.encode(&sort(&enc, &batch), None, None).expect("encode");
        let compacted = regular_size::encode(&enc, &batch);
        let (small, large) = (largest_page(&flushed), largest_page(&compacted));
        assert!(
            small <= 2 * FLUSH_PAGE_BYTES,
            "flushed page of {small} bytes"
        );
        assert!(
            large > 2 * FLUSH_PAGE_BYTES,
            "compacted page of {large} bytes"
        );
    }

    /// Measurement, not a check: bytes per datapoint by column of regular data, flush-sized
    /// and hour-compacted, under candidate settings (`cargo test --release -p phoenix-storage
    /// --lib bytes_per_datapoint -- --ignored --nocapture`).
    #[test]
    #[ignore = "measurement; prints a table"]
    fn bytes_per_datapoint() {
        type Tweak = fn(&mut FileEncoder);
        let variants: [(&str, Tweak); 2] = [
            ("value BYTE_STREAM_SPLIT only", |e| {
                e.layout.value_dict = None
            }),
            ("value encoding chosen per row group", |_| {}),
        ];
        let mode = std::env::var("PHOENIX_SAMPLE").unwrap_or_else(|_| "both".into());
        let samples: Vec<(&str, u64, i64, bool)> = [
            ("flush 100k x 5", 100_000, 5, false),
            ("hour 20k x 360", 20_000, 360, false),
            ("hour 20k x 360 random gauges", 20_000, 360, true),
            ("test 1k x 360", 1_000, 360, false),
            ("test 1k x 360 random gauges", 1_000, 360, true),
        ]
        .into_iter()
        .filter(|s| mode == "both" || mode.split(',').any(|m| s.0 == m))
        .collect();
        for (label, series, points, random) in samples {
            let batch = regular_size::regular(series, points, random);
            for (name, tweak) in variants {
                let mut enc = encoder(VALUE_ENCODING, 1024 * 1024);
                tweak(&mut enc);
                let file = regular_size::encode(&enc, &batch);
                regular_size::report(&format!("{label} / {name}"), &file, batch.num_rows());
            }
        }
    }

    /// An hour of regular data (1,000 aligned series × 360 points, two-decimal gauges and
    /// integer counters) encodes in under 2 bytes per datapoint (1.93; 3.47 with
    /// BYTE_STREAM_SPLIT alone), and full-precision random gauges are no larger than that.
    #[test]
    fn regular_hour_bytes_per_datapoint() {
        let size = |random: bool, choose: bool| {
            let batch = regular_size::regular(1_000, 360, random);
            let mut enc = encoder(VALUE_ENCODING, 1024 * 1024);
            if !choose {
                enc.layout.value_dict = None;
            }
            let file = regular_size::encode(&enc, &batch);
            file.len() as f64 / batch.num_rows() as f64
        };
        let regular = size(false, true);
        assert!(regular < 2.0, "regular: {regular:.3} bytes per datapoint");
        assert!(regular < 0.7 * size(false, false), "{regular:.3}");
        let (random, random_before) = (size(true, true), size(true, false));
        assert!(
            random <= random_before,
            "random: {random:.3} > {random_before:.3}"
        );
    }

    /// Row groups end where the kind changes and at the row limit; each picks its own `value`
    /// encoding (a dictionary for two-decimal gauges, BYTE_STREAM_SPLIT for integer counters),
    /// never larger than either choice for the whole file, and every value reads back exactly.
    #[test]
    fn value_encoding_is_chosen_per_kind_row_group() {
        let batch = regular_size::regular(400, 120, false);
        let enc = encoder(VALUE_ENCODING, 20_000);
        let sorted = sort(&enc, &batch);
        let file = enc.encode(&sorted, None, None).expect("encode");
        let reader = SerializedFileReader::new(file.clone()).expect("parquet");
        let meta = reader.metadata();
        // 200 gauge series and 200 counter series × 120 points: 24,000 rows of each kind,
        // so each kind fills one group of 20,000 rows and one of 4,000.
        let groups: Vec<(String, i64, bool)> = meta
            .row_groups()
            .iter()
            .map(|rg| {
                let column = |name: &str| {
                    rg.columns()
                        .iter()
                        .find(|c| c.column_path().string() == name)
                        .expect("column")
                };
                let kind = column(col::KIND).statistics().expect("kind statistics");
                let (min, max) = match kind {
                    parquet::file::statistics::Statistics::ByteArray(s) => (
                        s.min_opt()
                            .expect("min")
                            .as_utf8()
                            .expect("utf8")
                            .to_string(),
                        s.max_opt()
                            .expect("max")
                            .as_utf8()
                            .expect("utf8")
                            .to_string(),
                    ),
                    other => panic!("kind statistics {other:?}"),
                };
                assert_eq!(min, max, "one kind per row group");
                let dictionary = column(col::VALUE).dictionary_page_offset().is_some();
                (min, rg.num_rows(), dictionary)
            })
            .collect();
        let expected = [
            (kind::GAUGE, 20_000, true),
            (kind::GAUGE, 4_000, true),
            (kind::SUM, 20_000, false),
            (kind::SUM, 4_000, false),
        ];
        let expected: Vec<(String, i64, bool)> = expected
            .iter()
            .map(|(k, n, d)| (k.to_string(), *n, *d))
            .collect();
        assert_eq!(groups, expected);

        let whole_file = |dict: bool| {
            let mut e = encoder(if dict { None } else { VALUE_ENCODING }, 20_000);
            e.layout.value_dict = None;
            e.encode(&sorted, None, None).expect("encode").len()
        };
        let (bss, dict) = (whole_file(false), whole_file(true));
        assert!(
            file.len() < bss.min(dict),
            "per group {}, BYTE_STREAM_SPLIT {bss}, dictionary {dict}",
            file.len()
        );

        let read: Vec<RecordBatch> =
            parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1 << 20)
                .expect("reader")
                .collect::<std::result::Result<_, _>>()
                .expect("read");
        let read = arrow::compute::concat_batches(&sorted.schema(), &read).expect("concat");
        assert_eq!(read, sorted);
    }

    /// The chosen `value` encoding is no larger than the alternative on realistic data.
    #[test]
    fn value_encoding_choice_is_smaller() {
        let batch = realistic();
        let size = |e: Option<Encoding>| {
            let enc = encoder(e, 1024 * 1024);
            enc.encode(&sort(&enc, &batch), None, None)
                .expect("encode")
                .len()
        };
        let dict = size(None);
        let bss = size(Some(Encoding::BYTE_STREAM_SPLIT));
        let chosen = size(VALUE_ENCODING);
        eprintln!("value column: dictionary {dict} bytes, byte_stream_split {bss} bytes");
        assert!(
            chosen <= dict.min(bss),
            "chosen {chosen}, dictionary {dict}, bss {bss}"
        );
    }
}

/// Bytes per datapoint of regular (aligned, bounded-precision) gauges and counters, by column.
#[cfg(test)]
mod regular_size {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow::array::{
        new_null_array, ArrayRef, BooleanArray, Float64Array, MapBuilder, RecordBatch, StringArray,
        StringBuilder, TimestampNanosecondArray, UInt32Array, UInt64Array,
    };
    use bytes::Bytes;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use phoenix_model::metrics_schema;
    use phoenix_model::schema::{col, kind, temporality};

    use super::FileEncoder;

    /// Scrape / export interval of the regular sample.
    const INTERVAL_NS: i64 = 10_000_000_000;
    /// First instant of the sample (on the grid).
    const T0: i64 = 1_700_000_000_000_000_000;
    /// Series per metric name.
    const SERIES_PER_METRIC: u64 = 100;

    /// SplitMix64, so samples are deterministic.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// `series` series × `points` points on a common 10 s grid, as `phoenix loadgen
    /// --timestamps aligned --decimals 2` sends them: even series are gauges (a random walk in
    /// [0, 100] rounded to 2 decimals), odd series cumulative counters (integer steps 1..=100).
    /// `random` makes gauges full-precision random walks instead.
    pub(super) fn regular(series: u64, points: i64, random: bool) -> RecordBatch {
        let schema = metrics_schema();
        let n = (series as usize) * (points as usize);
        let mut time = Vec::with_capacity(n);
        let mut start = Vec::with_capacity(n);
        let mut metric = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut temp = Vec::with_capacity(n);
        let mut mono = Vec::with_capacity(n);
        let mut service = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        let mut values = Vec::with_capacity(n);
        let mut resource = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        let mut attrs = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        let names: Vec<String> = (0..series.div_ceil(SERIES_PER_METRIC))
            .map(|m| {
                let prefix = if m.is_multiple_of(2) {
                    "loadgen.gauge"
                } else {
                    "loadgen.requests"
                };
                format!("{prefix}.{m}")
            })
            .collect();
        let mut rng = Rng(42);
        let mut state: Vec<f64> = (0..series).map(|s| (s % 100) as f64).collect();
        // Rows arrive as exporters send them: one collection (every series) per instant.
        for k in 0..points {
            for s in 0..series {
                let m = s / SERIES_PER_METRIC;
                let gauge = m.is_multiple_of(2);
                let v = &mut state[s as usize];
                let value = if gauge {
                    *v = (*v + (rng.unit() - 0.5) * 4.0).clamp(0.0, 100.0);
                    if random {
                        *v
                    } else {
                        (*v * 100.0).round() / 100.0
                    }
                } else {
                    *v += (1 + rng.next() % 100) as f64;
                    *v
                };
                time.push(T0 + k * INTERVAL_NS);
                start.push((!gauge).then_some(T0 - INTERVAL_NS));
                metric.push(names[m as usize].as_str());
                kinds.push(if gauge { kind::GAUGE } else { kind::SUM });
                temp.push((!gauge).then_some(temporality::CUMULATIVE));
                mono.push((!gauge).then_some(true));
                let svc = format!("loadgen-{}", s / 1000 % 8);
                ids.push((s ^ 0x5bd1_e995).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                values.push(Some(value));
                for (key, val) in [
                    ("service.name", svc.clone()),
                    ("host.name", format!("loadgen-host-{:05}", s / 1000)),
                ] {
                    resource.keys().append_value(key);
                    resource.values().append_value(val);
                }
                resource.append(true).expect("map");
                for (key, val) in [
                    ("series.id", format!("{s:016}")),
                    ("attr.1", format!("value-{}", s % 10)),
                    ("attr.2", format!("value-{}", s % 7)),
                ] {
                    attrs.keys().append_value(key);
                    attrs.values().append_value(val);
                }
                attrs.append(true).expect("map");
                service.push(svc);
            }
        }
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|field| -> ArrayRef {
                match field.name().as_str() {
                    col::TIME => Arc::new(
                        TimestampNanosecondArray::from(std::mem::take(&mut time))
                            .with_timezone("UTC"),
                    ),
                    col::START_TIME => Arc::new(
                        TimestampNanosecondArray::from(std::mem::take(&mut start))
                            .with_timezone("UTC"),
                    ),
                    col::METRIC => Arc::new(StringArray::from(std::mem::take(&mut metric))),
                    col::KIND => Arc::new(StringArray::from(std::mem::take(&mut kinds))),
                    col::TEMPORALITY => Arc::new(StringArray::from(std::mem::take(&mut temp))),
                    col::MONOTONIC => Arc::new(BooleanArray::from(std::mem::take(&mut mono))),
                    col::UNIT => Arc::new(StringArray::from(vec!["1"; n])),
                    col::SERVICE => Arc::new(StringArray::from(std::mem::take(&mut service))),
                    col::RESOURCE => Arc::new(resource.finish()),
                    col::SCOPE => Arc::new(StringArray::from(vec!["phoenix-loadgen"; n])),
                    col::ATTRIBUTES => Arc::new(attrs.finish()),
                    col::SERIES_ID => Arc::new(UInt64Array::from(std::mem::take(&mut ids))),
                    col::VALUE => Arc::new(Float64Array::from(std::mem::take(&mut values))),
                    col::SAMPLE_RATE => Arc::new(Float64Array::from(vec![1.0; n])),
                    col::FLAGS => Arc::new(UInt32Array::from(vec![0; n])),
                    _ => new_null_array(field.data_type(), n),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).expect("batch")
    }

    /// `batch` sorted and written as compaction writes an hour (zstd 3, its page size).
    pub(super) fn encode(enc: &FileEncoder, batch: &RecordBatch) -> Bytes {
        let sorted = enc.sort_batches(std::slice::from_ref(batch)).expect("sort");
        let mut writer = enc.writer(Vec::new(), Some(3)).expect("writer");
        writer.write(&sorted).expect("write");
        writer.finish().expect("finish");
        Bytes::from(writer.take_written().expect("bytes"))
    }

    /// Compressed bytes per top-level column (map leaves summed), plus `(total file)`.
    pub(super) fn by_column(file: &Bytes) -> BTreeMap<String, u64> {
        let reader = SerializedFileReader::new(file.clone()).expect("parquet");
        let mut out = BTreeMap::new();
        for rg in reader.metadata().row_groups() {
            for c in rg.columns() {
                let path = c.column_path().parts();
                let name = match path.first().map(String::as_str) {
                    Some(top @ (col::ATTRIBUTES | col::RESOURCE)) => {
                        format!("{top}.{}", path.last().map_or("", String::as_str))
                    }
                    Some(top) => top.to_string(),
                    None => continue,
                };
                *out.entry(name).or_insert(0) += c.compressed_size() as u64;
            }
        }
        out.insert("(total file)".into(), file.len() as u64);
        out
    }

    /// Prints bytes per datapoint by column.
    pub(super) fn report(label: &str, file: &Bytes, rows: usize) {
        eprintln!("== {label}: {rows} rows, {} bytes", file.len());
        for (name, bytes) in by_column(file) {
            let per = bytes as f64 / rows as f64;
            if per >= 0.005 {
                eprintln!("| `{name}` | {per:.3} |");
            }
        }
    }
}
