//! Names of the bus's metrics, and their descriptions.

/// Batches produced (one per partition part), by topic.
pub const PRODUCED_MESSAGES: &str = "phoenix_bus_produced_messages_total";
/// Payload bytes produced, by topic.
pub const PRODUCED_BYTES: &str = "phoenix_bus_produced_bytes_total";
/// Produce attempts that failed, by reason (`timeout`, `queue_full`, `broker`).
pub const PRODUCE_ERRORS: &str = "phoenix_bus_produce_errors_total";
/// Time from handing a batch to the sender to the broker acknowledging every part.
pub const PRODUCE_SECONDS: &str = "phoenix_bus_produce_seconds";
/// Messages consumed, by topic.
pub const CONSUMED_MESSAGES: &str = "phoenix_bus_consumed_messages_total";
/// Datapoints consumed, by topic.
pub const CONSUMED_DATAPOINTS: &str = "phoenix_bus_consumed_datapoints_total";
/// Messages sent to the dead-letter topic, by reason.
pub const DEAD_LETTERS: &str = "phoenix_bus_dead_letters_total";
/// Offset commits that failed.
pub const COMMIT_ERRORS: &str = "phoenix_bus_commit_errors_total";
/// Messages not yet committed per owned partition (high watermark minus committed offset).
pub const CONSUMER_LAG: &str = "phoenix_bus_consumer_lag";
/// Partitions this node owns in its consumer group.
pub const OWNED_PARTITIONS: &str = "phoenix_bus_owned_partitions";
/// Messages released in a revocation before they were durable (their next owner redoes them).
pub const REVOKED_UNCOMMITTED: &str = "phoenix_bus_revoked_uncommitted_total";
/// Partition assignments and revocations, by kind.
pub const REBALANCES: &str = "phoenix_bus_rebalances_total";

/// Registers descriptions with the installed recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        PRODUCED_MESSAGES,
        "Kafka messages produced (one per partition part)."
    );
    describe_counter!(
        PRODUCED_BYTES,
        Unit::Bytes,
        "Payload bytes produced to Kafka."
    );
    describe_counter!(PRODUCE_ERRORS, "Produce attempts that failed, by reason.");
    describe_histogram!(
        PRODUCE_SECONDS,
        Unit::Seconds,
        "Time until the broker acknowledged every part of a batch."
    );
    describe_counter!(CONSUMED_MESSAGES, "Kafka messages consumed.");
    describe_counter!(CONSUMED_DATAPOINTS, "Datapoints consumed from Kafka.");
    describe_counter!(
        DEAD_LETTERS,
        "Messages moved to the dead-letter topic, by reason."
    );
    describe_counter!(
        COMMIT_ERRORS,
        "Offset commits that failed (retried by the next one)."
    );
    describe_gauge!(
        CONSUMER_LAG,
        "Messages not yet committed, per owned partition."
    );
    describe_gauge!(
        OWNED_PARTITIONS,
        "Partitions this node owns in its consumer group."
    );
    describe_counter!(
        REVOKED_UNCOMMITTED,
        "Messages released in a revocation before they were durable."
    );
    describe_counter!(REBALANCES, "Partition assignments and revocations.");
}
