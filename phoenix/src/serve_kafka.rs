//! `phoenix serve` with `bus.kind: kafka`: the pipeline split at the ingest topic, so ingest
//! and processing scale separately.
//!
//! - `--role ingest`: OTLP receivers → [`KafkaSender`]. No WAL: the topic is the log, and an
//!   export is acknowledged only once Kafka acknowledged every part of it (acks=all,
//!   idempotent producer); a broker that does not answer makes ingest answer 503/UNAVAILABLE.
//! - `--role process`: [`KafkaReceiver`] in the consumer group → one processor graph per
//!   owned partition ([`crate::kafka_router`]) → table sinks. Offsets are committed per
//!   partition once the sinks stored what came before them; files record per partition how
//!   far they hold, so a partition's next owner skips what is stored (exactly once in tables).
//! - `--role all`: both in one process.
//!
//! Every role serves the HTTP API (SQL over the stored files, re-listed every 5 s so files of
//! other nodes show up; `/health/detailed`, `/metrics`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use metrics_exporter_prometheus::PrometheusHandle;
use phoenix_analytics::QueryEngine;
use phoenix_api::ApiState;
use phoenix_bus::{BusMonitor, KafkaReceiver, KafkaSender, ReceiverHandle, ReceiverOptions};
use phoenix_ingest::Receiver;
use phoenix_model::{Config, EdgeSender, HealthRegistry, Status};
use phoenix_processors::UsageRecorder;
use phoenix_storage::Storage;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::Role;
use crate::kafka_router::Router;
use crate::serve::{bind, stop_api, wait_for_stop, RECEIVER_DRAIN, SINK_FLUSH};
use crate::{anomaly_task, usage_task, Failure};

/// How long startup keeps trying to reach the brokers before giving up.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);
/// The bus shows `degraded` this long after Kafka last failed.
const DEGRADED_FOR: Duration = Duration::from_secs(10);
/// Messages a processing node fetches ahead of its graph.
const PREFETCH: usize = 32;
/// How often every node re-lists storage, so SQL sees files other nodes wrote.
const RELIST_EVERY: Duration = Duration::from_secs(5);

/// The ingest half: receivers writing to the topic.
struct IngestPart {
    sender: Arc<KafkaSender>,
    cancel: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<Result<(), phoenix_ingest::Error>>)>,
}

/// The processing half: consumer → one graph per owned partition → sinks.
struct ProcessPart {
    handle: ReceiverHandle,
    router: JoinHandle<()>,
    /// Partition graphs running.
    graphs: Arc<std::sync::atomic::AtomicUsize>,
    usage_task: Option<JoinHandle<()>>,
    usage_cancel: CancellationToken,
    /// Writes this node's anomalies (its partitions' `anomaly` processors, cost anomalies of
    /// its usage rows) and runs the webhook.
    anomalies: anomaly_task::Anomalies,
}

/// Runs `role` until SIGTERM or Ctrl-C, then stops ingest first, then drains processing.
pub(crate) async fn serve(
    config: Config,
    role: Role,
    prometheus: PrometheusHandle,
) -> Result<(), Failure> {
    phoenix_bus::metrics::describe();
    let health = HealthRegistry::default();
    let storage = Storage::open(&config.storage)
        .await
        .with_context(|| format!("opening storage at {}", config.storage.url))?;

    let engine = Arc::new(QueryEngine::new(storage.clone(), &config.api).context("starting SQL")?);
    let process = match role {
        Role::Ingest => None,
        Role::All | Role::Process => {
            Some(start_process(&config, &storage, &health, &engine).await?)
        }
    };
    let ingest = match role {
        Role::Process => None,
        Role::All | Role::Ingest => Some(start_ingest(&config).await?),
    };

    let api = bind(&config.api.listen, "the HTTP API").await?;
    let api_cancel = CancellationToken::new();
    let state = ApiState {
        engine,
        health: health.clone(),
        prometheus: prometheus.clone(),
    };
    let api_task = tokio::spawn(phoenix_api::serve(api, state, api_cancel.clone()));
    let reporter_cancel = CancellationToken::new();
    let relister = tokio::spawn(relist(storage.clone(), reporter_cancel.clone()));
    let reporter = tokio::spawn(report_health(
        health.clone(),
        ingest.as_ref().map(|i| i.sender.clone()),
        process.as_ref().map(|p| p.handle.monitor().clone()),
        process.as_ref().map(|p| p.graphs.clone()),
        config.clone(),
        prometheus,
        reporter_cancel.clone(),
    ));
    info!(
        role = ?role,
        brokers = %config.bus.kafka.brokers,
        topic_prefix = %config.bus.kafka.topic_prefix,
        api = %config.api.listen,
        storage = %config.storage.url,
        "Phoenix is serving on Kafka."
    );
    wait_for_stop().await;
    info!("Stopping: receivers first, then processing drains and storage flushes.");

    if let Some(ingest) = ingest {
        stop_ingest(ingest).await;
    }
    reporter_cancel.cancel();
    if let Err(error) = reporter.await {
        warn!(%error, "Health reporter failed.");
    }
    if let Err(error) = relister.await {
        warn!(%error, "Storage re-listing failed.");
    }
    let flushed = match process {
        Some(process) => stop_process(process).await,
        None => true,
    };
    stop_api(api_cancel, api_task, flushed).await
}

/// Retries `connect` until it succeeds or [`CONNECT_PATIENCE`] runs out.
async fn with_patience<T, F, Fut>(what: &str, mut connect: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = phoenix_bus::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + CONNECT_PATIENCE;
    let mut backoff = Duration::from_millis(250);
    loop {
        match connect().await {
            Ok(v) => return Ok(v),
            Err(error) if tokio::time::Instant::now() + backoff < deadline => {
                warn!(%error, "Cannot reach Kafka for the {what} yet; retrying.");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(error) => {
                return Err(Failure::Runtime(anyhow!(
                    "connecting the {what} to Kafka: {error}"
                )))
            }
        }
    }
}

async fn start_ingest(config: &Config) -> Result<IngestPart, Failure> {
    let admission = Duration::from_millis(config.ingest.admission_timeout_ms);
    let retry_after = Duration::from_secs(config.ingest.retry_after_secs);
    let sender = with_patience("ingest producer", || {
        KafkaSender::connect(&config.bus.kafka, admission, retry_after)
    })
    .await?;
    info!(topic = %sender.topic(), partitions = sender.partitions(), "Ingest writes to Kafka.");
    let sender = Arc::new(sender);
    let receiver = Arc::new(Receiver::new(
        sender.clone() as Arc<dyn EdgeSender>,
        &config.ingest,
    ));
    let grpc = bind(&config.ingest.grpc_listen, "OTLP/gRPC").await?;
    let http = bind(&config.ingest.http_listen, "OTLP/HTTP").await?;
    let cancel = CancellationToken::new();
    let tasks = vec![
        (
            "OTLP/gRPC",
            tokio::spawn(phoenix_ingest::serve_grpc(
                grpc,
                receiver.clone(),
                cancel.clone(),
            )),
        ),
        (
            "OTLP/HTTP",
            tokio::spawn(phoenix_ingest::serve_http(http, receiver, cancel.clone())),
        ),
    ];
    Ok(IngestPart {
        sender,
        cancel,
        tasks,
    })
}

async fn stop_ingest(ingest: IngestPart) {
    ingest.cancel.cancel();
    for (name, task) in ingest.tasks {
        match tokio::time::timeout(RECEIVER_DRAIN, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => warn!(receiver = name, %error, "Receiver ended with an error."),
            Ok(Err(error)) => warn!(receiver = name, %error, "Receiver task failed."),
            Err(_) => warn!(receiver = name, "Receiver did not stop in time."),
        }
    }
}

async fn start_process(
    config: &Config,
    storage: &Storage,
    health: &HealthRegistry,
    engine: &Arc<QueryEngine>,
) -> Result<ProcessPart, Failure> {
    // Revocations stop the partition's graph instead of waiting for commits (see
    // `kafka_router`); this only bounds a receiver without a revoke hook.
    let revoke_timeout = Duration::from_secs(config.storage.flush_interval_secs.saturating_mul(2))
        + Duration::from_secs(10);
    let options = ReceiverOptions {
        prefetch: PREFETCH,
        revoke_timeout,
    };
    let receiver = with_patience("processing consumer", || {
        KafkaReceiver::connect(&config.bus.kafka, options.clone())
    })
    .await?;
    let handle = receiver.handle();
    let usage = config.pipeline.usage.enabled.then(UsageRecorder::new);
    let mut anomalies = anomaly_task::Anomalies::new(config);
    // Fail fast on a pipeline that does not build, before any partition arrives.
    check_pipeline(config)?;
    let router = Router::new(
        receiver,
        config,
        storage.clone(),
        health.clone(),
        usage.clone(),
        Some(anomalies.recorder.clone()),
    );
    let graphs = router.running();
    let router = tokio::spawn(router.run());
    anomalies.start(storage.clone(), Arc::clone(engine));
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
    Ok(ProcessPart {
        handle,
        router,
        graphs,
        usage_task,
        usage_cancel,
        anomalies,
    })
}

/// Validates the pipeline and builds each processor once, as every partition's graph will.
fn check_pipeline(config: &Config) -> Result<(), Failure> {
    let issues = config.pipeline.validate();
    if let Some(first) = issues.first() {
        return Err(Failure::Runtime(anyhow!("invalid pipeline: {first}")));
    }
    for (id, p) in &config.pipeline.processors {
        phoenix_processors::build_processor(id, &p.params)
            .map_err(|e| Failure::Runtime(anyhow!("building the processor graph: {e}")))?;
    }
    Ok(())
}

/// Stops fetching; every partition graph stores what its sinks hold and commits; then usage
/// accounting flushes. Returns whether everything stopped in time.
async fn stop_process(process: ProcessPart) -> bool {
    // Undelivered messages stay in Kafka (uncommitted) for the partitions' next owner.
    process.handle.stop();
    let mut flushed = true;
    if tokio::time::timeout(SINK_FLUSH, process.router)
        .await
        .is_err()
    {
        flushed = false;
        error!(
            "Storage did not finish flushing in time; Kafka will redeliver what was not committed."
        );
    }
    process.usage_cancel.cancel();
    if let Some(task) = process.usage_task {
        if tokio::time::timeout(SINK_FLUSH, task).await.is_err() {
            warn!("Usage accounting did not flush in time.");
        }
    }
    // After usage (its last minutes are scored) and the graphs (their recorder handles are gone).
    process.anomalies.stop(SINK_FLUSH).await;
    flushed
}

/// Re-lists storage every [`RELIST_EVERY`]: files written by other processing nodes become
/// visible to this node's SQL within that bound (plus their writers' flush interval).
async fn relist(storage: Storage, stop: CancellationToken) {
    let mut tick = tokio::time::interval(RELIST_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match storage.refresh().await {
            Ok(0) => {}
            Ok(added) => tracing::debug!(added, "Storage re-listed."),
            Err(error) => warn!(%error, "Storage re-listing failed; will retry."),
        }
    }
}

/// Keeps the ingest and bus health figures current, and the metrics exporter fresh.
async fn report_health(
    health: HealthRegistry,
    sender: Option<Arc<KafkaSender>>,
    monitor: Option<BusMonitor>,
    graphs: Option<Arc<std::sync::atomic::AtomicUsize>>,
    config: Config,
    prometheus: PrometheusHandle,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut bus = monitor
            .as_ref()
            .map(BusMonitor::figures)
            .unwrap_or_default();
        bus.insert("kind".into(), "kafka".into());
        bus.insert("brokers".into(), config.bus.kafka.brokers.clone().into());
        if let Some(sender) = &sender {
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
            bus.insert("ingest_topic".into(), sender.topic().into());
            bus.insert("ingest_partitions".into(), sender.partitions().into());
            bus.insert("produce_in_flight".into(), sender.queued().into());
            bus.insert(
                "seconds_since_produce_failure".into(),
                sender
                    .since_last_failure()
                    .map_or(serde_json::Value::Null, |d| d.as_secs().into()),
            );
        }
        // Degraded while Kafka failed recently: ingest answers 503, or consumption stalls.
        let recent = |d: Option<Duration>| d.is_some_and(|d| d < DEGRADED_FOR);
        let failing = recent(sender.as_ref().and_then(|s| s.since_last_failure()))
            || recent(monitor.as_ref().and_then(BusMonitor::since_last_error));
        let status = if failing {
            Status::Degraded
        } else {
            Status::Ok
        };
        health.report("bus", status, bus);
        let mut graph = serde_json::Map::new();
        match &graphs {
            Some(n) => {
                let n = n.load(std::sync::atomic::Ordering::Relaxed);
                graph.insert("partition_graphs".into(), n.into());
            }
            None => {
                graph.insert("partition_graphs".into(), 0.into());
                graph.insert(
                    "note".into(),
                    "ingest role: graphs run on processing nodes".into(),
                );
            }
        }
        health.report("graph", Status::Ok, graph);
        // No WAL in Kafka mode: the ingest topic is the log.
        let mut wal = serde_json::Map::new();
        wal.insert("enabled".into(), false.into());
        wal.insert(
            "note".into(),
            "kafka bus: the ingest topic is the log".into(),
        );
        health.report("wal", Status::Ok, wal);
        prometheus.run_upkeep();
    }
}
