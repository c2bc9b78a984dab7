//! The temporality processor's metrics.

use crate::delta::Skip;
use crate::metrics::dropped;

/// Gauge of the streams (series) a stateful processor holds, by `processor`.
pub const STATE_SERIES: &str = "phoenix_processor_state_series";

/// `reason` of a stream's first cumulative point, not emitted per `initial_value`.
pub const REASON_INITIAL: &str = "initial";
/// `reason` of a point not after its stream's previous point (duplicate or late).
pub const REASON_OUT_OF_ORDER: &str = "out_of_order";
/// `reason` of a point without a value (null or NaN).
pub const REASON_NO_VALUE: &str = "no_value";

/// Metric handles of one temporality processor, resolved once.
pub(crate) struct TemporalityMetrics {
    initial: metrics::Counter,
    out_of_order: metrics::Counter,
    no_value: metrics::Counter,
    /// Streams held.
    pub state_series: metrics::Gauge,
}

impl TemporalityMetrics {
    pub(crate) fn new(id: &str) -> Self {
        metrics::describe_gauge!(
            STATE_SERIES,
            "Streams (series) a processor holds state for."
        );
        TemporalityMetrics {
            initial: dropped(id, REASON_INITIAL),
            out_of_order: dropped(id, REASON_OUT_OF_ORDER),
            no_value: dropped(id, REASON_NO_VALUE),
            state_series: metrics::gauge!(STATE_SERIES, "processor" => id.to_string()),
        }
    }

    /// Counts `n` points skipped for `why`.
    pub(crate) fn skipped(&self, why: Skip, n: u64) {
        if n == 0 {
            return;
        }
        match why {
            Skip::Initial => self.initial.increment(n),
            Skip::OutOfOrder => self.out_of_order.increment(n),
            Skip::NoValue => self.no_value.increment(n),
        }
    }
}
