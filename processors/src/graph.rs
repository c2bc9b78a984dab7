//! The processor graph built from config: where receivers send and which sinks read.
//!
//! Today the graph is receivers → `metrics` sink over one edge; processors slot in between
//! without the receivers or sinks changing, because both only see edge traits.

use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use phoenix_model::config::Config;
use phoenix_model::{EdgeError, EdgeReceiver, EdgeSender};
use phoenix_wal::Wal;

use crate::memory_edge::memory_edge;
use crate::wal_edge::{wal_edge, WalSender};

/// Name of the table the default sink writes.
pub const DEFAULT_TABLE: &str = "metrics";

/// The running shape of a graph: one entry edge and the sinks' edges.
pub struct Graph {
    /// Where receivers hand decoded batches.
    pub ingress: Arc<dyn EdgeSender>,
    /// One edge per sink, each feeding the named table.
    pub sinks: Vec<SinkEdge>,
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

impl Graph {
    /// Builds the graph for `config` with in-memory edges; with a `wal`, the entry edge writes
    /// every batch to it before acknowledging.
    pub fn build(config: &Config, wal: Option<Wal>) -> Graph {
        let capacity = config.bus.memory_capacity_batches;
        let admission = Duration::from_millis(config.ingest.admission_timeout_ms);
        let retry_after = Duration::from_secs(config.ingest.retry_after_secs);
        let (ingress, rx, wal_ingress): (Arc<dyn EdgeSender>, Box<dyn EdgeReceiver>, _) = match wal
        {
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
        Graph {
            ingress,
            sinks: vec![SinkEdge {
                table: DEFAULT_TABLE.to_string(),
                rx,
            }],
            wal_ingress,
        }
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
    /// the receivers are gone too.
    pub fn into_parts(self) -> (Arc<dyn EdgeSender>, Vec<SinkEdge>) {
        (self.ingress, self.sinks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default config builds one `metrics` sink fed by the ingress edge.
    #[tokio::test]
    async fn default_graph_feeds_metrics() {
        let config = Config::default();
        let mut graph = Graph::build(&config, None);
        assert_eq!(graph.sinks.len(), 1);
        assert_eq!(graph.sinks[0].table, "metrics");
        let batch = arrow::record_batch::RecordBatch::new_empty(phoenix_model::metrics_schema());
        graph.ingress.send(batch).await.expect("room");
        let got = graph.sinks[0].rx.recv().await.expect("delivered");
        assert_eq!(got.batch.schema(), phoenix_model::metrics_schema());
    }
}
