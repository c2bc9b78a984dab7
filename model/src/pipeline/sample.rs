//! Parameters of the `sample` processor: series sampling and time downsampling.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::aggregate::{Interval, LatePolicy};
use super::{check_patterns, push};
use crate::config::ConfigIssue;

/// `type: sample`: consistent series sampling and/or time downsampling.
///
/// Series sampling (`ratio`): a series is kept or dropped as a whole, by a hash of its
/// `series_id`, so the choice is the same in every batch and after restarts; kept rows get
/// `sample_rate` multiplied by `ratio`, so `sum(value / sample_rate)` estimates the total.
/// Downsampling (`downsample`): one point per series per interval. With both, series are
/// sampled first and the kept ones downsampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Fraction of series kept, in (0, 1]; absent keeps every series.
    #[serde(default)]
    pub ratio: Option<f64>,
    /// Seed of the series hash; samplers with different seeds keep independent subsets.
    #[serde(default)]
    pub seed: u64,
    /// Only series of metrics matching one of these patterns are sampled (and downsampled);
    /// others pass as they are. Empty selects every metric.
    #[serde(default)]
    pub metric: Vec<String>,
    /// Time downsampling; absent keeps every point.
    #[serde(default)]
    pub downsample: Option<DownsampleConfig>,
}

/// `downsample:` of a `sample` processor: one point per series per epoch-aligned interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownsampleConfig {
    /// Interval length; intervals are aligned to the Unix epoch.
    pub interval: Interval,
    /// Which point a gauge keeps. Cumulative sums and histograms keep their first point under
    /// `first` and their last under any other function; delta ones are summed (merged).
    #[serde(default)]
    pub function: DownsampleFunction,
    /// How far behind the newest event time a point may be and still join its interval.
    #[serde(default = "default_lateness")]
    pub allowed_lateness: Interval,
    /// What happens to points whose interval has closed.
    #[serde(default)]
    pub late_policy: LatePolicy,
    /// Most series held; points of further series are dropped (`reason="max_series"`).
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// A series without points for this long (event time) is forgotten.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Interval,
    /// Once no newer point has arrived for this long (wall clock), event time is taken to
    /// advance with the wall clock, so the intervals of a quiet input close.
    #[serde(default = "default_idle_grace")]
    pub idle_grace: Interval,
}

/// The point a downsampled gauge keeps per interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownsampleFunction {
    /// The earliest point.
    First,
    /// The latest point.
    #[default]
    Last,
    /// The point with the smallest value.
    Min,
    /// The point with the largest value.
    Max,
    /// The mean of the values.
    Mean,
}

impl DownsampleFunction {
    /// The YAML name.
    pub fn as_str(self) -> &'static str {
        match self {
            DownsampleFunction::First => "first",
            DownsampleFunction::Last => "last",
            DownsampleFunction::Min => "min",
            DownsampleFunction::Max => "max",
            DownsampleFunction::Mean => "mean",
        }
    }
}

fn default_lateness() -> Interval {
    Interval(Duration::from_secs(10))
}

fn default_max_series() -> usize {
    100_000
}

fn default_idle_timeout() -> Interval {
    Interval(Duration::from_secs(600))
}

/// Default `idle_grace` of `sample.downsample` and `aggregate`.
pub(super) fn default_idle_grace() -> Interval {
    Interval(Duration::from_secs(5))
}

/// Longest interval, lateness and grace accepted (state is held for interval + lateness).
const MAX_SPAN: Duration = Duration::from_secs(86_400);

impl SampleConfig {
    /// The YAML `type:` name.
    pub const TYPE: &'static str = "sample";

    pub(super) fn validate(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        if let Some(ratio) = self.ratio {
            if !(ratio > 0.0 && ratio <= 1.0) {
                push(
                    issues,
                    format!("{key}.ratio"),
                    format!("{ratio} is outside (0, 1]"),
                );
            }
        }
        if self.ratio.is_none() && self.downsample.is_none() {
            push(
                issues,
                key.to_string(),
                "nothing to do: set `ratio`, `downsample` or both",
            );
        }
        if let Some(d) = &self.downsample {
            d.validate(&format!("{key}.downsample"), issues);
        }
        check_patterns(&self.metric, &format!("{key}.metric"), issues);
    }
}

impl DownsampleConfig {
    fn validate(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        if self.interval.0.is_zero() || self.interval.0 > MAX_SPAN {
            push(
                issues,
                format!("{key}.interval"),
                format!("{} is outside (0s, 1d]", self.interval),
            );
        }
        for (name, v) in [
            ("allowed_lateness", self.allowed_lateness),
            ("idle_grace", self.idle_grace),
        ] {
            if v.0 > MAX_SPAN {
                push(
                    issues,
                    format!("{key}.{name}"),
                    format!("{v} is more than a day"),
                );
            }
        }
        if self.idle_timeout.0 < self.interval.0 {
            push(
                issues,
                format!("{key}.idle_timeout"),
                format!("{} is shorter than the interval", self.idle_timeout),
            );
        }
        if self.max_series == 0 {
            push(issues, format!("{key}.max_series"), "must be at least 1");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(params: &str) -> Result<crate::Config, crate::ConfigError> {
        let text = format!(
            "pipeline:\n  processors:\n    s: {{ type: sample, inputs: [otlp], {params} }}\n  sinks:\n    metrics: {{ inputs: [s] }}\n"
        );
        crate::Config::from_yaml("t.yaml", &text, &[])
    }

    fn sample(c: &crate::Config) -> &SampleConfig {
        match &c.pipeline.processors["s"].params {
            crate::pipeline::ProcessorParams::Sample(s) => s,
            other => panic!("not sample: {other:?}"),
        }
    }

    /// The old series-only form still parses; `downsample` alone or beside `ratio` gets the
    /// documented defaults.
    #[test]
    fn parses_compatibly() {
        let c = parse("ratio: 0.1, seed: 7, metric: [\"noisy.*\"]").expect("valid");
        let s = sample(&c);
        assert_eq!(
            (s.ratio, s.seed, s.downsample.as_ref()),
            (Some(0.1), 7, None)
        );
        let c = parse("downsample: { interval: 1m }").expect("valid");
        let d = sample(&c).downsample.clone().expect("downsample");
        assert_eq!(sample(&c).ratio, None);
        assert_eq!(d.interval.0, Duration::from_secs(60));
        assert_eq!(d.function, DownsampleFunction::Last);
        assert_eq!(d.allowed_lateness.0, Duration::from_secs(10));
        assert_eq!(d.late_policy, LatePolicy::Drop);
        assert_eq!(d.max_series, 100_000);
        assert_eq!(d.idle_timeout.0, Duration::from_secs(600));
        assert_eq!(d.idle_grace.0, Duration::from_secs(5));
        let c = parse(
            "ratio: 0.5, downsample: { interval: 30s, function: max, allowed_lateness: 1m, \
             late_policy: pass_through, max_series: 5, idle_timeout: 1h, idle_grace: 2s }",
        )
        .expect("valid");
        let d = sample(&c).downsample.clone().expect("downsample");
        assert_eq!(d.function, DownsampleFunction::Max);
        assert_eq!(d.late_policy, LatePolicy::PassThrough);
        assert_eq!(d.idle_grace.0, Duration::from_secs(2));
    }

    /// Every bad value is reported at its key path with its reason.
    #[test]
    fn reports_bad_values() {
        for (params, key, reason) in [
            ("seed: 1", "pipeline.processors.s", "nothing to do"),
            ("ratio: 2", "pipeline.processors.s.ratio", "outside"),
            (
                "downsample: { interval: 0s }",
                "pipeline.processors.s.downsample.interval",
                "outside",
            ),
            (
                "downsample: { interval: 2d }",
                "pipeline.processors.s.downsample.interval",
                "outside",
            ),
            (
                "downsample: { interval: 1m, function: median }",
                "pipeline.processors.s.downsample.function",
                "median",
            ),
            (
                "downsample: { interval: 1m, allowed_lateness: 2d }",
                "pipeline.processors.s.downsample.allowed_lateness",
                "more than a day",
            ),
            (
                "downsample: { interval: 1m, idle_grace: 2d }",
                "pipeline.processors.s.downsample.idle_grace",
                "more than a day",
            ),
            (
                "downsample: { interval: 1m, idle_timeout: 30s }",
                "pipeline.processors.s.downsample.idle_timeout",
                "shorter",
            ),
            (
                "downsample: { interval: 1m, max_series: 0 }",
                "pipeline.processors.s.downsample.max_series",
                "at least 1",
            ),
            (
                "downsample: { interval: 1m, every: 2 }",
                "pipeline.processors.s.downsample",
                "every",
            ),
        ] {
            match parse(params) {
                Err(crate::ConfigError::Invalid { issues, .. }) => assert!(
                    issues
                        .iter()
                        .any(|i| i.key.starts_with(key) && i.reason.contains(reason)),
                    "{params}: {issues:?}"
                ),
                other => panic!("{params}: expected issues, got {other:?}"),
            }
        }
    }
}
