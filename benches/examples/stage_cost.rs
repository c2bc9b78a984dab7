//! Runs the default pipeline's stages (`cap`, `rollup_1m`, usage accounting) once over
//! loadgen-shaped traffic, for instruction counts under callgrind:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='stage_cost::measured*' \
//!     target/release/examples/stage_cost <cap|rollup|rollup_full|usage|pipeline> [chunks] [scrapes] [step_ms]
//! ```
//!
//! Only the `measured_*` functions are counted (fixtures are built outside them); divide the
//! total by datapoints / 1,000 for the cost per 1,000 datapoints.

use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use phoenix_processors::{Flow, Processor, UsageRecorder};

const BASE_NS: u64 = 1_700_000_000_000_000_000;

/// A processor built from its YAML parameters, as a config file has them.
fn from_yaml(params: &str) -> Box<dyn Processor> {
    let text = format!(
        "pipeline:\n  processors:\n    p: {{ inputs: [otlp], {params} }}\n  sinks:\n    metrics: {{ inputs: [p] }}\n"
    );
    let config = phoenix_model::Config::from_yaml("stage.yaml", &text, &[]).expect("valid");
    phoenix_processors::build_processor("p", &config.pipeline.processors["p"].params)
        .expect("builds")
}

/// `cap` of the embedded default.
fn cap() -> Box<dyn Processor> {
    from_yaml("type: cardinality_limit, max_series: 100000")
}

/// `rollup_1m` of the embedded default, holding at most `max_series`.
fn rollup(max_series: usize) -> Box<dyn Processor> {
    from_yaml(&format!(
        "type: aggregate, window: 1m, allowed_lateness: 30s, max_series: {max_series}"
    ))
}

#[inline(never)]
fn measured_cap(p: &mut dyn Processor, batches: Vec<RecordBatch>) -> usize {
    batches
        .into_iter()
        .map(|b| p.process(b).expect("processes").num_rows())
        .sum()
}

#[inline(never)]
fn measured_rollup(p: &mut dyn Processor, batches: Vec<RecordBatch>) -> usize {
    let out: usize = batches
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let n = p.process_at(b, i as u64).expect("processes").num_rows();
            n + p.take_dropped().map_or(0, |d| d.num_rows())
        })
        .sum();
    out + p.flush().expect("flushes").map_or(0, |b| b.num_rows())
}

/// Usage as the graph taps it: every batch in, and out to `metrics`; closed minutes drained.
#[inline(never)]
fn measured_usage(
    usage: &UsageRecorder,
    batches: &[RecordBatch],
    per_round: usize,
    step_ns: i64,
) -> usize {
    let table: Arc<str> = Arc::from("metrics");
    let out = Flow::Out(table);
    let mut rows = 0;
    for (k, round) in batches.chunks(per_round).enumerate() {
        for b in round {
            usage.record(b, &Flow::In).expect("records");
            usage.record(b, &out).expect("records");
        }
        let now = BASE_NS as i64 + k as i64 * step_ns;
        if let Some(d) = usage
            .drain(Some(now - 180_000_000_000), |_| 100.0)
            .expect("drains")
        {
            rows += d.num_rows();
        }
    }
    rows + usage
        .drain(None, |_| 100.0)
        .expect("drains")
        .map_or(0, |d| d.num_rows())
}

/// The default pipeline: usage in, `cap` (out to `metrics`), `rollup_1m` (out to
/// `metrics_1m`, its drops counted).
#[inline(never)]
fn measured_pipeline(
    cap: &mut dyn Processor,
    rollup: &mut dyn Processor,
    usage: &UsageRecorder,
    batches: Vec<RecordBatch>,
) -> usize {
    let metrics = Flow::Out(Arc::from("metrics"));
    let metrics_1m = Flow::Out(Arc::from("metrics_1m"));
    let mut rows = 0;
    for (i, b) in batches.into_iter().enumerate() {
        usage.record(&b, &Flow::In).expect("records");
        let capped = cap.process(b).expect("processes");
        usage.record(&capped, &metrics).expect("records");
        let rolled = rollup.process_at(capped, i as u64).expect("processes");
        if let Some(d) = rollup.take_dropped() {
            usage.record_dropped(&d);
        }
        usage.record(&rolled, &metrics_1m).expect("records");
        rows += rolled.num_rows();
    }
    if let Some(rolled) = rollup.flush().expect("flushes") {
        usage.record(&rolled, &metrics_1m).expect("records");
        rows += rolled.num_rows();
    }
    rows + usage
        .drain(None, |_| 100.0)
        .expect("drains")
        .map_or(0, |d| d.num_rows())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let stage = args.get(1).map_or("pipeline", String::as_str);
    let chunks: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    let scrapes: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(120);
    let step_ms: i64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let step_ns = step_ms * 1_000_000;
    let batches = phoenix_benches::loadgen_batches(chunks, scrapes, BASE_NS, step_ns);
    let points: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let started = Instant::now();
    let out = match stage {
        "cap" => measured_cap(cap().as_mut(), batches),
        "rollup" => measured_rollup(rollup(100_000).as_mut(), batches),
        // At most a tenth of the series held: the end-to-end run at 1M series.
        "rollup_full" => measured_rollup(rollup(chunks * 100).as_mut(), batches),
        "usage" => measured_usage(&UsageRecorder::new(), &batches, chunks, step_ns),
        "pipeline" => measured_pipeline(
            cap().as_mut(),
            rollup(100_000).as_mut(),
            &UsageRecorder::new(),
            batches,
        ),
        other => panic!("unknown stage {other}: cap, rollup, rollup_full, usage or pipeline"),
    };
    println!(
        "stage={stage} points={points} out_rows={out} elapsed_ms={}",
        started.elapsed().as_millis()
    );
}
