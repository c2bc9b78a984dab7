//! `pipeline.usage`: the per-minute accounting written to the `usage` table.

use serde::{Deserialize, Serialize};

use super::push;
use crate::config::ConfigIssue;

/// How the graph's usage accounting is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    /// Write the `usage` table.
    pub enabled: bool,
    /// A minute's row is written this long after the minute ends (event time vs. wall
    /// clock), so windows downstream have emitted what they hold for it.
    pub grace_secs: u64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            enabled: true,
            grace_secs: 120,
        }
    }
}

impl UsageConfig {
    pub(super) fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        if self.grace_secs > 86_400 {
            push(
                issues,
                "pipeline.usage.grace_secs",
                format!("{} is more than a day", self.grace_secs),
            );
        }
    }
}
