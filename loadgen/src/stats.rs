//! Run counters and the latency histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// A latency histogram in microseconds (HdrHistogram, 3 significant digits: within 0.1%).
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
    /// Exact largest value (the histogram only knows it to its precision).
    max: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            // Auto-resizing, so no latency is ever out of range.
            hist: Histogram::new(3).expect("3 significant digits is a valid precision"),
            max: 0,
        }
    }
}

impl LatencyHistogram {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX / 2);
        // Auto-resizing: `record` grows the range instead of clamping; it fails only for
        // values beyond u64::MAX / 2, which `us` never is.
        let _ = self.hist.record(us);
        self.max = self.max.max(us);
    }

    /// Number of recorded latencies.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The `q` quantile (0..=1) in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        self.hist.value_at_quantile(q.clamp(0.0, 1.0)).min(self.max) as f64 / 1000.0
    }

    /// Largest recorded latency in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.max as f64 / 1000.0
    }

    /// Forgets everything recorded.
    pub fn clear(&mut self) {
        self.hist.reset();
        self.max = 0;
    }
}

/// Counters of a run, shared by all connections (relaxed atomics: totals only).
#[derive(Debug, Default)]
pub struct Stats {
    /// Distinct datapoints sent (each counted once, however many attempts).
    pub sent: AtomicU64,
    /// Datapoints the endpoint acknowledged.
    pub accepted: AtomicU64,
    /// Datapoints the endpoint refused for good (4xx, non-retryable codes, partial success).
    pub rejected: AtomicU64,
    /// Datapoints in attempts answered "retry later" (503/429/UNAVAILABLE/RESOURCE_EXHAUSTED).
    pub retryable: AtomicU64,
    /// Datapoints in attempts that got no answer (connection failure, timeout).
    pub errors: AtomicU64,
    /// Datapoints neither accepted nor rejected in the end (not retried, or retries gave up).
    pub lost: AtomicU64,
    /// Requests made, retries included.
    pub requests: AtomicU64,
    /// Retry attempts.
    pub retries: AtomicU64,
    /// Distinct series identities sent.
    pub series_created: AtomicU64,
    latency: Mutex<Latencies>,
}

#[derive(Debug, Default)]
struct Latencies {
    total: LatencyHistogram,
    interval: LatencyHistogram,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Stats::sent`].
    pub sent: u64,
    /// See [`Stats::accepted`].
    pub accepted: u64,
    /// See [`Stats::rejected`].
    pub rejected: u64,
    /// See [`Stats::retryable`].
    pub retryable: u64,
    /// See [`Stats::errors`].
    pub errors: u64,
    /// See [`Stats::lost`].
    pub lost: u64,
    /// See [`Stats::requests`].
    pub requests: u64,
    /// See [`Stats::retries`].
    pub retries: u64,
    /// See [`Stats::series_created`].
    pub series_created: u64,
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Records the latency of one request, from its due time to its final answer.
    pub fn record_latency(&self, latency: Duration) {
        let mut l = self.latency.lock();
        l.total.record(latency);
        l.interval.record(latency);
    }

    /// p99 in ms of the latencies since the last call, then starts a new interval.
    pub fn take_interval_p99_ms(&self) -> f64 {
        let mut l = self.latency.lock();
        let p99 = l.interval.quantile_ms(0.99);
        l.interval.clear();
        p99
    }

    /// A copy of the whole-run latency histogram.
    pub fn latency(&self) -> LatencyHistogram {
        self.latency.lock().total.clone()
    }

    /// Reads all counters.
    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            sent: get(&self.sent),
            accepted: get(&self.accepted),
            rejected: get(&self.rejected),
            retryable: get(&self.retryable),
            errors: get(&self.errors),
            lost: get(&self.lost),
            requests: get(&self.requests),
            retries: get(&self.retries),
            series_created: get(&self.series_created),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A latency far beyond any bucket seen so far is still recorded, not dropped.
    #[test]
    fn huge_latencies_are_kept() {
        let mut h = LatencyHistogram::default();
        h.record(Duration::from_micros(1));
        h.record(Duration::from_secs(3600));
        assert_eq!(h.len(), 2);
        assert!(
            (h.max_ms() - 3_600_000.0).abs() / 3_600_000.0 < 0.001,
            "{}",
            h.max_ms()
        );
    }

    /// Quantiles of a known distribution come out within the histogram's precision.
    #[test]
    fn quantiles() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile_ms(0.99), 0.0);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.len(), 100);
        let p50 = h.quantile_ms(0.5);
        let p99 = h.quantile_ms(0.99);
        assert!((50.0..=50.0 * 1.001).contains(&p50), "p50={p50}");
        assert!((99.0..=99.0 * 1.001).contains(&p99), "p99={p99}");
        assert_eq!(h.max_ms(), 100.0);
        assert_eq!(h.quantile_ms(1.0), 100.0);
    }
}
