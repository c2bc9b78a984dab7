//! Shared helpers of the storage integration tests.
#![allow(dead_code)]

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use phoenix_model::config::StorageConfig;
use phoenix_model::edge::{AckToken, Delivery, EdgeError, EdgeReceiver};
use phoenix_storage::testing::{metrics_batch, TestPoint};
use tokio::sync::{mpsc, Notify};

/// 2026-11-21T14:00:00Z in ns.
pub const T0: i64 = 1_795_269_600_000_000_000;
/// One second in ns.
pub const SEC: i64 = 1_000_000_000;

/// Storage settings for tests (`url` unused with `open_with_store`).
pub fn cfg(url: &str) -> StorageConfig {
    StorageConfig {
        url: url.to_string(),
        flush_interval_secs: 3600,
        flush_max_rows: 1_000_000,
        row_group_rows: 1000,
        ..StorageConfig::default()
    }
}

/// `n` points of series `metric`/`service` starting at `start`, one per second.
pub fn points(metric: &str, service: &str, start: i64, n: usize) -> Vec<TestPoint> {
    (0..n)
        .map(|i| {
            TestPoint::gauge(metric, service, start + i as i64 * SEC, i as f64 * 1.5)
                .attr("http.route", "/api")
                .resource("host.name", "h1")
        })
        .collect()
}

/// A batch of [`points`].
pub fn batch(metric: &str, service: &str, start: i64, n: usize) -> RecordBatch {
    metrics_batch(&points(metric, service, start, n))
}

/// Every row of a Parquet object, as one batch.
pub async fn read_file(store: &Arc<dyn ObjectStore>, path: &Path) -> RecordBatch {
    let bytes = store
        .get(path)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .expect("parquet")
        .build()
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    arrow::compute::concat_batches(&phoenix_model::metrics_schema(), &batches).expect("concat")
}

/// (series_id, time) of every row, sorted: identifies rows for lost/duplicate checks.
pub fn row_keys(batches: &[RecordBatch]) -> Vec<(u64, i64)> {
    use arrow::array::AsArray;
    use arrow::datatypes::{TimestampNanosecondType, UInt64Type};
    let mut keys = Vec::new();
    for b in batches {
        let ids = b
            .column_by_name("series_id")
            .expect("series_id")
            .as_primitive::<UInt64Type>();
        let times = b
            .column_by_name("time")
            .expect("time")
            .as_primitive::<TimestampNanosecondType>();
        keys.extend(
            ids.values()
                .iter()
                .copied()
                .zip(times.values().iter().copied()),
        );
    }
    keys.sort_unstable();
    keys
}

/// An object store wrapper that can fail puts or hold them until released.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    /// Puts fail while set.
    pub fail_puts: AtomicBool,
    /// Puts wait for `release` while set.
    pub hold_puts: AtomicBool,
    /// Notified when a held put starts waiting.
    pub put_started: Notify,
    /// Releases held puts.
    pub release: Notify,
    /// Successful puts.
    pub puts: AtomicUsize,
}

impl FaultyStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fail_puts: AtomicBool::new(false),
            hold_puts: AtomicBool::new(false),
            put_started: Notify::new(),
            release: Notify::new(),
            puts: AtomicUsize::new(0),
        })
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if self.hold_puts.load(Ordering::SeqCst) {
            let released = self.release.notified();
            self.put_started.notify_one();
            released.await;
        }
        if self.fail_puts.load(Ordering::SeqCst) {
            return Err(object_store::Error::Generic {
                store: "faulty",
                source: "injected put failure".into(),
            });
        }
        let r = self.inner.put_opts(location, payload, opts).await;
        self.puts.fetch_add(1, Ordering::SeqCst);
        r
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// The receiving end of a test edge: an mpsc channel, with commits recorded.
pub struct TestEdge {
    rx: mpsc::Receiver<Delivery>,
    /// Every committed token, in order.
    pub commits: Arc<Mutex<Vec<u64>>>,
}

/// A test edge: the sender, and the receiver to hand to `run_sink`.
pub fn test_edge(capacity: usize) -> (mpsc::Sender<Delivery>, TestEdge) {
    let (tx, rx) = mpsc::channel(capacity);
    (
        tx,
        TestEdge {
            rx,
            commits: Arc::new(Mutex::new(Vec::new())),
        },
    )
}

#[async_trait]
impl EdgeReceiver for TestEdge {
    async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError> {
        self.commits.lock().expect("lock").push(upto.0);
        Ok(())
    }
}
