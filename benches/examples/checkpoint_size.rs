//! Size and encode time of the default rollup's checkpoint over loadgen-shaped traffic:
//!
//! ```text
//! cargo run --release -p phoenix-benches --example checkpoint_size [chunks] [scrapes]
//! ```
//!
//! `chunks` requests of 1,000 datapoints make one scrape of `chunks × 1,000` series; `scrapes`
//! scrapes 10 s apart are fed before the checkpoint is taken.

use std::time::Instant;

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (chunks, scrapes) = (arg(1, 100), arg(2, 3));
    let config = phoenix_model::Config::load(None, &[]).expect("embedded default");
    let params = &config.pipeline.processors["rollup_1m"].params;
    let mut rollup = phoenix_processors::build_processor("rollup_1m", params).expect("builds");
    let base = 1_700_000_000_000_000_000;
    let batches = phoenix_benches::loadgen_batches(chunks, scrapes, base, 10_000_000_000);
    let points: usize = batches.iter().map(|b| b.num_rows()).sum();
    for (i, b) in batches.into_iter().enumerate() {
        rollup.process_at(b, i as u64 + 1).expect("processes");
    }
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let mut out = Vec::new();
        rollup
            .checkpoint(&mut out)
            .expect("keeps checkpoints")
            .expect("encodes");
        bytes = out.len();
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let series = chunks * 1_000;
    println!(
        "{{\"series\": {series}, \"points\": {points}, \"checkpoint_bytes\": {bytes}, \"bytes_per_series\": {:.1}, \"encode_ms_median\": {:.1}}}",
        bytes as f64 / series as f64,
        times[1]
    );
}
