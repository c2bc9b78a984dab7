//! The aggregator's metrics.

use crate::metrics::dropped;

/// Points that arrived after their window closed, by `processor` (whatever the late policy).
pub const LATE_DATAPOINTS: &str = "phoenix_late_datapoints_total";
/// Series held in state (output series plus cumulative input streams), by `processor`.
pub const STATE_SERIES: &str = "phoenix_processor_state_series";
/// Windows open, by `processor`.
pub const STATE_WINDOWS: &str = "phoenix_processor_state_windows";

/// `reason` of late points dropped under `late_policy: drop`.
pub const REASON_LATE: &str = "late";
/// `reason` of points of new series beyond `max_series`.
pub const REASON_MAX_SERIES: &str = "max_series";
/// `reason` of points without a value (flagged, null or not finite).
pub const REASON_NO_VALUE: &str = "no_value";
/// `reason` of points stamped too far ahead of the wall clock.
pub const REASON_FUTURE: &str = "future";

/// Registers the descriptions of the aggregator's metrics with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        LATE_DATAPOINTS,
        "Datapoints that arrived after their aggregation window closed."
    );
    metrics::describe_gauge!(
        STATE_SERIES,
        "Series an aggregating processor holds in state."
    );
    metrics::describe_gauge!(
        STATE_WINDOWS,
        "Windows an aggregating processor holds open."
    );
}

/// Handles of one aggregator, resolved once.
pub(crate) struct AggregateMetrics {
    pub late: metrics::Counter,
    pub dropped_late: metrics::Counter,
    pub dropped_max_series: metrics::Counter,
    pub dropped_no_value: metrics::Counter,
    pub dropped_future: metrics::Counter,
    pub state_series: metrics::Gauge,
    pub state_windows: metrics::Gauge,
}

impl AggregateMetrics {
    pub(crate) fn new(id: &str) -> Self {
        AggregateMetrics {
            late: metrics::counter!(LATE_DATAPOINTS, "processor" => id.to_string()),
            dropped_late: dropped(id, REASON_LATE),
            dropped_max_series: dropped(id, REASON_MAX_SERIES),
            dropped_no_value: dropped(id, REASON_NO_VALUE),
            dropped_future: dropped(id, REASON_FUTURE),
            state_series: metrics::gauge!(STATE_SERIES, "processor" => id.to_string()),
            state_windows: metrics::gauge!(STATE_WINDOWS, "processor" => id.to_string()),
        }
    }
}
