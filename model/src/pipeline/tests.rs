use super::*;
use crate::config::{Config, ConfigError};

/// Parses a config whose `pipeline:` is `yaml` (indented under it) and returns its issues.
fn issues(yaml: &str) -> Vec<(String, String)> {
    let text = format!("pipeline:\n{yaml}");
    match Config::from_yaml("t.yaml", &text, &[]) {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid { issues, .. }) => {
            issues.into_iter().map(|i| (i.key, i.reason)).collect()
        }
        Err(other) => vec![("<parse>".into(), other.to_string())],
    }
}

fn keys(found: &[(String, String)]) -> Vec<&str> {
    found.iter().map(|(k, _)| k.as_str()).collect()
}

const GOOD: &str = r#"
  processors:
    drop_debug: { type: filter, inputs: [otlp], drop: { metric: ["debug.*"] } }
    trim:
      type: attributes
      inputs: [drop_debug]
      actions: [{ drop: [user.id] }, { rename: { from: host, to: host.name } }]
    sampled: { type: sample, inputs: [trim], ratio: 0.1 }
  sinks:
    metrics: { inputs: [trim] }
    metrics_sampled: { inputs: [sampled] }
"#;

/// The brief's example parses into typed parameters and validates.
#[test]
fn example_parses_typed() {
    let c = Config::from_yaml("t", &format!("pipeline:{GOOD}"), &[]).expect("valid");
    let p = &c.pipeline;
    assert_eq!(p.processors.len(), 3);
    match &p.processors["trim"].params {
        ProcessorParams::Attributes(a) => {
            assert_eq!(a.actions[0], AttributeAction::Drop(vec!["user.id".into()]));
            assert_eq!(
                a.actions[1],
                AttributeAction::Rename(Rename {
                    from: "host".into(),
                    to: "host.name".into()
                })
            );
        }
        other => panic!("expected attributes, got {other:?}"),
    }
    match &p.processors["sampled"].params {
        ProcessorParams::Sample(s) => assert_eq!(s.ratio, Some(0.1)),
        other => panic!("expected sample, got {other:?}"),
    }
    assert_eq!(p.processors["drop_debug"].params.type_name(), "filter");
    assert_eq!(p.effective_sinks()["metrics_sampled"].inputs, ["sampled"]);
}

/// An empty pipeline means one `metrics` sink reading the receivers.
#[test]
fn empty_pipeline_is_otlp_to_metrics() {
    let c = Config::from_yaml("t", "pipeline: {}\n", &[]).expect("valid");
    let sinks = c.pipeline.effective_sinks();
    assert_eq!(sinks.len(), 1);
    assert_eq!(sinks["metrics"].inputs, [RECEIVER_INPUT]);
}

/// An unknown `type` is reported at `…<id>.type`, naming the known types.
#[test]
fn unknown_type() {
    let found = issues("  processors:\n    x: { type: explode, inputs: [otlp] }\n  sinks:\n    metrics: { inputs: [x] }\n");
    assert_eq!(keys(&found), ["pipeline.processors.x.type"]);
    assert!(
        found[0].1.contains("explode") && found[0].1.contains("filter"),
        "{found:?}"
    );
}

/// A parameter error keeps its full key path inside the processor.
#[test]
fn parameter_errors_keep_key_path() {
    let found = issues(
        "  processors:\n    trim: { type: attributes, inputs: [otlp], actions: [{ drop: [a] }, { rename: { from: host, tox: b } }] }\n  sinks:\n    metrics: { inputs: [trim] }\n",
    );
    assert_eq!(
        keys(&found),
        ["pipeline.processors.trim.actions[1].rename.tox"]
    );
    assert!(found[0].1.contains("tox"), "{found:?}");
    let found = issues(
        "  processors:\n    trim: { type: attributes, inputs: [otlp], actions: [{ drop: [a], hash: [b] }, {}] }\n  sinks:\n    metrics: { inputs: [trim] }\n",
    );
    assert_eq!(
        keys(&found),
        ["pipeline.processors.trim.actions[0]"],
        "first error per processor"
    );
    let found = issues("  processors:\n    s: { type: sample, inputs: [otlp], ratio: 0.5, bogus: 1 }\n  sinks:\n    metrics: { inputs: [s] }\n");
    assert_eq!(keys(&found), ["pipeline.processors.s.bogus"]);
    assert!(found[0].1.contains("bogus"), "{found:?}");
}

/// Empty attribute keys in actions are reported at the action's key path.
#[test]
fn empty_attribute_key() {
    let found = issues(
        "  processors:\n    trim: { type: attributes, inputs: [otlp], actions: [{ drop: [a] }, { rename: { from: host, to: '' } }, { hash: [''] }] }\n  sinks:\n    metrics: { inputs: [trim] }\n",
    );
    assert_eq!(
        keys(&found),
        [
            "pipeline.processors.trim.actions[1].rename.to",
            "pipeline.processors.trim.actions[2].hash[0]"
        ]
    );
}

/// Ratios outside (0, 1] are invalid; 1 is valid.
#[test]
fn ratio_bounds() {
    for bad in ["0", "-0.5", "1.5", ".nan"] {
        let found = issues(&format!(
            "  processors:\n    s: {{ type: sample, inputs: [otlp], ratio: {bad} }}\n  sinks:\n    metrics: {{ inputs: [s] }}\n"
        ));
        assert_eq!(keys(&found), ["pipeline.processors.s.ratio"], "ratio {bad}");
    }
    let ok = issues("  processors:\n    s: { type: sample, inputs: [otlp], ratio: 1 }\n  sinks:\n    metrics: { inputs: [s] }\n");
    assert!(ok.is_empty(), "{ok:?}");
}

/// Bad regexes and globs in filters and samplers name the pattern's position.
#[test]
fn bad_patterns() {
    let found = issues(
        "  processors:\n    f: { type: filter, inputs: [otlp], keep: { metric: [ok, '/(/'], attributes: { env: 'a[b' } } }\n    s: { type: sample, inputs: [f], ratio: 0.5, metric: ['/[/'] }\n  sinks:\n    metrics: { inputs: [s] }\n",
    );
    assert_eq!(
        keys(&found),
        [
            "pipeline.processors.f.keep.metric[1]",
            "pipeline.processors.f.keep.attributes.env",
            "pipeline.processors.s.metric[0]"
        ]
    );
}

/// A filter without conditions, and an unknown kind, are invalid.
#[test]
fn filter_needs_conditions() {
    let found = issues("  processors:\n    f: { type: filter, inputs: [otlp] }\n    g: { type: filter, inputs: [otlp], keep: {} }\n  sinks:\n    metrics: { inputs: [f, g] }\n");
    assert_eq!(
        keys(&found),
        ["pipeline.processors.f", "pipeline.processors.g.keep"]
    );
    let found = issues("  processors:\n    f: { type: filter, inputs: [otlp], keep: { kind: [gauge, counter] } }\n  sinks:\n    metrics: { inputs: [f] }\n");
    assert_eq!(keys(&found), ["pipeline.processors.f.keep.kind[1]"]);
}

/// Unknown inputs, sinks as inputs and repeated inputs are reported per list entry.
#[test]
fn unknown_inputs() {
    let found = issues("  processors:\n    a: { type: sample, inputs: [otlp, nope], ratio: 1 }\n    b: { type: sample, inputs: [other, a, a], ratio: 1 }\n  sinks:\n    metrics: { inputs: [b] }\n");
    assert_eq!(
        keys(&found),
        [
            "pipeline.processors.a.inputs[1]",
            "pipeline.processors.b.inputs[0]",
            "pipeline.processors.b.inputs[2]"
        ]
    );
    assert!(found[1].1.contains("other"));
    let found = issues("  processors:\n    a: { type: sample, inputs: [metrics], ratio: 1 }\n  sinks:\n    metrics: { inputs: [otlp] }\n    t2: { inputs: [a] }\n");
    assert_eq!(keys(&found), ["pipeline.processors.a.inputs[0]"]);
    assert!(found[0].1.contains("is a sink"), "{found:?}");
}

/// A cycle is reported once, with its data-flow path; processors in it are not orphans
/// when a sink reads them.
#[test]
fn cycle() {
    let found = issues("  processors:\n    a: { type: sample, inputs: [otlp, c], ratio: 1 }\n    b: { type: sample, inputs: [a], ratio: 1 }\n    c: { type: sample, inputs: [b], ratio: 1 }\n  sinks:\n    metrics: { inputs: [c] }\n");
    assert_eq!(keys(&found), ["pipeline.processors.a.inputs"]);
    assert_eq!(found[0].1, "cycle: a → b → c → a");
    let found = issues("  processors:\n    a: { type: sample, inputs: [a], ratio: 1 }\n  sinks:\n    metrics: { inputs: [a] }\n");
    assert_eq!(
        found,
        [(
            "pipeline.processors.a.inputs".to_string(),
            "cycle: a → a".to_string()
        )]
    );
}

/// Ids shared by a processor and a sink, or equal to `otlp`, are duplicates.
#[test]
fn duplicate_ids() {
    let found = issues("  processors:\n    metrics: { type: sample, inputs: [otlp], ratio: 1 }\n    otlp: { type: sample, inputs: [metrics], ratio: 1 }\n  sinks:\n    metrics: { inputs: [metrics] }\n    t: { inputs: [otlp] }\n");
    let k = keys(&found);
    assert!(k.contains(&"pipeline.processors.metrics"), "{found:?}");
    assert!(k.contains(&"pipeline.processors.otlp"), "{found:?}");
    let dups = found
        .iter()
        .filter(|(_, r)| r.contains("duplicate id"))
        .count();
    assert_eq!(dups, 2, "{found:?}");
}

/// A processor whose output reaches no sink is an orphan; a sink with no input is reported.
#[test]
fn orphans_and_empty_sinks() {
    let found = issues("  processors:\n    a: { type: sample, inputs: [otlp], ratio: 1 }\n    b: { type: sample, inputs: [a], ratio: 1 }\n    c: { type: sample, inputs: [otlp], ratio: 1 }\n  sinks:\n    metrics: { inputs: [b] }\n    empty: { inputs: [] }\n    also_empty: {}\n");
    assert_eq!(
        keys(&found),
        [
            "pipeline.sinks.also_empty.inputs",
            "pipeline.sinks.empty.inputs",
            "pipeline.processors.c"
        ]
    );
}

/// Sink names must be table names.
#[test]
fn sink_names_are_table_names() {
    let found = issues("  sinks:\n    Metrics-1: { inputs: [otlp] }\n");
    assert_eq!(keys(&found), ["pipeline.sinks.Metrics-1"]);
}

/// Every problem is reported at once, across processors, parameters and the graph.
#[test]
fn collects_everything() {
    let found = issues("  processors:\n    a: { type: nope, inputs: [otlp] }\n    b: { type: sample, inputs: [zzz], ratio: 2 }\n  sinks:\n    metrics: { inputs: [a] }\n");
    assert_eq!(
        keys(&found),
        [
            "pipeline.processors.a.type",
            "pipeline.processors.b.ratio",
            "pipeline.processors.b.inputs[0]",
            "pipeline.processors.b"
        ]
    );
}
