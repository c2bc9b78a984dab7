//! Phoenix's topics: their names, and creating them when missing.

use std::time::Duration;

use phoenix_model::config::KafkaConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::{client, Error, Result};

/// How long topic creation and metadata requests may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The topics of one deployment, named from `bus.kafka.topic_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Where ingest nodes write decoded OTLP batches: `{prefix}ingest`.
    pub ingest: String,
    /// Where unreadable messages go: `{prefix}dlq`.
    pub dlq: String,
}

impl Topics {
    /// Topic names for `prefix`.
    pub fn new(prefix: &str) -> Self {
        Topics {
            ingest: format!("{prefix}ingest"),
            dlq: format!("{prefix}dlq"),
        }
    }
}

/// Creates the ingest topic (with `bus.kafka.partitions`) and the dead-letter topic (one
/// partition) when they do not exist, and returns the ingest topic's actual partition count
/// (an existing topic keeps its own).
///
/// # Errors
/// [`Error::Kafka`] when the cluster cannot be reached or refuses to create a topic.
pub async fn ensure_topics(cfg: &KafkaConfig) -> Result<i32> {
    let topics = Topics::new(&cfg.topic_prefix);
    let admin: AdminClient<DefaultClientContext> = client::admin(cfg)
        .create()
        .map_err(|e| Error::Client(e.to_string()))?;
    let partitions = i32::try_from(cfg.partitions)
        .map_err(|_| Error::Client("bus.kafka.partitions is too large".into()))?;
    let replication = TopicReplication::Fixed(cfg.replication_factor);
    let new = [
        NewTopic::new(&topics.ingest, partitions, replication),
        NewTopic::new(
            &topics.dlq,
            1,
            TopicReplication::Fixed(cfg.replication_factor),
        ),
    ];
    let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .map_err(|e| Error::kafka("create topics", e))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, "Created Kafka topic."),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            // Without the right to create topics, topics made by an operator still work: the
            // metadata lookup below decides.
            Err((name, code)) => {
                tracing::warn!(topic = %name, error = %code, "Cannot create Kafka topic; using it if it exists.")
            }
        }
    }
    partition_count(cfg, &topics.ingest).await
}

/// Partitions of `topic`, from the cluster's metadata.
///
/// # Errors
/// [`Error::Kafka`] when the metadata cannot be fetched or the topic has no partitions.
pub async fn partition_count(cfg: &KafkaConfig, topic: &str) -> Result<i32> {
    let admin: AdminClient<DefaultClientContext> = client::admin(cfg)
        .create()
        .map_err(|e| Error::Client(e.to_string()))?;
    let topic = topic.to_string();
    // librdkafka's metadata call blocks; keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        // A topic just created may take a moment to show its partitions.
        let deadline = std::time::Instant::now() + ADMIN_TIMEOUT;
        loop {
            let meta = admin
                .inner()
                .fetch_metadata(Some(&topic), ADMIN_TIMEOUT)
                .map_err(|e| Error::kafka("metadata", e))?;
            let count = meta
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .filter(|t| t.error().is_none())
                .map_or(0, |t| t.partitions().len());
            if count > 0 {
                return i32::try_from(count).map_err(|e| Error::kafka("metadata", e));
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::kafka(
                    "metadata",
                    format!("topic {topic} has no partitions"),
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .map_err(|e| Error::kafka("metadata", e))?
}
