//! Turns buffered batches into one Parquet file: sort, then encode with per-column settings.

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{lexsort_to_indices, take_record_batch, SortColumn, SortOptions};
use arrow::datatypes::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use phoenix_model::schema::{col, SCHEMA_VERSION};

use crate::{Result, SCHEMA_VERSION_KEY};

/// Columns files are sorted by, in order, when the table has them; the time column comes last.
const SORT_PREFIX: [&str; 3] = [col::METRIC, col::SERVICE, col::SERIES_ID];

/// How a table's files are encoded.
#[derive(Debug, Clone)]
pub(crate) struct FileEncoder {
    /// Sort key column indices in the table schema.
    sort_keys: Vec<usize>,
    /// Writer settings shared by every file of the table.
    props: WriterProperties,
}

impl FileEncoder {
    /// Settings for a table with `schema` whose time column is `time_col`.
    pub(crate) fn new(
        schema: &SchemaRef,
        time_col: usize,
        zstd_level: i32,
        row_group_rows: usize,
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
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(zstd_level)?))
            .set_max_row_group_row_count(Some(row_group_rows.max(1)))
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
                DataType::Float64 if field.name() == col::VALUE => {
                    if let Some(enc) = VALUE_ENCODING {
                        props = props
                            .set_column_dictionary_enabled(path.clone(), false)
                            .set_column_encoding(path, enc);
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            sort_keys,
            props: props.build(),
        })
    }

    /// Sorts `batch` by (metric, service, series_id, time).
    ///
    /// Sorting groups each series' points together, so consecutive times differ by the scrape
    /// interval (tiny deltas) and values change slowly (zstd finds the repeats); it also makes
    /// each row group cover few metrics and a narrow time span, so min/max statistics prune row
    /// groups and pages for `WHERE metric = …` and time filters.
    pub(crate) fn sort(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns: Vec<SortColumn> = self
            .sort_keys
            .iter()
            .map(|&i| SortColumn {
                values: ArrayRef::clone(batch.column(i)),
                options: Some(SortOptions {
                    descending: false,
                    nulls_first: false,
                }),
            })
            .collect();
        let indices = lexsort_to_indices(&columns, None)?;
        Ok(take_record_batch(batch, &indices)?)
    }

    /// Encodes an already sorted batch as a complete Parquet file.
    pub(crate) fn encode(&self, batch: &RecordBatch) -> Result<Bytes> {
        let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 4);
        let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(self.props.clone()))?;
        writer.write(batch)?;
        writer.close()?;
        Ok(Bytes::from(buf))
    }
}

/// Encoding of the `value` column, `None` for dictionary with plain fallback.
const VALUE_ENCODING: Option<Encoding> = None;
