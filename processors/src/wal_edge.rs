//! The embedded default's entry edge: every batch is written to the WAL and fsynced before the
//! sender returns, and travels on with its WAL sequence number as its ack token.
//!
//! Room on the in-memory edge is reserved before the WAL write, so a batch is never in the WAL
//! without a place downstream, and the WAL thread hands batches over in sequence order: the sink
//! sees positions in increasing order, so committing position `n` releases WAL records `≤ n`.

use std::time::Duration;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use phoenix_model::{AckToken, Delivery, EdgeError, EdgeReceiver, EdgeSender, Replayable};
use phoenix_wal::Wal;

use crate::memory_edge::{memory_edge, MemoryReceiver, MemorySender};

/// Creates a WAL-backed edge over a bounded in-memory channel.
pub fn wal_edge(
    wal: Wal,
    name: &str,
    capacity: usize,
    admission_timeout: Duration,
    retry_after: Duration,
) -> (WalSender, WalReceiver) {
    let (tx, rx) = memory_edge(name, capacity, admission_timeout, retry_after);
    (
        WalSender {
            wal: wal.clone(),
            inner: tx,
            retry_after,
        },
        WalReceiver { wal, inner: rx },
    )
}

/// Writing end: WAL first, then the edge.
#[derive(Debug)]
pub struct WalSender {
    wal: Wal,
    inner: MemorySender,
    retry_after: Duration,
}

impl WalSender {
    /// Feeds records recovered from the WAL back into the edge, in order, waiting for room.
    ///
    /// # Errors
    /// [`EdgeError::Closed`] when the receiver is gone.
    pub async fn replay(&self, records: Vec<(u64, RecordBatch)>) -> Result<(), EdgeError> {
        for (seq, batch) in records {
            self.inner
                .reserve_unbounded_wait()
                .await?
                .send(batch, Some(seq));
        }
        Ok(())
    }

    /// Reserves room downstream, logs `batch` (or its `source`, see
    /// [`Wal::append_source_then`]) and hands it on once durable.
    async fn log_and_send(
        &self,
        batch: RecordBatch,
        source: Option<Replayable>,
    ) -> Result<(), EdgeError> {
        let permit = self.inner.reserve().await?;
        let forward = batch.clone();
        let then = move |seq| permit.send(forward, Some(seq));
        let logged = match source {
            Some(s) => {
                self.wal
                    .append_source_then(&batch, s.header, s.body, then)
                    .await
            }
            None => self.wal.append_then(&batch, then).await,
        };
        logged.map(|_| ()).map_err(|e| match e {
            phoenix_wal::Error::Full { .. } => EdgeError::Full {
                retry_after: self.retry_after,
            },
            phoenix_wal::Error::Closed => EdgeError::Closed,
            other => EdgeError::Transport(other.to_string()),
        })
    }
}

#[async_trait]
impl EdgeSender for WalSender {
    async fn send(&self, batch: RecordBatch) -> Result<(), EdgeError> {
        self.log_and_send(batch, None).await
    }

    async fn send_replayable(
        &self,
        batch: RecordBatch,
        source: Replayable,
    ) -> Result<(), EdgeError> {
        self.log_and_send(batch, Some(source)).await
    }

    fn queued(&self) -> usize {
        self.inner.queued()
    }
}

/// Reading end: commits release WAL segments.
#[derive(Debug)]
pub struct WalReceiver {
    wal: Wal,
    inner: MemoryReceiver,
}

#[async_trait]
impl EdgeReceiver for WalReceiver {
    async fn recv(&mut self) -> Option<Delivery> {
        self.inner.recv().await
    }

    async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError> {
        self.wal.release(upto.0).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use phoenix_wal::WalOptions;
    use std::sync::Arc;

    fn batch(n: i32) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![n]))])
            .expect("valid batch")
    }

    fn value(b: &RecordBatch) -> i32 {
        b.column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .map_or(-1, |a| a.value(0))
    }

    fn options(dir: &std::path::Path) -> WalOptions {
        WalOptions {
            dir: dir.to_path_buf(),
            segment_bytes: 1,
            max_bytes: 1 << 30,
            codec: phoenix_wal::Codec::default(),
            sources: None,
            direct_io: false,
        }
    }

    fn open(dir: &std::path::Path) -> phoenix_wal::Opened {
        Wal::open(options(dir)).expect("open wal")
    }

    /// Concurrent senders: deliveries arrive in WAL order, and committed ones are not replayed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delivers_in_wal_order_and_commit_releases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opened = open(dir.path());
        let (tx, mut rx) = wal_edge(
            opened.wal,
            "t",
            64,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let tx = Arc::new(tx);
        let mut tasks = Vec::new();
        for i in 0..40 {
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move { tx.send(batch(i)).await }));
        }
        for t in tasks {
            t.await.expect("join").expect("send");
        }
        let mut acks = Vec::new();
        for _ in 0..40 {
            acks.push(rx.recv().await.expect("delivery").ack.0);
        }
        assert_eq!(acks, (1..=40).collect::<Vec<u64>>());
        // Everything so far is durable downstream; then sequential sends, one record each.
        rx.commit(AckToken(40)).await.expect("commit");
        for i in 41..=50 {
            tx.send(batch(i)).await.expect("send");
            assert_eq!(rx.recv().await.expect("delivery").ack.0, i as u64);
        }
        rx.commit(AckToken(45)).await.expect("commit");
        // A send after the commit is answered only after the WAL thread applied the release.
        tx.send(batch(99)).await.expect("send");
        drop((tx, rx));
        let reopened = open(dir.path());
        let seqs: Vec<u64> = reopened.replay.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (46..=51).collect::<Vec<u64>>());
    }

    /// A full edge refuses before writing the WAL, so a refused batch is never replayed.
    #[tokio::test]
    async fn full_edge_writes_nothing_to_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opened = open(dir.path());
        let (tx, rx) = wal_edge(
            opened.wal,
            "t",
            1,
            Duration::from_millis(10),
            Duration::from_secs(3),
        );
        tx.send(batch(1)).await.expect("room");
        let err = tx.send(batch(2)).await.expect_err("full");
        assert!(matches!(err, EdgeError::Full { .. }));
        drop((tx, rx));
        let reopened = open(dir.path());
        let values: Vec<i32> = reopened.replay.iter().map(|(_, b)| value(b)).collect();
        assert_eq!(values, vec![1]);
    }

    /// A batch sent with its source is delivered as the batch, and the WAL logs the source:
    /// after a restart the decoder turns it back into the same batch.
    #[tokio::test]
    async fn replayable_batch_is_logged_as_its_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, mut rx) = wal_edge(
            open(dir.path()).wal,
            "t",
            4,
            Duration::from_millis(10),
            Duration::from_secs(1),
        );
        let source = Replayable {
            header: b"n".to_vec(),
            body: bytes::Bytes::from_static(b"77"),
        };
        tx.send_replayable(batch(77), source).await.expect("send");
        let d = rx.recv().await.expect("delivery");
        assert_eq!((d.ack.0, value(&d.batch)), (1, 77));
        drop((tx, rx));
        let decoder = phoenix_wal::SourceDecoder(Arc::new(|header: &[u8], body: &[u8]| {
            assert_eq!(header, b"n");
            let n: i32 = std::str::from_utf8(body)
                .map_err(|e| e.to_string())?
                .parse()
                .map_err(|e: std::num::ParseIntError| e.to_string())?;
            Ok(Some(batch(n)))
        }));
        let reopened = Wal::open(WalOptions {
            sources: Some(decoder),
            ..options(dir.path())
        })
        .expect("reopen");
        let values: Vec<(u64, i32)> = reopened
            .replay
            .iter()
            .map(|(s, b)| (*s, value(b)))
            .collect();
        assert_eq!(values, vec![(1, 77)]);
        // Without the decoder the WAL does not open: the record is a source, not a batch.
        assert!(Wal::open(options(dir.path())).is_err());
    }

    /// Replayed records come out first, with their original sequence numbers.
    #[tokio::test]
    async fn replay_preserves_positions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opened = open(dir.path());
        let (tx, mut rx) = wal_edge(
            opened.wal,
            "t",
            4,
            Duration::from_millis(10),
            Duration::from_secs(1),
        );
        tx.replay(vec![(5, batch(50)), (6, batch(60))])
            .await
            .expect("replay");
        let a = rx.recv().await.expect("first");
        let b = rx.recv().await.expect("second");
        assert_eq!((a.ack.0, value(&a.batch)), (5, 50));
        assert_eq!((b.ack.0, value(&b.batch)), (6, 60));
    }
}
