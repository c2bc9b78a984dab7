//! Compaction of an hour partition's files: rows, order, metadata, snapshots and crash recovery.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{TimestampNanosecondType, UInt64Type};
use common::{cfg, read_file, row_keys, FaultyStore, SEC, T0};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use phoenix_model::config::FlushCompression;
use phoenix_storage::testing::{metrics_batch, TestPoint};
use phoenix_storage::{
    Storage, Table, ACK_MAX_KEY, HOUR_NANOS, READ_BATCH_ROWS, REPLACES_KEY, SCHEMA_VERSION_KEY,
};

const HOUR: i64 = T0 / HOUR_NANOS;

/// A batch with `series` series, `per` points each at 10 s steps from `start`.
fn regular(series: usize, per: usize, start: i64) -> RecordBatch {
    let mut pts = Vec::with_capacity(series * per);
    for s in 0..series {
        let mut v = (s % 17) as f64;
        for i in 0..per {
            v = ((v + ((s + i) % 5) as f64 * 0.25 - 0.5) * 100.0).round() / 100.0;
            let mut p = TestPoint::gauge(
                ["cpu", "mem", "http.requests"][s % 3],
                &format!("svc-{}", s % 4),
                start + i as i64 * 10 * SEC,
                v,
            )
            .attr("instance", &format!("i-{s}"));
            p.series_id = (s as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            pts.push(p);
        }
    }
    metrics_batch(&pts)
}

/// Writes `n` files in the hour of `T0`, each with `series` × `per` rows; returns all rows.
async fn write_files(table: &Table, n: usize, series: usize, per: usize) -> Vec<RecordBatch> {
    let mut all = Vec::new();
    for f in 0..n {
        let b = regular(series, per, T0 + f as i64 * per as i64 * 10 * SEC / 4);
        table
            .append_acked(b.clone(), Some(f as u64 + 1))
            .expect("append");
        table.flush().await.expect("flush");
        all.push(b);
    }
    all
}

/// Flushes `files` files of `series` × `per` rows, `step_secs` apart, then compacts their hour.
async fn flush_and_compact(
    table: &Table,
    files: i64,
    series: usize,
    per: usize,
    step_secs: i64,
) -> phoenix_storage::CompactionReport {
    for f in 0..files {
        table
            .append(regular(series, per, T0 + f * step_secs * SEC))
            .expect("append");
        table.flush().await.expect("flush");
    }
    table
        .compact_hour(HOUR)
        .await
        .expect("compact")
        .expect("done")
}

async fn snapshot_rows(store: &Arc<dyn ObjectStore>, table: &Table) -> Vec<RecordBatch> {
    let snap = table.snapshot();
    let mut out = snap.buffered.clone();
    for f in &snap.files {
        out.push(read_file(store, &f.path).await);
    }
    out
}

/// The whole object at `path`.
async fn object_bytes(store: &Arc<dyn ObjectStore>, path: &Path) -> bytes::Bytes {
    store
        .get(path)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes")
}

fn kv(bytes: bytes::Bytes) -> Vec<(String, String)> {
    let r = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("parquet");
    r.metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// N files merge into one file holding exactly their rows, sorted by the file sort key, with
/// the table schema, the schema version, the highest ack and the replaced names.
#[tokio::test]
async fn merges_files_into_one_sorted_file() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let storage = Storage::open_with_store(Arc::clone(&store), &cfg("memory://"))
        .await
        .expect("open");
    let table = storage.table("metrics").expect("table");
    let input = write_files(&table, 10, 30, 20).await;
    let before: Vec<Path> = table.snapshot().files.into_iter().map(|f| f.path).collect();
    assert_eq!(before.len(), 10);

    let report = table
        .compact_hour(HOUR)
        .await
        .expect("compact")
        .expect("compacted");
    assert_eq!(report.inputs.len(), 10);
    assert_eq!(report.rows, 6000);
    let files = table.snapshot().files;
    assert_eq!(files.len(), 1);
    let out = read_file(&store, &files[0].path).await;
    assert_eq!(out.schema().fields(), table.schema().fields());
    assert_eq!(row_keys(std::slice::from_ref(&out)), row_keys(&input));

    let metric = out.column_by_name("metric").expect("m").as_string::<i32>();
    let service = out.column_by_name("service").expect("s").as_string::<i32>();
    let ids = out
        .column_by_name("series_id")
        .expect("id")
        .as_primitive::<UInt64Type>();
    let times = out.column(0).as_primitive::<TimestampNanosecondType>();
    let key = |i: usize| {
        (
            metric.value(i),
            service.value(i),
            ids.value(i),
            times.value(i),
        )
    };
    assert!((1..out.num_rows()).all(|i| key(i - 1) <= key(i)), "sorted");

    let bytes = object_bytes(&store, &files[0].path).await;
    let kv = kv(bytes);
    let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get(ACK_MAX_KEY).as_deref(), Some("10"));
    assert!(get(SCHEMA_VERSION_KEY).is_some());
    let replaced = get(REPLACES_KEY).expect("replaces");
    let names: Vec<&str> = replaced.split(',').collect();
    assert_eq!(names.len(), 10);
    for p in &before {
        assert!(names.contains(&p.filename().expect("name")), "{p}");
    }
    // Inputs stay until deleted after the grace period.
    assert_eq!(table.delete_replaced(&before).await, 10);
    let listed: Vec<_> = store.list(None).try_collect().await.expect("list");
    assert_eq!(listed.len(), 1);
}

/// The merged rows are exactly a stable sort of the inputs' rows, taken file by file in the
/// order compaction lists them: rows with equal keys (the overlapping files repeat series and
/// times with other values) keep their input order, across batch ends and taken runs alike.
#[tokio::test]
async fn merge_equals_stable_sort_of_inputs() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let storage = Storage::open_with_store(Arc::clone(&store), &cfg("memory://"))
        .await
        .expect("open");
    let table = storage.table("metrics").expect("table");
    // Files of 2,400 rows overlap the previous one by three quarters of their times; reads
    // of `READ_BATCH_ROWS` end mid-file. Values carry the file's number, so rows with equal
    // keys differ and their order shows.
    for f in 0..7_i64 {
        let b = regular(40, 60, T0 + f * 150 * SEC);
        let i = b.schema().index_of("value").expect("value");
        let values: arrow::array::Float64Array = b
            .column(i)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .iter()
            .map(|v| v.map(|v| v + f as f64 * 1000.0))
            .collect();
        let mut columns = b.columns().to_vec();
        columns[i] = Arc::new(values);
        let b = RecordBatch::try_new(b.schema(), columns).expect("batch");
        table.append(b).expect("append");
        table.flush().await.expect("flush");
    }
    let inputs: Vec<Path> = table.snapshot().files.into_iter().map(|f| f.path).collect();
    type Row = (String, String, u64, i64, u64);
    let rows_of = |b: &RecordBatch| -> Vec<Row> {
        let metric = b.column_by_name("metric").expect("m").as_string::<i32>();
        let service = b.column_by_name("service").expect("s").as_string::<i32>();
        let ids = b
            .column_by_name("series_id")
            .expect("id")
            .as_primitive::<UInt64Type>();
        let times = b
            .column_by_name("time")
            .expect("t")
            .as_primitive::<TimestampNanosecondType>();
        let values = b
            .column_by_name("value")
            .expect("v")
            .as_primitive::<arrow::datatypes::Float64Type>();
        (0..b.num_rows())
            .map(|i| {
                (
                    metric.value(i).to_string(),
                    service.value(i).to_string(),
                    ids.value(i),
                    times.value(i),
                    values.value(i).to_bits(),
                )
            })
            .collect()
    };
    let mut want: Vec<Row> = Vec::new();
    for path in &inputs {
        want.extend(rows_of(&read_file(&store, path).await));
    }
    // `sort_by` is stable: equal keys stay in file order.
    want.sort_by(|a, b| (&a.0, &a.1, a.2, a.3).cmp(&(&b.0, &b.1, b.2, b.3)));
    let ties = want
        .windows(2)
        .filter(|w| (&w[0].0, &w[0].1, w[0].2, w[0].3) == (&w[1].0, &w[1].1, w[1].2, w[1].3))
        .count();
    assert!(ties > 1000, "the inputs repeat keys ({ties} ties)");

    let report = table
        .compact_hour(HOUR)
        .await
        .expect("compact")
        .expect("compacted");
    let listed: Vec<&str> = report.inputs.iter().map(|f| f.path.as_ref()).collect();
    let snapshot_order: Vec<&str> = inputs.iter().map(|p| p.as_ref()).collect();
    assert_eq!(
        listed, snapshot_order,
        "compaction reads the files in snapshot order"
    );
    let files = table.snapshot().files;
    assert_eq!(files.len(), 1);
    let got = rows_of(&read_file(&store, &files[0].path).await);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "merged rows differ from the stable sort");
}

/// A snapshot taken while the merged file is being written sees every row once, and so does
/// one taken after the swap (inputs not yet deleted).
#[tokio::test]
async fn snapshot_during_compaction_sees_rows_once() {
    let faulty = FaultyStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faulty.clone();
    let storage = Storage::open_with_store(Arc::clone(&store), &cfg("memory://"))
        .await
        .expect("open");
    let table = storage.table("metrics").expect("table");
    let input = write_files(&table, 5, 10, 10).await;
    let want = row_keys(&input);

    faulty.hold_puts.store(true, Ordering::SeqCst);
    let started = faulty.put_started.notified();
    let t = table.clone();
    let job = tokio::spawn(async move { t.compact_hour(HOUR).await });
    started.await;
    assert_eq!(row_keys(&snapshot_rows(&store, &table).await), want);
    faulty.hold_puts.store(false, Ordering::SeqCst);
    faulty.release.notify_one();
    let report = job.await.expect("join").expect("compact").expect("done");
    assert_eq!(report.inputs.len(), 5);
    assert_eq!(table.snapshot().files.len(), 1);
    assert_eq!(row_keys(&snapshot_rows(&store, &table).await), want);
}

/// A crash after the merged file is put but before the inputs are deleted: reopening lists
/// every row once, and deletes the replaced inputs.
#[tokio::test]
async fn crash_before_deletes_lists_rows_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = dir.path().to_str().expect("utf8").to_string();
    let want = {
        let storage = Storage::open(&cfg(&url)).await.expect("open");
        let table = storage.table("metrics").expect("table");
        let input = write_files(&table, 6, 10, 10).await;
        table
            .compact_hour(HOUR)
            .await
            .expect("compact")
            .expect("done");
        // A late file in the same hour, written after the compaction, must stay.
        let late = regular(2, 3, T0 + 1000 * SEC);
        table.append(late.clone()).expect("append");
        table.flush().await.expect("flush");
        let mut all = input;
        all.push(late);
        row_keys(&all)
    };
    let storage = Storage::open(&cfg(&url)).await.expect("reopen");
    let table = storage.table("metrics").expect("table");
    let store = storage.object_store();
    assert_eq!(table.snapshot().files.len(), 2);
    assert_eq!(row_keys(&snapshot_rows(&store, &table).await), want);
    let listed: Vec<_> = store.list(None).try_collect().await.expect("list");
    assert_eq!(listed.len(), 2, "replaced inputs were deleted at startup");
    // Refresh keeps the same view.
    storage.refresh().await.expect("refresh");
    assert_eq!(row_keys(&snapshot_rows(&store, &table).await), want);
}

/// The merge streams its inputs in batches: it never holds more than a few read batches per
/// input, far fewer rows than the partition has.
#[tokio::test]
async fn merge_reads_in_batches() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let storage = Storage::open_with_store(Arc::clone(&store), &cfg("memory://"))
        .await
        .expect("open");
    let table = storage.table("metrics").expect("table");
    let files = 6;
    write_files(&table, files, 200, 60).await;
    let total = (files * 200 * 60) as u64;
    let r = table
        .compact_hour(HOUR)
        .await
        .expect("compact")
        .expect("done");
    assert_eq!(r.rows, total);
    eprintln!(
        "rows {total}, batches read {}, most rows held {}",
        r.batches_read, r.max_rows_held
    );
    assert!(r.batches_read >= total / READ_BATCH_ROWS as u64);
    assert!(r.max_rows_held <= ((files + 3) * READ_BATCH_ROWS) as u64);
    assert!(r.max_rows_held < total / 2);
}

/// Compacting 60 small files of a regular series set stores fewer bytes per row.
#[tokio::test]
async fn compaction_shrinks_bytes_per_row() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let storage = Storage::open_with_store(Arc::clone(&store), &cfg("memory://"))
        .await
        .expect("open");
    let table = storage.table("metrics").expect("table");
    // 100 series, one point per series per file: a flush every 10 s for 10 minutes.
    let r = flush_and_compact(&table, 60, 100, 1, 10).await;
    let before = r.bytes_before as f64 / r.rows as f64;
    let after = r.bytes_after as f64 / r.rows as f64;
    eprintln!(
        "60 files, {} rows: {} bytes ({before:.1} B/row) -> {} bytes ({after:.1} B/row)",
        r.rows, r.bytes_before, r.bytes_after
    );
    assert_eq!(r.inputs.len(), 60);
    assert!(r.bytes_after < r.bytes_before);
}

/// The usage table's byte estimate takes the flushed files' bytes per row until an hour is
/// compacted, then the compacted files' (what a row costs for the rest of its retention).
#[tokio::test]
async fn bytes_per_row_moves_to_compacted_files() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let storage = Storage::open_with_store(Arc::clone(&store), &cfg("memory://"))
        .await
        .expect("open");
    let table = storage.table("metrics").expect("table");
    assert_eq!(table.bytes_per_row(), None);
    let mut flushed = (0_u64, 0_u64);
    for f in 0..20 {
        table
            .append(regular(100, 1, T0 + f * 10 * SEC))
            .expect("append");
        let report = table.flush().await.expect("flush");
        flushed = (flushed.0 + report.rows, flushed.1 + report.bytes);
    }
    let before = table.bytes_per_row().expect("flushed");
    assert!((before - flushed.1 as f64 / flushed.0 as f64).abs() < 1e-9);
    let r = table
        .compact_hour(HOUR)
        .await
        .expect("compact")
        .expect("done");
    assert_eq!(r.rows, flushed.0);
    let after = table.bytes_per_row().expect("compacted");
    assert!((after - r.bytes_after as f64 / r.rows as f64).abs() < 1e-9);
    assert!(
        after < before,
        "{after} B/row compacted vs {before} flushed"
    );
}

/// A compacted hour of two-decimal gauges and integer counters is sorted by kind first, holds
/// one kind per row group, and keeps each group's smaller `value` encoding: a dictionary for
/// the gauges, BYTE_STREAM_SPLIT for the counters, at under 2 bytes per datapoint.
#[tokio::test]
async fn compaction_chooses_value_encoding_per_kind() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    // Row groups of the default size, not the tests' 1,000 rows.
    let mut c = cfg("memory://");
    c.row_group_rows = phoenix_model::config::StorageConfig::default().row_group_rows;
    let storage = Storage::open_with_store(Arc::clone(&store), &c)
        .await
        .expect("open");
    let table = storage.table("metrics").expect("table");
    // 600 series (half gauges, half counters) × 360 points, flushed as 12 files of 30 points.
    let (series, points, files) = (600_u64, 360_i64, 12_i64);
    let mut gauge: Vec<f64> = (0..series).map(|s| (s % 100) as f64).collect();
    let mut step = 0_u64;
    for f in 0..files {
        let mut pts = Vec::new();
        for k in f * points / files..(f + 1) * points / files {
            for s in 0..series {
                step = step
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let v = &mut gauge[s as usize];
                let (metric, counter) = if s % 2 == 0 {
                    *v = ((*v + ((step >> 33) % 401) as f64 / 100.0 - 2.0).clamp(0.0, 100.0)
                        * 100.0)
                        .round()
                        / 100.0;
                    ("cpu.utilization", false)
                } else {
                    *v += (1 + (step >> 33) % 100) as f64;
                    ("http.requests", true)
                };
                let mut p = TestPoint::gauge(metric, "svc", T0 + k * 10 * SEC, *v)
                    .attr("instance", &format!("i-{s:05}"));
                p.series_id = s.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                pts.push(if counter { p.counter() } else { p });
            }
        }
        table.append(metrics_batch(&pts)).expect("append");
        table.flush().await.expect("flush");
    }
    let report = table
        .compact_hour(HOUR)
        .await
        .expect("compact")
        .expect("done");
    let rows = (series as i64 * points) as u64;
    assert_eq!(report.rows, rows);

    let files = table.snapshot().files;
    assert_eq!(files.len(), 1);
    let bytes = object_bytes(&store, &files[0].path).await;
    let per_row = bytes.len() as f64 / rows as f64;
    eprintln!("compacted: {per_row:.3} bytes per datapoint");
    assert!(per_row < 2.0, "{per_row:.3} bytes per datapoint");
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("parquet");
    let mut seen = Vec::new();
    for rg in reader.metadata().row_groups() {
        let column = |name: &str| {
            rg.columns()
                .iter()
                .find(|c| c.column_path().string() == name)
                .expect("column")
        };
        let Some(parquet::file::statistics::Statistics::ByteArray(kind)) =
            column("kind").statistics()
        else {
            panic!("kind statistics");
        };
        let (min, max) = (kind.min_opt().expect("min"), kind.max_opt().expect("max"));
        assert_eq!(min, max, "one kind per row group");
        let dictionary = column("value").dictionary_page_offset().is_some();
        seen.push((min.as_utf8().expect("utf8").to_string(), dictionary));
    }
    seen.dedup();
    assert_eq!(
        seen,
        [("gauge".to_string(), true), ("sum".to_string(), false)],
        "gauges first, with a dictionary; counters without"
    );
}

/// Compaction encodes at `storage.compaction.zstd_level`, not the flush level: the same 30
/// files compact smaller at level 19 than at level 1 (flushes zstd at level 1 both times).
#[tokio::test]
async fn compaction_uses_its_own_zstd_level() {
    let mut sizes = Vec::new();
    for level in [1, 19] {
        let mut c = cfg("memory://");
        c.flush_compression = FlushCompression::Zstd;
        c.zstd_level = 1;
        c.compaction.zstd_level = level;
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let storage = Storage::open_with_store(Arc::clone(&store), &c)
            .await
            .expect("open");
        let table = storage.table("metrics").expect("table");
        let r = flush_and_compact(&table, 30, 200, 3, 30).await;
        sizes.push((r.bytes_before, r.bytes_after));
    }
    assert_eq!(sizes[0].0, sizes[1].0, "flushed files are encoded alike");
    assert!(sizes[1].1 < sizes[0].1, "level 19 vs 1: {sizes:?}");
}

/// Codec names of every column chunk of the table's current files.
async fn file_codecs(store: &Arc<dyn ObjectStore>, table: &Table) -> BTreeSet<String> {
    let mut codecs = BTreeSet::new();
    for file in table.snapshot().files {
        let bytes = object_bytes(store, &file.path).await;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("parquet");
        for rg in reader.metadata().row_groups() {
            // The name only: a file does not record the zstd level it was written at.
            codecs.extend(rg.columns().iter().map(|c| {
                let codec = format!("{:?}", c.compression());
                codec.split('(').next().unwrap_or_default().to_string()
            }));
        }
    }
    codecs
}

/// Flushed files take `storage.flush_compression` (LZ4 by default, zstd when asked) and
/// compaction rewrites them with zstd either way, rows unchanged.
#[tokio::test]
async fn flushes_take_their_codec_and_compaction_zstd() {
    for (flush, expected) in [
        (FlushCompression::Lz4, "LZ4_RAW"),
        (FlushCompression::Zstd, "ZSTD"),
    ] {
        let mut c = cfg("memory://");
        c.flush_compression = flush;
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let storage = Storage::open_with_store(Arc::clone(&store), &c)
            .await
            .expect("open");
        let table = storage.table("metrics").expect("table");
        let written = write_files(&table, 8, 50, 4).await;
        let flushed = file_codecs(&store, &table).await;
        assert_eq!(flushed, BTreeSet::from([expected.to_string()]), "{flush:?}");

        table
            .compact_hour(HOUR)
            .await
            .expect("compact")
            .expect("done");
        let compacted = file_codecs(&store, &table).await;
        assert_eq!(compacted, BTreeSet::from(["ZSTD".to_string()]), "{flush:?}");
        let files = table.snapshot().files;
        assert_eq!(files.len(), 1);
        let stored = read_file(&store, &files[0].path).await;
        assert_eq!(
            row_keys(&[stored]),
            row_keys(&written),
            "{flush:?}: rows survive both codecs"
        );
    }
}

/// The policy picks only hours that ended `min_age_secs` ago with at least `min_files` files.
#[tokio::test]
async fn candidates_follow_policy() {
    let storage = Storage::open_with_store(Arc::new(InMemory::new()), &cfg("memory://"))
        .await
        .expect("open");
    let table = storage.table("metrics").expect("table");
    write_files(&table, 8, 2, 2).await;
    let end = (HOUR + 1) * HOUR_NANOS;
    assert!(table.compaction_candidates(end).is_empty(), "too recent");
    assert_eq!(table.compaction_candidates(end + 301 * SEC), vec![HOUR]);
    let cfg7 = phoenix_model::config::StorageConfig {
        compaction: phoenix_model::config::CompactionConfig {
            min_files: 9,
            ..Default::default()
        },
        ..cfg("memory://")
    };
    let other = Storage::open_with_store(storage.object_store(), &cfg7)
        .await
        .expect("open");
    let t = other.table("metrics").expect("table");
    assert!(
        t.compaction_candidates(end + 301 * SEC).is_empty(),
        "8 < 9 files"
    );
}
