//! Parameters of the `temporality` processor.

use serde::{Deserialize, Serialize};

use super::{check_patterns, push};
use crate::config::ConfigIssue;

/// `type: temporality`: converts sums and explicit histograms between cumulative and delta
/// temporality, per stream (`series_id`), as the OTel data model describes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemporalityConfig {
    /// The temporality points leave with.
    pub to: TargetTemporality,
    /// Only metrics matching one of these patterns are converted; empty converts all.
    #[serde(default)]
    pub metric: Vec<String>,
    /// What cumulative → delta does with the first point of a stream.
    #[serde(default)]
    pub initial_value: InitialValueMode,
    /// A stream not seen for this long is forgotten (its next point starts over).
    #[serde(default = "default_stale_after_secs")]
    pub stale_after_secs: u64,
}

/// Target of a [`TemporalityConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetTemporality {
    /// Cumulative → delta.
    Delta,
    /// Delta → cumulative (running totals).
    Cumulative,
}

/// The first point of a cumulative stream, as the OTel collector's `initial_value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialValueMode {
    /// Emitted iff its start time is set, not before the processor started, and not its time.
    #[default]
    Auto,
    /// Always emitted whole.
    Keep,
    /// Never emitted; only the baseline for the next point.
    Drop,
}

/// Default of [`TemporalityConfig::stale_after_secs`].
pub const DEFAULT_STALE_AFTER_SECS: u64 = 300;

fn default_stale_after_secs() -> u64 {
    DEFAULT_STALE_AFTER_SECS
}

impl TemporalityConfig {
    /// The YAML `type:` name.
    pub const TYPE: &'static str = "temporality";

    pub(super) fn validate(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        if self.stale_after_secs == 0 {
            push(
                issues,
                format!("{key}.stale_after_secs"),
                "must be at least 1",
            );
        }
        check_patterns(&self.metric, &format!("{key}.metric"), issues);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use crate::pipeline::{InitialValueMode, ProcessorParams, TargetTemporality};

    fn parse(params: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "pipeline:\n  processors:\n    t: {{ type: temporality, inputs: [otlp], {params} }}\n  sinks:\n    metrics: {{ inputs: [t] }}\n"
        );
        Config::from_yaml("t.yaml", &text, &[])
    }

    /// Full parameters parse typed; defaults are auto and 300 s.
    #[test]
    fn parses_with_defaults() {
        let c = parse("to: delta, metric: ['http.*'], initial_value: drop, stale_after_secs: 60")
            .expect("valid");
        let ProcessorParams::Temporality(t) = &c.pipeline.processors["t"].params else {
            panic!("not temporality");
        };
        assert_eq!(t.to, TargetTemporality::Delta);
        assert_eq!(t.initial_value, InitialValueMode::Drop);
        assert_eq!((t.metric.len(), t.stale_after_secs), (1, 60));
        let c = parse("to: cumulative").expect("valid");
        let ProcessorParams::Temporality(t) = &c.pipeline.processors["t"].params else {
            panic!("not temporality");
        };
        assert_eq!(t.initial_value, InitialValueMode::Auto);
        assert_eq!(t.stale_after_secs, 300);
    }

    /// Bad values are reported at their key path.
    #[test]
    fn reports_bad_values() {
        for (params, key) in [
            ("to: sideways", "pipeline.processors.t.to"),
            (
                "to: delta, stale_after_secs: 0",
                "pipeline.processors.t.stale_after_secs",
            ),
            (
                "to: delta, metric: ['/(/']",
                "pipeline.processors.t.metric[0]",
            ),
            (
                "to: delta, initial_value: maybe",
                "pipeline.processors.t.initial_value",
            ),
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
