//! Parameters of the `attributes` processor.

use serde::{Deserialize, Serialize};

use super::push;
use crate::config::ConfigIssue;

/// `type: attributes`: edits datapoint attributes (and the resource), then recomputes
/// `series_id` (and `service` when the resource changed).
///
/// Actions apply in order, each to the keys the previous ones left. `resource_actions` apply
/// to the incoming resource; keys moved by `move_to_resource` are added after them and replace
/// a resource key of the same name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributesConfig {
    /// Edits of the datapoint attributes, in order.
    #[serde(default)]
    pub actions: Vec<AttributeAction>,
    /// Edits of the resource attributes, in order (`move_to_resource` is not allowed here).
    #[serde(default)]
    pub resource_actions: Vec<AttributeAction>,
}

/// One edit of an attribute map, written as a one-key mapping (`{ drop: [user.id] }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "ActionRepr")]
pub enum AttributeAction {
    /// Removes these keys.
    Drop(Vec<String>),
    /// Removes every key not listed.
    KeepOnly(Vec<String>),
    /// Renames a key; the renamed value replaces an existing key of the new name.
    Rename(Rename),
    /// Replaces these keys' values by the hex of their XXH3-64 hash (16 lowercase digits).
    Hash(Vec<String>),
    /// Moves these keys from the datapoint attributes to the resource.
    MoveToResource(Vec<String>),
}

/// Parameters of a rename.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// The key to rename.
    pub from: String,
    /// Its new name.
    pub to: String,
}

/// The YAML shape of an action: a mapping with exactly one of these keys. (serde's enum
/// encoding would need YAML tags when parsing from a `serde_yaml::Value`.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRepr {
    drop: Option<Vec<String>>,
    keep_only: Option<Vec<String>>,
    rename: Option<Rename>,
    hash: Option<Vec<String>>,
    move_to_resource: Option<Vec<String>>,
}

impl TryFrom<ActionRepr> for AttributeAction {
    type Error = String;

    fn try_from(r: ActionRepr) -> Result<Self, String> {
        let mut found: Vec<AttributeAction> = [
            r.drop.map(AttributeAction::Drop),
            r.keep_only.map(AttributeAction::KeepOnly),
            r.rename.map(AttributeAction::Rename),
            r.hash.map(AttributeAction::Hash),
            r.move_to_resource.map(AttributeAction::MoveToResource),
        ]
        .into_iter()
        .flatten()
        .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(
                "an action is one of `drop`, `keep_only`, `rename`, `hash`, `move_to_resource`"
                    .into(),
            ),
            _ => Err("one action per list entry; write each as its own `- action: …`".into()),
        }
    }
}

impl AttributeAction {
    /// The action's YAML name.
    pub fn name(&self) -> &'static str {
        match self {
            AttributeAction::Drop(_) => "drop",
            AttributeAction::KeepOnly(_) => "keep_only",
            AttributeAction::Rename(_) => "rename",
            AttributeAction::Hash(_) => "hash",
            AttributeAction::MoveToResource(_) => "move_to_resource",
        }
    }
}

impl AttributesConfig {
    /// The YAML `type:` name.
    pub const TYPE: &'static str = "attributes";

    pub(super) fn validate(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        if self.actions.is_empty() && self.resource_actions.is_empty() {
            push(
                issues,
                key,
                "needs at least one entry in `actions` or `resource_actions`",
            );
        }
        for (list, actions) in [
            ("actions", &self.actions),
            ("resource_actions", &self.resource_actions),
        ] {
            for (i, action) in actions.iter().enumerate() {
                let at = format!("{key}.{list}[{i}].{}", action.name());
                match action {
                    AttributeAction::Drop(keys)
                    | AttributeAction::KeepOnly(keys)
                    | AttributeAction::Hash(keys)
                    | AttributeAction::MoveToResource(keys) => {
                        if keys.is_empty() {
                            push(issues, at.clone(), "must list at least one key");
                        }
                        for (j, k) in keys.iter().enumerate() {
                            if k.is_empty() {
                                push(
                                    issues,
                                    format!("{at}[{j}]"),
                                    "attribute key must not be empty",
                                );
                            }
                        }
                    }
                    AttributeAction::Rename(r) => {
                        for (field, v) in [("from", &r.from), ("to", &r.to)] {
                            if v.is_empty() {
                                push(
                                    issues,
                                    format!("{at}.{field}"),
                                    "attribute key must not be empty",
                                );
                            }
                        }
                        if !r.from.is_empty() && r.from == r.to {
                            push(issues, format!("{at}.to"), "renames a key to itself");
                        }
                    }
                }
                if list == "resource_actions"
                    && matches!(action, AttributeAction::MoveToResource(_))
                {
                    push(
                        issues,
                        at,
                        "only datapoint attributes can move to the resource",
                    );
                }
            }
        }
    }
}
