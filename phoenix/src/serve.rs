//! `phoenix serve`: wires receivers, graph, storage and the API, and shuts them down in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use phoenix_analytics::QueryEngine;
use phoenix_api::ApiState;
use phoenix_ingest::Receiver;
use phoenix_model::config::{BusKind, WalCompression};
use phoenix_model::{Config, EdgeSender, HealthRegistry, Status};
use phoenix_processors::{Checkpoints, Graph, Resume, UsageRecorder};
use phoenix_storage::Storage;
use phoenix_wal::{Codec, Opened, SourceDecoder, Wal, WalOptions};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::{Role, ServeArgs};
use crate::{anomaly_task, usage_task, Failure};

/// How long receivers get to finish in-flight requests after a stop signal.
pub(crate) const RECEIVER_DRAIN: Duration = Duration::from_secs(10);
/// How long sinks get to drain the graph and flush to storage.
pub(crate) const SINK_FLUSH: Duration = Duration::from_secs(60);

/// Loads the config and runs the server until SIGTERM or Ctrl-C.
pub(crate) fn run(args: ServeArgs) -> Result<(), Failure> {
    let config =
        Config::load(args.config.as_deref(), &args.set).map_err(|e| Failure::User(e.into()))?;
    if args.role != Role::All && config.bus.kind == BusKind::Memory {
        return Err(Failure::User(anyhow!(
            "--role {:?} splits the pipeline across processes and needs bus.kind: kafka",
            args.role
        )));
    }
    init_tracing();
    disable_transparent_huge_pages();
    let prometheus = install_metrics()?;
    phoenix_ingest::metrics::describe();
    phoenix_processors::metrics::describe();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("phoenix")
        .build()
        .context("starting the async runtime")?;
    match config.bus.kind {
        BusKind::Memory => runtime.block_on(serve(config, prometheus)),
        BusKind::Kafka => {
            runtime.block_on(crate::serve_kafka::serve(config, args.role, prometheus))
        }
    }
}

/// Opts this process out of transparent huge pages. Under load the allocator returns and
/// re-faults memory; with THP each fault zeroes 2 MiB, which took over half the server's CPU in
/// a profile (`clear_page_erms`); without it server CPU per datapoint fell by about 30%.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        warn!(%error, "Cannot opt out of transparent huge pages; continuing.");
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn install_metrics() -> Result<PrometheusHandle, Failure> {
    let buckets = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
        .and_then(|b| b.install_recorder())
        .map_err(|e| Failure::Runtime(anyhow!("installing the metrics recorder: {e}")))
}

pub(crate) async fn bind(addr: &str, what: &str) -> Result<TcpListener, Failure> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))
        .map_err(Failure::Runtime)
}

async fn serve(config: Config, prometheus: PrometheusHandle) -> Result<(), Failure> {
    let health = HealthRegistry::default();
    let storage = Storage::open(&config.storage)
        .await
        .with_context(|| format!("opening storage at {}", config.storage.url))?;

    let engine = Arc::new(QueryEngine::new(storage.clone(), &config.api).context("starting SQL")?);
    let wal = open_wal(&config)?;
    let usage = config.pipeline.usage.enabled.then(UsageRecorder::new);
    let mut anomalies = anomaly_task::Anomalies::new(&config);
    let mut graph = Graph::build_checkpointed(
        &config,
        wal.as_ref().map(|o| o.wal.clone()),
        usage.clone(),
        Some(anomalies.recorder.clone()),
        wal.as_ref().and_then(|o| checkpoints(&config, o)),
    )
    .map_err(|e| Failure::Runtime(anyhow!("building the processor graph: {e}")))?;
    let stages = std::mem::take(&mut graph.stages);
    let replayed: &[(u64, arrow::record_batch::RecordBatch)] =
        wal.as_ref().map_or(&[], |o| &o.replay);
    let sink_cancel = CancellationToken::new();
    let mut sinks: Vec<JoinHandle<()>> = Vec::new();
    for sink in std::mem::take(&mut graph.sinks) {
        let table = storage
            .table(&sink.table)
            .with_context(|| format!("opening table {}", sink.table))?;
        // Each table skips the replayed rows it already stored (tables flush independently).
        let rx = phoenix_storage::dedup_receiver(&table, replayed, sink.rx)
            .await
            .with_context(|| format!("matching the WAL against table {}", sink.table))?;
        let (health, cancel, name) = (health.clone(), sink_cancel.clone(), sink.table.clone());
        sinks.push(tokio::spawn(async move {
            if let Err(error) = phoenix_storage::run_sink(table, rx, health, cancel).await {
                error!(table = %name, %error, "Table sink failed.");
            }
        }));
    }

    anomalies.start(storage.clone(), engine.clone());
    let usage_cancel = CancellationToken::new();
    let usage_task = usage.map(|u| {
        let grace = Duration::from_secs(config.pipeline.usage.grace_secs);
        tokio::spawn(usage_task::run(
            u,
            storage.clone(),
            grace,
            anomalies.cost_feed.clone(),
            usage_cancel.clone(),
        ))
    });
    let wal = match wal {
        Some(opened) => Some(replay_wal(&graph, opened).await?),
        None => None,
    };
    let (ingress, _) = graph.into_parts();

    let receiver = Arc::new(Receiver::new(ingress.clone(), &config.ingest));

    let grpc = bind(&config.ingest.grpc_listen, "OTLP/gRPC").await?;
    let http = bind(&config.ingest.http_listen, "OTLP/HTTP").await?;
    let api = bind(&config.api.listen, "the HTTP API").await?;

    let ingest_cancel = CancellationToken::new();
    let api_cancel = CancellationToken::new();
    let grpc_task = tokio::spawn(phoenix_ingest::serve_grpc(
        grpc,
        receiver.clone(),
        ingest_cancel.clone(),
    ));
    let http_task = tokio::spawn(phoenix_ingest::serve_http(
        http,
        receiver.clone(),
        ingest_cancel.clone(),
    ));
    drop(receiver);
    let state = ApiState {
        engine,
        health: health.clone(),
        prometheus: prometheus.clone(),
    };
    let api_task = tokio::spawn(phoenix_api::serve(api, state, api_cancel.clone()));
    let reporter_cancel = CancellationToken::new();
    let reporter = tokio::spawn(report_health(
        health.clone(),
        ingress.clone(),
        wal,
        config.clone(),
        prometheus,
        reporter_cancel.clone(),
    ));

    info!(
        grpc = %config.ingest.grpc_listen,
        http = %config.ingest.http_listen,
        api = %config.api.listen,
        storage = %config.storage.url,
        "Phoenix is serving."
    );
    wait_for_stop().await;
    info!("Stopping: receivers first, then the graph drains and storage flushes.");

    ingest_cancel.cancel();
    for (name, task) in [("OTLP/gRPC", grpc_task), ("OTLP/HTTP", http_task)] {
        match tokio::time::timeout(RECEIVER_DRAIN, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => warn!(receiver = name, %error, "Receiver ended with an error."),
            Ok(Err(error)) => warn!(receiver = name, %error, "Receiver task failed."),
            Err(_) => warn!(receiver = name, "Receiver did not stop in time."),
        }
    }
    // The reporter holds a sender too: stop it so that dropping ours is the last one, which
    // closes the edge; sinks then drain it and flush everything before returning.
    reporter_cancel.cancel();
    if let Err(error) = reporter.await {
        warn!(%error, "Health reporter failed.");
    }
    drop(ingress);
    let mut flushed = true;
    for task in sinks {
        if tokio::time::timeout(SINK_FLUSH, task).await.is_err() {
            flushed = false;
        }
    }
    if !flushed {
        sink_cancel.cancel();
        error!("Storage did not finish flushing in time; unflushed data is lost.");
    }
    // After the sinks: every datapoint written is counted before the last usage rows go out.
    usage_cancel.cancel();
    if let Some(task) = usage_task {
        if tokio::time::timeout(SINK_FLUSH, task).await.is_err() {
            warn!("Usage accounting did not flush in time.");
        }
    }
    // Stages end once the sinks dropped their edges, after relaying their last commits to
    // the WAL; a stage still running here only delays a WAL release (replay deduplicates).
    for stage in stages {
        if tokio::time::timeout(RECEIVER_DRAIN, stage).await.is_err() {
            warn!("A graph stage did not stop in time.");
        }
    }
    // After usage (its last minutes are scored for cost anomalies) and the stages (their
    // processors' recorder handles are gone, so the webhook queue closes once sent).
    anomalies.stop(SINK_FLUSH).await;
    stop_api(api_cancel, api_task, flushed).await
}

/// Stops the HTTP API last (queries answer until then) and reports whether storage flushed.
pub(crate) async fn stop_api(
    api_cancel: CancellationToken,
    api_task: JoinHandle<std::io::Result<()>>,
    flushed: bool,
) -> Result<(), Failure> {
    api_cancel.cancel();
    match api_task.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warn!(%error, "API server ended with an error."),
        Err(error) => warn!(%error, "API task failed."),
    }
    if flushed {
        info!("Stopped cleanly.");
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow!(
            "storage flush timed out at shutdown"
        )))
    }
}

/// Opens the WAL under `storage.data_dir/wal` when enabled, reporting what recovery cut.
fn open_wal(config: &Config) -> Result<Option<Opened>, Failure> {
    if !config.storage.wal_enabled {
        return Ok(None);
    }
    let dir = std::path::Path::new(&config.storage.data_dir).join("wal");
    let opened = Wal::open(WalOptions {
        dir: dir.clone(),
        segment_bytes: config.storage.wal_segment_bytes,
        max_bytes: config.storage.wal_max_bytes,
        codec: match config.storage.wal_codec(&config.pipeline) {
            WalCompression::Zstd => Codec::Zstd,
            WalCompression::Lz4 | WalCompression::Auto => Codec::Lz4,
        },
        // OTLP/HTTP protobuf requests are logged as received (see `phoenix_ingest::replay`).
        sources: Some(SourceDecoder(Arc::new(
            phoenix_ingest::replay::decode_source,
        ))),
        direct_io: config.storage.wal_direct_io,
    })
    .with_context(|| format!("opening the WAL in {}", dir.display()))?;
    for problem in &opened.report.problems {
        warn!(%problem, "WAL damage cut off; the records before it are kept.");
    }
    info!(
        dir = %dir.display(),
        segments = opened.report.segments,
        records = opened.report.records,
        bytes_cut = opened.report.bytes_cut,
        "WAL opened."
    );
    metrics::counter!("phoenix_wal_recovered_records_total")
        .increment(opened.report.records as u64);
    metrics::counter!("phoenix_wal_bytes_cut_total").increment(opened.report.bytes_cut);
    Ok(Some(opened))
}

/// Where stateful processors save their state (`storage.data_dir/checkpoints`), and which
/// checkpoints still join the WAL just opened; `None` when checkpoints are off.
fn checkpoints(config: &Config, opened: &Opened) -> Option<Checkpoints> {
    let every = config.storage.checkpoint_interval_secs;
    (every > 0).then(|| {
        let resume = Resume::after(opened);
        let dir = std::path::Path::new(&config.storage.data_dir).join("checkpoints");
        Checkpoints::new(dir, Duration::from_secs(every), resume)
    })
}

/// Feeds what the WAL still holds back into the graph; each sink's edge drops the rows its
/// table already holds (see `phoenix_storage::dedup_receiver`).
async fn replay_wal(graph: &Graph, opened: Opened) -> Result<Wal, Failure> {
    let records = opened.replay.len();
    let rows: usize = opened.replay.iter().map(|(_, b)| b.num_rows()).sum();
    graph
        .replay(opened.replay)
        .await
        .map_err(|e| Failure::Runtime(anyhow!("replaying the WAL: {e}")))?;
    if records > 0 {
        info!(records, rows, "WAL replayed.");
    }
    Ok(opened.wal)
}

/// Resolves on SIGTERM or Ctrl-C.
pub(crate) async fn wait_for_stop() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "Cannot listen for Ctrl-C.");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                warn!(%error, "Cannot listen for SIGTERM.");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Keeps the health figures of the receivers, graph, bus and WAL current, and the metrics
/// exporter's histograms fresh.
async fn report_health(
    health: HealthRegistry,
    ingress: Arc<dyn EdgeSender>,
    wal: Option<Wal>,
    config: Config,
    prometheus: PrometheusHandle,
    stop: CancellationToken,
) {
    let capacity = config.bus.memory_capacity_batches;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let queued = ingress.queued();
        let mut figures = serde_json::Map::new();
        figures.insert(
            "grpc_listen".into(),
            config.ingest.grpc_listen.clone().into(),
        );
        figures.insert(
            "http_listen".into(),
            config.ingest.http_listen.clone().into(),
        );
        health.report("ingest", Status::Ok, figures);

        let mut figures = serde_json::Map::new();
        figures.insert("queued_batches".into(), queued.into());
        figures.insert("capacity_batches".into(), capacity.into());
        let status = if queued * 10 >= capacity * 9 {
            Status::Degraded
        } else {
            Status::Ok
        };
        health.report("graph", status, figures.clone());
        figures.insert("kind".into(), "memory".into());
        health.report("bus", status, figures);

        let mut figures = serde_json::Map::new();
        figures.insert("enabled".into(), wal.is_some().into());
        let mut status = Status::Ok;
        if let Some(wal) = &wal {
            figures.insert("bytes".into(), wal.bytes().into());
            figures.insert("max_bytes".into(), wal.max_bytes().into());
            figures.insert("last_synced_seq".into(), wal.last_synced().into());
            if wal.bytes() * 10 >= wal.max_bytes() * 8 {
                status = Status::Degraded;
            }
        }
        health.report("wal", status, figures);
        prometheus.run_upkeep();
    }
}
