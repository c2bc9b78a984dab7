//! The processor graph built from `pipeline:`: the entry edge receivers write, one stage task
//! per processor, and one edge per table sink.
//!
//! Shape: the entry edge (WAL-backed or in memory) feeds the consumers of `otlp`; each
//! processor runs as a stage task reading its input(s) and writing one bounded edge
//! per consumer (fan-out sends the same batch to each; several inputs are merged by
//! [`FanIn`]). When `otlp` has a single consumer it reads the entry edge directly, so an empty
//! pipeline is exactly `entry edge → metrics sink`. Acknowledgements flow back through
//! [`crate::relay`]: the entry edge releases a WAL record once every sink stored it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use phoenix_model::config::Config;
use phoenix_model::pipeline::{PipelineConfig, ProcessorParams, RECEIVER_INPUT};
use phoenix_model::{EdgeError, EdgeReceiver, EdgeSender};
use phoenix_wal::Wal;
use tokio::task::JoinHandle;

use crate::anomaly::AnomalyRecorder;
use crate::checkpoint::{self, Checkpoints};
use crate::fan_in::FanIn;
use crate::memory_edge::memory_edge;
use crate::processor::build_processor;
use crate::relay::CommitRelay;
use crate::stage::{Output, Stage, TICK_EVERY};
use crate::usage::{Flow, UsageRecorder, UsageTap};
use crate::wal_edge::{wal_edge, WalSender};
use crate::{Error, Result};

/// Name of the table the default sink writes.
pub const DEFAULT_TABLE: &str = phoenix_model::pipeline::DEFAULT_SINK;

/// `type` label of the stage that fans the receivers' output out to several consumers.
const FANOUT_TYPE: &str = "fanout";

/// The running shape of a graph: one entry edge, the stage tasks and the sinks' edges.
pub struct Graph {
    /// Where receivers hand decoded batches.
    pub ingress: Arc<dyn EdgeSender>,
    /// One edge per sink, each feeding the named table.
    pub sinks: Vec<SinkEdge>,
    /// The stage tasks. Each ends once its input is drained and its consumers dropped their
    /// edges; await them after the sinks, so the sinks' last commits reach the WAL.
    pub stages: Vec<JoinHandle<()>>,
    /// The entry edge again, typed, when it is WAL-backed (for startup replay).
    wal_ingress: Option<Arc<WalSender>>,
}

/// The edge feeding one table sink.
pub struct SinkEdge {
    /// Table the sink writes.
    pub table: String,
    /// The edge the sink reads.
    pub rx: Box<dyn EdgeReceiver>,
}

/// A node that produces batches: the receivers or a processor.
struct Producer {
    /// Outputs and their commit relay, one per consumer in `consumers` order.
    relay: CommitRelay,
    outputs: Vec<Output>,
}

impl Graph {
    /// Builds the graph for `config` with in-memory edges and starts its stage tasks; with a
    /// `wal`, the entry edge writes every batch to it before acknowledging; with `usage`, the
    /// entry edge, every sink edge and every processor's drops are counted there.
    ///
    /// # Errors
    /// [`Error::Config`] for a pipeline that does not validate, [`Error::Build`] for a
    /// processor that does not build, [`Error::NoRuntime`] outside a tokio runtime.
    pub fn build(config: &Config, wal: Option<Wal>, usage: Option<UsageRecorder>) -> Result<Graph> {
        Self::build_recording(config, wal, usage, None)
    }

    /// As [`Graph::build`], with `anomaly` processors recording into `anomalies` (drained
    /// into the `anomalies` table by the caller; without one each records into its own,
    /// undrained recorder).
    ///
    /// # Errors
    /// As [`Graph::build`].
    pub fn build_recording(
        config: &Config,
        wal: Option<Wal>,
        usage: Option<UsageRecorder>,
        anomalies: Option<AnomalyRecorder>,
    ) -> Result<Graph> {
        Self::build_checkpointed(config, wal, usage, anomalies, None)
    }

    /// As [`Graph::build_recording`], with stateful processors restored from and saving to
    /// `checkpoints` (only meaningful with a `wal`: checkpoints refer to its positions).
    ///
    /// # Errors
    /// As [`Graph::build`]. A checkpoint that does not restore does not stop the build: it is
    /// logged, counted in `phoenix_checkpoint_failures_total` and moved aside.
    pub fn build_checkpointed(
        config: &Config,
        wal: Option<Wal>,
        usage: Option<UsageRecorder>,
        anomalies: Option<AnomalyRecorder>,
        checkpoints: Option<Checkpoints>,
    ) -> Result<Graph> {
        let capacity = config.bus.memory_capacity_batches;
        let admission = Duration::from_millis(config.ingest.admission_timeout_ms);
        let retry_after = Duration::from_secs(config.ingest.retry_after_secs);
        let (ingress, entry_rx, wal_ingress): (Arc<dyn EdgeSender>, Box<dyn EdgeReceiver>, _) =
            match wal {
                Some(wal) => {
                    let (tx, rx) = wal_edge(wal, "ingest", capacity, admission, retry_after);
                    let tx = Arc::new(tx);
                    (tx.clone(), Box::new(rx), Some(tx))
                }
                None => {
                    let (tx, rx) = memory_edge("ingest", capacity, admission, retry_after);
                    (Arc::new(tx), Box::new(rx), None)
                }
            };
        let checkpoints = checkpoints.filter(|_| wal_ingress.is_some());
        let parts = Parts {
            ingress,
            entry_rx,
            wal_ingress,
            checkpoints,
        };
        Self::build_from(config, parts, usage, anomalies)
    }

    /// As [`Graph::build_with_entry`], with `anomaly` processors recording into `anomalies`.
    ///
    /// # Errors
    /// As [`Graph::build`].
    pub fn build_with_entry_recording(
        config: &Config,
        entry: Box<dyn EdgeReceiver>,
        usage: Option<UsageRecorder>,
        anomalies: Option<AnomalyRecorder>,
    ) -> Result<Graph> {
        Self::build_from(config, Parts::external(entry), usage, anomalies)
    }

    /// Builds the graph for `config` on an entry edge read from elsewhere (a Kafka topic in
    /// the `process` role) and starts its stage tasks. The graph's [`Graph::ingress`] then
    /// refuses every batch with [`EdgeError::Closed`]: data comes only through `entry`.
    ///
    /// # Errors
    /// As [`Graph::build`].
    pub fn build_with_entry(
        config: &Config,
        entry: Box<dyn EdgeReceiver>,
        usage: Option<UsageRecorder>,
    ) -> Result<Graph> {
        Self::build_from(config, Parts::external(entry), usage, None)
    }

    fn build_from(
        config: &Config,
        parts: Parts,
        usage: Option<UsageRecorder>,
        anomalies: Option<AnomalyRecorder>,
    ) -> Result<Graph> {
        let Parts {
            ingress,
            entry_rx,
            wal_ingress,
            checkpoints,
        } = parts;
        let pipeline = &config.pipeline;
        let issues = pipeline.validate();
        if !issues.is_empty() {
            let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
            return Err(Error::Config(text.join("; ")));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let capacity = config.bus.memory_capacity_batches;
        let entry_rx: Box<dyn EdgeReceiver> = match &usage {
            Some(u) => Box::new(UsageTap::new(entry_rx, u.clone(), Flow::In)),
            None => entry_rx,
        };
        let sinks_cfg = pipeline.effective_sinks();
        let consumers = consumers(pipeline, &sinks_cfg);
        // Receivers of each (producer, consumer) edge, taken by the consumers below.
        let mut edges: BTreeMap<(String, String), Box<dyn EdgeReceiver>> = BTreeMap::new();
        let mut producers: BTreeMap<String, Producer> = BTreeMap::new();
        let mut entry_rx = Some(entry_rx);
        for (producer, readers) in &consumers {
            if producer == RECEIVER_INPUT && readers.len() == 1 {
                if let Some(rx) = entry_rx.take() {
                    edges.insert((producer.clone(), readers[0].clone()), rx);
                }
                continue;
            }
            let mut p = Producer {
                relay: CommitRelay::default(),
                outputs: Vec::new(),
            };
            for reader in readers {
                let (tx, rx) = p.relay.edge(&format!("{producer}->{reader}"), capacity);
                p.outputs.push(Output {
                    consumer: reader.clone(),
                    tx,
                });
                edges.insert((producer.clone(), reader.clone()), Box::new(rx));
            }
            producers.insert(producer.clone(), p);
        }
        let mut take_input = |consumer: &str, inputs: &[String]| -> Result<Box<dyn EdgeReceiver>> {
            let mut rxs = Vec::with_capacity(inputs.len());
            for input in inputs {
                let rx = edges
                    .remove(&(input.clone(), consumer.to_string()))
                    .ok_or_else(|| Error::Config(format!("no edge {input} -> {consumer}")))?;
                rxs.push(rx);
            }
            Ok(if rxs.len() == 1 {
                rxs.remove(0)
            } else {
                Box::new(FanIn::new(consumer, rxs))
            })
        };

        let mut stages = Vec::new();
        if let Some(p) = producers.remove(RECEIVER_INPUT) {
            let input = entry_rx
                .take()
                .ok_or_else(|| Error::Config("the entry edge has two readers".into()))?;
            stages.push(Stage {
                id: RECEIVER_INPUT.to_string(),
                type_name: FANOUT_TYPE.to_string(),
                processor: None,
                input,
                outputs: p.outputs,
                relay: p.relay,
                usage: None,
                tick_every: TICK_EVERY,
                checkpoint: None,
            });
        }
        for (id, cfg) in &pipeline.processors {
            // `anomaly` processors share the graph's recorder, which the registry cannot pass.
            let mut processor = match &cfg.params {
                ProcessorParams::Anomaly(c) => Box::new(crate::anomaly::build(
                    id,
                    c,
                    anomalies.clone().unwrap_or_default(),
                )?),
                _ => build_processor(id, &cfg.params)?,
            };
            let checkpoint = match &checkpoints {
                Some(store) => checkpoint::restore(store, id, &cfg.params, processor.as_mut())?,
                None => None,
            };
            let p = producers
                .remove(id)
                .ok_or_else(|| Error::Config(format!("processor `{id}` has no consumer")))?;
            stages.push(Stage {
                id: id.clone(),
                type_name: cfg.params.type_name().to_string(),
                processor: Some(processor),
                input: take_input(id, &cfg.inputs)?,
                outputs: p.outputs,
                relay: p.relay,
                usage: usage.clone(),
                tick_every: TICK_EVERY,
                checkpoint,
            });
        }
        let mut sinks = Vec::with_capacity(sinks_cfg.len());
        for (table, cfg) in &sinks_cfg {
            let rx = take_input(table, &cfg.inputs)?;
            let rx: Box<dyn EdgeReceiver> = match &usage {
                Some(u) => Box::new(UsageTap::new(
                    rx,
                    u.clone(),
                    Flow::Out(Arc::from(table.as_str())),
                )),
                None => rx,
            };
            sinks.push(SinkEdge {
                table: table.clone(),
                rx,
            });
        }
        // Everything is wired: only now start tasks, so an error above leaves nothing running.
        let stages = stages
            .into_iter()
            .map(|stage| runtime.spawn(stage.run()))
            .collect();
        Ok(Graph {
            ingress,
            sinks,
            stages,
            wal_ingress,
        })
    }

    /// Feeds records recovered from the WAL into the entry edge, in order. Call before the
    /// receivers start, with the sinks already running.
    ///
    /// # Errors
    /// [`EdgeError::Closed`] when the graph has no WAL or its sinks are gone.
    pub async fn replay(&self, records: Vec<(u64, RecordBatch)>) -> Result<(), EdgeError> {
        match &self.wal_ingress {
            Some(tx) => tx.replay(records).await,
            None if records.is_empty() => Ok(()),
            None => Err(EdgeError::Closed),
        }
    }

    /// Drops the graph's own handles on the entry edge (after replay), so the edge closes once
    /// the receivers are gone too. Stage tasks not taken from [`Graph::stages`] keep running
    /// on their own until the graph drains.
    pub fn into_parts(self) -> (Arc<dyn EdgeSender>, Vec<SinkEdge>) {
        (self.ingress, self.sinks)
    }
}

/// The entry of a graph: where batches come in, and the checkpoints that refer to it.
struct Parts {
    ingress: Arc<dyn EdgeSender>,
    entry_rx: Box<dyn EdgeReceiver>,
    wal_ingress: Option<Arc<WalSender>>,
    checkpoints: Option<Checkpoints>,
}

impl Parts {
    /// An entry edge read from elsewhere (a Kafka topic): no ingress, no WAL, no checkpoints.
    fn external(entry_rx: Box<dyn EdgeReceiver>) -> Self {
        Parts {
            ingress: Arc::new(NoIngress),
            entry_rx,
            wal_ingress: None,
            checkpoints: None,
        }
    }
}

/// The ingress of a graph fed by an external entry edge: takes nothing.
struct NoIngress;

#[async_trait::async_trait]
impl EdgeSender for NoIngress {
    async fn send(&self, _batch: RecordBatch) -> Result<(), EdgeError> {
        Err(EdgeError::Closed)
    }
}

/// For each producer (`otlp` and every processor), the consumers reading it: processors in id
/// order, then sinks in table order.
fn consumers(
    pipeline: &PipelineConfig,
    sinks: &BTreeMap<String, phoenix_model::pipeline::SinkConfig>,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let readers = pipeline
        .processors
        .iter()
        .map(|(id, c)| (id, &c.inputs))
        .chain(sinks.iter().map(|(t, c)| (t, &c.inputs)));
    for (reader, inputs) in readers {
        for input in inputs {
            out.entry(input.clone()).or_default().push(reader.clone());
        }
    }
    out
}

#[cfg(test)]
mod checkpoint_tests;
#[cfg(test)]
mod tests;
