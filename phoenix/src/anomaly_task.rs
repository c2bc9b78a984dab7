//! Writes anomalies to the `anomalies` table and runs the cost detector.
//!
//! - The graph's `anomaly` processors record into one [`AnomalyRecorder`]; this task drains it
//!   every second into the table's buffer, which SQL and `GET /api/v1/anomalies` read at once
//!   (so they lag detection by at most a second), and flushes on the storage flush interval
//!   and at shutdown.
//! - The usage task hands every drained `usage` batch over a bounded channel (never waiting);
//!   the [`CostDetector`] scores the closed minutes, and for each cost anomaly this task looks
//!   up which attribute keys grew (one bounded SQL read of the raw table) before recording it.
//! - Every recorded anomaly is offered to the webhook task (see `anomaly_webhook.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, MapArray, RecordBatch, StringArray};
use phoenix_analytics::QueryEngine;
use phoenix_model::anomaly::{anomalies_schema, AnomaliesConfig, ANOMALIES_TABLE};
use phoenix_model::pipeline::DEFAULT_SINK;
use phoenix_processors::anomaly::{CostAnomaly, CostDetector};
use phoenix_processors::{AnomalyRecorder, AnomalyRow};
use phoenix_storage::{Storage, Table};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info_span, warn, Instrument};

use crate::anomaly_webhook;

/// How often the recorder is drained into the table.
const TICK: Duration = Duration::from_secs(1);
/// Usage batches waiting for the cost detector; a full queue skips a batch (counted).
const COST_QUEUE: usize = 64;
/// Raw rows read per label-key lookup, at most.
const LABEL_ROWS: usize = 200_000;
/// Minutes before the anomalous one that the label-key lookup compares with.
const LABEL_BASELINE_MINUTES: i64 = 5;
/// Longest a label-key lookup may take.
const LABEL_TIMEOUT: Duration = Duration::from_secs(10);
const MINUTE_NS: i64 = 60_000_000_000;

/// The handles `serve` wires in: the recorder for the graph, the usage feed for the usage
/// task, and the tasks to stop at shutdown.
pub(crate) struct Anomalies {
    /// Shared by the graph's `anomaly` processors.
    pub recorder: AnomalyRecorder,
    /// Where the usage task sends drained usage batches (`None`: cost detection is off).
    pub cost_feed: Option<mpsc::Sender<RecordBatch>>,
    cost_rx: Option<mpsc::Receiver<RecordBatch>>,
    webhook_rx: Option<mpsc::Receiver<Arc<AnomalyRow>>>,
    config: AnomaliesConfig,
    usage_enabled: bool,
    tasks: Vec<JoinHandle<()>>,
    cancel: CancellationToken,
    webhook_cancel: CancellationToken,
}

impl Anomalies {
    /// The recorder and channels for `config`; nothing runs until [`Anomalies::start`].
    pub(crate) fn new(config: &phoenix_model::Config) -> Anomalies {
        let (webhook_tx, webhook_rx) = match &config.anomalies.webhook {
            Some(w) => {
                let (tx, rx) = mpsc::channel(w.queue_capacity.max(1));
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let cost_on = config.anomalies.cost.enabled && config.pipeline.usage.enabled;
        let (cost_feed, cost_rx) = if cost_on {
            let (tx, rx) = mpsc::channel(COST_QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        Anomalies {
            recorder: AnomalyRecorder::new(
                phoenix_processors::anomaly::DEFAULT_CAPACITY,
                webhook_tx,
            ),
            cost_feed,
            cost_rx,
            webhook_rx,
            config: config.anomalies.clone(),
            usage_enabled: config.pipeline.usage.enabled,
            tasks: Vec::new(),
            cancel: CancellationToken::new(),
            webhook_cancel: CancellationToken::new(),
        }
    }

    /// Starts the writer (and cost detector) and the webhook task.
    pub(crate) fn start(&mut self, storage: Storage, engine: Arc<QueryEngine>) {
        if self.config.cost.enabled && !self.usage_enabled {
            warn!("anomalies.cost needs pipeline.usage.enabled; cost anomalies are off.");
        }
        let detector = self
            .cost_rx
            .take()
            .map(|rx| (rx, CostDetector::new(self.config.cost.clone())));
        self.tasks.push(tokio::spawn(
            run(
                self.recorder.clone(),
                detector,
                storage,
                engine,
                self.cancel.clone(),
            )
            .instrument(info_span!("anomalies")),
        ));
        if let (Some(rx), Some(cfg)) = (self.webhook_rx.take(), self.config.webhook.clone()) {
            self.tasks.push(tokio::spawn(
                anomaly_webhook::run(cfg, rx, self.webhook_cancel.clone())
                    .instrument(info_span!("anomaly_webhook")),
            ));
        }
    }

    /// Stops after the usage task: scores its last batches, writes and flushes every pending
    /// anomaly, gives the webhook a few seconds to send what is queued.
    pub(crate) async fn stop(mut self, within: Duration) {
        self.cost_feed = None;
        self.cancel.cancel();
        let mut tasks = std::mem::take(&mut self.tasks).into_iter();
        if let Some(writer) = tasks.next() {
            if tokio::time::timeout(within, writer).await.is_err() {
                warn!("Anomalies were not flushed in time.");
            }
        }
        // The writer recorded its last anomalies: the webhook queue now only drains.
        drop(self.recorder);
        for task in tasks {
            if tokio::time::timeout(anomaly_webhook::SHUTDOWN_GRACE, task)
                .await
                .is_err()
            {
                self.webhook_cancel.cancel();
            }
        }
    }
}

async fn run(
    recorder: AnomalyRecorder,
    mut cost: Option<(mpsc::Receiver<RecordBatch>, CostDetector)>,
    storage: Storage,
    engine: Arc<QueryEngine>,
    stop: CancellationToken,
) {
    let table = match storage.table_with_schema(ANOMALIES_TABLE, anomalies_schema()) {
        Ok(t) => t,
        Err(error) => {
            warn!(%error, "Cannot open the anomalies table; anomalies are not written.");
            return;
        }
    };
    let flush_every = Duration::from_secs(storage.config().flush_interval_secs.max(1));
    let mut since_flush = Duration::ZERO;
    let mut tick = tokio::time::interval(TICK);
    loop {
        let usage = async {
            match cost.as_mut() {
                Some((rx, _)) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => break,
            batch = usage => match batch {
                Some(batch) => {
                    if let Some((_, detector)) = cost.as_mut() {
                        score_usage(detector, &batch, &recorder, &engine).await;
                    }
                    continue;
                }
                None => cost = None,
            },
            _ = tick.tick() => {}
        }
        drain_into(&recorder, &table);
        since_flush += TICK;
        if since_flush >= flush_every && table.buffered_rows() > 0 {
            since_flush = Duration::ZERO;
            if let Err(error) = table.flush().await {
                warn!(%error, "Anomalies flush failed; rows stay buffered.");
            }
        }
    }
    if let Some((mut rx, mut detector)) = cost {
        while let Ok(batch) = rx.try_recv() {
            score_usage(&mut detector, &batch, &recorder, &engine).await;
        }
    }
    drain_into(&recorder, &table);
    if table.buffered_rows() > 0 {
        if let Err(error) = table.flush().await {
            warn!(%error, "Anomalies flush at shutdown failed.");
        }
    }
}

fn drain_into(recorder: &AnomalyRecorder, table: &Table) {
    match recorder.drain() {
        Ok(Some(batch)) => {
            if let Err(error) = table.append(batch) {
                warn!(%error, "Anomaly rows could not be buffered.");
            }
        }
        Ok(None) => {}
        Err(error) => warn!(%error, "Anomaly rows could not be assembled."),
    }
}

/// Runs the cost detector on one usage batch and records what it finds.
async fn score_usage(
    detector: &mut CostDetector,
    usage: &RecordBatch,
    recorder: &AnomalyRecorder,
    engine: &QueryEngine,
) {
    let found = match detector.observe(usage) {
        Ok(found) => found,
        Err(error) => {
            warn!(%error, "Cost detector skipped a usage batch.");
            return;
        }
    };
    for anomaly in found {
        let labels =
            match tokio::time::timeout(LABEL_TIMEOUT, growing_labels(engine, &anomaly)).await {
                Ok(Ok(labels)) => labels,
                Ok(Err(error)) => {
                    warn!(%error, metric = %anomaly.metric, "Label-key lookup failed.");
                    None
                }
                Err(_) => {
                    warn!(metric = %anomaly.metric, "Label-key lookup timed out.");
                    None
                }
            };
        let mut row = anomaly.into_row(labels.as_ref().map(|l| l.keys.clone()));
        if let Some(l) = labels {
            row.explanation.push_str(&format!(" ({})", l.detail));
        }
        tracing::info!(metric = %row.metric, explanation = %row.explanation, "Cost anomaly.");
        recorder.record(row);
    }
}

/// The attribute keys whose distinct values grew most.
struct Labels {
    /// Up to three keys, most grown first, comma-separated.
    keys: String,
    /// `user_id 3→950, ...`: distinct values per minute before vs in the minute.
    detail: String,
}

/// Compares distinct values per attribute key of the metric's raw rows in the anomalous
/// minute with the minutes before it (a bounded read of the `metrics` table; only when a
/// cost anomaly fires, so the hot path pays nothing).
async fn growing_labels(
    engine: &QueryEngine,
    anomaly: &CostAnomaly,
) -> Result<Option<Labels>, phoenix_analytics::QueryError> {
    if engine.storage().get_table(DEFAULT_SINK).is_none() {
        return Ok(None);
    }
    let metric = anomaly.metric.replace('\'', "''");
    let m = anomaly.minute_ns;
    let read = |from: i64, to: i64| {
        format!(
            "SELECT attributes FROM {DEFAULT_SINK} WHERE metric = '{metric}' \
             AND time >= to_timestamp_nanos({from}) AND time < to_timestamp_nanos({to}) \
             LIMIT {LABEL_ROWS}"
        )
    };
    let now = distinct_per_key(&engine.query(&read(m, m + MINUTE_NS)).await?.batches);
    let before_from = m - LABEL_BASELINE_MINUTES * MINUTE_NS;
    let before = distinct_per_key(&engine.query(&read(before_from, m)).await?.batches);
    let mut grown: Vec<(String, usize, usize)> = now
        .into_iter()
        .map(|(k, n)| {
            let b = before.get(&k).copied().unwrap_or(0);
            (k, b, n)
        })
        .filter(|(_, b, n)| n > b)
        .collect();
    grown.sort_by(|a, b| (b.2 - b.1).cmp(&(a.2 - a.1)).then(a.0.cmp(&b.0)));
    grown.truncate(3);
    if grown.is_empty() {
        return Ok(None);
    }
    Ok(Some(Labels {
        keys: grown
            .iter()
            .map(|(k, _, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(","),
        detail: grown
            .iter()
            .map(|(k, b, n)| {
                format!(
                    "{k}: {n} distinct values vs {b} in the {LABEL_BASELINE_MINUTES} min before"
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }))
}

/// Distinct values per attribute key over `attributes` map columns.
fn distinct_per_key(batches: &[RecordBatch]) -> HashMap<String, usize> {
    let mut values: HashMap<String, HashSet<String>> = HashMap::new();
    for b in batches {
        let Some(map) = b.column(0).as_any().downcast_ref::<MapArray>() else {
            continue;
        };
        let (Some(keys), Some(vals)) = (
            map.keys().as_any().downcast_ref::<StringArray>(),
            map.values().as_any().downcast_ref::<StringArray>(),
        ) else {
            continue;
        };
        let offsets = map.value_offsets();
        for row in 0..map.len() {
            for i in offsets[row] as usize..offsets[row + 1] as usize {
                let v = if vals.is_valid(i) { vals.value(i) } else { "" };
                let set = values.entry(keys.value(i).to_string()).or_default();
                if set.len() < LABEL_ROWS && !set.contains(v) {
                    set.insert(v.to_string());
                }
            }
        }
    }
    values.into_iter().map(|(k, s)| (k, s.len())).collect()
}
