//! Parameters of the `sample` processor.

use serde::{Deserialize, Serialize};

use super::{check_patterns, push};
use crate::config::ConfigIssue;

/// `type: sample`: consistent series sampling. A series is kept or dropped as a whole, by a hash
/// of its `series_id`, so the choice is the same in every batch and after restarts; kept rows
/// get `sample_rate` multiplied by `ratio`, so `sum(value / sample_rate)` estimates the total.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Fraction of series kept, in (0, 1].
    pub ratio: f64,
    /// Seed of the series hash; samplers with different seeds keep independent subsets.
    #[serde(default)]
    pub seed: u64,
    /// Only series of metrics matching one of these patterns are sampled; others pass as they
    /// are. Empty samples every metric.
    #[serde(default)]
    pub metric: Vec<String>,
}

impl SampleConfig {
    /// The YAML `type:` name.
    pub const TYPE: &'static str = "sample";

    pub(super) fn validate(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        if !(self.ratio > 0.0 && self.ratio <= 1.0) {
            push(
                issues,
                format!("{key}.ratio"),
                format!("{} is outside (0, 1]", self.ratio),
            );
        }
        check_patterns(&self.metric, &format!("{key}.metric"), issues);
    }
}
