//! Attributes tests: outputs compared with a plain-Rust reference that applies the actions in
//! order to `Vec<(key, value)>` rows and recomputes `series_id` from plain values.

use phoenix_model::pipeline::{AttributeAction, AttributesConfig, Rename};
use xxhash_rust::xxh3::xxh3_64;

use super::build;
use crate::processor::Processor;
use crate::testing::{batch, rows, Entries, Row};

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| s.to_string()).collect()
}

fn rename(from: &str, to: &str) -> AttributeAction {
    AttributeAction::Rename(Rename {
        from: from.into(),
        to: to.into(),
    })
}

/// The reference: actions in order over one entry list; `hashed` flags apply at the end.
fn apply(
    list: &mut Vec<(String, Option<String>, bool)>,
    actions: &[AttributeAction],
    res: &mut Option<&mut Vec<(String, Option<String>, bool)>>,
) {
    for a in actions {
        match a {
            AttributeAction::Drop(k) => list.retain(|(key, _, _)| !k.contains(key)),
            AttributeAction::KeepOnly(k) => list.retain(|(key, _, _)| k.contains(key)),
            AttributeAction::Rename(r) => {
                if list.iter().any(|(key, _, _)| *key == r.from) {
                    list.retain(|(key, _, _)| *key != r.to);
                    for (key, _, _) in list.iter_mut() {
                        if *key == r.from {
                            key.clone_from(&r.to);
                        }
                    }
                }
            }
            AttributeAction::Hash(k) => {
                for (key, _, h) in list.iter_mut() {
                    if k.contains(key) {
                        *h = true;
                    }
                }
            }
            AttributeAction::MoveToResource(k) => {
                let (moved, rest): (Vec<_>, Vec<_>) =
                    list.drain(..).partition(|(key, _, _)| k.contains(key));
                *list = rest;
                if let Some(res) = res.as_mut() {
                    for m in moved {
                        res.retain(|(key, _, _)| *key != m.0);
                        res.push(m);
                    }
                }
            }
        }
    }
}

fn finish(list: Vec<(String, Option<String>, bool)>) -> Entries {
    list.into_iter()
        .map(|(k, v, h)| {
            let v = if h {
                v.map(|v| format!("{:016x}", xxh3_64(v.as_bytes())))
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

fn reference(row: &Row, config: &AttributesConfig) -> Row {
    let flag = |e: &Entries| {
        e.iter()
            .map(|(k, v)| (k.clone(), v.clone(), false))
            .collect::<Vec<_>>()
    };
    let mut res = flag(&row.resource);
    let mut attrs = flag(&row.attributes);
    apply(&mut res, &config.resource_actions, &mut None);
    apply(&mut attrs, &config.actions, &mut Some(&mut res));
    let mut out = row.clone();
    out.resource = finish(res);
    out.attributes = finish(attrs);
    // The first `service.name` in entry order, as the decoder picks it.
    out.service = out
        .resource
        .iter()
        .find(|(k, _)| k == "service.name")
        .and_then(|(_, v)| v.clone())
        .unwrap_or_default();
    out.rehash();
    out
}

/// Map entries sorted, so rows compare regardless of entry order (which the recipe ignores).
fn normalized(mut rows: Vec<Row>) -> Vec<Row> {
    for r in &mut rows {
        r.attributes.sort();
        r.resource.sort();
    }
    rows
}

fn run(config: &AttributesConfig, input: &[Row]) -> Vec<Row> {
    let mut p = build("attrs", config).expect("builds");
    normalized(rows(&p.process(batch(input)).expect("processes")))
}

/// A small deterministic generator (LCG), so tests need no extra crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

const ATTR_KEYS: [&str; 7] = ["a", "b", "c", "host", "user.id", "service.name", "region"];
const RES_KEYS: [&str; 3] = ["host", "region", "zone"];

fn random_rows(rng: &mut Lcg, n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let mut r = Row::gauge(
                ["m1", "m2"][rng.next(2)],
                ["api", "db"][rng.next(2)],
                i as i64,
                i as f64,
            );
            for _ in 0..rng.next(6) {
                let k = ATTR_KEYS[rng.next(ATTR_KEYS.len())];
                r = match rng.next(5) {
                    0 => r.attr_null(k),
                    v => r.attr(k, &format!("v{v}")),
                };
            }
            for _ in 0..rng.next(3) {
                r = r.res(
                    RES_KEYS[rng.next(RES_KEYS.len())],
                    &format!("r{}", rng.next(3)),
                );
            }
            r
        })
        .collect()
}

fn random_actions(rng: &mut Lcg, resource: bool) -> Vec<AttributeAction> {
    let pool: &[&str] = if resource {
        &["host", "region", "zone", "service.name"]
    } else {
        &ATTR_KEYS
    };
    let pick = |rng: &mut Lcg| pool[rng.next(pool.len())].to_string();
    (0..1 + rng.next(4))
        .map(|_| match rng.next(if resource { 4 } else { 5 }) {
            0 => AttributeAction::Drop(vec![pick(rng)]),
            1 => AttributeAction::KeepOnly(vec![pick(rng), pick(rng), pick(rng)]),
            2 => {
                let (from, to) = (pick(rng), pick(rng));
                if from == to {
                    AttributeAction::Hash(vec![from])
                } else {
                    rename(&from, &to)
                }
            }
            3 => AttributeAction::Hash(vec![pick(rng)]),
            _ => AttributeAction::MoveToResource(vec![pick(rng)]),
        })
        .collect()
}

/// Over many random rows and random action lists (renames that collide, chained renames,
/// moves onto existing resource keys, null values), the processor's maps, `service` and
/// `series_id` equal the reference's.
#[test]
fn matches_reference_on_random_configs() {
    let mut rng = Lcg(7);
    for case in 0..300 {
        let config = AttributesConfig {
            actions: random_actions(&mut rng, false),
            resource_actions: if case % 3 == 0 {
                random_actions(&mut rng, true)
            } else {
                Vec::new()
            },
        };
        let input = random_rows(&mut rng, 40);
        let expected: Vec<Row> = input.iter().map(|r| reference(r, &config)).collect();
        assert_eq!(
            run(&config, &input),
            normalized(expected),
            "case {case}: {config:?}"
        );
    }
}

/// Dropping `user.id` from a point that had the ingest test's attributes yields exactly the
/// `series_id` pinned by the ingest decoder's recipe test.
#[test]
fn series_id_matches_ingest_pin() {
    let row = Row::gauge("http.server.duration", "api", 1, 1.0)
        .res("host.name", "h1")
        .attr("http.route", "/users")
        .attr("user.id", "u-42")
        .attr("code", "200");
    let config = AttributesConfig {
        actions: vec![AttributeAction::Drop(keys(&["user.id"]))],
        resource_actions: Vec::new(),
    };
    let out = run(&config, &[row]);
    // Pinned in ingest/src/decode/series_id.rs (`PINNED`).
    assert_eq!(out[0].series_id, 5_902_808_705_150_896_676);
}

/// Moving or renaming `service.name` updates the `service` column.
#[test]
fn service_follows_resource() {
    let input = vec![
        Row::gauge("m", "api", 1, 1.0).attr("service.name", "worker"),
        Row::gauge("m", "api", 2, 1.0),
    ];
    let moved = run(
        &AttributesConfig {
            actions: vec![AttributeAction::MoveToResource(keys(&["service.name"]))],
            resource_actions: Vec::new(),
        },
        &input,
    );
    assert_eq!(moved[0].service, "worker");
    assert_eq!(
        moved[0].resource,
        [("service.name".to_string(), Some("worker".to_string()))]
    );
    assert!(moved[0].attributes.is_empty());
    assert_eq!(moved[1].service, "api");
    let renamed = run(
        &AttributesConfig {
            actions: Vec::new(),
            resource_actions: vec![rename("service.name", "svc")],
        },
        &input,
    );
    assert!(renamed.iter().all(|r| r.service.is_empty()), "{renamed:?}");
    assert_eq!(
        renamed[1].resource,
        [("svc".to_string(), Some("api".to_string()))]
    );
}

/// A rename onto an existing key replaces it; hashing gives 16 hex digits and keeps nulls.
#[test]
fn rename_replaces_and_hash_format() {
    let input = vec![Row::gauge("m", "s", 1, 1.0)
        .attr("host.name", "old")
        .attr("host", "h1")
        .attr("sid", "abc")
        .attr_null("nul")];
    let out = run(
        &AttributesConfig {
            actions: vec![
                rename("host", "host.name"),
                AttributeAction::Hash(keys(&["sid", "nul"])),
            ],
            resource_actions: Vec::new(),
        },
        &input,
    );
    assert_eq!(
        out[0].attributes,
        [
            ("host.name".to_string(), Some("h1".to_string())),
            ("nul".to_string(), None),
            ("sid".to_string(), Some(format!("{:016x}", xxh3_64(b"abc")))),
        ]
    );
}

/// A batch nothing applies to comes back as the same arrays; a sliced batch is edited right.
#[test]
fn untouched_and_sliced() {
    let mut rng = Lcg(3);
    let input = random_rows(&mut rng, 50);
    let config = AttributesConfig {
        actions: vec![AttributeAction::Drop(keys(&["no.such.key"]))],
        resource_actions: Vec::new(),
    };
    let b = batch(&input);
    let mut p = build("a", &config).expect("builds");
    let out = p.process(b.clone()).expect("processes");
    assert!(out
        .columns()
        .iter()
        .zip(b.columns())
        .all(|(x, y)| std::sync::Arc::ptr_eq(x, y)));

    let config = AttributesConfig {
        actions: vec![
            rename("a", "b"),
            AttributeAction::MoveToResource(keys(&["c"])),
        ],
        resource_actions: Vec::new(),
    };
    let mut p = build("a", &config).expect("builds");
    let got = normalized(rows(
        &p.process(batch(&input).slice(7, 30)).expect("processes"),
    ));
    let expected: Vec<Row> = input[7..37].iter().map(|r| reference(r, &config)).collect();
    assert_eq!(got, normalized(expected));
}
