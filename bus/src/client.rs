//! librdkafka settings of Phoenix's producers, consumers and admin client.

use phoenix_model::config::KafkaConfig;
use rdkafka::ClientConfig;

/// How often librdkafka reports statistics (consumer lag).
pub const STATS_INTERVAL_MS: u32 = 2_000;

/// Settings every client shares: brokers, then `bus.kafka.properties`.
fn base(cfg: &KafkaConfig, role: &str, extra: &[(&str, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", cfg.brokers.trim());
    c.set("client.id", format!("phoenix-{role}"));
    for (k, v) in extra {
        c.set(*k, v.as_str());
    }
    // User properties come last so they can override any default above.
    for (k, v) in &cfg.properties {
        c.set(k.as_str(), v.as_str());
    }
    c
}

/// Producer: every write acknowledged by all in-sync replicas, idempotent (no duplicates from
/// the client's own retries), no Kafka-level compression (the Arrow payload is compressed).
pub fn producer(cfg: &KafkaConfig) -> ClientConfig {
    let max = cfg
        .max_message_bytes
        .saturating_add(64 * 1024)
        .max(1_000_000);
    base(
        cfg,
        "producer",
        &[
            ("acks", "all".into()),
            ("enable.idempotence", "true".into()),
            ("compression.codec", "none".into()),
            ("message.timeout.ms", cfg.delivery_timeout_ms.to_string()),
            ("message.max.bytes", max.to_string()),
            ("linger.ms", "2".into()),
        ],
    )
}

/// Consumer in `bus.kafka.group_id`: offsets are committed only by the application, once the
/// data is durable downstream; a group without committed offsets starts at the beginning.
pub fn consumer(cfg: &KafkaConfig) -> ClientConfig {
    base(
        cfg,
        "consumer",
        &[
            ("group.id", cfg.group_id.clone()),
            ("enable.auto.commit", "false".into()),
            ("enable.auto.offset.store", "false".into()),
            ("auto.offset.reset", "earliest".into()),
            ("enable.partition.eof", "false".into()),
            // A dead node's partitions move after this long without heartbeats.
            ("session.timeout.ms", "10000".into()),
            ("heartbeat.interval.ms", "2000".into()),
            ("statistics.interval.ms", STATS_INTERVAL_MS.to_string()),
            ("partition.assignment.strategy", "cooperative-sticky".into()),
        ],
    )
}

/// Admin client (topic creation, metadata).
pub fn admin(cfg: &KafkaConfig) -> ClientConfig {
    base(cfg, "admin", &[])
}

/// Names this process in the `phoenix-producer` header: `host:pid`.
pub fn producer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("{host}:{}", std::process::id())
}
