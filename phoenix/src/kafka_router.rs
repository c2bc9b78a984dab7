//! The processing half in Kafka mode: one processor graph per owned partition.
//!
//! Every owned partition gets its own graph (processors, state, table sinks), built when its
//! first message arrives in a new assignment epoch and stopped when the partition is revoked.
//! So every output row derives from one partition, window state and watermarks are per
//! partition (a successor rebuilding a window from the last commit sees exactly what the
//! previous owner saw), and each Parquet file records per partition how far it holds
//! (`phoenix.positions`); a new owner skips rows already stored ([`position_dedup`]). Graphs
//! are stopped without emitting their held state (no partial window is ever stored): their
//! open windows are rebuilt by the next owner from the last commit, which never passes the
//! oldest input a window holds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use phoenix_bus::{KafkaReceiver, PartitionCommitter, PartitionEdge, RevokeHook, Routed};
use phoenix_model::pipeline::{PipelineConfig, RECEIVER_INPUT};
use phoenix_model::{Config, Delivery, HealthRegistry};
use phoenix_processors::{AnomalyRecorder, Graph, UsageRecorder};
use phoenix_storage::{position_dedup, Storage};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Deliveries queued ahead of one partition's graph.
const PARTITION_QUEUE: usize = 8;
/// How long stopping one partition's graph may take (its sinks store what they hold).
const STOP_GRAPH: Duration = Duration::from_secs(20);
/// Processor type whose outputs are windowed (emitted in window order).
const WINDOWED_TYPE: &str = "aggregate";

/// A revocation: the partitions, and where to say they are stopped.
type Revocation = (Vec<i32>, std::sync::mpsc::SyncSender<()>);

/// One partition's running graph.
struct PartitionGraph {
    epoch: u64,
    tx: mpsc::Sender<Delivery>,
    stages: Vec<JoinHandle<()>>,
    sinks: Vec<JoinHandle<()>>,
}

/// Routes the consumer's deliveries to per-partition graphs.
pub(crate) struct Router {
    receiver: KafkaReceiver,
    committer: PartitionCommitter,
    config: Config,
    storage: Storage,
    health: HealthRegistry,
    usage: Option<UsageRecorder>,
    /// Shared by every partition graph's `anomaly` processors.
    anomalies: Option<AnomalyRecorder>,
    windowed: BTreeSet<String>,
    graphs: BTreeMap<i32, PartitionGraph>,
    /// Partitions whose graph could not be built, by epoch: their messages are left
    /// uncommitted (the partition stalls, its lag shows it) rather than skipped.
    broken: BTreeMap<i32, u64>,
    revoked: mpsc::UnboundedReceiver<Revocation>,
    /// Running partition graphs, for health.
    running: Arc<AtomicUsize>,
}

impl Router {
    /// A router over `receiver`; installs its revoke hook.
    pub(crate) fn new(
        receiver: KafkaReceiver,
        config: &Config,
        storage: Storage,
        health: HealthRegistry,
        usage: Option<UsageRecorder>,
        anomalies: Option<AnomalyRecorder>,
    ) -> Router {
        let (tx, revoked) = mpsc::unbounded_channel::<Revocation>();
        receiver.set_revoke_hook(RevokeHook(Box::new(move |parts: &[i32]| {
            let (done, wait) = std::sync::mpsc::sync_channel(1);
            // A router that is gone has stopped every graph already.
            if tx.send((parts.to_vec(), done)).is_ok()
                && wait.recv_timeout(STOP_GRAPH + Duration::from_secs(5)).is_err()
            {
                warn!(partitions = ?parts, "Partition graphs did not stop in time; releasing anyway.");
            }
        })));
        Router {
            committer: receiver.committer(),
            receiver,
            windowed: windowed_tables(&config.pipeline),
            config: config.clone(),
            storage,
            health,
            usage,
            anomalies,
            graphs: BTreeMap::new(),
            broken: BTreeMap::new(),
            revoked,
            running: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How many partition graphs run (updated as partitions come and go).
    pub(crate) fn running(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.running)
    }

    /// Runs until the receiver stops, then stops every graph (their sinks store what they
    /// hold and commit) and leaves the group.
    pub(crate) async fn run(mut self) {
        loop {
            tokio::select! {
                biased;
                Some(rev) = self.revoked.recv() => self.revoke(rev).await,
                routed = self.receiver.recv_partitioned() => match routed {
                    Some(r) => self.route(r).await,
                    None => break,
                },
            }
        }
        let owned: Vec<i32> = self.graphs.keys().copied().collect();
        for p in owned {
            self.stop_graph(p).await;
        }
        info!("Partition graphs stopped.");
    }

    async fn revoke(&mut self, (parts, done): Revocation) {
        for p in parts {
            self.broken.remove(&p);
            self.stop_graph(p).await;
        }
        let _ = done.send(());
    }

    /// Hands a delivery to its partition's graph, building it for a new epoch.
    async fn route(&mut self, r: Routed) {
        let p = r.partition;
        if self.broken.get(&p) == Some(&r.epoch) {
            return;
        }
        if self.graphs.get(&p).is_some_and(|g| g.epoch != r.epoch) {
            self.stop_graph(p).await;
        }
        if !self.graphs.contains_key(&p) {
            match self.build_graph(p, r.epoch) {
                Ok(g) => {
                    self.graphs.insert(p, g);
                    self.running.store(self.graphs.len(), Ordering::Relaxed);
                }
                Err(e) => {
                    // Not committed: Kafka delivers it again after a restart or rebalance.
                    error!(partition = p, error = %e, "Cannot build the partition's graph; the partition stalls until it is reassigned.");
                    self.broken.insert(p, r.epoch);
                    return;
                }
            }
        }
        let Some(tx) = self.graphs.get(&p).map(|g| g.tx.clone()) else {
            return;
        };
        let mut delivery = Some(r.delivery);
        while let Some(d) = delivery.take() {
            tokio::select! {
                biased;
                Some(rev) = self.revoked.recv() => {
                    let gone = rev.0.contains(&p);
                    self.revoke(rev).await;
                    if !gone {
                        delivery = Some(d);
                    }
                }
                permit = tx.reserve() => {
                    if let Ok(permit) = permit {
                        permit.send(d);
                    }
                }
            }
        }
    }

    fn build_graph(&self, partition: i32, epoch: u64) -> anyhow::Result<PartitionGraph> {
        let (tx, rx) = mpsc::channel(PARTITION_QUEUE);
        let entry = PartitionEdge::new(rx, self.committer.clone(), epoch);
        let mut graph = Graph::build_with_entry_recording(
            &self.config,
            Box::new(entry),
            self.usage.clone(),
            self.anomalies.clone(),
        )?;
        let stages = std::mem::take(&mut graph.stages);
        let mut sinks = Vec::new();
        for sink in std::mem::take(&mut graph.sinks) {
            let table = self.storage.table(&sink.table)?;
            table.set_position_split(phoenix_bus::split_position);
            let windowed = self.windowed.contains(&sink.table);
            let rx = position_dedup(table.clone(), sink.rx, partition as u32, windowed);
            let (health, name) = (self.health.clone(), sink.table.clone());
            sinks.push(tokio::spawn(async move {
                let never = CancellationToken::new();
                if let Err(error) = phoenix_storage::run_sink(table, rx, health, never).await {
                    error!(table = %name, partition, %error, "Table sink failed.");
                }
            }));
        }
        info!(partition, epoch, "Partition graph started.");
        Ok(PartitionGraph {
            epoch,
            tx,
            stages,
            sinks,
        })
    }

    /// Stops a partition's graph without emitting held state: stages are aborted (their open
    /// windows are rebuilt by the next owner), sinks store and commit what they received.
    async fn stop_graph(&mut self, partition: i32) {
        let Some(g) = self.graphs.remove(&partition) else {
            return;
        };
        self.running.store(self.graphs.len(), Ordering::Relaxed);
        drop(g.tx);
        for stage in &g.stages {
            stage.abort();
        }
        for stage in g.stages {
            let _ = stage.await;
        }
        for sink in g.sinks {
            let abort = sink.abort_handle();
            if tokio::time::timeout(STOP_GRAPH, sink).await.is_err() {
                abort.abort();
                warn!(
                    partition,
                    "A partition sink did not store in time; its rows are read again by the next owner."
                );
            }
        }
        info!(partition, epoch = g.epoch, "Partition graph stopped.");
    }
}

/// Tables fed (directly or through other processors) by a windowed processor.
fn windowed_tables(pipeline: &PipelineConfig) -> BTreeSet<String> {
    fn windowed(id: &str, p: &PipelineConfig, depth: usize) -> bool {
        if id == RECEIVER_INPUT || depth > 64 {
            return false;
        }
        p.processors.get(id).is_some_and(|c| {
            c.params.type_name() == WINDOWED_TYPE
                || c.inputs.iter().any(|i| windowed(i, p, depth + 1))
        })
    }
    pipeline
        .effective_sinks()
        .into_iter()
        .filter(|(_, s)| s.inputs.iter().any(|i| windowed(i, pipeline, 0)))
        .map(|(t, _)| t)
        .collect()
}
