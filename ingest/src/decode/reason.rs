//! Why a datapoint is rejected, and per-reason tallies.

/// Why one datapoint was rejected; [`Reason::as_str`] is the `reason` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The metric has an empty name.
    EmptyMetricName,
    /// `time_unix_nano` is 0.
    MissingTimestamp,
    /// A timestamp does not fit a signed 64-bit nanosecond timestamp (after year 2262).
    TimestampOutOfRange,
    /// `time_unix_nano` is older than `ingest.max_past_secs` before now.
    TimestampTooOld,
    /// `time_unix_nano` is more than `ingest.max_future_secs` after now.
    TimestampInFuture,
    /// NaN or ±Inf in a value, or in a histogram / summary sum, min or max.
    NonFiniteValue,
    /// More than `max_attributes` attributes on the datapoint or its resource.
    TooManyAttributes,
    /// An attribute key or rendered value longer than `max_attribute_value_bytes`, on the
    /// datapoint or its resource.
    AttributeTooLarge,
    /// Histogram buckets inconsistent with bounds or count.
    InvalidHistogram,
    /// Decoded, but the pipeline did not take the batch (counted by the receiver).
    PipelineFull,
}

impl Reason {
    /// Number of reasons.
    pub const COUNT: usize = 10;

    /// Every reason, in index order.
    pub const ALL: [Reason; Self::COUNT] = [
        Reason::EmptyMetricName,
        Reason::MissingTimestamp,
        Reason::TimestampOutOfRange,
        Reason::TimestampTooOld,
        Reason::TimestampInFuture,
        Reason::NonFiniteValue,
        Reason::TooManyAttributes,
        Reason::AttributeTooLarge,
        Reason::InvalidHistogram,
        Reason::PipelineFull,
    ];

    /// The metric label value, e.g. `non_finite_value`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::EmptyMetricName => "empty_metric_name",
            Reason::MissingTimestamp => "missing_timestamp",
            Reason::TimestampOutOfRange => "timestamp_out_of_range",
            Reason::TimestampTooOld => "timestamp_too_old",
            Reason::TimestampInFuture => "timestamp_in_future",
            Reason::NonFiniteValue => "non_finite_value",
            Reason::TooManyAttributes => "too_many_attributes",
            Reason::AttributeTooLarge => "attribute_too_large",
            Reason::InvalidHistogram => "invalid_histogram",
            Reason::PipelineFull => "pipeline_full",
        }
    }

    /// A short human explanation, used in `partial_success.error_message`.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::EmptyMetricName => "metric name is empty",
            Reason::MissingTimestamp => "time_unix_nano is 0",
            Reason::TimestampOutOfRange => "timestamp is after year 2262",
            Reason::TimestampTooOld => "time_unix_nano is older than ingest.max_past_secs",
            Reason::TimestampInFuture => {
                "time_unix_nano is further in the future than ingest.max_future_secs"
            }
            Reason::NonFiniteValue => "value, sum, min or max is NaN or infinite",
            Reason::TooManyAttributes => "too many attributes on the datapoint or its resource",
            Reason::AttributeTooLarge => {
                "an attribute key or value of the datapoint or its resource is too large"
            }
            Reason::InvalidHistogram => {
                "histogram buckets do not match its bounds or its count, or bounds are not increasing"
            }
            Reason::PipelineFull => "pipeline is full",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Rejected datapoints per [`Reason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectCounts([u64; Reason::COUNT]);

impl RejectCounts {
    /// Adds `n` rejections for `reason`.
    pub fn add(&mut self, reason: Reason, n: u64) {
        self.0[reason.index()] += n;
    }

    /// Rejections for `reason`.
    pub fn get(&self, reason: Reason) -> u64 {
        self.0[reason.index()]
    }

    /// Total rejections over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(reason, count)` for every reason with a non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ALL` lists every reason at its own index, so counts never land in another's slot.
    #[test]
    fn all_is_in_index_order() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
        let mut c = RejectCounts::default();
        c.add(Reason::InvalidHistogram, 2);
        c.add(Reason::NonFiniteValue, 1);
        assert_eq!(c.total(), 3);
        let got: Vec<_> = c.iter().collect();
        assert_eq!(
            got,
            vec![(Reason::NonFiniteValue, 1), (Reason::InvalidHistogram, 2)]
        );
    }
}
