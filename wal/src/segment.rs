//! Segment files: naming, listing and recovery of a WAL folder.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;

use crate::error::io;
use crate::record::{decode_batches, unframe, Bad, SourceDecoder, Undecodable};
use crate::{Error, Result};

/// A closed or active segment and the records it holds.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub path: PathBuf,
    /// Sequence number of its last record (`None` while empty).
    pub last_seq: Option<u64>,
    pub bytes: u64,
}

/// What opening the WAL found and repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files read.
    pub segments: usize,
    /// Valid records replayed.
    pub records: usize,
    /// Bytes cut off torn or corrupt tails.
    pub bytes_cut: u64,
    /// One line per problem: file, offset, reason, bytes cut.
    pub problems: Vec<String>,
}

/// Everything recovered from a WAL folder.
pub(crate) struct Recovered {
    pub segments: Vec<Segment>,
    pub batches: Vec<(u64, RecordBatch)>,
    pub report: RecoveryReport,
    pub next_seq: u64,
}

/// File name of the segment whose first record has `first_seq`.
pub(crate) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.wal"))
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let is_segment = path.extension().is_some_and(|e| e == "wal")
            && path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()));
        if is_segment {
            paths.push(path);
        }
    }
    // Zero-padded names sort in sequence order.
    paths.sort();
    Ok(paths)
}

/// Reads every segment in `dir`, cuts torn or corrupt tails, trims zero padding after the last
/// record (left by direct writes; not a problem), deletes empty segments but the newest.
///
/// Sequence numbers never go back, even when every record was released: the newest segment's
/// name (its first sequence number) is kept as a floor, because tables record the highest
/// sequence number they stored and replay skips records at or below it.
///
/// A source record that `sources` cannot decode (or with no `sources`) fails the recovery: its
/// bytes passed the checksum, so cutting it would lose acknowledged data.
pub(crate) fn recover(dir: &Path, sources: Option<&SourceDecoder>) -> Result<Recovered> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut report = RecoveryReport::default();
    let mut segments = Vec::new();
    let mut batches = Vec::new();
    let mut last_seq: Option<u64> = None;
    let paths = list(dir)?;
    let floor = paths.last().and_then(|p| first_seq(p)).unwrap_or(1);
    let newest = paths.last().cloned();
    for path in paths {
        report.segments += 1;
        let buf = fs::read(&path).map_err(io(&path))?;
        let mut at = 0usize;
        let mut seg_last = None;
        let mut problem: Option<String> = None;
        while at < buf.len() {
            match unframe(&buf, at) {
                // Direct writes pad the last block with zeros: the clean end of the records.
                Err(_) if buf[at..].iter().all(|b| *b == 0) => break,
                Ok(rec) if last_seq.is_some_and(|l| rec.seq <= l) => {
                    problem = Some(format!("sequence {} does not advance", rec.seq));
                    break;
                }
                Ok(rec) => match decode_batches(&buf[rec.payload.clone()], sources) {
                    Ok(decoded) => {
                        batches.extend(decoded.into_iter().map(|b| (rec.seq, b)));
                        last_seq = Some(rec.seq);
                        seg_last = Some(rec.seq);
                        report.records += 1;
                        at = rec.end;
                    }
                    Err(Undecodable::Ipc(e)) => {
                        problem = Some(format!("undecodable payload ({e})"));
                        break;
                    }
                    Err(Undecodable::Source(reason)) => {
                        return Err(Error::Source {
                            path,
                            seq: rec.seq,
                            reason,
                        });
                    }
                },
                Err(Bad::Torn) => {
                    problem = Some("torn record".into());
                    break;
                }
                Err(Bad::Corrupt(why)) => {
                    problem = Some(why.into());
                    break;
                }
            }
        }
        if let Some(why) = problem {
            let cut = (buf.len() - at) as u64;
            report.bytes_cut += cut;
            report.problems.push(format!(
                "{}: {why} at byte {at}; cut {cut} bytes",
                path.display()
            ));
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            file.set_len(at as u64).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        } else if at < buf.len() {
            // Zero padding is trimmed, not reported: every segment then ends at its last record,
            // so the writer can append to the newest one when it is empty. No sync: a crash
            // before the trim is durable leaves padding that the next recovery trims again.
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|file| file.set_len(at as u64))
                .map_err(io(&path))?;
        }
        if seg_last.is_none() {
            // The newest segment, even empty, holds the sequence floor; the writer appends to it.
            if newest.as_ref() != Some(&path) {
                fs::remove_file(&path).map_err(io(&path))?;
            }
            continue;
        }
        segments.push(Segment {
            path,
            last_seq: seg_last,
            bytes: at as u64,
        });
    }
    Ok(Recovered {
        segments,
        batches,
        report,
        next_seq: last_seq.map_or(1, |l| l + 1).max(floor),
    })
}

/// The first sequence number a segment file's name records.
fn first_seq(path: &Path) -> Option<u64> {
    path.file_stem()?.to_str()?.parse().ok()
}

/// Makes a new directory entry durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}
