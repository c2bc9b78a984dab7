//! Test helpers: `metrics` batches from `(series_id, time)` pairs, and reading them back.

use std::sync::Arc;

use arrow::array::{
    new_null_array, ArrayRef, BooleanArray, Float64Array, MapBuilder, RecordBatch, StringArray,
    StringBuilder, TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::DataType;
use phoenix_model::metrics_schema;
use phoenix_model::schema::{col, timestamp_type};

/// A gauge batch in the metrics schema with one row per `(series_id, time_ns)`; `value` is the
/// time as a float, other columns are neutral.
///
/// # Panics
/// On a schema column type this helper does not know (tests only).
pub fn metrics_batch(rows: &[(u64, i64)]) -> RecordBatch {
    let schema = metrics_schema();
    let n = rows.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.name().as_str() {
                col::SERIES_ID => Arc::new(rows.iter().map(|r| r.0).collect::<UInt64Array>()),
                col::TIME => Arc::new(
                    TimestampNanosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                        .with_timezone("UTC"),
                ),
                col::VALUE => Arc::new(rows.iter().map(|r| r.1 as f64).collect::<Float64Array>()),
                col::KIND => Arc::new(StringArray::from(vec!["gauge"; n])),
                col::METRIC => Arc::new(
                    rows.iter()
                        .map(|r| Some(format!("m{}", r.0)))
                        .collect::<StringArray>(),
                ),
                _ if f.is_nullable() => new_null_array(f.data_type(), n),
                _ => neutral(f.data_type(), n),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("test batch fits the metrics schema")
}

/// A non-null column of `n` neutral values.
fn neutral(data_type: &DataType, n: usize) -> ArrayRef {
    match data_type {
        DataType::Utf8 => Arc::new(StringArray::from(vec![""; n])),
        DataType::Float64 => Arc::new(Float64Array::from(vec![1.0; n])),
        DataType::UInt32 => Arc::new(UInt32Array::from(vec![0; n])),
        DataType::UInt64 => Arc::new(UInt64Array::from(vec![0; n])),
        DataType::Boolean => Arc::new(BooleanArray::from(vec![false; n])),
        t if *t == timestamp_type() => {
            Arc::new(TimestampNanosecondArray::from(vec![0; n]).with_timezone("UTC"))
        }
        DataType::Map(_, _) => {
            let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
            for _ in 0..n {
                b.append(true).expect("empty map entry");
            }
            Arc::new(b.finish())
        }
        other => panic!("testing::metrics_batch does not know {other}"),
    }
}

/// The `(series_id, time_ns)` pairs of a metrics batch, in row order.
///
/// # Panics
/// When the batch is not in the metrics schema (tests only).
pub fn rows_of(batch: &RecordBatch) -> Vec<(u64, i64)> {
    let ids = batch
        .column_by_name(col::SERIES_ID)
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .expect("series_id column");
    let times = batch
        .column_by_name(col::TIME)
        .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
        .expect("time column");
    (0..batch.num_rows())
        .map(|i| (ids.value(i), times.value(i)))
        .collect()
}
