//! The `pipeline:` section: named processors and table sinks joined by `inputs`.
//!
//! ```yaml
//! pipeline:
//!   processors:
//!     drop_debug: { type: filter, inputs: [otlp], drop: { metric: ["debug.*"] } }
//!     sampled: { type: sample, inputs: [drop_debug], ratio: 0.1 }
//!   sinks:
//!     metrics: { inputs: [drop_debug] }       # the sink key is the table name
//!     metrics_sampled: { inputs: [sampled] }
//! ```
//!
//! The receivers' output is the input named [`RECEIVER_INPUT`]. An empty pipeline means
//! `otlp → metrics`. Each processor's parameters are a typed struct chosen by `type`; they are
//! parsed here (so a bad one names its full key path) and checked by [`PipelineConfig::validate`]
//! with the graph itself (unknown inputs, cycles, duplicate ids, orphans).

mod aggregate;
mod anomaly;
mod attributes;
mod cardinality_limit;
mod filter;
mod graph_check;
mod sample;
mod temporality;
mod usage;

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

pub use aggregate::{AggregateConfig, GaugeFunction, Interval, LatePolicy, OutputTemporality};
pub use anomaly::AnomalyConfig;
pub use attributes::{AttributeAction, AttributesConfig, Rename};
pub use cardinality_limit::CardinalityLimitConfig;
pub use filter::{FilterConfig, MatchConfig, MetricKind};
pub use graph_check::valid_table_name;
pub use sample::{DownsampleConfig, DownsampleFunction, SampleConfig};
pub use temporality::{InitialValueMode, TargetTemporality, TemporalityConfig};
pub use usage::UsageConfig;

use crate::config::ConfigIssue;

/// The input name of the receivers' output.
pub const RECEIVER_INPUT: &str = "otlp";
/// The table an empty pipeline writes.
pub const DEFAULT_SINK: &str = "metrics";

/// The processor graph.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Processors by id; an id is what other processors and sinks list in `inputs`.
    pub processors: BTreeMap<String, ProcessorConfig>,
    /// Table sinks by table name.
    pub sinks: BTreeMap<String, SinkConfig>,
    /// Usage accounting (the `usage` table).
    pub usage: UsageConfig,
}

/// One table sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Processors (or `otlp`) whose output the table stores.
    #[serde(default)]
    pub inputs: Vec<String>,
}

/// One processor: its inputs and its typed parameters.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessorConfig {
    /// Processors (or `otlp`) it reads; several inputs are merged.
    pub inputs: Vec<String>,
    /// The `type:` and its parameters.
    #[serde(flatten)]
    pub params: ProcessorParams,
}

/// A processor's parameters, selected by the YAML `type:`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProcessorParams {
    /// `type: filter`.
    Filter(FilterConfig),
    /// `type: attributes`.
    Attributes(AttributesConfig),
    /// `type: sample`.
    Sample(SampleConfig),
    /// `type: temporality`.
    Temporality(TemporalityConfig),
    /// `type: cardinality_limit`.
    CardinalityLimit(CardinalityLimitConfig),
    /// `type: aggregate`.
    Aggregate(AggregateConfig),
    /// `type: anomaly`.
    Anomaly(AnomalyConfig),
    /// Parameters that did not parse; [`PipelineConfig::validate`] reports them.
    #[serde(skip_serializing)]
    Invalid(InvalidParams),
}

/// Why a processor's parameters did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidParams {
    /// The `type:` as written (empty when missing).
    pub type_name: String,
    /// Key path inside the processor, e.g. `actions[1].rename`.
    pub key: String,
    /// The parser's message.
    pub reason: String,
}

type ParseFn = fn(serde_yaml::Value) -> Result<ProcessorParams, (String, String)>;

/// Every processor type: YAML `type:` name → parameter parser.
const TYPES: &[(&str, ParseFn)] = &[
    (FilterConfig::TYPE, |v| {
        parse_as::<FilterConfig>(v).map(ProcessorParams::Filter)
    }),
    (AttributesConfig::TYPE, |v| {
        parse_as::<AttributesConfig>(v).map(ProcessorParams::Attributes)
    }),
    (SampleConfig::TYPE, |v| {
        parse_as::<SampleConfig>(v).map(ProcessorParams::Sample)
    }),
    (TemporalityConfig::TYPE, |v| {
        parse_as::<TemporalityConfig>(v).map(ProcessorParams::Temporality)
    }),
    (CardinalityLimitConfig::TYPE, |v| {
        parse_as::<CardinalityLimitConfig>(v).map(ProcessorParams::CardinalityLimit)
    }),
    (AggregateConfig::TYPE, |v| {
        parse_as::<AggregateConfig>(v).map(ProcessorParams::Aggregate)
    }),
    (AnomalyConfig::TYPE, |v| {
        parse_as::<AnomalyConfig>(v).map(ProcessorParams::Anomaly)
    }),
];

/// Names of every processor type, for messages.
pub fn processor_types() -> Vec<&'static str> {
    TYPES.iter().map(|(name, _)| *name).collect()
}

fn parse_as<T: serde::de::DeserializeOwned>(v: serde_yaml::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let key = e.path().to_string();
        (key, e.into_inner().to_string())
    })
}

impl ProcessorParams {
    /// The YAML `type:` name.
    pub fn type_name(&self) -> &str {
        match self {
            ProcessorParams::Filter(_) => FilterConfig::TYPE,
            ProcessorParams::Attributes(_) => AttributesConfig::TYPE,
            ProcessorParams::Sample(_) => SampleConfig::TYPE,
            ProcessorParams::Temporality(_) => TemporalityConfig::TYPE,
            ProcessorParams::CardinalityLimit(_) => CardinalityLimitConfig::TYPE,
            ProcessorParams::Aggregate(_) => AggregateConfig::TYPE,
            ProcessorParams::Anomaly(_) => AnomalyConfig::TYPE,
            ProcessorParams::Invalid(i) => &i.type_name,
        }
    }

    fn validate(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        match self {
            ProcessorParams::Filter(c) => c.validate(key, issues),
            ProcessorParams::Attributes(c) => c.validate(key, issues),
            ProcessorParams::Sample(c) => c.validate(key, issues),
            ProcessorParams::Temporality(c) => c.validate(key, issues),
            ProcessorParams::CardinalityLimit(c) => c.validate(key, issues),
            ProcessorParams::Aggregate(c) => c.validate(key, issues),
            ProcessorParams::Anomaly(c) => c.validate(key, issues),
            ProcessorParams::Invalid(i) => {
                let key = if i.key.is_empty() || i.key == "." {
                    key.to_string()
                } else if i.key.starts_with('[') {
                    format!("{key}{}", i.key)
                } else {
                    format!("{key}.{}", i.key)
                };
                issues.push(ConfigIssue {
                    key,
                    reason: i.reason.clone(),
                });
            }
        }
    }
}

impl<'de> Deserialize<'de> for ProcessorConfig {
    /// Takes `inputs` and `type` off the mapping, then parses the rest as that type's parameter
    /// struct on its own, so a parameter error keeps its key path (serde loses paths inside
    /// internally tagged enums) and waits in [`ProcessorParams::Invalid`] for validation, which
    /// reports every processor's problems at once.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = serde_yaml::Mapping::deserialize(d)?;
        let inputs = match map.remove("inputs") {
            None | Some(serde_yaml::Value::Null) => Vec::new(),
            Some(v) => serde_yaml::from_value::<Vec<String>>(v)
                .map_err(|e| D::Error::custom(format!("inputs: {e}")))?,
        };
        let invalid = |type_name: &str, key: &str, reason: String| {
            ProcessorParams::Invalid(InvalidParams {
                type_name: type_name.to_string(),
                key: key.to_string(),
                reason,
            })
        };
        let known = || processor_types().join(", ");
        let params = match map.remove("type") {
            None => invalid("", "type", format!("missing; one of: {}", known())),
            Some(serde_yaml::Value::String(t)) => match TYPES.iter().find(|(name, _)| *name == t) {
                Some((_, parse)) => parse(serde_yaml::Value::Mapping(map))
                    .unwrap_or_else(|(key, reason)| invalid(&t, &key, reason)),
                None => invalid(
                    &t,
                    "type",
                    format!("unknown processor type `{t}`; one of: {}", known()),
                ),
            },
            Some(_) => invalid("", "type", "must be a string".into()),
        };
        Ok(ProcessorConfig { inputs, params })
    }
}

impl PipelineConfig {
    /// Whether no processor and no sink is configured (the embedded default).
    pub fn is_empty(&self) -> bool {
        self.processors.is_empty() && self.sinks.is_empty()
    }

    /// Whether a processor keeps data in open windows (an `aggregate`, or a `sample` that
    /// downsamples): the WAL then holds its input for window + lateness.
    pub fn holds_windows(&self) -> bool {
        self.processors.values().any(|p| match &p.params {
            ProcessorParams::Aggregate(_) => true,
            ProcessorParams::Sample(s) => s.downsample.is_some(),
            _ => false,
        })
    }

    /// The sinks to run: the configured ones, or `metrics ← otlp` for an empty pipeline.
    pub fn effective_sinks(&self) -> BTreeMap<String, SinkConfig> {
        if self.is_empty() {
            BTreeMap::from([(
                DEFAULT_SINK.to_string(),
                SinkConfig {
                    inputs: vec![RECEIVER_INPUT.to_string()],
                },
            )])
        } else {
            self.sinks.clone()
        }
    }

    /// Every problem with the processors' parameters and with the graph, each with its key path
    /// (`pipeline.processors.<id>.…`, `pipeline.sinks.<table>.…`).
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        for (id, p) in &self.processors {
            p.params
                .validate(&format!("pipeline.processors.{id}"), &mut issues);
        }
        graph_check::check(self, &mut issues);
        self.usage.validate(&mut issues);
        issues
    }
}

/// Pushes an issue at `key`.
fn push(issues: &mut Vec<ConfigIssue>, key: impl Into<String>, reason: impl Into<String>) {
    issues.push(ConfigIssue {
        key: key.into(),
        reason: reason.into(),
    });
}

/// Checks a list of patterns, one issue per bad pattern at `key[i]`.
fn check_patterns(patterns: &[String], key: &str, issues: &mut Vec<ConfigIssue>) {
    for (i, p) in patterns.iter().enumerate() {
        if let Err(reason) = crate::pattern::Matcher::parse(p) {
            push(issues, format!("{key}[{i}]"), reason);
        }
    }
}

#[cfg(test)]
mod tests;
