//! WAL tests: durability across reopen, group commit, release, and repair of damaged tails.

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::{Codec, Error, Wal, WalOptions};

mod direct_io;

fn batch(start: i64, n: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    let xs: Vec<i64> = (start..start + n as i64).collect();
    let ss: Vec<String> = xs.iter().map(|x| format!("v{x}")).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(xs)),
            Arc::new(StringArray::from(ss)),
        ],
    )
    .expect("valid batch")
}

/// A fresh folder under the build's target folder: on a disk filesystem, where `O_DIRECT` works
/// (`/tmp` is a tmpfs on some machines).
fn tempdir() -> tempfile::TempDir {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<binary>
    let base = exe
        .ancestors()
        .nth(3)
        .map_or_else(std::env::temp_dir, |t| t.join("wal-tests"));
    std::fs::create_dir_all(&base).expect("test folder");
    tempfile::tempdir_in(base).expect("tempdir")
}

/// Both write paths: direct (`O_DIRECT`) and buffered.
const MODES: [bool; 2] = [true, false];

fn options(dir: &std::path::Path) -> WalOptions {
    WalOptions {
        dir: dir.to_path_buf(),
        segment_bytes: 4096,
        max_bytes: 1 << 30,
        codec: Codec::Lz4,
        sources: None,
        direct_io: true,
    }
}

/// [`options`] with direct I/O on or off.
fn options_io(dir: &std::path::Path, direct_io: bool) -> WalOptions {
    WalOptions {
        direct_io,
        ..options(dir)
    }
}

fn xs(b: &RecordBatch) -> Vec<i64> {
    b.column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .map(|a| a.values().to_vec())
        .unwrap_or_default()
}

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// Every acknowledged append (direct or buffered) is replayed after reopening, in order, with
/// its sequence number.
#[tokio::test]
async fn appends_survive_reopen_in_order() {
    for direct_io in MODES {
        let dir = tempdir();
        let opened = Wal::open(options_io(dir.path(), direct_io)).expect("open");
        assert!(opened.replay.is_empty());
        let mut seqs = Vec::new();
        for i in 0..20 {
            seqs.push(opened.wal.append(&batch(i * 10, 10)).await.expect("append"));
        }
        assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
        drop(opened);
        let reopened = Wal::open(options_io(dir.path(), direct_io)).expect("reopen");
        let got: Vec<(u64, Vec<i64>)> = reopened.replay.iter().map(|(s, b)| (*s, xs(b))).collect();
        let want: Vec<(u64, Vec<i64>)> = (0..20)
            .map(|i| ((i + 1) as u64, (i * 10..i * 10 + 10).collect()))
            .collect();
        assert_eq!(got, want);
        assert!(reopened.report.problems.is_empty());
        // New appends continue the sequence.
        assert_eq!(reopened.wal.append(&batch(0, 1)).await.expect("append"), 21);
    }
}

/// Records written with zstd, then (after a restart with the other codec) with LZ4, all replay
/// exactly; zstd records of repetitive rows are smaller than LZ4 ones.
#[tokio::test]
async fn records_of_either_codec_replay() {
    let dir = tempdir();
    let big = |codec| WalOptions {
        segment_bytes: 1 << 30,
        codec,
        ..options(dir.path())
    };
    let opened = Wal::open(big(Codec::Zstd)).expect("open");
    for i in 0..3 {
        opened
            .wal
            .append(&batch(i * 1000, 1000))
            .await
            .expect("append");
    }
    let zstd_bytes = opened.wal.bytes();
    drop(opened);
    let opened = Wal::open(big(Codec::Lz4)).expect("reopen");
    assert_eq!(opened.replay.len(), 3);
    for i in 3..6 {
        opened
            .wal
            .append(&batch(i * 1000, 1000))
            .await
            .expect("append");
    }
    let lz4_bytes = opened.wal.bytes() - zstd_bytes;
    drop(opened);
    let reopened = Wal::open(big(Codec::Zstd)).expect("reopen");
    let got: Vec<(u64, Vec<i64>)> = reopened.replay.iter().map(|(s, b)| (*s, xs(b))).collect();
    let want: Vec<(u64, Vec<i64>)> = (0..6)
        .map(|i| ((i + 1) as u64, (i * 1000..i * 1000 + 1000).collect()))
        .collect();
    assert_eq!(got, want);
    assert!(zstd_bytes < lz4_bytes, "zstd {zstd_bytes}, lz4 {lz4_bytes}");
}

/// Concurrent appends all get distinct sequence numbers and all are durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_group_commit() {
    let dir = tempdir();
    let opened = Wal::open(options(dir.path())).expect("open");
    let mut tasks = Vec::new();
    for i in 0..64 {
        let wal = opened.wal.clone();
        tasks.push(tokio::spawn(async move { wal.append(&batch(i, 1)).await }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("join").expect("append"));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=64).collect::<Vec<u64>>());
    drop(opened);
    let reopened = Wal::open(options(dir.path())).expect("reopen");
    let mut values: Vec<i64> = reopened.replay.iter().flat_map(|(_, b)| xs(b)).collect();
    values.sort_unstable();
    assert_eq!(values, (0..64).collect::<Vec<i64>>());
}

/// Releasing up to a sequence deletes only segments entirely at or below it.
#[tokio::test]
async fn release_deletes_committed_segments_only() {
    let dir = tempdir();
    let opened = Wal::open(options(dir.path())).expect("open");
    for i in 0..40 {
        opened.wal.append(&batch(i, 50)).await.expect("append");
    }
    let before = segments(dir.path()).len();
    assert!(before > 2, "small segments should rotate, got {before}");
    opened.wal.release(20).await;
    // A final append is answered only after the release queued before it was processed.
    opened.wal.append(&batch(1000, 1)).await.expect("append");
    drop(opened);
    let reopened = Wal::open(options(dir.path())).expect("reopen");
    let seqs: Vec<u64> = reopened.replay.iter().map(|(s, _)| *s).collect();
    assert!(segments(dir.path()).len() < before);
    // Everything after 20 is still there; nothing at or below 20 in a fully released segment.
    assert!(seqs.contains(&21) && seqs.contains(&41), "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(seqs.first().is_some_and(|f| *f <= 21));
}

/// Sequence numbers never go back: after every record is released (and again after a reopen
/// with nothing appended), the next append continues past the last number handed out.
/// Tables skip replayed records at or below the highest number they stored, so a reused
/// number would make a later replay drop acknowledged data.
#[tokio::test]
async fn sequence_continues_after_full_release_and_reopen() {
    for direct_io in MODES {
        let dir = tempdir();
        let opened = Wal::open(options_io(dir.path(), direct_io)).expect("open");
        for i in 0..30 {
            opened.wal.append(&batch(i, 50)).await.expect("append");
        }
        opened.wal.release(30).await;
        // Answered only after the release was processed.
        assert_eq!(opened.wal.append(&batch(0, 1)).await.expect("append"), 31);
        opened.wal.release(31).await;
        // Releases are applied on the writer thread: wait (bounded) until it has.
        for _ in 0..500 {
            if opened.wal.bytes() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(opened.wal.bytes(), 0, "everything released");
        drop(opened);
        for _ in 0..2 {
            // Reopen with everything released, twice: nothing to replay, numbering kept.
            let reopened = Wal::open(options_io(dir.path(), direct_io)).expect("reopen");
            assert!(reopened.replay.is_empty());
            drop(reopened);
        }
        let reopened = Wal::open(options_io(dir.path(), direct_io)).expect("reopen");
        assert_eq!(reopened.wal.append(&batch(0, 1)).await.expect("append"), 32);
        drop(reopened);
        let last = Wal::open(options_io(dir.path(), direct_io)).expect("reopen");
        let seqs: Vec<u64> = last.replay.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![32]);
    }
}

/// Appends `records` batches of 3 rows into one segment in `dir`; returns where the records
/// end (direct writes pad the file past it with zeros) and the segment's path.
async fn one_segment(
    dir: &std::path::Path,
    direct_io: bool,
    records: i64,
) -> (u64, std::path::PathBuf) {
    let opened = Wal::open(WalOptions {
        segment_bytes: 1 << 30,
        ..options_io(dir, direct_io)
    })
    .expect("open");
    for i in 0..records {
        opened.wal.append(&batch(i, 3)).await.expect("append");
    }
    let len = opened.wal.bytes();
    drop(opened);
    (len, segments(dir).pop().expect("segment"))
}

/// A torn last record is cut off and reported; every record before it is kept.
#[tokio::test]
async fn torn_tail_is_cut_and_reported() {
    for direct_io in MODES {
        let dir = tempdir();
        let (len, seg) = one_segment(dir.path(), direct_io, 5).await;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("open");
        file.set_len(len - 7).expect("truncate");
        drop(file);
        let reopened = Wal::open(options_io(dir.path(), direct_io)).expect("opens despite damage");
        assert_eq!(
            reopened.replay.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(reopened.report.problems.len(), 1, "{:?}", reopened.report);
        assert!(reopened.report.problems[0].contains("torn"));
        assert!(reopened.report.bytes_cut > 0);
        // The repaired WAL takes new appends and replays cleanly next time.
        assert_eq!(reopened.wal.append(&batch(9, 1)).await.expect("append"), 5);
        drop(reopened);
        let again = Wal::open(options_io(dir.path(), direct_io)).expect("reopen");
        assert!(again.report.problems.is_empty(), "{:?}", again.report);
        assert_eq!(again.replay.len(), 5);
    }
}

/// A flipped byte inside the last record fails its checksum: cut off, earlier records kept.
#[tokio::test]
async fn flipped_byte_fails_checksum() {
    for direct_io in MODES {
        let dir = tempdir();
        let (len, seg) = one_segment(dir.path(), direct_io, 3).await;
        let last = len as usize - 5;
        let mut bytes = std::fs::read(&seg).expect("read");
        bytes[last] ^= 0xFF;
        std::fs::write(&seg, &bytes).expect("write");
        let reopened = Wal::open(options_io(dir.path(), direct_io)).expect("opens despite damage");
        assert_eq!(reopened.replay.len(), 2);
        assert!(
            reopened.report.problems[0].contains("checksum"),
            "{:?}",
            reopened.report
        );
    }
}

/// Past the byte budget appends are refused with a retryable error.
#[tokio::test]
async fn full_wal_refuses_retryably() {
    let dir = tempdir();
    let opened = Wal::open(WalOptions {
        max_bytes: 1,
        ..options(dir.path())
    })
    .expect("open");
    opened.wal.append(&batch(0, 1)).await.expect("first fits");
    let err = opened.wal.append(&batch(1, 1)).await.expect_err("full");
    assert!(matches!(err, Error::Full { .. }));
    assert!(err.is_retryable());
}

/// `append_then` callbacks run in sequence order, only for durable records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_run_in_sequence_order() {
    let dir = tempdir();
    let opened = Wal::open(options(dir.path())).expect("open");
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (wal, order) = (opened.wal.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            wal.append_then(&batch(i, 1), move |seq| {
                order.lock().expect("lock").push(seq);
            })
            .await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("append");
    }
    let seen = order.lock().expect("lock").clone();
    assert_eq!(seen, (1..=32).collect::<Vec<u64>>());
}

/// A source record of `b`: header `[7]`, body its `x` values as little-endian i64s.
fn source_of(b: &RecordBatch) -> (Vec<u8>, bytes::Bytes) {
    let body: Vec<u8> = xs(b).iter().flat_map(|x| x.to_le_bytes()).collect();
    (vec![7], body.into())
}

/// The decoder of [`source_of`] records: rebuilds `batch(first, n)`.
fn decoder() -> crate::SourceDecoder {
    crate::SourceDecoder(Arc::new(|header: &[u8], body: &[u8]| {
        if header != [7] {
            return Err(format!("unknown header {header:?}"));
        }
        let first = body
            .first_chunk::<8>()
            .map(|b| i64::from_le_bytes(*b))
            .ok_or("empty body")?;
        Ok(Some(batch(first, body.len() / 8)))
    }))
}

/// With LZ4, a batch given with its source is logged as the source and replays through the
/// decoder, in sequence with batches logged as batches; with zstd it is logged as the batch
/// (no decoder needed to replay it).
#[tokio::test]
async fn source_records_replay_through_the_decoder() {
    let dir = tempdir();
    let opts = || WalOptions {
        sources: Some(decoder()),
        ..options(dir.path())
    };
    let opened = Wal::open(opts()).expect("open");
    let b = batch(100, 50);
    let (header, body) = source_of(&b);
    let logged = body.clone();
    opened.wal.append(&batch(0, 5)).await.expect("append");
    opened
        .wal
        .append_source_then(&b, header, body, |_| {})
        .await
        .expect("append source");
    drop(opened);
    // The second record holds the source: its body bytes are on disk as given.
    let on_disk: Vec<u8> = segments(dir.path())
        .iter()
        .flat_map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert!(on_disk.windows(logged.len()).any(|w| w == logged.as_ref()));
    let reopened = Wal::open(opts()).expect("reopen");
    let got: Vec<(u64, Vec<i64>)> = reopened.replay.iter().map(|(s, b)| (*s, xs(b))).collect();
    assert_eq!(got, vec![(1, xs(&batch(0, 5))), (2, xs(&b))]);
    drop(reopened);

    // Under zstd the batch itself is logged: it replays without any decoder.
    let dir2 = tempdir();
    let zstd = Wal::open(WalOptions {
        codec: Codec::Zstd,
        ..options(dir2.path())
    })
    .expect("open");
    let (header, body) = source_of(&b);
    zstd.wal
        .append_source_then(&b, header, body, |_| {})
        .await
        .expect("append source");
    drop(zstd);
    let reopened = Wal::open(options(dir2.path())).expect("reopen without decoder");
    assert_eq!(reopened.replay.len(), 1);
    assert_eq!(xs(&reopened.replay[0].1), xs(&b));
}

/// A source record that cannot be decoded (no decoder, or the decoder refuses it) stops the
/// WAL from opening and is left on disk: its bytes are intact, so cutting it would lose data.
#[tokio::test]
async fn undecodable_source_record_refuses_to_open() {
    let dir = tempdir();
    let opened = Wal::open(WalOptions {
        sources: Some(decoder()),
        ..options(dir.path())
    })
    .expect("open");
    let b = batch(1, 3);
    opened
        .wal
        .append_source_then(&b, vec![9], source_of(&b).1, |_| {})
        .await
        .expect("append source");
    drop(opened);
    let size = |d: &std::path::Path| -> u64 {
        segments(d)
            .iter()
            .map(|p| std::fs::metadata(p).expect("meta").len())
            .sum()
    };
    let before = size(dir.path());
    let refused = Wal::open(WalOptions {
        sources: Some(decoder()),
        ..options(dir.path())
    });
    match refused {
        Err(Error::Source { seq, reason, .. }) => {
            assert_eq!(seq, 1);
            assert!(reason.contains("unknown header"), "{reason}");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("opened past an undecodable source record"),
    }
    assert!(matches!(
        Wal::open(options(dir.path())),
        Err(Error::Source { .. })
    ));
    assert_eq!(size(dir.path()), before, "nothing was cut");
}
