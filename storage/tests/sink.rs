//! The storage sink stage: policy flushes, commits after durability, shutdown drain, health.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use phoenix_model::edge::{AckToken, Delivery};
use phoenix_model::health::{HealthRegistry, Status};
use phoenix_storage::{run_sink, Storage};
use tokio_util::sync::CancellationToken;

/// Polls `cond` every 10 ms for up to 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn delivery(n: u64, start: i64, rows: usize) -> Delivery {
    Delivery {
        batch: batch("cpu", "web", start, rows),
        ack: AckToken(n),
    }
}

/// Reaching `flush_max_rows` flushes while the edge is open, and commits what the file holds.
#[tokio::test]
async fn flushes_at_max_rows_and_commits() {
    let mut c = cfg("memory://");
    c.flush_max_rows = 25;
    let storage = Storage::open(&c).await.expect("open");
    let table = storage.table("metrics").expect("metrics");
    let (tx, edge) = test_edge(16);
    let commits = Arc::clone(&edge.commits);
    let health = HealthRegistry::default();
    let shutdown = CancellationToken::new();
    let sink = tokio::spawn(run_sink(
        table.clone(),
        Box::new(edge),
        health.clone(),
        shutdown.clone(),
    ));

    tx.send(delivery(1, T0, 10)).await.expect("send");
    tx.send(delivery(2, T0 + 10 * SEC, 20)).await.expect("send");
    eventually("a flush commits token 2", || {
        commits.lock().expect("lock").contains(&2)
    })
    .await;
    assert_eq!(table.file_count(), 1);
    assert_eq!(table.buffered_rows(), 0);
    let report = health.snapshot();
    let storage_health = report.get("storage").expect("storage health");
    assert_eq!(storage_health.status, Status::Ok);
    assert_eq!(storage_health.figures["files"], 1);
    assert_eq!(storage_health.figures["buffered_rows"], 0);
    assert!(storage_health.figures["last_flush_unix_ms"].is_u64());

    shutdown.cancel();
    sink.await.expect("join").expect("sink");
}

/// Reaching `flush_max_bytes` of buffered Arrow memory flushes even far below `flush_max_rows`,
/// so the sink's memory is bounded by bytes, whatever the row width.
#[tokio::test]
async fn flushes_at_max_bytes() {
    let one = delivery(1, T0, 10).batch.get_array_memory_size() as u64;
    let mut c = cfg("memory://");
    c.flush_max_rows = 1_000_000;
    c.flush_interval_secs = 3600;
    c.flush_max_bytes = one * 2;
    let storage = Storage::open(&c).await.expect("open");
    let table = storage.table("metrics").expect("metrics");
    let (tx, edge) = test_edge(16);
    let commits = Arc::clone(&edge.commits);
    let shutdown = CancellationToken::new();
    let sink = tokio::spawn(run_sink(
        table.clone(),
        Box::new(edge),
        HealthRegistry::default(),
        shutdown.clone(),
    ));

    tx.send(delivery(1, T0, 10)).await.expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(table.file_count(), 0, "one batch is under the byte limit");
    assert!(table.buffered_bytes() as u64 >= one);
    tx.send(delivery(2, T0 + 10 * SEC, 10)).await.expect("send");
    eventually("the byte limit flushes and commits token 2", || {
        commits.lock().expect("lock").contains(&2)
    })
    .await;
    assert_eq!(table.file_count(), 1);
    assert_eq!((table.buffered_rows(), table.buffered_bytes()), (0, 0));

    shutdown.cancel();
    sink.await.expect("join").expect("sink");
}

/// When the edge closes, the sink drains it, flushes everything and commits the last token.
#[tokio::test]
async fn edge_close_drains_flushes_and_commits() {
    let storage = Storage::open(&cfg("memory://")).await.expect("open");
    let table = storage.table("metrics").expect("metrics");
    let (tx, edge) = test_edge(16);
    let commits = Arc::clone(&edge.commits);
    for n in 1..=3 {
        tx.send(delivery(n, T0 + n as i64 * 100 * SEC, 10))
            .await
            .expect("send");
    }
    drop(tx);
    run_sink(
        table.clone(),
        Box::new(edge),
        HealthRegistry::default(),
        CancellationToken::new(),
    )
    .await
    .expect("sink");
    assert_eq!(*commits.lock().expect("lock"), [3]);
    assert_eq!(table.buffered_rows(), 0);
    let snap = table.snapshot();
    let rows: u64 = snap.files.iter().map(|f| f.rows.unwrap_or(0)).sum();
    assert_eq!(rows, 30);
}

/// While puts fail nothing is committed and health is degraded; after recovery, shutdown
/// flushes and commits everything.
#[tokio::test]
async fn failing_store_defers_commits_until_recovery() {
    let faulty = FaultyStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faulty.clone();
    let mut c = cfg("memory://");
    c.flush_max_rows = 5;
    let storage = Storage::open_with_store(store, &c).await.expect("open");
    let table = storage.table("metrics").expect("metrics");
    faulty.fail_puts.store(true, Ordering::SeqCst);

    let (tx, edge) = test_edge(16);
    let commits = Arc::clone(&edge.commits);
    let health = HealthRegistry::default();
    let shutdown = CancellationToken::new();
    let sink = tokio::spawn(run_sink(
        table.clone(),
        Box::new(edge),
        health.clone(),
        shutdown.clone(),
    ));
    tx.send(delivery(1, T0, 10)).await.expect("send");

    eventually("health turns degraded", || {
        health.snapshot().get("storage").map(|h| h.status) == Some(Status::Degraded)
    })
    .await;
    assert!(commits.lock().expect("lock").is_empty());
    assert_eq!(table.buffered_rows(), 10);
    assert!(table.flush_errors() >= 1);

    faulty.fail_puts.store(false, Ordering::SeqCst);
    shutdown.cancel();
    drop(tx);
    sink.await.expect("join").expect("sink");
    assert_eq!(*commits.lock().expect("lock"), [1]);
    assert_eq!(table.buffered_rows(), 0);
    assert_eq!(health.snapshot()["storage"].status, Status::Ok);
}

/// If the store never recovers, shutdown returns the error and commits nothing.
#[tokio::test]
async fn shutdown_with_dead_store_reports_error() {
    let faulty = FaultyStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faulty.clone();
    let storage = Storage::open_with_store(store, &cfg("memory://"))
        .await
        .expect("open");
    let table = storage.table("metrics").expect("metrics");
    faulty.fail_puts.store(true, Ordering::SeqCst);
    let (tx, edge) = test_edge(4);
    let commits = Arc::clone(&edge.commits);
    tx.send(delivery(7, T0, 3)).await.expect("send");
    drop(tx);
    let res = run_sink(
        table.clone(),
        Box::new(edge),
        HealthRegistry::default(),
        CancellationToken::new(),
    )
    .await;
    assert!(res.is_err());
    assert!(commits.lock().expect("lock").is_empty());
    assert_eq!(table.buffered_rows(), 3, "data stays buffered");
}

/// With `retention_days` set, the sink deletes files older than the cutoff and keeps new ones.
#[tokio::test]
async fn sink_applies_retention() {
    let mut c = cfg("memory://");
    c.retention_days = 1;
    let storage = Storage::open(&c).await.expect("open");
    let table = storage.table("metrics").expect("metrics");
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i64;
    let old = 1_600_000_000 * SEC; // 2020-09-13
    table.append(batch("cpu", "web", old, 5)).expect("append");
    table
        .append(batch("cpu", "web", now_ns - 60 * SEC, 5))
        .expect("append");
    table.flush().await.expect("flush");
    assert_eq!(table.file_count(), 2);

    let (tx, edge) = test_edge(1);
    drop(tx);
    run_sink(
        table.clone(),
        Box::new(edge),
        HealthRegistry::default(),
        CancellationToken::new(),
    )
    .await
    .expect("sink");
    let files = table.snapshot().files;
    assert_eq!(files.len(), 1);
    assert!(files[0].min_time > old);
}
