//! Filter tests: outputs compared with a plain-Rust predicate over the input rows.

use std::collections::BTreeMap;

use phoenix_model::pipeline::{FilterConfig, MatchConfig, MetricKind};

use super::build;
use crate::processor::Processor;
use crate::testing::{batch, rows, Row};

/// Deterministic mixed input: metrics `debug.x`, `http.requests`, `http.errors`, `cpu`; kinds
/// gauge and sum; attributes `env` in {dev, test, prod} or absent; some rows with `region`.
fn input() -> Vec<Row> {
    let metrics = [
        "debug.x",
        "http.requests",
        "http.errors",
        "cpu",
        "debug.y.z",
    ];
    let envs = [Some("dev"), Some("test"), Some("prod"), None];
    (0..200)
        .map(|i| {
            let mut r = Row::gauge(
                metrics[i % 5],
                if i % 3 == 0 { "api" } else { "db" },
                i as i64,
                i as f64,
            );
            if let Some(env) = envs[(i / 5) % 4] {
                r = r.attr("env", env);
            }
            if i % 7 == 0 {
                r = r.res("region", "eu");
            }
            if i % 2 == 0 {
                r = r.kind("sum");
            }
            r
        })
        .collect()
}

fn attr<'a>(r: &'a Row, k: &str) -> Option<&'a str> {
    r.attributes
        .iter()
        .find(|(key, _)| key == k)
        .and_then(|(_, v)| v.as_deref())
}

fn run(config: &FilterConfig, input: &[Row]) -> Vec<Row> {
    let mut f = build("f", config).expect("builds");
    rows(&f.process(batch(input)).expect("processes"))
}

/// `drop` by metric glob and attribute regex removes exactly the rows a plain predicate
/// selects, and keeps the others in order and unchanged.
#[test]
fn drop_by_glob_and_regex() {
    let config = FilterConfig {
        keep: None,
        drop: Some(MatchConfig {
            metric: vec!["debug.*".into()],
            attributes: BTreeMap::from([("env".into(), Some("/dev|test/".into()))]),
            ..MatchConfig::default()
        }),
    };
    let input = input();
    let expected: Vec<Row> = input
        .iter()
        .filter(|r| {
            !(r.metric.starts_with("debug.") && matches!(attr(r, "env"), Some("dev" | "test")))
        })
        .cloned()
        .collect();
    let got = run(&config, &input);
    assert!(got.len() < input.len() && !got.is_empty());
    assert_eq!(got, expected);
}

/// `keep` by exact names, kind, resource key existence; combined with `drop` of one value.
#[test]
fn keep_and_drop_combined() {
    let config = FilterConfig {
        keep: Some(MatchConfig {
            metric: vec!["http.requests".into(), "/http\\.err.*/".into()],
            kind: vec![MetricKind::Sum],
            ..MatchConfig::default()
        }),
        drop: Some(MatchConfig {
            attributes: BTreeMap::from([("env".into(), Some("prod".into()))]),
            ..MatchConfig::default()
        }),
    };
    let input = input();
    let expected: Vec<Row> = input
        .iter()
        .filter(|r| {
            (r.metric == "http.requests" || r.metric == "http.errors")
                && r.kind == "sum"
                && attr(r, "env") != Some("prod")
        })
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(run(&config, &input), expected);

    let exists = FilterConfig {
        keep: Some(MatchConfig {
            resource: BTreeMap::from([("region".into(), None)]),
            ..MatchConfig::default()
        }),
        drop: None,
    };
    let expected: Vec<Row> = input
        .iter()
        .filter(|r| r.resource.iter().any(|(k, _)| k == "region"))
        .cloned()
        .collect();
    assert_eq!(run(&exists, &input), expected);
}

/// A null attribute value satisfies "key exists" but no value pattern.
#[test]
fn null_values() {
    let input = vec![
        Row::gauge("m", "s", 1, 1.0).attr_null("k"),
        Row::gauge("m", "s", 2, 2.0).attr("k", ""),
        Row::gauge("m", "s", 3, 3.0),
    ];
    let exists = FilterConfig {
        keep: Some(MatchConfig {
            attributes: BTreeMap::from([("k".into(), None)]),
            ..MatchConfig::default()
        }),
        drop: None,
    };
    assert_eq!(run(&exists, &input), input[..2].to_vec());
    let any_value = FilterConfig {
        keep: Some(MatchConfig {
            attributes: BTreeMap::from([("k".into(), Some("*".into()))]),
            ..MatchConfig::default()
        }),
        drop: None,
    };
    assert_eq!(run(&any_value, &input), input[1..2].to_vec());
}

/// Dropping every row yields an empty batch in the metrics schema; the drop counter counts
/// every removed datapoint with reason `filtered`.
#[test]
fn drops_everything_and_counts() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let input = input();
    let out = metrics::with_local_recorder(&recorder, || {
        let mut f = build(
            "drop_all",
            &FilterConfig {
                keep: None,
                drop: Some(MatchConfig {
                    metric: vec!["*".into()],
                    ..MatchConfig::default()
                }),
            },
        )
        .expect("builds");
        f.process(batch(&input)).expect("processes")
    });
    assert_eq!(out.num_rows(), 0);
    assert_eq!(out.schema(), phoenix_model::metrics_schema());
    let text = handle.render();
    let line = format!(
        "phoenix_processor_datapoints_dropped_total{{processor=\"drop_all\",reason=\"filtered\"}} {}",
        input.len()
    );
    assert!(text.contains(&line), "{text}");
}

/// A sliced batch (offsets into shared map entries not starting at 0) filters correctly.
#[test]
fn sliced_input() {
    let input = input();
    let config = FilterConfig {
        keep: Some(MatchConfig {
            attributes: BTreeMap::from([("env".into(), Some("prod".into()))]),
            ..MatchConfig::default()
        }),
        drop: None,
    };
    let sliced = batch(&input).slice(13, 100);
    let mut f = build("f", &config).expect("builds");
    let got = rows(&f.process(sliced).expect("processes"));
    let expected: Vec<Row> = input[13..113]
        .iter()
        .filter(|r| attr(r, "env") == Some("prod"))
        .cloned()
        .collect();
    assert_eq!(got, expected);
}
