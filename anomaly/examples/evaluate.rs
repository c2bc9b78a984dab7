//! The anomaly benchmark: generates labeled synthetic series, scores them through the CSV path
//! of `phoenix anomaly score`, and prints precision, recall, F1 and detection delay per kind,
//! streaming throughput and state bytes per series.
//!
//! `cargo run --release -p phoenix-anomaly --example evaluate -- [--seed N] [--series-per-kind N]
//! [--normal N] [--length N] [--threshold X] [--set KEY=VALUE]... [--dump DIR]`

use std::time::Instant;

use phoenix_anomaly::evaluate::{report, score_all};
use phoenix_anomaly::synth::{generate, SynthConfig};
use phoenix_anomaly::{Detector, DetectorConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut synth = SynthConfig::default();
    let mut threshold = DetectorConfig::default().alarm_threshold;
    let mut dump: Option<String> = None;
    let mut config = DetectorConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => synth.seed = value()?.parse()?,
            "--series-per-kind" => synth.series_per_kind = value()?.parse()?,
            "--normal" => synth.normal_series = value()?.parse()?,
            "--length" => synth.length = value()?.parse()?,
            "--threshold" => threshold = value()?.parse()?,
            "--dump" => dump = Some(value()?),
            "--set" => {
                let kv = value()?;
                let (k, v) = kv.split_once('=').ok_or("--set needs KEY=VALUE")?;
                config.set(k, v)?;
            }
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    config.validate()?;
    let series = generate(&synth);
    if let Some(dir) = &dump {
        std::fs::create_dir_all(dir)?;
        for (i, s) in series.iter().enumerate() {
            std::fs::write(format!("{dir}/{i:03}.csv"), s.to_csv())?;
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|l| format!("{},{},{}", l.kind.as_str(), l.start_ts, l.end_ts))
                .collect();
            std::fs::write(format!("{dir}/{i:03}.labels"), format!("# {}\n{}\n", s.name, labels.join("\n")))?;
        }
    }
    let points: usize = series.iter().map(|s| s.values.len()).sum();
    println!(
        "series: {} ({} per kind, {} anomaly-free), {} points, seed {}, threshold {threshold}\n",
        series.len(),
        synth.series_per_kind,
        synth.normal_series,
        points,
        synth.seed
    );

    let started = Instant::now();
    let scored = score_all(&series, &config)?;
    let csv_secs = started.elapsed().as_secs_f64();
    let r = report(&scored, threshold);
    println!("{}", r.markdown());

    println!("threshold sweep (all kinds):\n");
    println!("| threshold | precision | recall | F1 | false alarms per 10k points (anomaly-free) |");
    println!("| --- | --- | --- | --- | --- |");
    for t in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
        let r = report(&scored, t);
        println!(
            "| {t:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.overall.precision(),
            r.overall.recall(),
            r.overall.f1(),
            r.normal.false_alarms_per_10k()
        );
    }

    // Streaming throughput: the detector alone, one thread, one state per series.
    let mut detector = Detector::new(config.clone())?;
    let started = Instant::now();
    let mut max_bytes = 0;
    let mut checksum = 0.0;
    for s in &series {
        let mut state = detector.new_state();
        for &v in &s.values {
            checksum += detector.score(&mut state, v)?.score;
        }
        max_bytes = max_bytes.max(state.state_bytes());
    }
    let secs = started.elapsed().as_secs_f64();
    println!("\nstreaming throughput (one core, Detector::score): {:.0} points/s", points as f64 / secs);
    println!("CSV path throughput (parse + score + write): {:.0} points/s", points as f64 / csv_secs);
    println!(
        "state per series after {} points: {max_bytes} bytes (budget {} bytes); score checksum {checksum:.3}",
        synth.length,
        config.state_budget_bytes()
    );
    Ok(())
}
