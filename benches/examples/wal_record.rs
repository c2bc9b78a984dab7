//! Size and encode time of WAL record payloads, per codec, on loadgen-shaped batches
//! (20 batches of 1,000 gauges); the best of 7 passes:
//!
//! ```text
//! cargo run --release -p phoenix-benches --example wal_record
//! ```

use std::time::Instant;

use phoenix_wal::{encode_batch, Codec};

fn main() {
    let batches = phoenix_benches::loadgen_batches(20, 1, 1_700_000_000_000_000_000, 0);
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    for codec in [Codec::Lz4, Codec::Zstd] {
        let mut bytes = 0;
        let mut best = f64::MAX;
        for _ in 0..7 {
            let start = Instant::now();
            bytes = batches
                .iter()
                .map(|b| encode_batch(b, codec).expect("encodes").len())
                .sum::<usize>();
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "{codec:?}: {:.1} bytes per row, {:.0} µs per 1,000 rows",
            bytes as f64 / rows as f64,
            best * 1e9 / rows as f64
        );
    }
}
