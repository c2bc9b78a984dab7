//! The anomaly webhook: one JSON POST per new anomaly, on its own task, retried with
//! exponential backoff. The pipeline only ever `try_send`s into the bounded queue, so a slow
//! or dead endpoint costs dropped notifications (counted), never pipeline latency.

use std::sync::Arc;
use std::time::Duration;

use phoenix_model::anomaly::WebhookConfig;
use phoenix_processors::anomaly::metrics::{WEBHOOK_FAILED, WEBHOOK_RETRIES, WEBHOOK_SENT};
use phoenix_processors::AnomalyRow;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// First retry delay; doubles per attempt.
const BACKOFF_START: Duration = Duration::from_millis(250);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long shutdown waits for the queue to empty.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The JSON body of one notification: the row's columns by name.
pub(crate) fn body(row: &AnomalyRow) -> Value {
    let attributes: serde_json::Map<String, Value> = row
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
        .collect();
    json!({
        "time_unix_nano": row.time_ns,
        "metric": row.metric,
        "service": row.service,
        "series_id": row.series_id,
        "attributes": attributes,
        "value": row.value,
        "expected": row.expected,
        "score": row.score,
        "kind": row.kind,
        "driver": row.driver,
        "model_version": row.model_version,
        "detector": row.detector,
        "explanation": row.explanation,
        "label_keys": row.label_keys,
        "projected_extra_series": row.projected_extra_series,
    })
}

/// Sends every queued anomaly until the queue closes or `stop` is cancelled.
pub(crate) async fn run(
    cfg: WebhookConfig,
    mut rx: mpsc::Receiver<Arc<AnomalyRow>>,
    stop: CancellationToken,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(cfg.timeout_ms))
        .build()
    {
        Ok(c) => c,
        Err(error) => {
            warn!(%error, "Cannot build the webhook HTTP client; notifications are off.");
            return;
        }
    };
    loop {
        let row = tokio::select! {
            () = stop.cancelled() => return,
            row = rx.recv() => match row {
                Some(row) => row,
                None => return,
            },
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = deliver(&client, &cfg, &row) => {}
        }
    }
}

/// One notification with its retries.
async fn deliver(client: &reqwest::Client, cfg: &WebhookConfig, row: &AnomalyRow) {
    let body = body(row).to_string();
    let mut delay = BACKOFF_START;
    for attempt in 0..=cfg.max_retries {
        let outcome = client
            .post(&cfg.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let error = match outcome {
            Ok(r) if r.status().is_success() => {
                metrics::counter!(WEBHOOK_SENT).increment(1);
                return;
            }
            Ok(r) => format!("status {}", r.status()),
            Err(e) => e.to_string(),
        };
        if attempt == cfg.max_retries {
            warn!(url = %cfg.url, %error, attempts = attempt + 1, "Anomaly webhook gave up.");
            metrics::counter!(WEBHOOK_FAILED).increment(1);
            return;
        }
        metrics::counter!(WEBHOOK_RETRIES).increment(1);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}
