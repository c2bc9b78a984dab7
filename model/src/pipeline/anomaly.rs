//! Parameters of the `anomaly` processor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{push, MatchConfig};
use crate::config::ConfigIssue;

/// `type: anomaly`: scores every selected series with the streaming detector, records the
/// anomalies in the `anomalies` table and passes its input through unchanged.
///
/// Sums are scored as rates (increase per second; cumulative sums through reset-aware deltas),
/// gauges by value, histograms by mean or by `histogram_quantile`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Which datapoints are scored (metric, kind, attributes, resource, as a filter's `keep`);
    /// every gauge, sum and histogram when absent.
    pub select: Option<MatchConfig>,
    /// Score histograms by this quantile (0 < q < 1) of each interval's buckets instead of
    /// their mean.
    pub histogram_quantile: Option<f64>,
    /// Series scored at once; further new series are not scored (counted) until others expire.
    pub max_series: usize,
    /// A series not seen for this long (wall clock) is forgotten.
    pub idle_expiry_secs: u64,
    /// Detector parameters (`phoenix_anomaly::DetectorConfig` names, e.g. `min_history: 64`).
    pub detector: BTreeMap<String, f64>,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            select: None,
            histogram_quantile: None,
            max_series: 10_000,
            idle_expiry_secs: 3_600,
            detector: BTreeMap::new(),
        }
    }
}

impl AnomalyConfig {
    /// The YAML `type:` name.
    pub const TYPE: &'static str = "anomaly";

    pub(super) fn validate(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        if let Some(m) = &self.select {
            m.validate(&format!("{key}.select"), issues);
        }
        if let Some(q) = self.histogram_quantile {
            if !(q > 0.0 && q < 1.0) {
                push(
                    issues,
                    format!("{key}.histogram_quantile"),
                    format!("{q} is not in (0, 1)"),
                );
            }
        }
        if self.max_series == 0 || self.max_series > 10_000_000 {
            push(
                issues,
                format!("{key}.max_series"),
                format!("{} is not in 1..=10000000", self.max_series),
            );
        }
        if self.idle_expiry_secs == 0 {
            push(issues, format!("{key}.idle_expiry_secs"), "must be > 0");
        }
        for (k, v) in &self.detector {
            if !v.is_finite() {
                push(
                    issues,
                    format!("{key}.detector.{k}"),
                    "must be a finite number",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::pipeline::ProcessorParams;

    /// The processor parses with its selector and detector overrides; a bad quantile and an
    /// unknown key are reported at their key paths.
    #[test]
    fn parses_and_validates() {
        let yaml = "pipeline:\n  processors:\n    a: { type: anomaly, inputs: [otlp], select: { metric: ['http.*'] }, histogram_quantile: 0.99, detector: { min_history: 32 } }\n  sinks:\n    metrics: { inputs: [a] }\n";
        let c: Config = serde_yaml::from_str(yaml).expect("parses");
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let ProcessorParams::Anomaly(a) = &c.pipeline.processors["a"].params else {
            panic!("not an anomaly processor");
        };
        assert_eq!(a.histogram_quantile, Some(0.99));
        assert_eq!(a.max_series, 10_000);

        let bad = yaml.replace("0.99", "1.5");
        let c: Config = serde_yaml::from_str(&bad).expect("parses");
        let keys: Vec<String> = c.validate().into_iter().map(|i| i.key).collect();
        assert_eq!(keys, vec!["pipeline.processors.a.histogram_quantile"]);

        let unknown = yaml
            .replace("max_history", "x")
            .replace("histogram_quantile", "quantile");
        let c: Config = serde_yaml::from_str(&unknown).expect("parses");
        let keys: Vec<String> = c.validate().into_iter().map(|i| i.key).collect();
        assert_eq!(keys, vec!["pipeline.processors.a.quantile"]);
    }
}
