//! Phoenix's write-ahead log.
//!
//! Accepted batches are appended as checksummed records of Arrow IPC and made durable with
//! `fdatasync` before [`Wal::append`] returns; concurrent appends share one sync (group commit).
//! On open, every segment is replayed; a torn or corrupt tail is cut off and reported, never a
//! reason to refuse to start. Segments whose records are all committed downstream are deleted by
//! [`Wal::release`].
//!
//! On-disk format: files `{first_seq:020}.wal` in one folder, each a run of records
//! `magic u32 LE | payload_len u32 LE | seq u64 LE | crc32 u32 LE | payload`, where the CRC-32
//! covers the seq bytes and the payload, and the payload is an Arrow IPC stream (buffers LZ4 or
//! zstd compressed, per [`Codec`]) holding one batch, or a source record
//! `"PXS1" | header_len u32 LE | header | body` that the caller's [`SourceDecoder`] turns back
//! into the batch (an OTLP request as received: see [`Wal::append_source_then`]). Segments are
//! written with `O_DIRECT` in whole 4 KiB blocks (see [`WalOptions::direct_io`]), so a file may
//! end with zero padding after its last record: a clean end, trimmed on open.

mod direct;
mod error;
mod record;
mod segment;
mod writer;

pub use error::{Error, Result};
pub use record::{encode_batch, Codec, DecodeSource, SourceDecoder};
pub use segment::RecoveryReport;
pub use writer::{OnDurable, Opened, Wal, WalOptions};

#[cfg(test)]
mod tests;
