//! Writes the graph's usage accounting to the `usage` table: closed minutes as they close,
//! everything at shutdown (after the sinks, so every datapoint written is counted).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use phoenix_model::usage::{usage_schema, USAGE_TABLE};
use phoenix_processors::UsageRecorder;
use phoenix_storage::{Storage, Table};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info_span, warn, Instrument};

/// How often closed minutes are looked for.
const TICK: Duration = Duration::from_secs(5);

/// Drains closed minutes every few seconds and flushes them on the storage flush interval;
/// on `stop`, drains and flushes everything. Failures are logged: accounting never stops
/// the pipeline. Every drained batch also goes to the cost anomaly detector through `cost`,
/// without waiting (a full queue skips the batch for detection, counted).
pub(crate) async fn run(
    usage: UsageRecorder,
    storage: Storage,
    grace: Duration,
    cost: Option<mpsc::Sender<RecordBatch>>,
    stop: CancellationToken,
) {
    async move {
        let table = match storage.table_with_schema(USAGE_TABLE, usage_schema()) {
            Ok(t) => t,
            Err(error) => {
                warn!(%error, "Cannot open the usage table; usage is not written.");
                return;
            }
        };
        let flush_every = Duration::from_secs(storage.config().flush_interval_secs.max(1));
        let mut since_flush = Duration::ZERO;
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let before = now_ns().saturating_sub(grace.as_nanos() as i64);
            drain_into(&usage, &storage, &table, Some(before), cost.as_ref());
            since_flush += TICK;
            if since_flush >= flush_every && table.buffered_rows() > 0 {
                since_flush = Duration::ZERO;
                if let Err(error) = table.flush().await {
                    warn!(%error, "Usage flush failed; rows stay buffered.");
                }
            }
        }
        drain_into(&usage, &storage, &table, None, cost.as_ref());
        if let Err(error) = table.flush().await {
            warn!(%error, "Usage flush at shutdown failed.");
        }
    }
    .instrument(info_span!("usage"))
    .await;
}

/// Appends the minutes starting before `before_ns` (all for `None`) to the table; stored
/// bytes are estimated with each table's bytes per row so far.
fn drain_into(
    usage: &UsageRecorder,
    storage: &Storage,
    table: &Table,
    before_ns: Option<i64>,
    cost: Option<&mpsc::Sender<RecordBatch>>,
) {
    let bytes_per_row = |name: &str| {
        storage
            .get_table(name)
            .and_then(|t| t.bytes_per_row())
            .unwrap_or(0.0)
    };
    // Minutes start on minute boundaries, so the cut is taken at one.
    let before = before_ns.map(|b| b.div_euclid(60_000_000_000) * 60_000_000_000);
    match usage.drain(before, bytes_per_row) {
        Ok(Some(batch)) => {
            if let Some(tx) = cost {
                if tx.try_send(batch.clone()).is_err() {
                    metrics::counter!("phoenix_anomaly_usage_batches_skipped_total", "reason" => "queue_full")
                        .increment(1);
                }
            }
            if let Err(error) = table.append(batch) {
                warn!(%error, "Usage rows could not be buffered.");
            }
        }
        Ok(None) => {}
        Err(error) => warn!(%error, "Usage rows could not be assembled."),
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
