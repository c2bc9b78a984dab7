//! The cardinality limiter's metrics.

use crate::delta::Skip;
use crate::metrics::dropped;
use crate::temporality::{REASON_NO_VALUE, REASON_OUT_OF_ORDER, STATE_SERIES};

/// Datapoints folded into an overflow series (not dropped), by `processor`.
pub const OVERFLOW_DATAPOINTS: &str = "phoenix_cardinality_overflow_datapoints_total";

/// Metric handles of one limiter, resolved once.
pub(crate) struct CardinalityMetrics {
    /// Datapoints folded into overflow series.
    pub overflow: metrics::Counter,
    out_of_order: metrics::Counter,
    no_value: metrics::Counter,
    /// Admitted series.
    pub state_series: metrics::Gauge,
}

impl CardinalityMetrics {
    pub(crate) fn new(id: &str) -> Self {
        metrics::describe_counter!(
            OVERFLOW_DATAPOINTS,
            "Datapoints a cardinality limiter folded into an overflow series."
        );
        metrics::describe_gauge!(
            STATE_SERIES,
            "Streams (series) a processor holds state for."
        );
        CardinalityMetrics {
            overflow: metrics::counter!(OVERFLOW_DATAPOINTS, "processor" => id.to_string()),
            out_of_order: dropped(id, REASON_OUT_OF_ORDER),
            no_value: dropped(id, REASON_NO_VALUE),
            state_series: metrics::gauge!(STATE_SERIES, "processor" => id.to_string()),
        }
    }

    /// Counts `n` overflow points dropped for `why` (never [`Skip::Initial`]: a first
    /// cumulative point is a baseline, not a loss).
    pub(crate) fn dropped(&self, why: Skip, n: u64) {
        match why {
            Skip::OutOfOrder => self.out_of_order.increment(n),
            Skip::NoValue => self.no_value.increment(n),
            Skip::Initial => {}
        }
    }
}
