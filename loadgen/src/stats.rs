//! Run counters and the latency histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Sub-buckets per power of two: values are kept within 1/64 (1.6%) of their true size.
const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
/// Buckets covering every u64.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// A log-linear histogram of latencies in microseconds (HDR-style, 1.6% precision).
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let shift = exp - SUB_BITS;
    let sub = (v >> shift) as usize - SUB;
    ((shift as usize + 1) << SUB_BITS) + sub
}

/// Highest value that falls in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = (i >> SUB_BITS) - 1;
    let sub = ((i & (SUB - 1)) + SUB) as u128;
    let high = ((sub + 1) << shift) - 1;
    u64::try_from(high).unwrap_or(u64::MAX)
}

impl LatencyHistogram {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Some(c) = self.counts.get_mut(bucket_of(us)) {
            *c += 1;
        }
        self.total += 1;
        self.max = self.max.max(us);
    }

    /// Number of recorded latencies.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The `q` quantile (0..=1) in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).min(self.max) as f64 / 1000.0;
            }
        }
        self.max_ms()
    }

    /// Largest recorded latency in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.max as f64 / 1000.0
    }

    /// Forgets everything recorded.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
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

    /// Bucket bounds contain their values and stay within 1/64 of them.
    #[test]
    fn buckets_are_tight() {
        for v in [
            0u64,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            123_456,
            10_000_000_000,
            u64::MAX,
        ] {
            let i = bucket_of(v);
            assert!(i < BUCKETS);
            let high = bucket_high(i);
            assert!(high >= v, "v={v} high={high}");
            assert!(
                (high - v) as f64 <= v as f64 / 64.0 + 1.0,
                "v={v} high={high}"
            );
        }
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
        assert!((50.0..=50.0 * 1.02).contains(&p50), "p50={p50}");
        assert!((99.0..=99.0 * 1.02).contains(&p99), "p99={p99}");
        assert_eq!(h.max_ms(), 100.0);
        assert_eq!(h.quantile_ms(1.0), 100.0);
    }
}
