//! Metric names shared by every processor, and their descriptions.

/// Datapoints a processor received, by `processor` id.
pub const DATAPOINTS_IN: &str = "phoenix_processor_datapoints_in_total";
/// Datapoints a processor emitted, by `processor` id.
pub const DATAPOINTS_OUT: &str = "phoenix_processor_datapoints_out_total";
/// Datapoints a processor dropped, by `processor` id and `reason`.
pub const DATAPOINTS_DROPPED: &str = "phoenix_processor_datapoints_dropped_total";

/// `reason` of datapoints lost because the processor failed on their batch.
pub const REASON_ERROR: &str = "error";

/// A dropped-datapoints counter for one processor and reason.
pub(crate) fn dropped(processor: &str, reason: &'static str) -> metrics::Counter {
    metrics::counter!(DATAPOINTS_DROPPED, "processor" => processor.to_string(), "reason" => reason)
}

/// Registers the descriptions of the graph's metrics with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(DATAPOINTS_IN, "Datapoints a processor received.");
    metrics::describe_counter!(DATAPOINTS_OUT, "Datapoints a processor emitted.");
    metrics::describe_counter!(
        DATAPOINTS_DROPPED,
        "Datapoints a processor dropped, by reason."
    );
    crate::aggregate::metrics::describe();
    crate::anomaly::metrics::describe();
}
