//! A stage: one task that reads its input edge, runs its processor and writes every output
//! edge, and relays its consumers' commits back to its input.

use arrow::record_batch::RecordBatch;
use phoenix_model::{AckToken, Delivery, EdgeReceiver};
use tracing::Instrument;

use crate::memory_edge::MemorySender;
use crate::metrics::{dropped, DATAPOINTS_IN, DATAPOINTS_OUT, REASON_ERROR};
use crate::processor::Processor;
use crate::relay::CommitRelay;

/// One output edge of a stage.
pub(crate) struct Output {
    /// Consumer id (for logs).
    pub consumer: String,
    /// The edge.
    pub tx: MemorySender,
}

/// A stage ready to run.
pub(crate) struct Stage {
    /// Processor id (or `otlp` for the receivers' fan-out).
    pub id: String,
    /// Processor type (`fanout` for the receivers' fan-out).
    pub type_name: String,
    /// `None`: forward batches unchanged (the receivers' output feeding several consumers).
    pub processor: Option<Box<dyn Processor>>,
    /// Where batches come from.
    pub input: Box<dyn EdgeReceiver>,
    /// Where they go; every output gets every batch.
    pub outputs: Vec<Output>,
    /// Commits of the outputs' consumers.
    pub relay: CommitRelay,
}

/// Per-stage counters, resolved once.
struct Counters {
    datapoints_in: metrics::Counter,
    datapoints_out: metrics::Counter,
    errors: metrics::Counter,
}

impl Stage {
    /// Runs until the input is drained and every consumer has dropped its edge, relaying
    /// commits all along (so the final flushes of the sinks still release the WAL).
    pub(crate) async fn run(self) {
        let span = tracing::info_span!("processor", id = %self.id, r#type = %self.type_name);
        self.run_inner().instrument(span).await;
    }

    async fn run_inner(mut self) {
        let counters = Counters {
            datapoints_in: metrics::counter!(DATAPOINTS_IN, "processor" => self.id.clone()),
            datapoints_out: metrics::counter!(DATAPOINTS_OUT, "processor" => self.id.clone()),
            errors: dropped(&self.id, REASON_ERROR),
        };
        tracing::debug!(outputs = self.outputs.len(), "Stage started.");
        let mut open = true;
        let mut relayed: Option<AckToken> = None;
        loop {
            if !open && self.relay.all_closed() {
                break;
            }
            tokio::select! {
                biased;
                () = self.relay.changed() => {}
                delivery = self.input.recv(), if open => match delivery {
                    Some(d) => {
                        if !self.forward(d, &counters).await {
                            tracing::warn!("Every consumer is gone; stage stops reading.");
                            open = false;
                        }
                    }
                    None => {
                        open = false;
                        // Dropping the senders closes the consumers' edges once drained.
                        self.outputs.clear();
                    }
                },
            }
            self.relay_commits(&mut relayed).await;
        }
        self.relay_commits(&mut relayed).await;
        tracing::debug!("Stage stopped.");
    }

    /// Processes one delivery and sends the result, with the delivery's token, to every
    /// output. Returns false when no output is left.
    async fn forward(&mut self, d: Delivery, counters: &Counters) -> bool {
        let batch = match self.processor.as_mut() {
            None => d.batch,
            Some(p) => {
                let rows = d.batch.num_rows() as u64;
                counters.datapoints_in.increment(rows);
                let schema = d.batch.schema();
                let out = p.process(d.batch).unwrap_or_else(|error| {
                    tracing::error!(%error, rows, "Processor failed; dropping the batch.");
                    counters.errors.increment(rows);
                    RecordBatch::new_empty(schema)
                });
                counters.datapoints_out.increment(out.num_rows() as u64);
                out
            }
        };
        // Every output gets the delivery, even an empty one, so its token reaches the sinks
        // and comes back as a commit.
        let mut i = 0;
        while i < self.outputs.len() {
            match self.outputs[i].tx.reserve_unbounded_wait().await {
                Ok(permit) => {
                    permit.send(batch.clone(), Some(d.ack.0));
                    i += 1;
                }
                Err(_closed) => {
                    let gone = self.outputs.swap_remove(i);
                    tracing::warn!(consumer = %gone.consumer, "Consumer is gone; its output is dropped.");
                }
            }
        }
        !self.outputs.is_empty()
    }

    /// Commits on the input what every consumer has committed, once it advanced.
    async fn relay_commits(&mut self, relayed: &mut Option<AckToken>) {
        let Some(upto) = self.relay.committed() else {
            return;
        };
        if relayed.is_some_and(|r| r >= upto) {
            return;
        }
        match self.input.commit(upto).await {
            Ok(()) => *relayed = Some(upto),
            // A later commit covers this position too.
            Err(error) => tracing::warn!(%error, upto = upto.0, "Commit relay failed; will retry."),
        }
    }
}
