//! Structural checks of the pipeline graph: ids, inputs, cycles, orphans.

use std::collections::{BTreeMap, BTreeSet};

use super::{push, PipelineConfig, RECEIVER_INPUT};
use crate::config::ConfigIssue;

/// Longest id: ids become metric labels and table names.
const MAX_ID_LEN: usize = 64;

/// Whether `name` can name a table (and so a sink): `[a-z_][a-z0-9_]*`, at most 64 bytes.
pub fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= MAX_ID_LEN
}

/// Whether `id` can name a processor: letters, digits, `_`, `-`, `.`, at most 64 bytes.
fn valid_processor_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub(super) fn check(p: &PipelineConfig, issues: &mut Vec<ConfigIssue>) {
    for id in p.processors.keys() {
        let key = format!("pipeline.processors.{id}");
        if id == RECEIVER_INPUT {
            push(
                issues,
                key,
                format!("duplicate id: `{RECEIVER_INPUT}` is the receivers' output"),
            );
        } else if !valid_processor_id(id) {
            push(
                issues,
                key,
                "a processor id is 1 to 64 of a-z, A-Z, 0-9, `_`, `-`, `.`",
            );
        }
        if p.sinks.contains_key(id) {
            push(
                issues,
                format!("pipeline.processors.{id}"),
                format!("duplicate id: a sink is named `{id}` too"),
            );
        }
    }
    for name in p.sinks.keys() {
        if !valid_table_name(name) {
            push(
                issues,
                format!("pipeline.sinks.{name}"),
                "a sink is named after its table: [a-z_][a-z0-9_]*, at most 64 bytes",
            );
        } else if name == RECEIVER_INPUT {
            push(
                issues,
                format!("pipeline.sinks.{name}"),
                format!("duplicate id: `{RECEIVER_INPUT}` is the receivers' output"),
            );
        }
    }

    let lists = p
        .processors
        .iter()
        .map(|(id, c)| (format!("pipeline.processors.{id}.inputs"), &c.inputs))
        .chain(
            p.sinks
                .iter()
                .map(|(name, c)| (format!("pipeline.sinks.{name}.inputs"), &c.inputs)),
        );
    for (key, inputs) in lists {
        if inputs.is_empty() {
            push(issues, key.clone(), "must list at least one input");
        }
        let mut seen = BTreeSet::new();
        for (i, input) in inputs.iter().enumerate() {
            let at = format!("{key}[{i}]");
            if !seen.insert(input.as_str()) {
                push(issues, at, format!("`{input}` is listed twice"));
            } else if input != RECEIVER_INPUT && !p.processors.contains_key(input) {
                let reason = if p.sinks.contains_key(input) {
                    format!(
                        "`{input}` is a sink; only processors and `{RECEIVER_INPUT}` can be inputs"
                    )
                } else {
                    format!(
                        "unknown input `{input}`; inputs are `{RECEIVER_INPUT}` or a processor id"
                    )
                };
                push(issues, at, reason);
            }
        }
    }

    check_cycles(p, issues);
    check_orphans(p, issues);
}

/// Reports each cycle once, at the inputs of its smallest id.
fn check_cycles(p: &PipelineConfig, issues: &mut Vec<ConfigIssue>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = p
        .processors
        .keys()
        .map(|k| (k.as_str(), Mark::New))
        .collect();
    let mut reported: BTreeSet<Vec<&str>> = BTreeSet::new();
    for start in p.processors.keys() {
        if marks.get(start.as_str()) != Some(&Mark::New) {
            continue;
        }
        // Iterative DFS over "reads from" edges; `path` is the active chain.
        let mut path: Vec<&str> = vec![start];
        let mut next: Vec<usize> = vec![0];
        marks.insert(start, Mark::Active);
        while let Some(&node) = path.last() {
            let depth = path.len() - 1;
            let inputs = p.processors.get(node).map_or(&[][..], |c| &c.inputs[..]);
            let Some(input) = inputs.get(next[depth]) else {
                marks.insert(node, Mark::Done);
                path.pop();
                next.pop();
                continue;
            };
            next[depth] += 1;
            match marks.get(input.as_str()).copied() {
                Some(Mark::New) => {
                    marks.insert(input, Mark::Active);
                    path.push(input);
                    next.push(0);
                }
                Some(Mark::Active) => {
                    let from = path.iter().position(|n| *n == input).unwrap_or(0);
                    let mut cycle: Vec<&str> = path[from..].to_vec();
                    // Canonical rotation (smallest id first) so a cycle is reported once.
                    let min = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, id)| **id)
                        .map_or(0, |(i, _)| i);
                    cycle.rotate_left(min);
                    if reported.insert(cycle.clone()) {
                        // Edges point from a node to its input: show the data flow direction.
                        let mut flow: Vec<&str> = cycle.iter().rev().copied().collect();
                        flow.rotate_right(1);
                        flow.push(flow[0]);
                        push(
                            issues,
                            format!("pipeline.processors.{}.inputs", cycle[0]),
                            format!("cycle: {}", flow.join(" → ")),
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

/// Reports processors whose output reaches no sink.
fn check_orphans(p: &PipelineConfig, issues: &mut Vec<ConfigIssue>) {
    let mut reaches: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = p
        .sinks
        .values()
        .flat_map(|s| s.inputs.iter().map(String::as_str))
        .collect();
    while let Some(id) = stack.pop() {
        if !reaches.insert(id) {
            continue;
        }
        if let Some(c) = p.processors.get(id) {
            stack.extend(c.inputs.iter().map(String::as_str));
        }
    }
    for id in p.processors.keys() {
        if !reaches.contains(id.as_str()) {
            push(
                issues,
                format!("pipeline.processors.{id}"),
                "orphan: its output reaches no sink",
            );
        }
    }
}
