//! The filter's metrics.

use crate::metrics::dropped;

/// `reason` of datapoints a filter removed.
pub const REASON_FILTERED: &str = "filtered";

/// Counter handles of one filter, resolved once.
pub(crate) struct FilterMetrics {
    /// Datapoints removed by the conditions.
    pub filtered: metrics::Counter,
}

impl FilterMetrics {
    pub(crate) fn new(id: &str) -> Self {
        FilterMetrics {
            filtered: dropped(id, REASON_FILTERED),
        }
    }
}
