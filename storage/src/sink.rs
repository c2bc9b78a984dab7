//! The storage sink stage: takes deliveries off a graph edge into a table, flushes by policy,
//! and acknowledges deliveries once a flush made them durable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use phoenix_model::edge::{AckToken, EdgeReceiver};
use phoenix_model::health::{HealthRegistry, Status};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::ROWS_DROPPED;
use crate::table::{now_unix_ms, FlushReport};
use crate::{Result, Table, HOUR_NANOS, METRICS_TABLE};

/// First wait after a failed flush; doubles per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between flush retries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// At shutdown, the edge counts as drained after this long without a delivery.
const DRAIN_IDLE: Duration = Duration::from_millis(500);
/// Flush attempts at shutdown before giving up (the data stays unacknowledged upstream).
const FINAL_ATTEMPTS: u32 = 5;

/// A flush running in the background, with the last token it makes durable.
type Flushing = BoxFuture<'static, (Result<FlushReport>, Option<AckToken>)>;

/// Runs the sink for `table` until `shutdown` is cancelled or the edge closes.
///
/// Policy: flush when `flush_max_rows` rows or `flush_max_bytes` of Arrow memory are buffered, or
/// every `flush_interval_secs`; a failed flush keeps the rows buffered and is retried with
/// exponential backoff while health shows `degraded`. Past twice either limit the sink stops
/// receiving, so the bounded
/// edge pushes back on ingest. A delivery is committed once every row appended before it is in a
/// durable file. Files older than `retention_days` are deleted on the same loop.
///
/// On shutdown it drains the edge, flushes everything and commits before returning.
///
/// # Errors
/// The final flush failing after [`FINAL_ATTEMPTS`] attempts; uncommitted deliveries will be
/// redelivered by the edge's durable transport, if it has one.
pub async fn run_sink(
    table: Table,
    mut rx: Box<dyn EdgeReceiver>,
    health: HealthRegistry,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut sink = Sink::new(table, health);
    tracing::info!(table = %sink.table.name(), "Storage sink started.");
    let mut flushing: Option<Flushing> = None;
    loop {
        if flushing.is_none() {
            flushing = sink.start_flush_if_due();
        }
        if flushing.is_none() {
            sink.commit_if_drained(rx.as_mut()).await;
            // Checked here, not only when idle: under steady load `recv` is always ready.
            sink.maintain().await;
        }
        let can_receive = !sink.over_hard_cap();
        let wake = sink.next_wake();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            (res, upto) = async { match flushing.as_mut() { Some(f) => f.await, None => std::future::pending().await } }, if flushing.is_some() => {
                flushing = None;
                sink.finish_flush(res, upto, rx.as_mut()).await;
            }
            delivery = rx.recv(), if can_receive => match delivery {
                Some(d) => sink.append(d.batch, d.ack),
                None => break,
            },
            () = tokio::time::sleep_until(wake) => sink.report_health(),
        }
    }

    tracing::info!(table = %sink.table.name(), "Storage sink draining.");
    if let Some(f) = flushing.take() {
        let (res, upto) = f.await;
        sink.finish_flush(res, upto, rx.as_mut()).await;
    }
    loop {
        if sink.over_hard_cap() {
            let upto = sink.last_appended;
            let res = sink.table.flush().await;
            let failed = res.is_err();
            sink.finish_flush(res, upto, rx.as_mut()).await;
            if failed {
                // Stop taking more; what is left on the edge stays uncommitted there.
                break;
            }
        }
        match tokio::time::timeout(DRAIN_IDLE, rx.recv()).await {
            Ok(Some(d)) => sink.append(d.batch, d.ack),
            Ok(None) | Err(_) => break,
        }
    }
    let result = sink.final_flush(rx.as_mut()).await;
    tracing::info!(table = %sink.table.name(), ok = result.is_ok(), "Storage sink stopped.");
    result
}

/// State of one running sink.
struct Sink {
    table: Table,
    health: HealthRegistry,
    component: String,
    max_rows: usize,
    hard_cap: usize,
    max_bytes: usize,
    interval: Duration,
    retention_days: u64,
    next_flush_at: Instant,
    next_maintenance_at: Instant,
    retry_at: Option<Instant>,
    backoff: Duration,
    last_appended: Option<AckToken>,
    committed: Option<AckToken>,
    /// The background compaction pass, if one runs.
    compacting: Option<tokio::task::JoinHandle<()>>,
    /// Compactions and compaction failures since start, for health.
    compactions: Arc<AtomicU64>,
    compaction_errors: Arc<AtomicU64>,
}

impl Sink {
    fn new(table: Table, health: HealthRegistry) -> Self {
        let cfg = table.config();
        let interval = Duration::from_secs(cfg.flush_interval_secs.max(1));
        let max_rows = cfg.flush_max_rows.max(1);
        let max_bytes = usize::try_from(cfg.flush_max_bytes.max(1)).unwrap_or(usize::MAX);
        let component = if table.name() == METRICS_TABLE {
            "storage".to_string()
        } else {
            format!("storage.{}", table.name())
        };
        let sink = Sink {
            retention_days: cfg.retention_days,
            table,
            health,
            component,
            max_rows,
            hard_cap: max_rows.saturating_mul(2),
            max_bytes,
            interval,
            next_flush_at: Instant::now() + interval,
            next_maintenance_at: Instant::now(),
            retry_at: None,
            backoff: FIRST_BACKOFF,
            last_appended: None,
            committed: None,
            compacting: None,
            compactions: Arc::new(AtomicU64::new(0)),
            compaction_errors: Arc::new(AtomicU64::new(0)),
        };
        sink.report_health();
        sink
    }

    /// Buffers a delivery; a batch that does not fit the table is counted and dropped.
    fn append(&mut self, batch: arrow::array::RecordBatch, ack: AckToken) {
        let rows = batch.num_rows();
        if let Err(error) = self.table.append_acked(batch, Some(ack.0)) {
            tracing::error!(table = %self.table.name(), rows, %error, "Dropping batch the table cannot store.");
            metrics::counter!(ROWS_DROPPED, "table" => self.table.name().to_string(), "reason" => "invalid_batch")
                .increment(rows as u64);
        }
        self.last_appended = Some(ack);
    }

    /// Twice either flush limit is buffered: stop taking deliveries until a flush frees room.
    fn over_hard_cap(&self) -> bool {
        self.table.buffered_rows() >= self.hard_cap
            || self.table.buffered_bytes() >= self.max_bytes.saturating_mul(2)
    }

    /// A flush future when the policy says so and no backoff is pending.
    fn start_flush_if_due(&mut self) -> Option<Flushing> {
        let now = Instant::now();
        let buffered = self.table.buffered_rows();
        if buffered == 0 {
            if now >= self.next_flush_at {
                self.next_flush_at = now + self.interval;
            }
            return None;
        }
        let due = buffered >= self.max_rows
            || self.table.buffered_bytes() >= self.max_bytes
            || now >= self.next_flush_at;
        let allowed = self.retry_at.is_none_or(|t| now >= t);
        if !(due && allowed) {
            return None;
        }
        self.next_flush_at = now + self.interval;
        let table = self.table.clone();
        let upto = self.last_appended;
        Some(Box::pin(async move { (table.flush().await, upto) }))
    }

    /// Handles a finished flush: commit on success, back off on failure.
    async fn finish_flush(
        &mut self,
        res: Result<FlushReport>,
        upto: Option<AckToken>,
        rx: &mut dyn EdgeReceiver,
    ) {
        match res {
            Ok(_) => {
                self.retry_at = None;
                self.backoff = FIRST_BACKOFF;
                if let Some(t) = upto {
                    self.commit(t, rx).await;
                }
            }
            Err(error) => {
                tracing::warn!(table = %self.table.name(), %error, retry_in_ms = self.backoff.as_millis() as u64, "Flush failed; will retry.");
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
        self.report_health();
    }

    /// With nothing buffered, every appended row is in a file: acknowledge everything
    /// (covers deliveries that were empty or dropped, and flushes run by someone else).
    async fn commit_if_drained(&mut self, rx: &mut dyn EdgeReceiver) {
        if let Some(t) = self.last_appended {
            if self.table.buffered_rows() == 0 {
                self.commit(t, rx).await;
            }
        }
    }

    async fn commit(&mut self, upto: AckToken, rx: &mut dyn EdgeReceiver) {
        if self.committed.is_some_and(|c| c >= upto) {
            return;
        }
        match rx.commit(upto).await {
            Ok(()) => self.committed = Some(upto),
            // The next flush commits a later token, which covers this one.
            Err(error) => {
                tracing::warn!(table = %self.table.name(), %error, "Commit failed; will retry.")
            }
        }
    }

    /// When the loop must wake up without a delivery: the next timed flush, not before a
    /// pending retry. A time already past means a flush is running (its completion wakes the
    /// loop), so wait an interval rather than spin.
    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let mut at = self.next_flush_at;
        if let Some(r) = self.retry_at {
            at = at.max(r);
        }
        if at <= now {
            at = now + self.interval;
        }
        at
    }

    /// Once per flush interval: retention pass and a fresh health report.
    async fn maintain(&mut self) {
        let now = Instant::now();
        if now < self.next_maintenance_at {
            return;
        }
        self.next_maintenance_at = now + self.interval;
        self.apply_retention().await;
        self.start_compaction();
        self.report_health();
    }

    /// Starts a background pass over the hours due for compaction, unless one still runs.
    ///
    /// Tables fed from Kafka partitions (`position_split` set) are not compacted: several nodes
    /// write them, and one node's delayed deletes could remove files another node's queries
    /// planned on. Replaced files are deleted `delete_grace_secs` after the swap by a detached
    /// task; if the process stops first, the next startup deletes them (`phoenix.replaces`).
    fn start_compaction(&mut self) {
        let cfg = self.table.config().compaction.clone();
        if !cfg.enabled || self.table.position_split().is_some() {
            return;
        }
        if self.compacting.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let now_ns = (now_unix_ms() as i64).saturating_mul(1_000_000);
        let hours = self.table.compaction_candidates(now_ns);
        if hours.is_empty() {
            return;
        }
        let table = self.table.clone();
        let (done, failed) = (
            Arc::clone(&self.compactions),
            Arc::clone(&self.compaction_errors),
        );
        let grace = Duration::from_secs(cfg.delete_grace_secs);
        self.compacting = Some(tokio::spawn(async move {
            for hour in hours {
                match table.compact_hour(hour).await {
                    Ok(Some(report)) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        let paths: Vec<_> = report.inputs.into_iter().map(|f| f.path).collect();
                        let t = table.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(grace).await;
                            t.delete_replaced(&paths).await;
                        });
                    }
                    Ok(None) => {}
                    Err(error) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(table = %table.name(), hour, %error, "Compaction failed; will retry later.");
                    }
                }
            }
        }));
    }

    async fn apply_retention(&self) {
        if self.retention_days == 0 {
            return;
        }
        let now_ns = (now_unix_ms() as i64).saturating_mul(1_000_000);
        let cutoff =
            now_ns.saturating_sub((self.retention_days as i64).saturating_mul(24 * HOUR_NANOS));
        if let Err(error) = self.table.delete_files_older_than(cutoff).await {
            tracing::warn!(table = %self.table.name(), %error, "Retention pass incomplete.");
        }
    }

    /// Flushes everything at shutdown, retrying a few times, then commits.
    async fn final_flush(&mut self, rx: &mut dyn EdgeReceiver) -> Result<()> {
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let upto = self.last_appended;
            match self.table.flush().await {
                Ok(report) => {
                    self.finish_flush(Ok(report), upto, rx).await;
                    return Ok(());
                }
                Err(e) if attempt >= FINAL_ATTEMPTS => {
                    self.retry_at = Some(Instant::now());
                    self.report_health();
                    return Err(e);
                }
                Err(error) => {
                    tracing::warn!(table = %self.table.name(), attempt, %error, "Final flush failed; retrying.");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
            }
        }
    }

    fn report_health(&self) {
        let status = if self.retry_at.is_some() {
            Status::Degraded
        } else {
            Status::Ok
        };
        let mut figures = serde_json::Map::new();
        figures.insert("table".into(), self.table.name().into());
        figures.insert(
            "buffered_rows".into(),
            (self.table.buffered_rows() as u64).into(),
        );
        figures.insert("files".into(), (self.table.file_count() as u64).into());
        figures.insert(
            "last_flush_unix_ms".into(),
            self.table
                .last_flush_unix_ms()
                .map_or(serde_json::Value::Null, Into::into),
        );
        figures.insert("flush_errors".into(), self.table.flush_errors().into());
        figures.insert(
            "compactions".into(),
            self.compactions.load(Ordering::Relaxed).into(),
        );
        figures.insert(
            "compaction_errors".into(),
            self.compaction_errors.load(Ordering::Relaxed).into(),
        );
        self.health.report(&self.component, status, figures);
    }
}
