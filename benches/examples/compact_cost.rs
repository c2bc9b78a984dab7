//! CPU cost of compaction against the flush that wrote its inputs, per million datapoints:
//! flushes `files` files shaped like the end-to-end run's (100,000 loadgen series × 5 points,
//! random values, 500k rows each) into an in-memory store, then compacts their hour.
//!
//! ```text
//! cargo run --release -p phoenix-benches --example compact_cost -- [files] [compaction zstd level] [lz4|zstd]
//! ```
//!
//! The third argument is the flush codec (`storage.flush_compression`, default lz4); a fourth,
//! `flush-only`, skips the compaction (for counting the flush's instructions under callgrind).
//!
//! The end-to-end benchmark runs for a minute, before any hour is compacted; this prices the
//! work each stored datapoint costs later, when its hour is merged.

use std::sync::Arc;
use std::time::Instant;

use object_store::memory::InMemory;
use phoenix_benches::{loadgen_batches, with_random_values};
use phoenix_model::config::FlushCompression;
use phoenix_storage::Storage;

// As `phoenix serve` allocates (glibc malloc costs far more in the Parquet paths).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BASE_NS: u64 = 1_700_000_000_000_000_000;
/// Rows of one flush: 100 loadgen requests of 1,000 series, 5 points each.
const SCRAPES: usize = 5;
const STEP_NS: i64 = 100_000_000;

/// This process's user + system CPU seconds (`/proc/self/stat`, in USER_HZ = 100 ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

fn main() {
    let files: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut config = phoenix_model::config::StorageConfig {
        url: "memory://".into(),
        ..Default::default()
    };
    if let Some(level) = std::env::args().nth(2).and_then(|s| s.parse().ok()) {
        config.compaction.zstd_level = level;
    }
    match std::env::args().nth(3).as_deref() {
        Some("zstd") => config.flush_compression = FlushCompression::Zstd,
        Some("lz4") | None => config.flush_compression = FlushCompression::Lz4,
        Some(other) => panic!("flush codec {other:?}: lz4 or zstd"),
    }
    let flush_only = std::env::args().nth(4).as_deref() == Some("flush-only");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let storage = Storage::open_with_store(Arc::new(InMemory::new()), &config)
            .await
            .expect("storage");
        let table = storage.table("metrics").expect("table");
        let span = SCRAPES as i64 * STEP_NS;
        let (mut flush_cpu, mut rows, mut flushed_bytes) = (0.0, 0_u64, 0_u64);
        for f in 0..files {
            let at = BASE_NS + (f as i64 * span) as u64;
            let input = with_random_values(&loadgen_batches(100, SCRAPES, at, STEP_NS), f as u64);
            let cpu = cpu_seconds();
            for batch in input {
                rows += batch.num_rows() as u64;
                table.append(batch).expect("append");
            }
            flushed_bytes += table.flush().await.expect("flush").bytes;
            flush_cpu += cpu_seconds() - cpu;
        }
        let hours = if flush_only {
            Vec::new()
        } else {
            table.compaction_candidates(i64::MAX)
        };
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        let mut compacted_bytes = 0;
        for hour in hours {
            if let Some(report) = table.compact_hour(hour).await.expect("compact") {
                compacted_bytes += report.bytes_after;
            }
        }
        let compact_cpu = cpu_seconds() - cpu;
        let m = rows as f64 / 1e6;
        println!(
            "{{\"rows\":{rows},\"files\":{files},\"flush_compression\":\"{:?}\",\"compaction_zstd_level\":{},\"flush_cpu_s_per_m\":{:.3},\"compact_cpu_s_per_m\":{:.3},\"compact_wall_s\":{:.2},\"flushed_bytes_per_row\":{:.2},\"compacted_bytes_per_row\":{:.2}}}",
            config.flush_compression,
            config.compaction.zstd_level,
            flush_cpu / m,
            compact_cpu / m,
            wall.elapsed().as_secs_f64(),
            flushed_bytes as f64 / rows as f64,
            compacted_bytes as f64 / rows as f64,
        );
    });
}
