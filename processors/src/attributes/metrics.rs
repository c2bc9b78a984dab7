//! The attributes processor's metrics.

/// Datapoints whose attributes or resource an attributes processor changed.
pub const DATAPOINTS_EDITED: &str = "phoenix_processor_datapoints_edited_total";

/// Counter handles of one attributes processor, resolved once.
pub(crate) struct AttributesMetrics {
    /// Rows of batches in which at least one entry changed (the whole batch is rebuilt).
    pub edited: metrics::Counter,
}

impl AttributesMetrics {
    pub(crate) fn new(id: &str) -> Self {
        AttributesMetrics {
            edited: metrics::counter!(DATAPOINTS_EDITED, "processor" => id.to_string()),
        }
    }
}
