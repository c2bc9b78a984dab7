//! The message format on Phoenix topics, documented so other tools can read them.
//!
//! - **Value**: one Arrow IPC *stream* (schema message, one or more record batches, end-of-stream
//!   marker) in the `metrics` table's schema ([`phoenix_model::metrics_schema`]), with IPC body
//!   compression `LZ4_FRAME` (default) or `ZSTD`, as `bus.kafka.compression` says. Any Arrow
//!   IPC stream reader decodes it (`pyarrow.ipc.open_stream(value).read_all()`).
//! - **Key**: none. The partition is chosen explicitly: `series_id % partitions`, so every
//!   datapoint of a series lands in one partition (see [`crate::partition`]).
//! - **Headers**: [`SCHEMA_VERSION_HEADER`] (decimal schema version, currently
//!   [`phoenix_model::schema::SCHEMA_VERSION`]) and [`PRODUCER_HEADER`] (`host:pid` of the
//!   producing node). Dead letters carry [`DLQ_REASON_HEADER`] and the source position too.

use std::sync::Arc;

use arrow::buffer::Buffer;
use arrow::compute::concat_batches;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow::ipc::CompressionType;
use arrow::record_batch::RecordBatch;
use phoenix_model::config::KafkaCompression;
use phoenix_model::schema::SCHEMA_VERSION;

use crate::{Error, Result};

/// Header naming the schema version of the payload (decimal).
pub const SCHEMA_VERSION_HEADER: &str = "phoenix-schema-version";
/// Header naming the node that produced the message (`host:pid`).
pub const PRODUCER_HEADER: &str = "phoenix-producer";
/// Header of a dead letter: why the message could not be processed.
pub const DLQ_REASON_HEADER: &str = "phoenix-dlq-reason";
/// Header of a dead letter: the topic it was read from.
pub const DLQ_TOPIC_HEADER: &str = "phoenix-dlq-source-topic";
/// Header of a dead letter: the partition it was read from (decimal).
pub const DLQ_PARTITION_HEADER: &str = "phoenix-dlq-source-partition";
/// Header of a dead letter: its offset in the source partition (decimal).
pub const DLQ_OFFSET_HEADER: &str = "phoenix-dlq-source-offset";

/// Encodes `batch` as one compressed Arrow IPC stream.
///
/// # Errors
/// [`Error::Payload`] when Arrow cannot write the batch.
pub fn encode(batch: &RecordBatch, compression: KafkaCompression) -> Result<Vec<u8>> {
    let codec = match compression {
        KafkaCompression::Lz4 => Some(CompressionType::LZ4_FRAME),
        KafkaCompression::Zstd => Some(CompressionType::ZSTD),
        KafkaCompression::None => None,
    };
    let options = IpcWriteOptions::default()
        .try_with_compression(codec)
        .map_err(|e| Error::Payload(format!("IPC options: {e}")))?;
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 4 + 1024);
    let mut writer = StreamWriter::try_new_with_options(&mut out, &batch.schema(), options)
        .map_err(|e| Error::Payload(format!("IPC writer: {e}")))?;
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|e| Error::Payload(format!("IPC write: {e}")))?;
    drop(writer);
    Ok(out)
}

/// Why a message could not be turned into a batch; `reason()` is the metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message has no value.
    #[error("message has no payload")]
    Empty,
    /// The schema-version header names a version this build does not read.
    #[error("unsupported schema version `{0}`")]
    Version(String),
    /// The value is not a readable Arrow IPC stream.
    #[error("not an Arrow IPC stream: {0}")]
    Ipc(String),
    /// The stream's schema is not the metrics schema.
    #[error("schema does not match the metrics table: {0}")]
    Schema(String),
}

impl DecodeError {
    /// Short reason label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::Version(_) => "schema_version",
            DecodeError::Ipc(_) => "bad_ipc",
            DecodeError::Schema(_) => "bad_schema",
        }
    }
}

/// Checks the schema-version header (absent means the current version).
///
/// # Errors
/// [`DecodeError::Version`] for a version other than the current one.
pub fn check_version(header: Option<&[u8]>) -> Result<(), DecodeError> {
    let Some(raw) = header else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(raw);
    match text.trim().parse::<u32>() {
        Ok(v) if v == SCHEMA_VERSION => Ok(()),
        _ => Err(DecodeError::Version(text.into_owned())),
    }
}

/// Decodes a message value into one batch in the metrics schema (several batches in one
/// stream are concatenated).
///
/// # Errors
/// A [`DecodeError`] saying why the value is unreadable.
pub fn decode(value: Option<&[u8]>) -> Result<RecordBatch, DecodeError> {
    let bytes = match value {
        Some(b) if !b.is_empty() => b,
        _ => return Err(DecodeError::Empty),
    };
    // The push decoder takes lengths from the bytes it has: garbage claiming a huge message
    // fails as truncated instead of allocating what it claims.
    let mut decoder = StreamDecoder::new();
    let mut buffer = Buffer::from(bytes);
    let mut batches = Vec::with_capacity(1);
    let mut checked = false;
    while !buffer.is_empty() {
        let batch = decoder
            .decode(&mut buffer)
            .map_err(|e| DecodeError::Ipc(e.to_string()))?;
        if !checked {
            if let Some(schema) = decoder.schema() {
                check_schema(&schema)?;
                checked = true;
            }
        }
        if let Some(batch) = batch {
            batches.push(batch);
        }
    }
    decoder
        .finish()
        .map_err(|e| DecodeError::Ipc(e.to_string()))?;
    let schema = decoder
        .schema()
        .ok_or_else(|| DecodeError::Ipc("stream has no schema".into()))?;
    let expected = phoenix_model::metrics_schema();
    // Batches are rebuilt on the canonical schema so its metadata matches downstream.
    let batch = if batches.len() == 1 {
        batches.swap_remove(0)
    } else if batches.is_empty() {
        RecordBatch::new_empty(schema)
    } else {
        concat_batches(&schema, &batches).map_err(|e| DecodeError::Ipc(e.to_string()))?
    };
    RecordBatch::try_new(Arc::clone(&expected), batch.columns().to_vec())
        .map_err(|e| DecodeError::Schema(e.to_string()))
}

/// Refuses a stream whose schema is not the metrics schema.
fn check_schema(schema: &arrow::datatypes::Schema) -> Result<(), DecodeError> {
    let expected = phoenix_model::metrics_schema();
    if schema.fields() == expected.fields() {
        Ok(())
    } else {
        Err(DecodeError::Schema(describe_mismatch(schema, &expected)))
    }
}

/// Names the first field that differs between two schemas.
fn describe_mismatch(got: &arrow::datatypes::Schema, want: &arrow::datatypes::Schema) -> String {
    for (i, w) in want.fields().iter().enumerate() {
        match got.fields().get(i) {
            None => return format!("column {i} `{}` is missing", w.name()),
            Some(g) if g != w => {
                return format!(
                    "column {i} is `{}` {}, expected `{}` {}",
                    g.name(),
                    g.data_type(),
                    w.name(),
                    w.data_type()
                )
            }
            Some(_) => {}
        }
    }
    format!(
        "{} columns, expected {}",
        got.fields().len(),
        want.fields().len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::metrics_batch;

    /// A batch survives encode/decode with every codec, values and schema unchanged.
    #[test]
    fn round_trip_every_codec() {
        let batch = metrics_batch(&[(1, 10), (2, 20), (3, 30)]);
        for codec in [
            KafkaCompression::Lz4,
            KafkaCompression::Zstd,
            KafkaCompression::None,
        ] {
            let bytes = encode(&batch, codec).expect("encode");
            let back = decode(Some(&bytes)).expect("decode");
            assert_eq!(back, batch, "{codec:?}");
        }
    }

    /// Compression makes repetitive batches smaller than uncompressed IPC.
    #[test]
    fn compression_shrinks() {
        let rows: Vec<(u64, i64)> = (0..2000).map(|i| (i % 7, i as i64)).collect();
        let batch = metrics_batch(&rows);
        let plain = encode(&batch, KafkaCompression::None).expect("encode");
        let lz4 = encode(&batch, KafkaCompression::Lz4).expect("encode");
        assert!(lz4.len() < plain.len(), "{} vs {}", lz4.len(), plain.len());
    }

    /// Garbage, empty values, foreign schemas and unknown versions are refused with a reason.
    #[test]
    fn refuses_unreadable_payloads() {
        assert_eq!(decode(None).expect_err("empty").reason(), "empty");
        assert_eq!(
            decode(Some(b"not arrow")).expect_err("garbage").reason(),
            "bad_ipc"
        );
        // A truncated stream is refused too (not a batch with rows missing).
        let bytes =
            encode(&metrics_batch(&[(1, 1), (2, 2)]), KafkaCompression::Lz4).expect("encode");
        assert_eq!(
            decode(Some(&bytes[..bytes.len() - 20]))
                .expect_err("truncated")
                .reason(),
            "bad_ipc"
        );
        let other = RecordBatch::try_new(
            Arc::new(arrow::datatypes::Schema::new(vec![
                arrow::datatypes::Field::new("x", arrow::datatypes::DataType::Int32, false),
            ])),
            vec![Arc::new(arrow::array::Int32Array::from(vec![1]))],
        )
        .expect("batch");
        let bytes = encode(&other, KafkaCompression::Lz4).expect("encode");
        assert_eq!(
            decode(Some(&bytes)).expect_err("schema").reason(),
            "bad_schema"
        );
        assert!(check_version(None).is_ok());
        assert!(check_version(Some(SCHEMA_VERSION.to_string().as_bytes())).is_ok());
        assert_eq!(
            check_version(Some(b"999")).expect_err("version").reason(),
            "schema_version"
        );
    }
}
