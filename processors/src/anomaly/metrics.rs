//! Metrics of anomaly detection (`phoenix_anomaly_*`).

/// Points scored, by `processor`.
pub const SCORED: &str = "phoenix_anomaly_scored_points_total";
/// Selected points not scored, by `processor` and `reason`.
pub const SKIPPED: &str = "phoenix_anomaly_skipped_points_total";
/// Series currently in an alarm episode, by `processor`.
pub const OPEN: &str = "phoenix_anomaly_open";
/// Series with detector state, by `processor`.
pub const SERIES: &str = "phoenix_anomaly_series";
/// Model refits, by `processor`.
pub const REFITS: &str = "phoenix_anomaly_model_refits_total";
/// Anomalies recorded, by `kind` (`point`, `cardinality`).
pub const DETECTED: &str = "phoenix_anomaly_detected_total";
/// Anomaly rows lost before reaching the table, by `reason`.
pub const DROPPED: &str = "phoenix_anomaly_rows_dropped_total";
/// Webhook notifications delivered (2xx).
pub const WEBHOOK_SENT: &str = "phoenix_anomaly_webhook_sent_total";
/// Webhook attempts that failed and were retried.
pub const WEBHOOK_RETRIES: &str = "phoenix_anomaly_webhook_retries_total";
/// Webhook notifications given up after every retry.
pub const WEBHOOK_FAILED: &str = "phoenix_anomaly_webhook_failed_total";
/// Webhook notifications dropped before any attempt, by `reason`.
pub const WEBHOOK_DROPPED: &str = "phoenix_anomaly_webhook_dropped_total";

/// `reason`: a new series arrived while `max_series` were tracked.
pub const REASON_MAX_SERIES: &str = "max_series";
/// `reason`: the point has no scorable value (NaN, empty interval, first cumulative point).
pub const REASON_NO_VALUE: &str = "no_value";
/// `reason`: the point is not after the series' previous one.
pub const REASON_OUT_OF_ORDER: &str = "out_of_order";
/// `reason`: a kind the processor does not score (exponential histogram, summary).
pub const REASON_UNSUPPORTED: &str = "unsupported_kind";
/// `reason`: the pending rows were at capacity.
pub const REASON_BUFFER_FULL: &str = "buffer_full";
/// `reason`: the webhook queue was full.
pub const REASON_QUEUE_FULL: &str = "queue_full";

/// The `detected` counter of one kind.
pub(crate) fn detected(kind: &'static str) -> metrics::Counter {
    metrics::counter!(DETECTED, "kind" => kind)
}

/// Handles of one processor, resolved once.
pub(crate) struct AnomalyMetrics {
    pub scored: metrics::Counter,
    pub refits: metrics::Counter,
    pub open: metrics::Gauge,
    pub series: metrics::Gauge,
    pub max_series: metrics::Counter,
    pub no_value: metrics::Counter,
    pub out_of_order: metrics::Counter,
    pub unsupported: metrics::Counter,
}

impl AnomalyMetrics {
    pub(crate) fn new(id: &str) -> Self {
        let skipped = |reason: &'static str| metrics::counter!(SKIPPED, "processor" => id.to_string(), "reason" => reason);
        AnomalyMetrics {
            scored: metrics::counter!(SCORED, "processor" => id.to_string()),
            refits: metrics::counter!(REFITS, "processor" => id.to_string()),
            open: metrics::gauge!(OPEN, "processor" => id.to_string()),
            series: metrics::gauge!(SERIES, "processor" => id.to_string()),
            max_series: skipped(REASON_MAX_SERIES),
            no_value: skipped(REASON_NO_VALUE),
            out_of_order: skipped(REASON_OUT_OF_ORDER),
            unsupported: skipped(REASON_UNSUPPORTED),
        }
    }
}

/// Registers the descriptions of these metrics with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(SCORED, "Points scored by the anomaly detector.");
    metrics::describe_counter!(SKIPPED, "Selected points not scored, by reason.");
    metrics::describe_gauge!(OPEN, "Series currently in an alarm episode.");
    metrics::describe_gauge!(SERIES, "Series with anomaly detector state.");
    metrics::describe_counter!(REFITS, "Anomaly model refits.");
    metrics::describe_counter!(DETECTED, "Anomalies recorded, by kind.");
    metrics::describe_counter!(DROPPED, "Anomaly rows lost before the table, by reason.");
    metrics::describe_counter!(WEBHOOK_SENT, "Anomaly webhook notifications delivered.");
    metrics::describe_counter!(WEBHOOK_RETRIES, "Anomaly webhook attempts retried.");
    metrics::describe_counter!(WEBHOOK_FAILED, "Anomaly webhook notifications given up.");
    metrics::describe_counter!(
        WEBHOOK_DROPPED,
        "Anomaly webhook notifications dropped before sending, by reason."
    );
}
