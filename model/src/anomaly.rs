//! The `anomalies` table (one row per detected anomaly) and the top-level `anomalies:` config:
//! cost (cardinality) detection over the usage accounting, and the optional webhook.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::config::ConfigIssue;
use crate::schema::{string_map_type, timestamp_type};

/// Name of the table.
pub const ANOMALIES_TABLE: &str = "anomalies";

/// `kind` of anomalies found by the series detector (the `anomaly` processor).
pub const KIND_POINT: &str = "point";
/// `kind` of cost anomalies (a metric's series count or datapoint rate jumped).
pub const KIND_CARDINALITY: &str = "cardinality";

/// Column names of the `anomalies` table, in schema order.
pub mod col {
    /// Time of the anomalous point (event time), or start of the anomalous usage minute.
    pub const TIME: &str = "time";
    /// Metric name.
    pub const METRIC: &str = "metric";
    /// `service.name` ("" for cost anomalies, which cover every service of a metric).
    pub const SERVICE: &str = "service";
    /// Series id of the point (null for cost anomalies).
    pub const SERIES_ID: &str = "series_id";
    /// Datapoint attributes of the series (empty for cost anomalies).
    pub const ATTRIBUTES: &str = "attributes";
    /// The scored value: gauge value, sum rate per second, histogram mean or quantile; for
    /// cost anomalies, the figure that jumped (series or datapoints in the minute).
    pub const VALUE: &str = "value";
    /// What the value was expected to be (forecast, or the baseline median).
    pub const EXPECTED: &str = "expected";
    /// Anomaly score in [0, 1]; 0.5 is the alarm threshold.
    pub const SCORE: &str = "score";
    /// `point` or `cardinality`.
    pub const KIND: &str = "kind";
    /// What stood out (`pattern`, `forecast`, `volatility`, `stuck`, `series`, `datapoints`).
    pub const DRIVER: &str = "driver";
    /// Version of the model that scored the point.
    pub const MODEL_VERSION: &str = "model_version";
    /// Who found it: the processor id, or `cost`.
    pub const DETECTOR: &str = "detector";
    /// Short human text.
    pub const EXPLANATION: &str = "explanation";
    /// Cost anomalies: attribute keys whose distinct values grew most, comma-separated.
    pub const LABEL_KEYS: &str = "label_keys";
    /// Cost anomalies: extra series over 30 days if the growth goes on.
    pub const PROJECTED_EXTRA_SERIES: &str = "projected_extra_series";
}

/// The schema of the `anomalies` table.
pub fn anomalies_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(col::TIME, timestamp_type(), false),
                Field::new(col::METRIC, DataType::Utf8, false),
                Field::new(col::SERVICE, DataType::Utf8, false),
                Field::new(col::SERIES_ID, DataType::UInt64, true),
                Field::new(col::ATTRIBUTES, string_map_type(), false),
                Field::new(col::VALUE, DataType::Float64, false),
                Field::new(col::EXPECTED, DataType::Float64, true),
                Field::new(col::SCORE, DataType::Float64, false),
                Field::new(col::KIND, DataType::Utf8, false),
                Field::new(col::DRIVER, DataType::Utf8, false),
                Field::new(col::MODEL_VERSION, DataType::UInt32, false),
                Field::new(col::DETECTOR, DataType::Utf8, false),
                Field::new(col::EXPLANATION, DataType::Utf8, false),
                Field::new(col::LABEL_KEYS, DataType::Utf8, true),
                Field::new(col::PROJECTED_EXTRA_SERIES, DataType::UInt64, true),
            ]))
        })
        .clone()
}

/// Top-level `anomalies:`: cost detection and notifications.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomaliesConfig {
    /// Cost (cardinality) anomalies from the usage accounting.
    pub cost: CostAnomalyConfig,
    /// A JSON POST per new anomaly; off when absent.
    pub webhook: Option<WebhookConfig>,
}

/// `anomalies.cost`: flags a metric whose series or datapoints per minute jump far above its
/// recent minutes (needs `pipeline.usage.enabled`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostAnomalyConfig {
    /// Detect cost anomalies.
    pub enabled: bool,
    /// Minutes per metric the baseline (median and MAD) is taken over.
    pub baseline_minutes: usize,
    /// Minutes of history a metric needs before it can alarm.
    pub min_baseline_minutes: usize,
    /// Robust z-score (distance from the median in MADs) at or above which a minute alarms.
    pub threshold: f64,
    /// The figure must also be at least this many times the median.
    pub min_ratio: f64,
    /// ... and at least this many more series than the median (tiny metrics never alarm).
    pub min_extra_series: u64,
    /// ... or, for datapoints, at least this many more datapoints than the median.
    pub min_extra_datapoints: u64,
    /// Metrics tracked at once; the least recently seen is forgotten past it.
    pub max_metrics: usize,
}

impl Default for CostAnomalyConfig {
    fn default() -> Self {
        CostAnomalyConfig {
            enabled: true,
            baseline_minutes: 30,
            min_baseline_minutes: 5,
            threshold: 8.0,
            min_ratio: 3.0,
            min_extra_series: 500,
            min_extra_datapoints: 50_000,
            max_metrics: 100_000,
        }
    }
}

/// `anomalies.webhook`: where new anomalies are POSTed, one JSON object each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Timeout of one attempt.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts after the first, with exponential backoff (250 ms, doubling, at most 30 s).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Notifications waiting to be sent; past it new ones are dropped (and counted).
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
}

fn default_timeout_ms() -> u64 {
    5_000
}
fn default_max_retries() -> u32 {
    5
}
fn default_queue() -> usize {
    1_000
}

impl AnomaliesConfig {
    /// Every problem, with its key path under `anomalies.`.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut push = |key: &str, reason: String| {
            issues.push(ConfigIssue {
                key: format!("anomalies.{key}"),
                reason,
            })
        };
        let c = &self.cost;
        if c.baseline_minutes < 3 || c.baseline_minutes > 10_080 {
            push(
                "cost.baseline_minutes",
                format!("{} is not in 3..=10080", c.baseline_minutes),
            );
        }
        if c.min_baseline_minutes < 2 || c.min_baseline_minutes > c.baseline_minutes {
            push(
                "cost.min_baseline_minutes",
                format!(
                    "{} is not in 2..=baseline_minutes ({})",
                    c.min_baseline_minutes, c.baseline_minutes
                ),
            );
        }
        if !(c.threshold.is_finite() && c.threshold > 0.0) {
            push("cost.threshold", format!("{} must be > 0", c.threshold));
        }
        if !(c.min_ratio.is_finite() && c.min_ratio >= 1.0) {
            push("cost.min_ratio", format!("{} must be >= 1", c.min_ratio));
        }
        if c.max_metrics == 0 {
            push("cost.max_metrics", "must be > 0".into());
        }
        if let Some(w) = &self.webhook {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                push(
                    "webhook.url",
                    format!("`{}` is not an http:// or https:// URL", w.url),
                );
            }
            if w.timeout_ms == 0 {
                push("webhook.timeout_ms", "must be > 0".into());
            }
            if w.max_retries > 20 {
                push(
                    "webhook.max_retries",
                    format!("{} is more than 20", w.max_retries),
                );
            }
            if w.queue_capacity == 0 {
                push("webhook.queue_capacity", "must be > 0".into());
            }
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The webhook block parses with defaults, rejects unknown keys, and a bad URL is an issue
    /// at its key path.
    #[test]
    fn webhook_config() {
        let c: AnomaliesConfig =
            serde_yaml::from_str("webhook: { url: 'http://127.0.0.1:9/x' }").expect("parses");
        let w = c.webhook.as_ref().expect("webhook");
        assert_eq!(
            (w.timeout_ms, w.max_retries, w.queue_capacity),
            (5_000, 5, 1_000)
        );
        assert!(c.validate().is_empty());
        assert!(
            serde_yaml::from_str::<AnomaliesConfig>("webhook: { url: x, retries: 1 }").is_err()
        );
        let bad: AnomaliesConfig =
            serde_yaml::from_str("webhook: { url: 'ftp://x' }").expect("parses");
        let issues = bad.validate();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].key, "anomalies.webhook.url");
    }
}
