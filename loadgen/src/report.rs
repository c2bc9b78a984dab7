//! The final report: one JSON object, the last line on stdout.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::settings::Settings;
use crate::stats::{LatencyHistogram, Snapshot};

/// What a run achieved. Datapoint counts satisfy `sent == accepted + rejected + lost`;
/// `retryable` and `errors` count datapoints per attempt, so retries can count twice there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Distinct datapoints sent (each once, however many attempts).
    pub sent: u64,
    /// Datapoints the endpoint acknowledged (2xx/OK minus partial-success rejections).
    pub accepted: u64,
    /// Datapoints refused for good (4xx, non-retryable codes, partial success).
    pub rejected: u64,
    /// Datapoints in attempts answered "retry later" (503, 429, UNAVAILABLE, ...).
    pub retryable: u64,
    /// Datapoints in attempts that got no answer (connection failure, timeout).
    pub errors: u64,
    /// Datapoints neither accepted nor rejected in the end (not retried or retries gave up).
    pub lost: u64,
    /// Requests made, retries included.
    pub requests: u64,
    /// Retry attempts.
    pub retries: u64,
    /// Wall time from the first due request to the last answer.
    pub duration_s: f64,
    /// Accepted datapoints per second over `duration_s`.
    pub rate_dps: f64,
    /// Sent datapoints per second over `duration_s`.
    pub sent_rate_dps: f64,
    /// Mean target rate of the timetable.
    pub target_rate_dps: f64,
    /// Median latency from due time to final answer.
    pub p50_ms: f64,
    /// 90th percentile latency.
    pub p90_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// 99.9th percentile latency.
    pub p999_ms: f64,
    /// Largest latency.
    pub max_ms: f64,
    /// `grpc` or `http`.
    pub protocol: String,
    /// The endpoint URL.
    pub endpoint: String,
    /// `none` or `gzip`.
    pub compression: String,
    /// Active series.
    pub series: u64,
    /// Distinct series identities sent (above `series` with churn).
    pub series_created: u64,
    /// Datapoints per request, at most.
    pub batch_size: usize,
    /// Concurrent connections.
    pub connections: usize,
    /// Where the profile came from, if one was used.
    pub profile: Option<String>,
}

impl Report {
    /// Builds the report of a finished run.
    pub(crate) fn new(
        settings: &Settings,
        snap: Snapshot,
        latency: &LatencyHistogram,
        elapsed: Duration,
        target_rate_dps: f64,
    ) -> Report {
        let secs = elapsed.as_secs_f64();
        let per_sec = |n: u64| {
            if secs > 0.0 {
                round(n as f64 / secs, 1)
            } else {
                0.0
            }
        };
        let q = |x: f64| round(latency.quantile_ms(x), 3);
        Report {
            sent: snap.sent,
            accepted: snap.accepted,
            rejected: snap.rejected,
            retryable: snap.retryable,
            errors: snap.errors,
            lost: snap.lost,
            requests: snap.requests,
            retries: snap.retries,
            duration_s: round(secs, 3),
            rate_dps: per_sec(snap.accepted),
            sent_rate_dps: per_sec(snap.sent),
            target_rate_dps: round(target_rate_dps, 1),
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: round(latency.max_ms(), 3),
            protocol: settings.protocol.name().to_string(),
            endpoint: settings.endpoint.clone(),
            compression: settings.compression.name().to_string(),
            series: settings.workload.series,
            series_created: snap.series_created,
            batch_size: settings.workload.batch_size,
            connections: settings.workload.connections,
            profile: settings.profile.clone(),
        }
    }

    /// The report as one line of JSON.
    pub fn to_json_line(&self) -> String {
        // Serialising plain numbers and strings cannot fail; keep a valid line regardless.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
    }
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}
