//! The processor graph built from config: where receivers send and which sinks read.
//!
//! Today the graph is receivers → `metrics` sink over one edge; processors slot in between
//! without the receivers or sinks changing, because both only see edge traits.

use std::sync::Arc;
use std::time::Duration;

use phoenix_model::config::Config;
use phoenix_model::{EdgeReceiver, EdgeSender};

use crate::memory_edge::memory_edge;

/// Name of the table the default sink writes.
pub const DEFAULT_TABLE: &str = "metrics";

/// The running shape of a graph: one entry edge and the sinks' edges.
pub struct Graph {
    /// Where receivers hand decoded batches.
    pub ingress: Arc<dyn EdgeSender>,
    /// One edge per sink, each feeding the named table.
    pub sinks: Vec<SinkEdge>,
}

/// The edge feeding one table sink.
pub struct SinkEdge {
    /// Table the sink writes.
    pub table: String,
    /// The edge the sink reads.
    pub rx: Box<dyn EdgeReceiver>,
}

impl Graph {
    /// Builds the graph for `config` with in-memory edges.
    pub fn build(config: &Config) -> Graph {
        let (tx, rx) = memory_edge(
            "ingest",
            config.bus.memory_capacity_batches,
            Duration::from_millis(config.ingest.admission_timeout_ms),
            Duration::from_secs(config.ingest.retry_after_secs),
        );
        Graph {
            ingress: Arc::new(tx),
            sinks: vec![SinkEdge {
                table: DEFAULT_TABLE.to_string(),
                rx: Box::new(rx),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default config builds one `metrics` sink fed by the ingress edge.
    #[tokio::test]
    async fn default_graph_feeds_metrics() {
        let config = Config::default();
        let mut graph = Graph::build(&config);
        assert_eq!(graph.sinks.len(), 1);
        assert_eq!(graph.sinks[0].table, "metrics");
        let batch = arrow::record_batch::RecordBatch::new_empty(phoenix_model::metrics_schema());
        graph.ingress.send(batch).await.expect("room");
        let got = graph.sinks[0].rx.recv().await.expect("delivered");
        assert_eq!(got.batch.schema(), phoenix_model::metrics_schema());
    }
}
