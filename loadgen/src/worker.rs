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
    fn prepare(&self, message: &[u8]) -> std::io::Result<Bytes> {
        match self {
            Sender::Grpc(_) => Ok(Bytes::copy_from_slice(message)),
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
        let created = chunk.fill(unix_now_ns());
        let n = chunk.datapoints() as u64;
        Stats::add(&stats.series_created, created);
        Stats::add(&stats.sent, n);
        match sender.prepare(chunk.bytes()) {
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
