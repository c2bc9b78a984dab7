//! Gauge rollups: functions to the last bit, spatial grouping, quantile accuracy.

use std::collections::BTreeMap;

use phoenix_model::pipeline::GaugeFunction;

use super::fixture::{config, id_of, run, sorted, window_of, Entries, Out, Rng, MIN, P, SEC, T0};

/// Exact window statistics over raw points, in arrival order.
#[derive(Default)]
struct Exact {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// (time, series_id, value bits) of the latest point.
    last: Option<(i64, u64, u64)>,
    values: Vec<f64>,
}

impl Exact {
    fn add(&mut self, p: &P, series: u64) {
        let v = p.value.expect("gauge value");
        if self.count == 0 {
            self.min = v;
            self.max = v;
        }
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        let key = (p.time, series, v.to_bits());
        if self.last.is_none_or(|l| key > l) {
            self.last = Some(key);
        }
        self.values.push(v);
    }

    fn function(&self, f: GaugeFunction) -> f64 {
        match f {
            GaugeFunction::Count => self.count as f64,
            GaugeFunction::Sum => self.sum,
            GaugeFunction::Min => self.min,
            GaugeFunction::Max => self.max,
            GaugeFunction::Mean => self.sum / self.count as f64,
            GaugeFunction::Last => f64::from_bits(self.last.expect("points").2),
        }
    }
}

/// `hosts` hosts × `windows` windows × `per` points per window, values with fractions,
/// interleaved across hosts in time order.
fn gauges(hosts: usize, windows: i64, per: i64, rng: &mut Rng) -> Vec<P> {
    let mut points = Vec::new();
    for k in 0..windows * per {
        for h in 0..hosts {
            let t = T0 + k * (MIN / per) + h as i64 * 7;
            let v = (rng.unit() - 0.5) * 1000.0 + rng.unit() * 1e-6;
            points.push(P::gauge("cpu", &format!("h{h}"), t, v).attr("route", ["/a", "/b"][h % 2]));
        }
    }
    points
}

/// Finds the row of metric `name` at `time` with `series_id` `id`.
fn row<'a>(out: &'a [Out], name: &str, time: i64, id: u64) -> &'a Out {
    out.iter()
        .find(|r| r.metric == name && r.time == time && r.series_id == id)
        .unwrap_or_else(|| panic!("no row {name} at {time} for {id}"))
}

/// Per series and window, every function equals the exact value computed over the raw points,
/// to the last bit; rows are named `<metric>.<function>`, stamped at the window start, with
/// the recipe's series id of the suffixed name, and nothing else is emitted.
#[test]
fn temporal_functions_exact() {
    let mut rng = Rng(7);
    let points = gauges(3, 4, 10, &mut rng);
    let c = config();
    let out = run(&c, &[points[..50].to_vec(), points[50..].to_vec()]);
    let mut exact: BTreeMap<(u64, i64), (Exact, &P)> = BTreeMap::new();
    for p in &points {
        let e = exact
            .entry((p.series_id(), window_of(p.time, MIN)))
            .or_insert_with(|| (Exact::default(), p));
        e.0.add(p, p.series_id());
    }
    assert_eq!(out.len(), exact.len() * GaugeFunction::ALL.len());
    for ((_, w), (e, first)) in &exact {
        for f in GaugeFunction::ALL {
            let name = format!("cpu.{}", f.as_str());
            let id = id_of(&name, &first.resource, &first.attributes);
            let r = row(&out, &name, *w, id);
            assert_eq!(
                r.value.map(f64::to_bits),
                Some(e.function(f).to_bits()),
                "{name} at {w}"
            );
            assert_eq!(
                (r.kind.as_str(), r.start, r.temporality.as_deref()),
                ("gauge", Some(*w), None)
            );
            assert_eq!(
                (&r.resource, &r.attributes),
                (&first.resource, &first.attributes)
            );
        }
    }
}

/// `group_by: [route]` keeps only `route` (and the resource's `service.name`), recomputes the
/// series id, and each function equals the exact value over every host's points of the route.
#[test]
fn spatial_functions_exact() {
    let mut rng = Rng(11);
    let points = gauges(6, 3, 12, &mut rng);
    let mut c = config();
    c.group_by = Some(vec!["route".into()]);
    let out = run(&c, std::slice::from_ref(&points));
    let resource: Entries = vec![("service.name".into(), Some("svc".into()))];
    let mut exact: BTreeMap<(String, i64), Exact> = BTreeMap::new();
    for p in &points {
        let route = p.attributes[0].1.clone().expect("route");
        exact
            .entry((route, window_of(p.time, MIN)))
            .or_default()
            .add(p, p.series_id());
    }
    assert_eq!(out.len(), exact.len() * GaugeFunction::ALL.len());
    for ((route, w), e) in &exact {
        let attributes: Entries = vec![("route".into(), Some(route.clone()))];
        for f in GaugeFunction::ALL {
            let name = format!("cpu.{}", f.as_str());
            let r = row(&out, &name, *w, id_of(&name, &resource, &attributes));
            assert_eq!(
                r.value.map(f64::to_bits),
                Some(e.function(f).to_bits()),
                "{name} {route} {w}"
            );
            assert_eq!(
                (&r.resource, &r.attributes, r.service.as_str()),
                (&resource, &attributes, "svc")
            );
        }
    }
}

/// Quantiles over 20 000 values spanning six decades (both signs) are within the configured
/// relative error of the exact lower-rank quantile `sorted[floor(q·(n−1))]`; q = 0 and 1 are
/// exact. Prints the worst relative error observed.
#[test]
fn quantiles_within_relative_error() {
    for alpha in [0.01, 0.002] {
        let mut rng = Rng(3);
        let qs = [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0];
        let mut c = config();
        c.functions = vec![GaugeFunction::Count];
        c.quantiles = qs.to_vec();
        c.relative_error = alpha;
        c.group_by = Some(Vec::new());
        let mut points = Vec::new();
        for i in 0..20_000i64 {
            // Log-uniform magnitudes over [1e-2, 1e4], one in five negative.
            let v = 10f64.powf(rng.unit() * 6.0 - 2.0) * if rng.below(5) == 0 { -1.0 } else { 1.0 };
            points.push(P::gauge(
                "latency",
                &format!("h{}", i % 50),
                T0 + i * (MIN / 20_000),
                v,
            ));
        }
        let out = run(&c, std::slice::from_ref(&points));
        let mut ordered: Vec<f64> = points.iter().map(|p| p.value.expect("value")).collect();
        ordered.sort_by(f64::total_cmp);
        let mut worst: f64 = 0.0;
        for q in qs {
            let name = format!("latency.p{}", (q * 1e6_f64).round() / 1e4);
            let got = out
                .iter()
                .find(|r| r.metric == name)
                .and_then(|r| r.value)
                .unwrap_or_else(|| panic!("no {name}"));
            let exact = ordered[(q * (ordered.len() - 1) as f64) as usize];
            let err = (got - exact).abs() / exact.abs();
            worst = worst.max(err);
            assert!(
                err <= alpha * (1.0 + 1e-9),
                "alpha {alpha} q {q}: {got} vs {exact}"
            );
            if q == 0.0 || q == 1.0 {
                assert_eq!(got, exact, "extremes are exact");
            }
        }
        println!("alpha {alpha}: worst observed relative error {worst:.6}");
    }
}

/// Out-of-order points within the lateness land in their window: the same rows as in-order
/// arrival (integer values, so sums are exact whatever the order).
#[test]
fn out_of_order_within_lateness() {
    let points: Vec<P> = (0..120)
        .map(|i| P::gauge("m", "h", T0 + i * SEC, (i % 17) as f64))
        .collect();
    let mut shuffled = points.clone();
    // Swap neighbours 5 s apart: every point arrives at most 5 s late, lateness is 10 s.
    for i in (0..shuffled.len() - 5).step_by(10) {
        shuffled.swap(i, i + 5);
    }
    let c = config();
    let a = sorted(run(&c, &[points]));
    let b = sorted(run(&c, &[shuffled[..33].to_vec(), shuffled[33..].to_vec()]));
    assert_eq!(a, b);
    assert_eq!(a.len(), 2 * GaugeFunction::ALL.len());
}
