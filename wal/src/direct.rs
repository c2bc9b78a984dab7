//! Block-aligned group buffer for segment writes with `O_DIRECT`.
//!
//! A direct write bypasses the page cache (no kernel copy of every logged byte, no writeback at
//! `fdatasync`), but its buffer, file offset and length must be multiples of the block size. The
//! writer therefore writes whole blocks: the records left in the segment's partial last block by
//! the previous write, then the new records, zero-padded to the block end. Rewriting that block
//! puts the same bytes over the records already acknowledged, so a torn rewrite leaves them
//! intact. Recovery reads the padding after the last record as a clean end.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Alignment and granularity of direct writes: covers 512-byte and 4 KiB logical blocks.
pub(crate) const BLOCK: usize = 4096;

/// `open(2)` flag for direct I/O where the platform has one.
#[cfg(target_os = "linux")]
const O_DIRECT: Option<i32> = Some(libc::O_DIRECT);
#[cfg(not(target_os = "linux"))]
const O_DIRECT: Option<i32> = None;

/// Opens (creating) a segment file for direct writes at explicit offsets.
pub(crate) fn open_direct(path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flag = O_DIRECT.ok_or_else(|| io::Error::from(io::ErrorKind::Unsupported))?;
        OpenOptions::new()
            .create(true)
            .write(true)
            .custom_flags(flag)
            .open(path)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Writes `blocks` (whole blocks from an aligned buffer) at the block-aligned offset `at`.
pub(crate) fn write_blocks(file: &File, blocks: &[u8], at: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.write_all_at(blocks, at)
    }
    #[cfg(not(unix))]
    {
        let _ = (file, blocks, at);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Whether `error` says the file or buffer does not suit direct I/O (rather than a failed disk).
pub(crate) fn is_unsupported(error: &io::Error) -> bool {
    #[cfg(unix)]
    if error.raw_os_error() == Some(libc::EINVAL) {
        return true;
    }
    error.kind() == io::ErrorKind::Unsupported
}

/// The writer's group buffer: a byte run starting at a [`BLOCK`]-aligned address, kept for the
/// writer's life so that groups are framed straight into memory a direct write can take.
///
/// Alignment comes without `unsafe`: the vector is over-allocated by a block and the data
/// starts at the first aligned address in it. Framing appends within the capacity; a group
/// larger than the capacity makes the vector reallocate, which [`GroupBuf::blocks`] detects and
/// repairs by moving the data into a new, larger aligned buffer.
pub(crate) struct GroupBuf {
    raw: Vec<u8>,
    /// Index in `raw` of the first aligned byte: where the data starts.
    start: usize,
}

impl GroupBuf {
    /// A buffer for `capacity` bytes of data without reallocating.
    pub fn new(capacity: usize) -> Self {
        let mut raw = Vec::with_capacity(capacity + BLOCK);
        let start = aligned_start(&raw);
        raw.resize(start, 0);
        GroupBuf { raw, start }
    }

    /// Starts a new group after the first `keep` bytes of data (the segment's partial block).
    pub fn begin(&mut self, keep: usize) {
        self.raw.truncate(self.start + keep);
    }

    /// The vector to frame records into (appended after the data).
    pub fn vec(&mut self) -> &mut Vec<u8> {
        &mut self.raw
    }

    /// The data: kept bytes, then the records framed since [`GroupBuf::begin`] (then, after
    /// [`GroupBuf::blocks`], the padding).
    pub fn data(&self) -> &[u8] {
        &self.raw[self.start..]
    }

    /// The first `len` bytes of data zero-padded to whole blocks, at an aligned address.
    pub fn blocks(&mut self, len: usize) -> &[u8] {
        let padded = len.next_multiple_of(BLOCK);
        self.raw.truncate(self.start + len);
        self.raw.resize(self.start + padded, 0);
        if !(self.raw.as_ptr() as usize + self.start).is_multiple_of(BLOCK) {
            // The group outgrew the capacity and the vector moved: take a new aligned buffer,
            // with room to spare so that groups of this size fit from now on.
            let mut raw = Vec::with_capacity(padded + padded / 2 + 2 * BLOCK);
            let start = aligned_start(&raw);
            raw.resize(start, 0);
            raw.extend_from_slice(&self.raw[self.start..]);
            *self = GroupBuf { raw, start };
        }
        &self.raw[self.start..]
    }

    /// After `len` bytes of data were written as blocks: keeps the bytes of the last, partial
    /// block at the start (to be written again with the next group) and returns their count.
    pub fn keep_partial(&mut self, len: usize) -> usize {
        let whole = len - len % BLOCK;
        let at = self.start;
        self.raw.copy_within(at + whole..at + len, at);
        self.raw.truncate(at + len - whole);
        len - whole
    }
}

fn aligned_start(raw: &[u8]) -> usize {
    (BLOCK - raw.as_ptr() as usize % BLOCK) % BLOCK
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups framed past the capacity still come out as aligned whole blocks with their bytes
    /// intact, and the partial block is kept in front for the next group.
    #[test]
    fn blocks_stay_aligned_when_a_group_outgrows_the_buffer() {
        let mut buf = GroupBuf::new(BLOCK);
        let mut kept = Vec::new();
        for (i, n) in [10usize, 5000, 3 * BLOCK + 7, 40_000, 1]
            .into_iter()
            .enumerate()
        {
            buf.begin(kept.len());
            assert_eq!(buf.data(), &kept[..]);
            let fresh: Vec<u8> = (0..n).map(|j| (i * 31 + j) as u8 | 1).collect();
            buf.vec().extend_from_slice(&fresh);
            let len = kept.len() + n;
            let want: Vec<u8> = kept.iter().chain(&fresh).copied().collect();
            let blocks = buf.blocks(len);
            assert_eq!(blocks.as_ptr() as usize % BLOCK, 0);
            assert_eq!(blocks.len(), len.next_multiple_of(BLOCK));
            assert_eq!(&blocks[..len], &want[..]);
            assert!(blocks[len..].iter().all(|b| *b == 0));
            let keep = buf.keep_partial(len);
            assert_eq!(keep, len % BLOCK);
            kept = want[len - keep..].to_vec();
        }
    }
}
