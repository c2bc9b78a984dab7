//! The sampler's metrics.

use crate::metrics::dropped;

/// `reason` of datapoints of series the sampler did not keep.
pub const REASON_SAMPLED: &str = "sampled";

/// Counter handles of one sampler, resolved once.
pub(crate) struct SampleMetrics {
    /// Datapoints of series not kept.
    pub sampled: metrics::Counter,
}

impl SampleMetrics {
    pub(crate) fn new(id: &str) -> Self {
        SampleMetrics {
            sampled: dropped(id, REASON_SAMPLED),
        }
    }
}
