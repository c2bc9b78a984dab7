//! `phoenix loadgen`: an open-loop OTLP metrics load generator.
//!
//! It pushes OTLP metrics over gRPC or HTTP like real exporters do (stable series identities,
//! wall-clock timestamps that never repeat per series, growing cumulative sums, delta sums
//! starting at the previous point, consistent histograms) at a target rate on a fixed
//! timetable, so latency is measured from when each request was due (no coordinated
//! omission). Request bodies are pre-encoded once and only fixed-width fields are patched
//! per request, so the generator uses little CPU next to the server it measures.
//!
//! The binary embeds [`LoadgenArgs`] as a subcommand and calls [`run`]; tests and benches
//! use [`run_with`] inside their own runtime, and [`encode`] for the request bodies alone.
//!
//! ```no_run
//! #[derive(clap::Subcommand)]
//! enum Command {
//!     /// Push OTLP metrics at a target rate; the last stdout line is a JSON report.
//!     Loadgen(phoenix_loadgen::LoadgenArgs),
//! }
//!
//! fn dispatch(command: Command) -> std::process::ExitCode {
//!     match command {
//!         // `run` prints progress on stderr and the JSON report on stdout itself.
//!         Command::Loadgen(args) => match phoenix_loadgen::run(args) {
//!             Ok(_report) => std::process::ExitCode::SUCCESS,
//!             Err(e) => {
//!                 eprintln!("error: {e}");
//!                 std::process::ExitCode::from(e.exit_code())
//!             }
//!         },
//!     }
//! }
//! ```

mod args;
pub mod encode;
mod error;
mod grpc;
mod http;
mod outcome;
mod profile;
mod progress;
mod report;
mod schedule;
mod series;
mod settings;
mod stats;
mod worker;

use std::io::Write;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Mutex};
use tokio::task::JoinSet;

pub use args::{Compression, LoadgenArgs, Protocol, Timestamps};
pub use error::{LoadgenError, Result};
pub use profile::{builtin_names, MixProfile, PhaseProfile, Profile, SeriesProfile};
pub use report::Report;
pub use schedule::{Phase, Timetable};
pub use series::{Kind, Mix};
pub use settings::Settings;
pub use stats::LatencyHistogram;

use worker::{run_connection, unix_now_ns, Sender, Shared, DRAIN};

/// Runs `phoenix loadgen` to completion on its own runtime: progress on stderr (unless
/// quiet), then the report as the last line on stdout. Ctrl-C ends the run early and
/// still reports.
///
/// # Errors
/// [`LoadgenError::exit_code`] maps each error to the CLI exit code (1 bad arguments or
/// profile, 2 endpoint unreachable or runtime failure). A run in which the endpoint refused
/// everything is still `Ok`.
pub fn run(args: LoadgenArgs) -> Result<Report> {
    let settings = Settings::resolve(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.threads)
        .thread_name("loadgen")
        .enable_all()
        .build()
        .map_err(LoadgenError::Runtime)?;
    let report = runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let ctrl_c = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop_tx.send(true);
            }
        });
        let result = execute(settings, stop_rx).await;
        ctrl_c.abort();
        result
    })?;
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{}", report.to_json_line()).and_then(|()| out.flush()) {
        tracing::warn!(%error, "Cannot write the report to stdout.");
    }
    Ok(report)
}

/// Resolves `args` (and its profile) and runs inside the caller's tokio runtime; prints
/// progress unless quiet, but not the JSON report.
///
/// # Errors
/// As [`run`].
pub async fn run_async(args: LoadgenArgs) -> Result<Report> {
    run_with(Settings::resolve(&args)?).await
}

/// Runs resolved `settings` inside the caller's tokio runtime (multi-threaded or not);
/// prints progress unless quiet, but not the JSON report.
///
/// # Errors
/// [`LoadgenError::Connect`] if the endpoint does not accept a TCP connection,
/// [`LoadgenError::Invalid`]/[`LoadgenError::Client`] if a transport cannot be built.
pub async fn run_with(settings: Settings) -> Result<Report> {
    // The sender lives until the run ends, so nothing stops the run early.
    let (_stop_tx, stop_rx) = watch::channel(false);
    execute(settings, stop_rx).await
}

async fn execute(settings: Settings, stop: watch::Receiver<bool>) -> Result<Report> {
    probe(&settings.endpoint).await?;
    let senders = (0..settings.workload.connections)
        .map(|_| Sender::new(&settings))
        .collect::<Result<Vec<_>>>()?;
    let epoch_ns = unix_now_ns();
    let workload = settings.workload.clone();
    // Building a million series' templates takes a moment; keep it off the async threads.
    let chunks = tokio::task::spawn_blocking(move || encode::build_chunks(&workload, epoch_ns))
        .await
        .map_err(|e| LoadgenError::Client {
            protocol: settings.protocol.name(),
            message: format!("building request templates failed: {e}"),
        })??;
    let mut prefix = Vec::with_capacity(chunks.len());
    let mut round_dp = 0u64;
    for c in &chunks {
        prefix.push(round_dp);
        round_dp += c.datapoints() as u64;
    }
    let timetable = settings.timetable();
    let target_rate = timetable.total_dp() / timetable.duration_s().max(f64::MIN_POSITIVE);
    let anchor_ns = match settings.workload.timestamps {
        Timestamps::Wall => None,
        Timestamps::Aligned => Some(whole_second().await),
    };
    let start = Instant::now();
    let end = start + settings.duration;
    let shared = Arc::new(Shared {
        chunks: chunks.into_iter().map(Mutex::new).collect(),
        prefix,
        round_dp,
        next: AtomicU64::new(0),
        timetable,
        stats: stats::Stats::default(),
        start,
        end,
        give_up: end + DRAIN,
        retry: settings.retry,
        anchor_ns,
        grid_ns: worker::grid_ns(round_dp, settings.rate_dps),
    });
    let (done_tx, done_rx) = watch::channel(false);
    let progress = (!settings.quiet).then(|| tokio::spawn(progress::run(shared.clone(), done_rx)));
    let mut connections = JoinSet::new();
    for (i, sender) in senders.into_iter().enumerate() {
        let seed = settings.workload.seed.wrapping_add(i as u64 + 1);
        connections.spawn(run_connection(shared.clone(), sender, seed, stop.clone()));
    }
    while let Some(joined) = connections.join_next().await {
        if let Err(error) = joined {
            tracing::error!(%error, "A loadgen connection task failed.");
        }
    }
    let elapsed = start.elapsed();
    let _ = done_tx.send(true);
    if let Some(handle) = progress {
        let _ = handle.await;
    }
    Ok(Report::new(
        &settings,
        shared.stats.snapshot(),
        &shared.stats.latency(),
        elapsed,
        target_rate,
    ))
}

/// Waits for the next whole wall-clock second and returns it (unix ns): the aligned grid
/// starts there, after every series' start time and at or before the first request.
async fn whole_second() -> u64 {
    const SECOND: u64 = 1_000_000_000;
    let now = unix_now_ns();
    tokio::time::sleep(Duration::from_nanos(SECOND - now % SECOND)).await;
    unix_now_ns() / SECOND * SECOND
}

/// Fails fast with [`LoadgenError::Connect`] when nothing accepts TCP at the endpoint.
async fn probe(endpoint: &str) -> Result<()> {
    let unreachable = |message: String| LoadgenError::Connect {
        endpoint: endpoint.to_string(),
        message,
    };
    let url = url::Url::parse(endpoint).map_err(|e| unreachable(e.to_string()))?;
    let host = url
        .host_str()
        .ok_or_else(|| unreachable("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| unreachable("no port".into()))?;
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable("timed out after 5 s".into())),
    }
}
