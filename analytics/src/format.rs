//! Encodings of query results: JSON (`{"columns":[…],"rows":[[…]…]}`), CSV and Arrow IPC stream.
//!
//! JSON values: numbers as JSON numbers (64-bit integers too; NaN and ±Inf as `null`), strings,
//! booleans, `null`, timestamps as RFC 3339 UTC strings with nanoseconds and `Z`, maps as
//! objects, lists as arrays, structs as objects; other types as their Arrow display string.
//! CSV renders timestamps the same way and nested values as JSON text.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, OffsetSizeTrait, RecordBatch, StringArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Float16Type, Float32Type, Float64Type, Int16Type,
    Int32Type, Int64Type, Int8Type, Schema, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use chrono::DateTime;

use crate::{QueryError, QueryOutput, Result};

/// Content type of [`encode_json`].
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type of [`encode_csv`].
pub const CONTENT_TYPE_CSV: &str = "text/csv; charset=utf-8";
/// Content type of [`encode_arrow_ipc`].
pub const CONTENT_TYPE_ARROW: &str = "application/vnd.apache.arrow.stream";

/// A result encoding, chosen from the request's `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// [`encode_json`] (the default).
    Json,
    /// [`encode_csv`].
    Csv,
    /// [`encode_arrow_ipc`].
    ArrowIpc,
}

impl Format {
    /// The format an `Accept` header asks for; JSON when absent or unrecognised.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let accept = accept.unwrap_or_default().to_ascii_lowercase();
        if accept.contains(CONTENT_TYPE_ARROW) {
            Format::ArrowIpc
        } else if accept.contains("text/csv") {
            Format::Csv
        } else {
            Format::Json
        }
    }

    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => CONTENT_TYPE_JSON,
            Format::Csv => CONTENT_TYPE_CSV,
            Format::ArrowIpc => CONTENT_TYPE_ARROW,
        }
    }

    /// Encodes `out` in this format.
    ///
    /// # Errors
    /// [`QueryError::Internal`] if the CSV or IPC writer fails.
    pub fn encode(self, out: &QueryOutput) -> Result<Vec<u8>> {
        match self {
            Format::Json => Ok(encode_json(out)),
            Format::Csv => encode_csv(out),
            Format::ArrowIpc => encode_arrow_ipc(out),
        }
    }
}

/// `{"columns":[{"name":"…","type":"…"}…],"rows":[[…]…]}`, `type` being the Arrow type's display.
pub fn encode_json(out: &QueryOutput) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256 + out.num_rows() * 32);
    buf.extend_from_slice(b"{\"columns\":[");
    for (i, field) in out.schema.fields().iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"name\":");
        json_string(&mut buf, field.name());
        buf.extend_from_slice(b",\"type\":");
        json_string(&mut buf, &field.data_type().to_string());
        buf.push(b'}');
    }
    buf.extend_from_slice(b"],\"rows\":[");
    let mut first = true;
    for batch in &out.batches {
        let encoders: Vec<Encoder> = batch.columns().iter().map(encoder).collect();
        for row in 0..batch.num_rows() {
            if !first {
                buf.push(b',');
            }
            first = false;
            buf.push(b'[');
            for (c, enc) in encoders.iter().enumerate() {
                if c > 0 {
                    buf.push(b',');
                }
                enc(row, &mut buf);
            }
            buf.push(b']');
        }
    }
    buf.extend_from_slice(b"]}");
    buf
}

/// CSV with a header line; timestamps as in JSON, nested values as JSON text.
///
/// # Errors
/// [`QueryError::Internal`] if the CSV writer fails.
pub fn encode_csv(out: &QueryOutput) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    {
        let mut writer = arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut buf);
        let schema = csv_schema(&out.schema);
        if out.batches.is_empty() {
            // The writer prints the header with the first batch; give it an empty one.
            writer
                .write(&RecordBatch::new_empty(Arc::clone(&schema)))
                .map_err(internal)?;
        }
        for batch in &out.batches {
            let columns: Vec<ArrayRef> = batch.columns().iter().map(csv_column).collect();
            let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(internal)?;
            writer.write(&batch).map_err(internal)?;
        }
    }
    Ok(buf)
}

/// An Arrow IPC stream (schema message, then one message per batch).
///
/// # Errors
/// [`QueryError::Internal`] if the IPC writer fails.
pub fn encode_arrow_ipc(out: &QueryOutput) -> Result<Vec<u8>> {
    let mut writer =
        arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &out.schema).map_err(internal)?;
    for batch in &out.batches {
        writer.write(batch).map_err(internal)?;
    }
    writer.finish().map_err(internal)?;
    writer.into_inner().map_err(internal)
}

fn internal(e: arrow::error::ArrowError) -> QueryError {
    QueryError::Internal(format!("encoding the result: {e}"))
}

/// Writes one value of a column as JSON.
type Encoder = Box<dyn Fn(usize, &mut Vec<u8>)>;

fn json_string(buf: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail, and a &str always serializes.
    let _ = serde_json::to_writer(buf, s);
}

/// A JSON encoder for one column.
fn encoder(array: &ArrayRef) -> Encoder {
    let a = ArrayRef::clone(array);
    match array.data_type() {
        DataType::Null => Box::new(|_, buf| buf.extend_from_slice(b"null")),
        DataType::Boolean => {
            let arr = a.as_boolean().clone();
            Box::new(move |i, buf| {
                if arr.is_null(i) {
                    buf.extend_from_slice(b"null");
                } else if arr.value(i) {
                    buf.extend_from_slice(b"true");
                } else {
                    buf.extend_from_slice(b"false");
                }
            })
        }
        DataType::Int8 => integer::<Int8Type>(&a),
        DataType::Int16 => integer::<Int16Type>(&a),
        DataType::Int32 => integer::<Int32Type>(&a),
        DataType::Int64 => integer::<Int64Type>(&a),
        DataType::UInt8 => integer::<UInt8Type>(&a),
        DataType::UInt16 => integer::<UInt16Type>(&a),
        DataType::UInt32 => integer::<UInt32Type>(&a),
        DataType::UInt64 => integer::<UInt64Type>(&a),
        DataType::Float16 => {
            let arr = a.as_primitive::<Float16Type>().clone();
            Box::new(move |i, buf| float(buf, arr.is_valid(i).then(|| arr.value(i).to_f64())))
        }
        DataType::Float32 => {
            let arr = a.as_primitive::<Float32Type>().clone();
            Box::new(move |i, buf| float(buf, arr.is_valid(i).then(|| f64::from(arr.value(i)))))
        }
        DataType::Float64 => {
            let arr = a.as_primitive::<Float64Type>().clone();
            Box::new(move |i, buf| float(buf, arr.is_valid(i).then(|| arr.value(i))))
        }
        DataType::Utf8 => {
            let arr = a.as_string::<i32>().clone();
            Box::new(move |i, buf| string(buf, arr.is_valid(i).then(|| arr.value(i))))
        }
        DataType::LargeUtf8 => {
            let arr = a.as_string::<i64>().clone();
            Box::new(move |i, buf| string(buf, arr.is_valid(i).then(|| arr.value(i))))
        }
        DataType::Utf8View => {
            let arr = a.as_string_view().clone();
            Box::new(move |i, buf| string(buf, arr.is_valid(i).then(|| arr.value(i))))
        }
        DataType::Timestamp(unit, _) => {
            let ns_of = timestamp_reader(&a, *unit);
            Box::new(move |i, buf| match ns_of(i) {
                Some((secs, nanos)) => match rfc3339(secs, nanos) {
                    Some(s) => json_string(buf, &s),
                    None => buf.extend_from_slice(b"null"),
                },
                None => buf.extend_from_slice(b"null"),
            })
        }
        DataType::List(_) => list::<i32>(&a),
        DataType::LargeList(_) => list::<i64>(&a),
        DataType::FixedSizeList(_, _) => {
            let arr = a.as_fixed_size_list().clone();
            let child = encoder(arr.values());
            let len = arr.value_length() as usize;
            Box::new(move |i, buf| {
                if arr.is_null(i) {
                    buf.extend_from_slice(b"null");
                    return;
                }
                write_seq(buf, i * len..(i + 1) * len, &child);
            })
        }
        DataType::Map(_, _) => {
            let arr = a.as_map().clone();
            let keys = encoder(arr.keys());
            let values = encoder(arr.values());
            Box::new(move |i, buf| {
                if arr.is_null(i) {
                    buf.extend_from_slice(b"null");
                    return;
                }
                let offsets = arr.value_offsets();
                buf.push(b'{');
                for (n, j) in (offsets[i] as usize..offsets[i + 1] as usize).enumerate() {
                    if n > 0 {
                        buf.push(b',');
                    }
                    object_key(buf, j, &keys);
                    buf.push(b':');
                    values(j, buf);
                }
                buf.push(b'}');
            })
        }
        DataType::Struct(fields) => {
            let arr = a.as_struct().clone();
            let names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
            let children: Vec<Encoder> = arr.columns().iter().map(encoder).collect();
            Box::new(move |i, buf| {
                if arr.is_null(i) {
                    buf.extend_from_slice(b"null");
                    return;
                }
                buf.push(b'{');
                for (n, (name, child)) in names.iter().zip(&children).enumerate() {
                    if n > 0 {
                        buf.push(b',');
                    }
                    json_string(buf, name);
                    buf.push(b':');
                    child(i, buf);
                }
                buf.push(b'}');
            })
        }
        DataType::Dictionary(_, value_type) => match arrow::compute::cast(&a, value_type) {
            Ok(plain) => encoder(&plain),
            Err(_) => display(a, true),
        },
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => display(a, false),
        _ => display(a, true),
    }
}

fn integer<T: ArrowPrimitiveType>(a: &ArrayRef) -> Encoder
where
    T::Native: std::fmt::Display,
{
    let arr = a.as_primitive::<T>().clone();
    Box::new(move |i, buf| {
        if arr.is_null(i) {
            buf.extend_from_slice(b"null");
        } else {
            let _ = write!(buf, "{}", arr.value(i));
        }
    })
}

fn list<O: OffsetSizeTrait>(a: &ArrayRef) -> Encoder {
    let arr = a.as_list::<O>().clone();
    let child = encoder(arr.values());
    Box::new(move |i, buf| {
        if arr.is_null(i) {
            buf.extend_from_slice(b"null");
            return;
        }
        let offsets = arr.value_offsets();
        write_seq(
            buf,
            offsets[i].as_usize()..offsets[i + 1].as_usize(),
            &child,
        );
    })
}

fn write_seq(buf: &mut Vec<u8>, range: std::ops::Range<usize>, child: &Encoder) {
    buf.push(b'[');
    for (n, j) in range.enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        child(j, buf);
    }
    buf.push(b']');
}

/// A map key as a JSON object key: strings as they are, anything else as its JSON text quoted.
fn object_key(buf: &mut Vec<u8>, j: usize, keys: &Encoder) {
    let mut key = Vec::new();
    keys(j, &mut key);
    if key.first() == Some(&b'"') {
        buf.extend_from_slice(&key);
    } else {
        json_string(buf, &String::from_utf8_lossy(&key));
    }
}

fn float(buf: &mut Vec<u8>, v: Option<f64>) {
    match v {
        // serde_json writes the shortest round-tripping form, and null for NaN / ±Inf.
        Some(v) => {
            let _ = serde_json::to_writer(buf, &v);
        }
        None => buf.extend_from_slice(b"null"),
    }
}

fn string(buf: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => json_string(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

/// Arrow's display of a value, quoted as a JSON string or (decimals) written as a number.
fn display(a: ArrayRef, quoted: bool) -> Encoder {
    Box::new(move |i, buf| {
        if a.is_null(i) {
            buf.extend_from_slice(b"null");
            return;
        }
        match arrow::util::display::array_value_to_string(&a, i) {
            Ok(s) if quoted => json_string(buf, &s),
            Ok(s) => buf.extend_from_slice(s.as_bytes()),
            Err(_) => buf.extend_from_slice(b"null"),
        }
    })
}

/// Reads a timestamp column as (seconds, nanoseconds) since the epoch; `None` for nulls.
fn timestamp_reader(a: &ArrayRef, unit: TimeUnit) -> Box<dyn Fn(usize) -> Option<(i64, u32)>> {
    fn split(v: i64, per_sec: i64) -> (i64, u32) {
        let nanos = v.rem_euclid(per_sec) * (1_000_000_000 / per_sec);
        (v.div_euclid(per_sec), nanos as u32)
    }
    match unit {
        TimeUnit::Second => {
            let arr = a.as_primitive::<TimestampSecondType>().clone();
            Box::new(move |i| arr.is_valid(i).then(|| (arr.value(i), 0)))
        }
        TimeUnit::Millisecond => {
            let arr = a.as_primitive::<TimestampMillisecondType>().clone();
            Box::new(move |i| arr.is_valid(i).then(|| split(arr.value(i), 1_000)))
        }
        TimeUnit::Microsecond => {
            let arr = a.as_primitive::<TimestampMicrosecondType>().clone();
            Box::new(move |i| arr.is_valid(i).then(|| split(arr.value(i), 1_000_000)))
        }
        TimeUnit::Nanosecond => {
            let arr = a.as_primitive::<TimestampNanosecondType>().clone();
            Box::new(move |i| arr.is_valid(i).then(|| split(arr.value(i), 1_000_000_000)))
        }
    }
}

/// `2026-11-21T14:30:00.123456789Z`: RFC 3339 in UTC with all nine fraction digits.
fn rfc3339(secs: i64, nanos: u32) -> Option<String> {
    DateTime::from_timestamp(secs, nanos).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
}

/// Whether the CSV writer gets this column as text we render.
fn csv_as_text(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Timestamp(..)
            | DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::Map(..)
            | DataType::Struct(_)
            | DataType::Null
    )
}

fn csv_schema(schema: &Schema) -> Arc<Schema> {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                if csv_as_text(f.data_type()) {
                    Field::new(f.name(), DataType::Utf8, true)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect::<Vec<_>>(),
    ))
}

/// A column ready for the CSV writer: timestamps as RFC 3339, nested values as JSON text.
fn csv_column(array: &ArrayRef) -> ArrayRef {
    if !csv_as_text(array.data_type()) {
        return ArrayRef::clone(array);
    }
    let enc = encoder(array);
    let is_timestamp = matches!(array.data_type(), DataType::Timestamp(..));
    let mut scratch = Vec::new();
    let text: StringArray = (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                return None;
            }
            scratch.clear();
            enc(i, &mut scratch);
            let s = String::from_utf8_lossy(&scratch);
            // A timestamp encodes as a JSON string; CSV wants it without the quotes.
            Some(if is_timestamp {
                s.trim_matches('"').to_string()
            } else {
                s.into_owned()
            })
        })
        .collect();
    Arc::new(text)
}
