//! WAL tests of direct I/O: partial blocks rewritten across groups, zero padding on recovery,
//! byte accounting without padding, and the fallback to buffered appends.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, BinaryArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use super::{batch, options, segments, tempdir, MODES};
use crate::direct::BLOCK;
use crate::writer::Faults;
use crate::{SourceDecoder, Wal, WalOptions};

/// Body of record `i`: odd sizes from 1 byte to ~10 KB, zero bytes included.
fn body(i: usize) -> Vec<u8> {
    let len = (i * 7919) % 9973 + 1;
    (0..len).map(|j| ((i + j * 37) % 251) as u8).collect()
}

/// Bytes a record of `body(i)` takes in a segment: header, source tag and length, 1-byte header.
fn framed(i: usize) -> u64 {
    (20 + 4 + 4 + 1 + body(i).len()) as u64
}

/// Decodes a source record back into a one-row batch holding its body.
fn body_decoder() -> SourceDecoder {
    SourceDecoder(Arc::new(|_header: &[u8], body: &[u8]| {
        let schema = Arc::new(Schema::new(vec![Field::new("b", DataType::Binary, false)]));
        let column = Arc::new(BinaryArray::from_vec(vec![body]));
        RecordBatch::try_new(schema, vec![column])
            .map(Some)
            .map_err(|e| e.to_string())
    }))
}

fn opts(dir: &Path, direct_io: bool, segment_bytes: u64) -> WalOptions {
    WalOptions {
        segment_bytes,
        sources: Some(body_decoder()),
        direct_io,
        ..options(dir)
    }
}

/// Appends `body(i)` and returns its sequence number.
async fn append(wal: &Wal, i: usize) -> u64 {
    wal.append_source_then(&batch(0, 1), vec![1], body(i).into(), |_| {})
        .await
        .expect("append")
}

/// After a recovery: appends `body(5)` to `reopened`, restarts, and checks that the restart
/// reports no problem and replays `appended` plus that record. Returns its sequence number.
async fn append_then_replay(
    dir: &Path,
    direct_io: bool,
    reopened: crate::Opened,
    mut appended: Vec<(u64, usize)>,
) -> u64 {
    let seq = append(&reopened.wal, 5).await;
    appended.push((seq, 5));
    drop(reopened);
    let again = Wal::open(opts(dir, direct_io, 1 << 30)).expect("reopen");
    assert_eq!(again.report.problems, Vec::<String>::new());
    assert_eq!(replayed(&again.replay), expected(&appended));
    seq
}

/// The replayed records as (sequence number, body).
fn replayed(replay: &[(u64, RecordBatch)]) -> Vec<(u64, Vec<u8>)> {
    replay
        .iter()
        .map(|(seq, b)| {
            let col = b.column(0).as_any().downcast_ref::<BinaryArray>();
            let bytes = col.filter(|c| c.len() == 1).map(|c| c.value(0).to_vec());
            (*seq, bytes.unwrap_or_default())
        })
        .collect()
}

/// `(seq, body(i))` for each `(seq, i)`.
fn expected(appended: &[(u64, usize)]) -> Vec<(u64, Vec<u8>)> {
    let mut want: Vec<(u64, Vec<u8>)> = appended.iter().map(|&(s, i)| (s, body(i))).collect();
    want.sort_by_key(|(s, _)| *s);
    want
}

/// Lengths of the segment files.
fn file_lens(dir: &Path) -> Vec<u64> {
    segments(dir)
        .iter()
        .map(|p| std::fs::metadata(p).expect("meta").len())
        .collect()
}

/// Appends `bytes` at the end of the only segment file.
fn append_to_segment(dir: &Path, bytes: &[u8]) {
    use std::io::Write;
    let seg = segments(dir).pop().expect("segment");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .expect("open");
    file.write_all(bytes).expect("write");
}

/// Hundreds of odd-sized records in one-record and many-record groups (each group rewriting the
/// partial block before it), across segment rotations, replay in order with exact bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_sized_groups_replay_exactly_across_segments() {
    for direct_io in MODES {
        let dir = tempdir();
        let opened = Wal::open(opts(dir.path(), direct_io, 200_000)).expect("open");
        let mut appended = Vec::new();
        for i in 0..150 {
            appended.push((append(&opened.wal, i).await, i));
        }
        for burst in 0..30 {
            let tasks: Vec<_> = (0..7)
                .map(|k| {
                    let (wal, i) = (opened.wal.clone(), 150 + burst * 7 + k);
                    tokio::spawn(async move { (append(&wal, i).await, i) })
                })
                .collect();
            for t in tasks {
                appended.push(t.await.expect("join"));
            }
        }
        let logical: u64 = (0..360).map(framed).sum();
        assert_eq!(opened.wal.bytes(), logical);
        let lens = file_lens(dir.path());
        assert!(lens.len() > 3, "segments should rotate: {lens:?}");
        if direct_io {
            assert!(
                lens.iter().all(|l| l.is_multiple_of(BLOCK as u64)),
                "{lens:?}"
            );
        } else {
            assert_eq!(lens.iter().sum::<u64>(), logical);
        }
        drop(opened);
        let reopened = Wal::open(opts(dir.path(), direct_io, 200_000)).expect("reopen");
        assert_eq!(reopened.report.problems, Vec::<String>::new());
        assert_eq!(reopened.report.bytes_cut, 0);
        assert_eq!(replayed(&reopened.replay), expected(&appended));
        assert_eq!(reopened.wal.bytes(), logical);
        // Recovery trimmed the padding: the files hold exactly the records.
        assert_eq!(file_lens(dir.path()).iter().sum::<u64>(), logical);
    }
}

/// After a reopen, appends continue the sequence in a new segment, and everything replays.
#[tokio::test]
async fn appends_continue_after_reopen() {
    for direct_io in MODES {
        let dir = tempdir();
        let mut appended = Vec::new();
        for round in 0..3 {
            let opened = Wal::open(opts(dir.path(), direct_io, 1 << 30)).expect("open");
            assert_eq!(opened.report.problems, Vec::<String>::new());
            assert_eq!(replayed(&opened.replay), expected(&appended));
            for i in round * 10..round * 10 + 10 {
                appended.push((append(&opened.wal, i).await, i));
            }
        }
        let seqs: Vec<u64> = appended.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (1..=30).collect::<Vec<u64>>());
        let last = Wal::open(opts(dir.path(), direct_io, 1 << 30)).expect("reopen");
        assert_eq!(replayed(&last.replay), expected(&appended));
    }
}

/// Zero bytes after the last record (shorter than a header, up to several blocks) are a clean
/// end: no problem, nothing cut; recovery trims them and later appends replay.
#[tokio::test]
async fn zero_padding_after_last_record_is_a_clean_end() {
    for pad in [3, BLOCK - 3, 3 * BLOCK + 5] {
        let dir = tempdir();
        // Buffered, so that the file ends exactly at the records before the padding is added.
        let opened = Wal::open(opts(dir.path(), false, 1 << 30)).expect("open");
        let mut appended = Vec::new();
        for i in 0..5 {
            appended.push((append(&opened.wal, i).await, i));
        }
        let logical = opened.wal.bytes();
        drop(opened);
        append_to_segment(dir.path(), &vec![0; pad]);
        let reopened = Wal::open(opts(dir.path(), true, 1 << 30)).expect("reopen");
        assert_eq!(reopened.report.problems, Vec::<String>::new(), "pad {pad}");
        assert_eq!(reopened.report.bytes_cut, 0);
        assert_eq!(replayed(&reopened.replay), expected(&appended));
        assert_eq!(reopened.wal.bytes(), logical);
        assert_eq!(file_lens(dir.path()), vec![logical], "padding trimmed");
        append_then_replay(dir.path(), true, reopened, appended).await;
    }
}

/// A newest segment holding only zeros (a crash after it grew, before its data landed) keeps the
/// sequence floor and is emptied, so the next append to it replays after a restart.
#[tokio::test]
async fn zero_filled_newest_segment_is_reused() {
    for direct_io in MODES {
        let dir = tempdir();
        let opened = Wal::open(opts(dir.path(), direct_io, 1 << 30)).expect("open");
        let mut appended = Vec::new();
        for i in 0..5 {
            appended.push((append(&opened.wal, i).await, i));
        }
        drop(opened);
        std::fs::write(crate::segment::segment_path(dir.path(), 6), vec![0; BLOCK])
            .expect("zero segment");
        let reopened = Wal::open(opts(dir.path(), direct_io, 1 << 30)).expect("reopen");
        assert_eq!(reopened.report.problems, Vec::<String>::new());
        assert_eq!(segments(dir.path()).len(), 2, "the floor segment is kept");
        let seq = append_then_replay(dir.path(), direct_io, reopened, appended).await;
        assert_eq!(seq, 6);
    }
}

/// Non-zero bytes in or after the padding are still a corrupt tail: cut back to the last record
/// and reported; the WAL then appends and replays cleanly.
#[tokio::test]
async fn garbage_after_padding_is_cut_and_reported() {
    for garbage_at_end in [false, true] {
        let dir = tempdir();
        let opened = Wal::open(opts(dir.path(), true, 1 << 30)).expect("open");
        let mut appended = Vec::new();
        for i in 0..5 {
            appended.push((append(&opened.wal, i).await, i));
        }
        let logical = opened.wal.bytes();
        drop(opened);
        let seg = segments(dir.path()).pop().expect("segment");
        let mut bytes = std::fs::read(&seg).expect("read");
        assert!(bytes.len() as u64 > logical && bytes.len().is_multiple_of(BLOCK));
        if garbage_at_end {
            bytes.extend_from_slice(&[0xAB; 100]);
        } else if let Some(last) = bytes.last_mut() {
            *last = 1;
        }
        std::fs::write(&seg, &bytes).expect("write");
        let reopened = Wal::open(opts(dir.path(), true, 1 << 30)).expect("reopen");
        let report = &reopened.report;
        assert_eq!(report.problems.len(), 1, "{report:?}");
        assert!(report.problems[0].contains("bad magic"), "{report:?}");
        assert_eq!(report.bytes_cut, bytes.len() as u64 - logical);
        assert_eq!(replayed(&reopened.replay), expected(&appended));
        append_then_replay(dir.path(), true, reopened, appended).await;
    }
}

/// The WAL's size and byte budget count record bytes, not the padding of direct writes.
#[tokio::test]
async fn size_accounting_excludes_padding() {
    let dir = tempdir();
    let budget = (0..4).map(framed).sum::<u64>();
    let opened = Wal::open(WalOptions {
        max_bytes: budget,
        ..opts(dir.path(), true, 1 << 30)
    })
    .expect("open");
    for i in 0..3 {
        append(&opened.wal, i).await;
        let logical: u64 = (0..=i).map(framed).sum();
        assert_eq!(opened.wal.bytes(), logical);
        assert_eq!(
            file_lens(dir.path()),
            vec![logical.next_multiple_of(BLOCK as u64)]
        );
    }
    // Under the budget by the record bytes, far over it by the padded file.
    append(&opened.wal, 3).await;
    assert_eq!(opened.wal.bytes(), budget);
    let refused = opened
        .wal
        .append_source_then(&batch(0, 1), vec![1], body(4).into(), |_| {})
        .await;
    assert!(matches!(refused, Err(crate::Error::Full { .. })));
}

/// Where `O_DIRECT` opens fail, segments are appended buffered (no padding) and replay exactly.
#[tokio::test]
async fn refused_direct_open_falls_back_to_buffered() {
    let dir = tempdir();
    let faults = Faults {
        direct_open: true,
        ..Faults::default()
    };
    let opened = Wal::open_with_faults(opts(dir.path(), true, 30_000), faults).expect("open");
    let mut appended = Vec::new();
    for i in 0..20 {
        appended.push((append(&opened.wal, i).await, i));
    }
    assert!(segments(dir.path()).len() > 1);
    assert_eq!(
        file_lens(dir.path()).iter().sum::<u64>(),
        opened.wal.bytes()
    );
    drop(opened);
    let reopened = Wal::open(opts(dir.path(), true, 30_000)).expect("reopen");
    assert_eq!(reopened.report.problems, Vec::<String>::new());
    assert_eq!(replayed(&reopened.replay), expected(&appended));
}

/// A direct write refused with `EINVAL` mid-segment: the padding of earlier direct writes is
/// dropped, the group and later ones are appended buffered, and all replay exactly.
#[tokio::test]
async fn refused_direct_write_falls_back_mid_segment() {
    let dir = tempdir();
    let faults = Faults {
        direct_write_from: Some(3),
        ..Faults::default()
    };
    let opened = Wal::open_with_faults(opts(dir.path(), true, 1 << 30), faults).expect("open");
    let mut appended = Vec::new();
    for i in 0..3 {
        appended.push((append(&opened.wal, i).await, i));
    }
    let padded = file_lens(dir.path());
    assert!(padded[0].is_multiple_of(BLOCK as u64) && padded[0] > opened.wal.bytes());
    for i in 3..13 {
        appended.push((append(&opened.wal, i).await, i));
    }
    assert_eq!(file_lens(dir.path()), vec![opened.wal.bytes()]);
    drop(opened);
    let reopened = Wal::open(opts(dir.path(), true, 1 << 30)).expect("reopen");
    assert_eq!(reopened.report.problems, Vec::<String>::new());
    assert_eq!(replayed(&reopened.replay), expected(&appended));
}
