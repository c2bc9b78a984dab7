//! Parameters of the `filter` processor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{check_patterns, push};
use crate::config::ConfigIssue;
use crate::pattern::Matcher;
use crate::schema::kind;

/// `type: filter`: keeps or drops datapoints by metric name, kind, attributes and resource.
///
/// A datapoint passes when it matches `keep` (if given) and does not match `drop` (if given).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Only datapoints matching this pass.
    #[serde(default)]
    pub keep: Option<MatchConfig>,
    /// Datapoints matching this are dropped.
    #[serde(default)]
    pub drop: Option<MatchConfig>,
}

/// A datapoint condition: every field given must match (AND); within `metric` and `kind` any
/// listed entry may match (OR); every listed attribute must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    /// Metric name patterns: exact, glob (`debug.*`) or `/regex/`; any may match.
    pub metric: Vec<String>,
    /// Metric kinds; any may match.
    pub kind: Vec<MetricKind>,
    /// Datapoint attributes: key → value pattern, or null for "the key exists"; all must match.
    pub attributes: BTreeMap<String, Option<String>>,
    /// Resource attributes, as `attributes`.
    pub resource: BTreeMap<String, Option<String>>,
}

/// A value of the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// `gauge`.
    Gauge,
    /// `sum`.
    Sum,
    /// `histogram`.
    Histogram,
    /// `exponential_histogram`.
    ExponentialHistogram,
    /// `summary`.
    Summary,
}

impl MetricKind {
    /// The `kind` column value.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => kind::GAUGE,
            MetricKind::Sum => kind::SUM,
            MetricKind::Histogram => kind::HISTOGRAM,
            MetricKind::ExponentialHistogram => kind::EXPONENTIAL_HISTOGRAM,
            MetricKind::Summary => kind::SUMMARY,
        }
    }
}

impl FilterConfig {
    /// The YAML `type:` name.
    pub const TYPE: &'static str = "filter";

    pub(super) fn validate(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        if self.keep.is_none() && self.drop.is_none() {
            push(issues, key, "a filter needs `keep`, `drop` or both");
        }
        for (name, m) in [("keep", &self.keep), ("drop", &self.drop)] {
            if let Some(m) = m {
                m.validate(&format!("{key}.{name}"), issues);
            }
        }
    }
}

impl MatchConfig {
    pub(super) fn validate(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        if self.metric.is_empty()
            && self.kind.is_empty()
            && self.attributes.is_empty()
            && self.resource.is_empty()
        {
            push(
                issues,
                key,
                "needs at least one of `metric`, `kind`, `attributes`, `resource`",
            );
        }
        check_patterns(&self.metric, &format!("{key}.metric"), issues);
        for (side, map) in [
            ("attributes", &self.attributes),
            ("resource", &self.resource),
        ] {
            for (k, v) in map {
                if k.is_empty() {
                    push(
                        issues,
                        format!("{key}.{side}"),
                        "attribute keys must not be empty",
                    );
                }
                if let Some(Err(reason)) = v.as_deref().map(Matcher::parse) {
                    push(issues, format!("{key}.{side}.{k}"), reason);
                }
            }
        }
    }
}
