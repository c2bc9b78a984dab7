//! Encoding and decoding of one WAL record.

use std::io::Cursor;

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow::ipc::CompressionType;
use arrow::record_batch::RecordBatch;

use crate::Result;

/// `PXW1`.
pub(crate) const MAGIC: u32 = 0x3157_5850;
/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 4 + 4 + 8 + 4;
/// Largest payload accepted when reading; guards against a corrupt length.
pub(crate) const MAX_PAYLOAD: usize = 1 << 30;

/// `PXS1`: a payload that is a batch's source (see [`SourceDecoder`]), not Arrow IPC, whose
/// streams start with `0xFFFFFFFF`.
pub(crate) const SOURCE_TAG: [u8; 4] = *b"PXS1";

/// How record payloads (Arrow IPC buffers) are compressed. Readers take either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// LZ4 frames: the least CPU (on loadgen batches ~130 µs per 1,000 rows, ~97 bytes a row).
    /// A batch given with its source (an OTLP protobuf body, ~120 bytes a loadgen datapoint) is logged
    /// as that source, uncompressed: a copy instead of an encode and a compression pass.
    #[default]
    Lz4,
    /// zstd level 1: ~40% smaller records (~59 bytes a row) for ~2.4× the encode CPU (~309 µs
    /// per 1,000 rows); for WALs that hold data long. Batches are always logged as batches.
    Zstd,
}

/// Decodes a source record (`header`, `body`) back into the batch it was decoded from when it
/// was logged (`None` when it holds no rows); called on replay.
pub type DecodeSource =
    dyn Fn(&[u8], &[u8]) -> std::result::Result<Option<RecordBatch>, String> + Send + Sync;

/// The decoder of source records, given to [`crate::Wal::open`] by whoever logs them.
#[derive(Clone)]
pub struct SourceDecoder(pub std::sync::Arc<DecodeSource>);

impl std::fmt::Debug for SourceDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceDecoder")
    }
}

/// What one record holds.
pub(crate) enum Payload {
    /// An encoded Arrow IPC stream (see [`encode_batch`]).
    Batch(Vec<u8>),
    /// A batch's source: the decoder's header and the body.
    Source { header: Vec<u8>, body: bytes::Bytes },
}

impl Payload {
    /// Bytes of the framed record: header and payload.
    pub(crate) fn framed_len(&self) -> usize {
        let mut len = HEADER_LEN;
        self.for_each_part(|part| len += part.len());
        len
    }

    /// Calls `f` on each byte slice of the payload, in order.
    fn for_each_part(&self, mut f: impl FnMut(&[u8])) {
        match self {
            Payload::Batch(ipc) => f(ipc),
            Payload::Source { header, body } => {
                f(&SOURCE_TAG);
                f(&(header.len() as u32).to_le_bytes());
                f(header);
                f(body);
            }
        }
    }
}

/// Encodes a batch as a record payload: an Arrow IPC stream with compressed buffers (public
/// for the codec measurement in `benches/examples/wal_record.rs`).
pub fn encode_batch(batch: &RecordBatch, codec: Codec) -> Result<Vec<u8>> {
    let options = match codec {
        Codec::Lz4 => {
            IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?
        }
        Codec::Zstd => IpcWriteOptions::default()
            .try_with_compression(Some(CompressionType::ZSTD))?
            .try_with_compression_level(Some(1))?,
    };
    let mut writer =
        StreamWriter::try_new_with_options(Vec::new(), batch.schema().as_ref(), options)?;
    writer.write(batch)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Why a payload that passed its checksum yields no batches.
pub(crate) enum Undecodable {
    /// Not valid Arrow IPC: treated like a corrupt record.
    Ipc(arrow::error::ArrowError),
    /// A source record that the decoder refused, or with no decoder given: its data is intact,
    /// so the WAL refuses to open rather than cut it.
    Source(String),
}

/// Decodes the batches of one payload; source records go through `sources`.
pub(crate) fn decode_batches(
    payload: &[u8],
    sources: Option<&SourceDecoder>,
) -> std::result::Result<Vec<RecordBatch>, Undecodable> {
    if let Some(rest) = payload.strip_prefix(&SOURCE_TAG) {
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| Undecodable::Source("source record without a header length".into()))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(Undecodable::Source(
                "source header longer than the record".into(),
            ));
        }
        let (header, body) = rest.split_at(len);
        let decoder = sources.ok_or_else(|| {
            Undecodable::Source("a source record, and no decoder for it was given".into())
        })?;
        return (decoder.0)(header, body)
            .map(|batch| batch.into_iter().collect())
            .map_err(Undecodable::Source);
    }
    let reader = StreamReader::try_new(Cursor::new(payload), None).map_err(Undecodable::Ipc)?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Undecodable::Ipc)
}

/// Appends one framed record holding `payload` to `out`.
pub(crate) fn frame(out: &mut Vec<u8>, seq: u64, payload: &Payload) {
    let mut len = 0;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    payload.for_each_part(|part| {
        len += part.len();
        crc.update(part);
    });
    out.reserve(HEADER_LEN + len);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    payload.for_each_part(|part| out.extend_from_slice(part));
}

/// One record read back: its sequence number and payload range in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Framed {
    pub seq: u64,
    pub payload: std::ops::Range<usize>,
    pub end: usize,
}

/// Why a record at some offset is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bad {
    /// The buffer ends inside the record (a torn write).
    Torn,
    /// Magic, length or checksum is wrong.
    Corrupt(&'static str),
}

/// Reads the record starting at `at`.
pub(crate) fn unframe(buf: &[u8], at: usize) -> std::result::Result<Framed, Bad> {
    let header = buf.get(at..at + HEADER_LEN).ok_or(Bad::Torn)?;
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    if word(0) != MAGIC {
        return Err(Bad::Corrupt("bad magic"));
    }
    let len = word(4) as usize;
    if len > MAX_PAYLOAD {
        return Err(Bad::Corrupt("impossible length"));
    }
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&header[8..16]);
    let seq = u64::from_le_bytes(seq_bytes);
    let crc = word(16);
    let start = at + HEADER_LEN;
    let payload = buf.get(start..start + len).ok_or(Bad::Torn)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq_bytes);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Err(Bad::Corrupt("checksum mismatch"));
    }
    Ok(Framed {
        seq,
        payload: start..start + len,
        end: start + len,
    })
}
