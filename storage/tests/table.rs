//! Table behaviour against real object stores: round trips, partitions, manifests, concurrency,
//! failures and retention.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::RecordBatch;
use common::*;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use phoenix_storage::testing::{metrics_batch, TestPoint};
use phoenix_storage::{Storage, HOUR_NANOS};

/// The rows of `points` ordered as files store them: metric, service, series, time.
fn sorted(mut pts: Vec<TestPoint>) -> RecordBatch {
    pts.sort_by(|a, b| {
        (&a.metric, &a.service, a.series_id, a.time_ns).cmp(&(
            &b.metric,
            &b.service,
            b.series_id,
            b.time_ns,
        ))
    });
    metrics_batch(&pts)
}

async fn round_trip(storage: Storage) {
    let table = storage.table("metrics").expect("metrics");
    let mut all = points("cpu", "web", T0, 300);
    all.extend(points("mem", "db", T0 + 5 * SEC, 200));
    all.extend(points("cpu", "api", T0 + 7 * SEC, 100));
    // Appended in an order the file does not keep, in three batches.
    table.append(metrics_batch(&all[300..500])).expect("append");
    table.append(metrics_batch(&all[..300])).expect("append");
    table.append(metrics_batch(&all[500..])).expect("append");

    let snap = table.snapshot();
    assert!(snap.files.is_empty());
    assert_eq!(snap.buffered_rows(), 600);

    let report = table.flush().await.expect("flush");
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.rows, 600);

    let snap = table.snapshot();
    assert_eq!(snap.buffered_rows(), 0);
    assert_eq!(snap.files.len(), 1);
    let file = &snap.files[0];
    assert_eq!((file.min_time, file.max_time), (T0, T0 + 299 * SEC));
    assert_eq!(file.rows, Some(600));
    assert!(
        file.path
            .as_ref()
            .starts_with("metrics/date=2026-11-21/hour=14/"),
        "{}",
        file.path
    );

    let read = read_file(&storage.object_store(), &file.path).await;
    assert_eq!(read.num_rows(), 600);
    assert_eq!(file.size as usize, {
        use object_store::ObjectStoreExt;
        storage
            .object_store()
            .head(&file.path)
            .await
            .expect("head")
            .size as usize
    });
    let expected = sorted(all);
    for (i, field) in expected.schema().fields().iter().enumerate() {
        assert_eq!(
            read.column(i).as_ref(),
            expected.column(i).as_ref(),
            "column {}",
            field.name()
        );
    }
}

/// Local folder: buffered rows become one sorted file whose every value reads back unchanged.
#[tokio::test]
async fn round_trip_local() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = dir.path().join("tables");
    let storage = Storage::open(&cfg(url.to_str().expect("utf8")))
        .await
        .expect("open");
    round_trip(storage).await;
    let hour_dir = url.join("metrics/date=2026-11-21/hour=14");
    let files: Vec<_> = std::fs::read_dir(&hour_dir)
        .expect("partition folder")
        .collect();
    assert_eq!(files.len(), 1, "one file in {}", hour_dir.display());
}

/// memory://: the same round trip.
#[tokio::test]
async fn round_trip_memory() {
    let storage = Storage::open(&cfg("memory://")).await.expect("open");
    round_trip(storage).await;
}

/// A batch spanning two hours lands in two partition folders, each file within its hour.
#[tokio::test]
async fn rows_spanning_hours_split_into_partitions() {
    let storage = Storage::open(&cfg("memory://")).await.expect("open");
    let table = storage.table("metrics").expect("metrics");
    // 14:59:00 .. 15:00:59
    table
        .append(batch("cpu", "web", T0 + HOUR_NANOS - 60 * SEC, 120))
        .expect("append");
    assert_eq!(
        table.snapshot().buffered.len(),
        2,
        "split into two hour pieces"
    );
    let report = table.flush().await.expect("flush");
    assert_eq!(report.files.len(), 2);
    let snap = table.snapshot();
    let mut dirs: Vec<String> = snap
        .files
        .iter()
        .map(|f| f.path.as_ref().rsplit_once('/').expect("dir").0.to_string())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        [
            "metrics/date=2026-11-21/hour=14",
            "metrics/date=2026-11-21/hour=15"
        ]
    );
    for f in &snap.files {
        assert_eq!(f.rows, Some(60));
        assert_eq!(
            f.min_time.div_euclid(HOUR_NANOS),
            f.max_time.div_euclid(HOUR_NANOS)
        );
    }
}

/// Reopening rebuilds every table's manifest from the listing and skips foreign objects.
#[tokio::test]
async fn reopen_rebuilds_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = dir.path().to_str().expect("utf8").to_string();
    let storage = Storage::open(&cfg(&url)).await.expect("open");
    let metrics = storage.table("metrics").expect("metrics");
    metrics.append(batch("cpu", "web", T0, 10)).expect("append");
    metrics
        .append(batch("cpu", "web", T0 + 2 * HOUR_NANOS, 10))
        .expect("append");
    metrics.flush().await.expect("flush");
    let rollup = storage.table("rollup_1m").expect("rollup");
    rollup.append(batch("cpu", "web", T0, 5)).expect("append");
    rollup.flush().await.expect("flush");
    std::fs::write(dir.path().join("metrics/README.txt"), "not ours").expect("write");
    std::fs::create_dir_all(dir.path().join("metrics/date=2026-11-21/hour=14")).expect("mkdir");
    std::fs::write(
        dir.path()
            .join("metrics/date=2026-11-21/hour=14/junk.parquet"),
        "x",
    )
    .expect("write");
    let before = metrics.snapshot().files;

    let reopened = Storage::open(&cfg(&url)).await.expect("reopen");
    assert_eq!(reopened.tables(), ["metrics", "rollup_1m"]);
    let after = reopened
        .get_table("metrics")
        .expect("metrics")
        .snapshot()
        .files;
    assert_eq!(after.len(), 2);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(
            (&a.path, a.min_time, a.max_time, a.size),
            (&b.path, b.min_time, b.max_time, b.size)
        );
        assert_eq!(b.rows, None);
    }
    let rollup = reopened.get_table("rollup_1m").expect("rollup");
    assert_eq!(rollup.snapshot().files.len(), 1);
    assert_eq!(
        rollup.schema().fields(),
        phoenix_model::metrics_schema().fields()
    );
}

/// Rows appended while a flush is writing stay buffered; nothing is lost or duplicated.
#[tokio::test]
async fn append_during_flush_loses_and_duplicates_nothing() {
    let faulty = FaultyStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faulty.clone();
    let storage = Storage::open_with_store(store, &cfg("memory://"))
        .await
        .expect("open");
    let table = storage.table("metrics").expect("metrics");
    table.append(batch("cpu", "web", T0, 100)).expect("append");

    faulty.hold_puts.store(true, Ordering::SeqCst);
    let started = faulty.put_started.notified();
    let flushing = tokio::spawn({
        let table = table.clone();
        async move { table.flush().await }
    });
    started.await;
    // The flush is inside its put: the first batch is still buffered, not yet in a file.
    table
        .append(batch("cpu", "web", T0 + 100 * SEC, 50))
        .expect("append");
    let mid = table.snapshot();
    assert!(mid.files.is_empty());
    assert_eq!(mid.buffered_rows(), 150);

    faulty.hold_puts.store(false, Ordering::SeqCst);
    faulty.release.notify_one();
    flushing.await.expect("join").expect("flush");
    let after = table.snapshot();
    assert_eq!(after.files.len(), 1);
    assert_eq!(after.files[0].rows, Some(100));
    assert_eq!(
        after.buffered_rows(),
        50,
        "the batch appended during the write stays buffered"
    );

    table.flush().await.expect("second flush");
    let snap = table.snapshot();
    let mut stored = Vec::new();
    for f in &snap.files {
        stored.push(read_file(&storage.object_store(), &f.path).await);
    }
    assert_eq!(row_keys(&stored), row_keys(&[batch("cpu", "web", T0, 150)]));
}

/// Under concurrent appends and repeated flushes, every snapshot and the final files hold each
/// row exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_and_flushes_keep_rows_exactly_once() {
    let storage = Storage::open(&cfg("memory://")).await.expect("open");
    let table = storage.table("metrics").expect("metrics");
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let table = table.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    let start = T0 + (i * 20) as i64 * SEC;
                    table
                        .append(batch(&format!("m{w}"), "svc", start, 20))
                        .expect("append");
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let flusher = tokio::spawn({
        let table = table.clone();
        async move {
            for _ in 0..20 {
                table.flush().await.expect("flush");
                tokio::task::yield_now().await;
            }
        }
    });
    let checker = tokio::spawn({
        let table = table.clone();
        let store = storage.object_store();
        async move {
            for _ in 0..20 {
                let snap = table.snapshot();
                let mut all = snap.buffered.clone();
                for f in &snap.files {
                    all.push(read_file(&store, &f.path).await);
                }
                let keys = row_keys(&all);
                let mut dedup = keys.clone();
                dedup.dedup();
                assert_eq!(
                    keys.len(),
                    dedup.len(),
                    "a row appears twice in one snapshot"
                );
            }
        }
    });
    for w in writers {
        w.await.expect("writer");
    }
    flusher.await.expect("flusher");
    checker.await.expect("checker");
    table.flush().await.expect("final flush");

    let snap = table.snapshot();
    assert_eq!(snap.buffered_rows(), 0);
    let mut stored = Vec::new();
    for f in &snap.files {
        stored.push(read_file(&storage.object_store(), &f.path).await);
    }
    let expected: Vec<RecordBatch> = (0..4)
        .map(|w| batch(&format!("m{w}"), "svc", T0, 1000))
        .collect();
    assert_eq!(row_keys(&stored), row_keys(&expected));
}

/// A failing put keeps the rows buffered and counts the error; the retry writes them once.
#[tokio::test]
async fn flush_failure_keeps_data() {
    let faulty = FaultyStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faulty.clone();
    let storage = Storage::open_with_store(store, &cfg("memory://"))
        .await
        .expect("open");
    let table = storage.table("metrics").expect("metrics");
    table.append(batch("cpu", "web", T0, 30)).expect("append");
    table
        .append(batch("cpu", "web", T0 + HOUR_NANOS, 30))
        .expect("append");

    faulty.fail_puts.store(true, Ordering::SeqCst);
    let err = table.flush().await.expect_err("puts fail");
    assert!(err.to_string().contains("2 of 2 partitions"), "{err}");
    assert_eq!(table.flush_errors(), 2);
    assert_eq!(table.last_flush_unix_ms(), None);
    let snap = table.snapshot();
    assert!(snap.files.is_empty());
    assert_eq!(snap.buffered_rows(), 60);

    faulty.fail_puts.store(false, Ordering::SeqCst);
    let report = table.flush().await.expect("retry");
    assert_eq!(report.rows, 60);
    assert!(table.last_flush_unix_ms().is_some());
    let snap = table.snapshot();
    assert_eq!(snap.files.len(), 2);
    assert_eq!(snap.buffered_rows(), 0);
    assert_eq!(faulty.puts.load(Ordering::SeqCst), 2);
}

/// Retention deletes exactly the files whose newest row is older than the cutoff.
#[tokio::test]
async fn retention_deletes_old_files() {
    let storage = Storage::open(&cfg("memory://")).await.expect("open");
    let table = storage.table("metrics").expect("metrics");
    table.append(batch("cpu", "web", T0, 10)).expect("append");
    table
        .append(batch("cpu", "web", T0 + 3 * HOUR_NANOS, 10))
        .expect("append");
    table.flush().await.expect("flush");
    let old = table.snapshot().files[0].clone();

    let deleted = table
        .delete_files_older_than(T0 + HOUR_NANOS)
        .await
        .expect("retention");
    assert_eq!(deleted, 1);
    let snap = table.snapshot();
    assert_eq!(snap.files.len(), 1);
    assert!(snap.files[0].min_time >= T0 + 3 * HOUR_NANOS);
    use object_store::ObjectStoreExt;
    assert!(
        storage.object_store().head(&old.path).await.is_err(),
        "object deleted"
    );
}

/// Batches with another schema are refused and nothing is buffered.
#[tokio::test]
async fn foreign_schema_refused() {
    let storage = Storage::open(&cfg("memory://")).await.expect("open");
    let table = storage.table("metrics").expect("metrics");
    let other = RecordBatch::try_from_iter([(
        "time",
        Arc::new(arrow::array::Int64Array::from(vec![1])) as arrow::array::ArrayRef,
    )])
    .expect("batch");
    assert!(table.append(other).is_err());
    assert_eq!(table.buffered_rows(), 0);
    assert!(storage.table("Bad/Name").is_err());
}
