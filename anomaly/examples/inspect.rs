//! Temporary: per-series diagnostics.
use phoenix_anomaly::evaluate::{score_all, tally};
use phoenix_anomaly::synth::{generate, SynthConfig};
use phoenix_anomaly::{Detector, DetectorConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let th: f64 = args.get(1).and_then(|x| x.parse().ok()).unwrap_or(0.6);
    let which: Option<usize> = args.get(2).and_then(|x| x.parse().ok());
    let synth = SynthConfig::default();
    let series = generate(&synth);
    let mut config = DetectorConfig::default();
    if let Ok(sets) = std::env::var("SETS") {
        for kv in sets.split(',').filter(|x| !x.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap();
            config.set(k, v).unwrap();
        }
    }
    let mut drivers = std::collections::BTreeMap::new();
    let scored = score_all(&series, &config).unwrap();
    for (i, s) in scored.iter().enumerate() {
        let t = tally(s, th);
        {
            let mut d = Detector::new(config.clone()).unwrap();
            let mut st = d.new_state();
            for (&ts, &v) in s.series.timestamps.iter().zip(&s.series.values) {
                let sc = d.score(&mut st, v).unwrap();
                if sc.score >= th && !s.series.labels.iter().any(|l| l.start_ts <= ts && ts <= l.end_ts) {
                    *drivers.entry((s.series.kind.map_or("normal", |k| k.as_str()), sc.driver.as_str())).or_insert(0) += 1;
                }
            }
        }
        if which.is_none() {
            if t.false_alarms > 0 || t.detected < t.anomalies {
                println!("{i:3} {:60} det {}/{} fa {}", s.series.name, t.detected, t.anomalies, t.false_alarms);
            }
            continue;
        }
        if Some(i) != which { continue; }
        println!("{} labels {:?}", s.series.name, s.series.labels);
        let mut d = Detector::new(config.clone()).unwrap();
        let mut st = d.new_state();
        for (j, (&ts, &v)) in s.series.timestamps.iter().zip(&s.series.values).enumerate() {
            let sc = d.score(&mut st, v).unwrap();
            let inlab = s.series.labels.iter().any(|l| l.start_ts <= ts && ts <= l.end_ts);
            if sc.raw_score >= 0.3 || inlab && j % 4 == 0 {
                println!("{j:5} run? {} ts {ts} v {v:10.3} exp {:10.3} raw {:.3} out {:.3} {:?} {} {}", st.model_version(), sc.expected, sc.raw_score, sc.score, sc.driver, if sc.alarm {"ALARM"} else {""}, if inlab {"LABEL"} else {""});
            }
        }
    }
    if which.is_none() { for (k, v) in &drivers { println!("FA {k:?}: {v}"); } }
}
