//! Connection workers: claim the next due request, fill it, send it, retry it, count it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{watch, Mutex};

use crate::args::Protocol;
use crate::encode::Chunk;
use crate::error::Result;
use crate::grpc::GrpcSender;
use crate::http::HttpSender;
use crate::outcome::Outcome;
use crate::schedule::Timetable;
use crate::series::Rng;
use crate::settings::Settings;
use crate::stats::Stats;

/// Longest wait for one request's answer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a TCP connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// First retry delay; doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest retry delay without a server hint.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest server retry hint honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long after the end of the run retries may continue.
pub(crate) const DRAIN: Duration = Duration::from_secs(30);

/// Wall-clock time in unix nanoseconds.
pub(crate) fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A transport connection.
#[derive(Debug)]
pub(crate) enum Sender {
    /// OTLP/gRPC.
    Grpc(GrpcSender),
    /// OTLP/HTTP.
    Http(HttpSender),
}

impl Sender {
    /// A connection for `settings`' endpoint and protocol.
    pub(crate) fn new(settings: &Settings) -> Result<Sender> {
        Ok(match settings.protocol {
            Protocol::Grpc => {
                Sender::Grpc(GrpcSender::new(&settings.endpoint, settings.compression)?)
            }
            Protocol::Http => {
                Sender::Http(HttpSender::new(&settings.endpoint, settings.compression)?)
            }
        })
    }

    /// The body to send for an encoded message (gRPC compresses inside tonic).
    fn prepare(&self, message: Bytes) -> std::io::Result<Bytes> {
        match self {
            Sender::Grpc(_) => Ok(message),
            Sender::Http(h) => h.prepare(message),
        }
    }

    async fn send(&mut self, body: Bytes) -> Outcome {
        match self {
            Sender::Grpc(g) => g.send(body).await,
            Sender::Http(h) => h.send(body).await,
        }
    }
}

/// State shared by the connections of one run.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Request templates; the lock keeps one request per chunk in flight, so each series'
    /// points arrive in timestamp order.
    pub chunks: Vec<Mutex<Chunk>>,
    /// Datapoints before chunk `j` within one round over all chunks.
    pub prefix: Vec<u64>,
    /// Datapoints in one round over all chunks.
    pub round_dp: u64,
    /// Index of the next request to claim (round-robin over chunks).
    pub next: AtomicU64,
    /// When requests are due.
    pub timetable: Timetable,
    /// Counters and latencies.
    pub stats: Stats,
    /// Start of the run.
    pub start: Instant,
    /// No new request goes out after this.
    pub end: Instant,
    /// Retries stop after this.
    pub give_up: Instant,
    /// Retry retryable answers.
    pub retry: bool,
    /// Aligned timestamps: the grid's first instant (unix ns, at or before `start`).
    pub anchor_ns: Option<u64>,
    /// Aligned timestamps: collection instants are whole multiples of this (1 ms, or 1 ns
    /// when collections come more often than every millisecond).
    pub grid_ns: u64,
}

impl Shared {
    /// Due time of request `k` (seconds after start), or `None` past the end.
    fn due(&self, k: u64) -> Option<(usize, f64)> {
        let chunks = self.chunks.len() as u64;
        let j = usize::try_from(k % chunks.max(1)).ok()?;
        let before =
            (k / chunks.max(1)) as f64 * self.round_dp as f64 + *self.prefix.get(j)? as f64;
        Some((j, self.timetable.time_of(before)?))
    }

    /// Aligned timestamps: the collection instant of request `k`, i.e. the due time of its
    /// round's first request on the grid. Every request of a round shares it, so every series
    /// of a collection carries the same time; at a constant rate consecutive collections are
    /// exactly `series / rate` apart.
    pub(crate) fn collection_ns(&self, k: u64) -> Option<u64> {
        let anchor = self.anchor_ns?;
        let round = k / (self.chunks.len() as u64).max(1);
        let t = self
            .timetable
            .time_of(round as f64 * self.round_dp as f64)?;
        let grid = self.grid_ns.max(1);
        let ticks = (t * 1e9 / grid as f64).round() as u64;
        Some(anchor.saturating_add(ticks.saturating_mul(grid)))
    }
}

/// The collection grid step for a round of `round_dp` datapoints at `rate_dps`: 1 ms, like
/// scrape timestamps, unless rounds come faster than that.
pub(crate) fn grid_ns(round_dp: u64, rate_dps: f64) -> u64 {
    if round_dp as f64 / rate_dps >= 1e-3 {
        1_000_000
    } else {
        1
    }
}

/// Runs one connection until the timetable ends, the run's end passes, or `stop` is set.
pub(crate) async fn run_connection(
    shared: Arc<Shared>,
    mut sender: Sender,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = Rng::new(seed);
    let stats = &shared.stats;
    loop {
        if *stop.borrow() {
            break;
        }
        let k = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some((j, at)) = shared.due(k) else { break };
        let Ok(offset) = Duration::try_from_secs_f64(at) else {
            break;
        };
        let due = shared.start + offset;
        if Instant::now() >= shared.end {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(due.into()) => {}
            Ok(_) = stop.wait_for(|s| *s) => break,
        }
        let Some(lock) = shared.chunks.get(j) else {
            break;
        };
        let mut chunk = lock.lock().await;
        let created = match shared.collection_ns(k) {
            Some(at) => chunk.fill_at(unix_now_ns(), at),
            None => chunk.fill(unix_now_ns()),
        };
        let n = chunk.datapoints() as u64;
        Stats::add(&stats.series_created, created);
        Stats::add(&stats.sent, n);
        match sender.prepare(chunk.body()) {
            Ok(body) => deliver(&shared, &mut sender, body, n, &mut rng, &mut stop).await,
            Err(error) => {
                tracing::warn!(%error, "Cannot compress a request.");
                Stats::add(&stats.errors, n);
                Stats::add(&stats.lost, n);
            }
        }
        drop(chunk);
        stats.record_latency(due.elapsed());
    }
}

/// Sends one body until it gets a final answer (retrying when asked to) and counts it.
async fn deliver(
    shared: &Shared,
    sender: &mut Sender,
    body: Bytes,
    n: u64,
    rng: &mut Rng,
    stop: &mut watch::Receiver<bool>,
) {
    let stats = &shared.stats;
    let mut backoff = INITIAL_BACKOFF;
    loop {
        Stats::add(&stats.requests, 1);
        let wait = match sender.send(body.clone()).await {
            Outcome::Accepted { rejected } => {
                let rejected = rejected.min(n);
                Stats::add(&stats.accepted, n - rejected);
                Stats::add(&stats.rejected, rejected);
                return;
            }
            Outcome::Rejected => {
                Stats::add(&stats.rejected, n);
                return;
            }
            Outcome::Retryable { after } => {
                Stats::add(&stats.retryable, n);
                after.unwrap_or_else(|| jittered(backoff, rng))
            }
            Outcome::Failed => {
                Stats::add(&stats.errors, n);
                jittered(backoff, rng)
            }
        };
        let wait = wait.min(MAX_RETRY_AFTER);
        if !shared.retry || *stop.borrow() || Instant::now() + wait > shared.give_up {
            Stats::add(&stats.lost, n);
            return;
        }
        Stats::add(&stats.retries, 1);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            Ok(_) = stop.wait_for(|s| *s) => {
                Stats::add(&stats.lost, n);
                return;
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// `d` scaled by a random factor in [0.8, 1.2), so connections do not retry in lockstep.
fn jittered(d: Duration, rng: &mut Rng) -> Duration {
    d.mul_f64(0.8 + 0.4 * rng.next_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{build_chunks, Workload};
    use crate::series::Mix;

    fn shared(series: u64, rate: f64, anchor: Option<u64>) -> Shared {
        let workload = Workload {
            series,
            attributes: 3,
            batch_size: 1000,
            connections: 8,
            mix: Mix::default(),
            churn_per_sec: 0,
            id_attribute: "series.id".into(),
            seed: 1,
            timestamps: crate::Timestamps::Aligned,
            decimals: Some(2),
        };
        let chunks = build_chunks(&workload, 0).expect("chunks");
        let mut prefix = Vec::new();
        let mut round_dp = 0;
        for c in &chunks {
            prefix.push(round_dp);
            round_dp += c.datapoints() as u64;
        }
        let now = Instant::now();
        Shared {
            chunks: chunks.into_iter().map(Mutex::new).collect(),
            prefix,
            round_dp,
            next: AtomicU64::new(0),
            timetable: Timetable::new(rate, 3600.0, &[]),
            stats: Stats::default(),
            start: now,
            end: now,
            give_up: now,
            retry: false,
            anchor_ns: anchor,
            grid_ns: grid_ns(round_dp, rate),
        }
    }

    /// Aligned collection instants: every request of a round shares one instant, rounds are
    /// exactly series / rate apart, and no instant is later than its request's due time.
    #[test]
    fn collection_instants_lie_on_the_grid() {
        let anchor = 1_700_000_000_000_000_000;
        // 10,000 series at 1,000 dp/s: a collection every 10 s, in 10 requests.
        let s = shared(10_000, 1_000.0, Some(anchor));
        assert_eq!(s.chunks.len(), 10);
        for k in 0..1_000_u64 {
            let round = k / 10;
            assert_eq!(
                s.collection_ns(k),
                Some(anchor + round * 10_000_000_000),
                "k={k}"
            );
            let (_, due) = s.due(k).expect("due");
            let at = s.collection_ns(k).expect("aligned") - anchor;
            assert!(at as f64 <= due * 1e9 + 1.0, "k={k}");
        }
        // Odd rates still land on whole milliseconds.
        let s = shared(1_000, 3_000.0, Some(anchor));
        assert!((0..300).all(|k| s
            .collection_ns(k)
            .is_some_and(|t| (t - anchor) % 1_000_000 == 0)));
        assert_eq!(shared(1_000, 1_000.0, None).collection_ns(5), None);
    }
}
