//! Parameters of the `aggregate` processor, and the [`Interval`] type of its durations.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{push, InitialValueMode};
use crate::config::ConfigIssue;

/// `type: aggregate`: tumbling event-time windows per series (temporal) or per group of series
/// (spatial, with `group_by`). Gauges become one row per function, sums and histograms are
/// merged per the OTel data model (cumulative inputs converted to deltas first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// Window length; windows are aligned to the Unix epoch.
    pub window: Interval,
    /// How far behind the newest event time a point may be and still join its window.
    #[serde(default = "default_lateness")]
    pub allowed_lateness: Interval,
    /// What happens to points whose window has closed.
    #[serde(default)]
    pub late_policy: LatePolicy,
    /// Spatial aggregation: the datapoint attributes kept (all others are dropped and their
    /// series merged). Absent: temporal aggregation, per series.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// Spatial aggregation only: the resource attributes kept.
    #[serde(default = "default_group_by_resource")]
    pub group_by_resource: Vec<String>,
    /// Functions computed over gauges, one output row each.
    #[serde(default = "default_functions")]
    pub functions: Vec<GaugeFunction>,
    /// Quantiles (in [0, 1]) of gauges, through a DDSketch; one output row each.
    #[serde(default)]
    pub quantiles: Vec<f64>,
    /// Relative error of the quantiles' sketch.
    #[serde(default = "default_relative_error")]
    pub relative_error: f64,
    /// Temporality of output sums and histograms.
    #[serde(default)]
    pub output_temporality: OutputTemporality,
    /// What the first point of a cumulative series contributes.
    #[serde(default)]
    pub initial_value: InitialValueMode,
    /// Most output series held; points of further series are dropped (`reason="max_series"`).
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// A series without points for this long (event time) is forgotten.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Interval,
    /// Once no newer point has arrived for this long (wall clock), event time is taken to
    /// advance with the wall clock, so the windows of a quiet input close.
    #[serde(default = "super::sample::default_idle_grace")]
    pub idle_grace: Interval,
}

/// What happens to a point whose window has already closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatePolicy {
    /// Drop it (counted with `reason="late"`).
    #[default]
    Drop,
    /// Emit it as it came, not aggregated.
    PassThrough,
}

/// A function computed over a window's gauge values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GaugeFunction {
    /// Sum of the values.
    Sum,
    /// Number of values.
    Count,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// `sum / count`.
    Mean,
    /// The value with the latest time.
    Last,
}

impl GaugeFunction {
    /// Every function, in the default order.
    pub const ALL: [GaugeFunction; 6] = [
        GaugeFunction::Count,
        GaugeFunction::Sum,
        GaugeFunction::Min,
        GaugeFunction::Max,
        GaugeFunction::Mean,
        GaugeFunction::Last,
    ];

    /// The YAML name, also the suffix of the output metric name.
    pub fn as_str(self) -> &'static str {
        match self {
            GaugeFunction::Sum => "sum",
            GaugeFunction::Count => "count",
            GaugeFunction::Min => "min",
            GaugeFunction::Max => "max",
            GaugeFunction::Mean => "mean",
            GaugeFunction::Last => "last",
        }
    }
}

/// Temporality of output sums and histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputTemporality {
    /// Each row holds its window's increase.
    #[default]
    Delta,
    /// Each row holds the running total of its output series.
    Cumulative,
}

fn default_lateness() -> Interval {
    Interval(Duration::from_secs(10))
}

fn default_group_by_resource() -> Vec<String> {
    vec!["service.name".into()]
}

fn default_functions() -> Vec<GaugeFunction> {
    GaugeFunction::ALL.to_vec()
}

fn default_relative_error() -> f64 {
    0.01
}

fn default_max_series() -> usize {
    100_000
}

fn default_idle_timeout() -> Interval {
    Interval(Duration::from_secs(600))
}

/// Longest window and lateness accepted (state is held for window + lateness).
const MAX_SPAN: Duration = Duration::from_secs(86_400);

impl AggregateConfig {
    /// The YAML `type:` name.
    pub const TYPE: &'static str = "aggregate";

    pub(super) fn validate(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        if self.window.0.is_zero() || self.window.0 > MAX_SPAN {
            push(
                issues,
                format!("{key}.window"),
                format!("{} is outside (0s, 1d]", self.window),
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
        if self.idle_timeout.0 < self.window.0 {
            push(
                issues,
                format!("{key}.idle_timeout"),
                format!("{} is shorter than the window", self.idle_timeout),
            );
        }
        if let Some(keys) = &self.group_by {
            check_keys(keys, &format!("{key}.group_by"), issues);
        }
        check_keys(
            &self.group_by_resource,
            &format!("{key}.group_by_resource"),
            issues,
        );
        if self.functions.is_empty() && self.quantiles.is_empty() {
            push(
                issues,
                format!("{key}.functions"),
                "gauges need at least one function or quantile",
            );
        }
        for (i, f) in self.functions.iter().enumerate() {
            if self.functions[..i].contains(f) {
                push(
                    issues,
                    format!("{key}.functions[{i}]"),
                    format!("`{}` is listed twice", f.as_str()),
                );
            }
        }
        for (i, q) in self.quantiles.iter().enumerate() {
            if !(0.0..=1.0).contains(q) {
                push(
                    issues,
                    format!("{key}.quantiles[{i}]"),
                    format!("{q} is outside [0, 1]"),
                );
            } else if self.quantiles[..i].contains(q) {
                push(
                    issues,
                    format!("{key}.quantiles[{i}]"),
                    format!("{q} is listed twice"),
                );
            }
        }
        if !(self.relative_error > 0.0 && self.relative_error < 0.5) {
            push(
                issues,
                format!("{key}.relative_error"),
                format!("{} is outside (0, 0.5)", self.relative_error),
            );
        }
        if self.max_series == 0 {
            push(issues, format!("{key}.max_series"), "must be at least 1");
        }
    }
}

/// One issue per empty or repeated key of a key list.
fn check_keys(keys: &[String], key: &str, issues: &mut Vec<ConfigIssue>) {
    for (i, k) in keys.iter().enumerate() {
        if k.is_empty() {
            push(issues, format!("{key}[{i}]"), "must not be empty");
        } else if keys[..i].contains(k) {
            push(
                issues,
                format!("{key}[{i}]"),
                format!("`{k}` is listed twice"),
            );
        }
    }
}

/// A duration written as an integer and a unit (`500ms`, `60s`, `5m`, `1h`, `1d`), or a bare
/// integer of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval(pub Duration);

impl Interval {
    /// Nanoseconds, saturating at `i64::MAX`.
    pub fn as_nanos_i64(self) -> i64 {
        i64::try_from(self.0.as_nanos()).unwrap_or(i64::MAX)
    }

    /// Parses `<integer><unit>` with unit `ms`, `s`, `m`, `h` or `d`.
    ///
    /// # Errors
    /// A message naming the accepted forms.
    pub fn parse(text: &str) -> Result<Interval, String> {
        let bad = || format!("invalid duration `{text}`: expected e.g. 500ms, 60s, 5m, 1h, 1d");
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let ms_per_unit: u64 = match unit.trim() {
            "ms" => 1,
            "s" | "" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        n.checked_mul(ms_per_unit)
            .map(|ms| Interval(Duration::from_millis(ms)))
            .ok_or_else(bad)
    }
}

impl fmt::Display for Interval {
    /// The largest whole unit: `90s`, `5m`, `250ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms >= size && ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Interval;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 60s, 500ms, 5m, 1h, or an integer of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Interval, E> {
                Ok(Interval(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Interval, E> {
                u64::try_from(v)
                    .map(|v| Interval(Duration::from_secs(v)))
                    .map_err(|_| E::custom(format!("{v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Interval, E> {
                Interval::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations parse in every unit, print in the largest whole unit, and reject junk.
    #[test]
    fn intervals() {
        let s = |t: &str| Interval::parse(t).map(|i| i.0);
        assert_eq!(s("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(s("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(s("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(s("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(s("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(s("15"), Ok(Duration::from_secs(15)));
        assert!(s("1.5s").is_err());
        assert!(s("s").is_err());
        assert!(s("10 parsecs").is_err());
        assert!(s("-1s").is_err());
        assert_eq!(Interval(Duration::from_secs(90)).to_string(), "90s");
        assert_eq!(Interval(Duration::from_secs(300)).to_string(), "5m");
        assert_eq!(Interval(Duration::from_millis(250)).to_string(), "250ms");
        let i: Interval = serde_yaml::from_str("60").expect("integer seconds");
        assert_eq!(i.0, Duration::from_secs(60));
        let i: Interval = serde_yaml::from_str("1m").expect("string");
        assert_eq!(i.0, Duration::from_secs(60));
    }

    fn parse(params: &str) -> Result<crate::Config, crate::ConfigError> {
        let text = format!(
            "pipeline:\n  processors:\n    a: {{ type: aggregate, inputs: [otlp], {params} }}\n  sinks:\n    rollup: {{ inputs: [a] }}\n"
        );
        crate::Config::from_yaml("t.yaml", &text, &[])
    }

    fn aggregate(c: &crate::Config) -> &AggregateConfig {
        match &c.pipeline.processors["a"].params {
            crate::pipeline::ProcessorParams::Aggregate(a) => a,
            other => panic!("not aggregate: {other:?}"),
        }
    }

    /// A minimal config gets the documented defaults; a full one parses typed.
    #[test]
    fn parses_with_defaults() {
        let c = parse("window: 60s").expect("valid");
        let a = aggregate(&c);
        assert_eq!(a.window.0, Duration::from_secs(60));
        assert_eq!(a.allowed_lateness.0, Duration::from_secs(10));
        assert_eq!(a.late_policy, LatePolicy::Drop);
        assert_eq!(a.group_by, None);
        assert_eq!(a.group_by_resource, ["service.name"]);
        assert_eq!(a.functions, GaugeFunction::ALL);
        assert!(a.quantiles.is_empty());
        assert_eq!(a.relative_error, 0.01);
        assert_eq!(a.output_temporality, OutputTemporality::Delta);
        assert_eq!(a.initial_value, InitialValueMode::Auto);
        assert_eq!(a.max_series, 100_000);
        assert_eq!(a.idle_timeout.0, Duration::from_secs(600));
        assert_eq!(a.idle_grace.0, Duration::from_secs(5));
        let c = parse(
            "window: 5m, allowed_lateness: 30s, late_policy: pass_through, group_by: [http.route], \
             group_by_resource: [], functions: [mean, max], quantiles: [0.5, 0.99], \
             relative_error: 0.02, output_temporality: cumulative, initial_value: keep, \
             max_series: 10, idle_timeout: 1h",
        )
        .expect("valid");
        let a = aggregate(&c);
        assert_eq!(a.late_policy, LatePolicy::PassThrough);
        assert_eq!(a.group_by.as_deref(), Some(&["http.route".to_string()][..]));
        assert!(a.group_by_resource.is_empty());
        assert_eq!(a.functions, [GaugeFunction::Mean, GaugeFunction::Max]);
        assert_eq!(a.quantiles, [0.5, 0.99]);
        assert_eq!(a.output_temporality, OutputTemporality::Cumulative);
        assert_eq!(a.initial_value, InitialValueMode::Keep);
        assert_eq!(a.idle_timeout.0, Duration::from_secs(3600));
    }

    /// Every bad value is reported at its key path.
    #[test]
    fn reports_bad_values() {
        for (params, key) in [
            ("allowed_lateness: 1s", "pipeline.processors.a"),
            ("window: 0s", "pipeline.processors.a.window"),
            ("window: 2d", "pipeline.processors.a.window"),
            ("window: 1x", "pipeline.processors.a.window"),
            (
                "window: 1m, allowed_lateness: 3d",
                "pipeline.processors.a.allowed_lateness",
            ),
            (
                "window: 1m, idle_grace: 2d",
                "pipeline.processors.a.idle_grace",
            ),
            (
                "window: 1m, idle_timeout: 30s",
                "pipeline.processors.a.idle_timeout",
            ),
            (
                "window: 1m, late_policy: keep",
                "pipeline.processors.a.late_policy",
            ),
            (
                "window: 1m, functions: [median]",
                "pipeline.processors.a.functions[0]",
            ),
            (
                "window: 1m, functions: [max, max]",
                "pipeline.processors.a.functions[1]",
            ),
            (
                "window: 1m, functions: []",
                "pipeline.processors.a.functions",
            ),
            (
                "window: 1m, quantiles: [1.5]",
                "pipeline.processors.a.quantiles[0]",
            ),
            (
                "window: 1m, quantiles: [0.5, 0.5]",
                "pipeline.processors.a.quantiles[1]",
            ),
            (
                "window: 1m, relative_error: 0",
                "pipeline.processors.a.relative_error",
            ),
            (
                "window: 1m, max_series: 0",
                "pipeline.processors.a.max_series",
            ),
            (
                "window: 1m, group_by: ['']",
                "pipeline.processors.a.group_by[0]",
            ),
            (
                "window: 1m, group_by_resource: [a, a]",
                "pipeline.processors.a.group_by_resource[1]",
            ),
            ("window: 1m, size: 3", "pipeline.processors.a"),
        ] {
            match parse(params) {
                Err(crate::ConfigError::Invalid { issues, .. }) => assert!(
                    issues.iter().any(|i| i.key.starts_with(key)),
                    "{params}: {issues:?}"
                ),
                other => panic!("{params}: expected issues, got {other:?}"),
            }
        }
    }
}
