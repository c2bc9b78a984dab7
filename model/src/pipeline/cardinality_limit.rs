//! Parameters of the `cardinality_limit` processor.

use serde::{Deserialize, Serialize};

use super::temporality::InitialValueMode;
use super::{check_patterns, push};
use crate::config::ConfigIssue;

/// `type: cardinality_limit`: admits the first `max_series` series of each metric; points of
/// further series are folded into one overflow series per metric and resource, whose
/// attributes are exactly `{otel.metric.overflow: "true"}`, without losing or double-counting
/// any sum.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardinalityLimitConfig {
    /// Series admitted per metric name.
    pub max_series: u64,
    /// Only metrics matching one of these patterns are limited; empty limits all.
    #[serde(default)]
    pub metric: Vec<String>,
    /// An admitted (or overflowed) series not seen for this long is forgotten, freeing its
    /// slot.
    #[serde(default = "default_expire_after_secs")]
    pub expire_after_secs: u64,
    /// First point of an overflowed cumulative series (it is turned into deltas).
    #[serde(default)]
    pub initial_value: InitialValueMode,
}

/// Default of [`CardinalityLimitConfig::expire_after_secs`].
pub const DEFAULT_EXPIRE_AFTER_SECS: u64 = 600;

fn default_expire_after_secs() -> u64 {
    DEFAULT_EXPIRE_AFTER_SECS
}

impl CardinalityLimitConfig {
    /// The YAML `type:` name.
    pub const TYPE: &'static str = "cardinality_limit";

    pub(super) fn validate(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        if self.max_series == 0 {
            push(issues, format!("{key}.max_series"), "must be at least 1");
        }
        if self.expire_after_secs == 0 {
            push(
                issues,
                format!("{key}.expire_after_secs"),
                "must be at least 1",
            );
        }
        check_patterns(&self.metric, &format!("{key}.metric"), issues);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use crate::pipeline::ProcessorParams;

    fn parse(params: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "pipeline:\n  processors:\n    c: {{ type: cardinality_limit, inputs: [otlp], {params} }}\n  sinks:\n    metrics: {{ inputs: [c] }}\n"
        );
        Config::from_yaml("t.yaml", &text, &[])
    }

    /// Parameters parse typed, with `expire_after_secs` defaulting to 600.
    #[test]
    fn parses_with_defaults() {
        let c = parse("max_series: 100, metric: ['http.*']").expect("valid");
        let ProcessorParams::CardinalityLimit(l) = &c.pipeline.processors["c"].params else {
            panic!("not cardinality_limit");
        };
        assert_eq!((l.max_series, l.expire_after_secs), (100, 600));
        assert_eq!(l.metric, ["http.*"]);
    }

    /// A zero cap, a zero expiry and a missing cap are reported at their key paths.
    #[test]
    fn reports_bad_values() {
        for (params, key) in [
            ("max_series: 0", "pipeline.processors.c.max_series"),
            (
                "max_series: 5, expire_after_secs: 0",
                "pipeline.processors.c.expire_after_secs",
            ),
            ("metric: [a]", "pipeline.processors.c"),
        ] {
            match parse(params) {
                Err(ConfigError::Invalid { issues, .. }) => {
                    assert!(issues.iter().any(|i| i.key == key), "{params}: {issues:?}")
                }
                other => panic!("{params}: {other:?}"),
            }
        }
    }
}
