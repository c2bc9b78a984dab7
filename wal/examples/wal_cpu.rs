//! CPU cost of WAL writes, direct (`O_DIRECT`) against buffered.
//!
//! Appends ~1 GiB of 120 KB source records (the size of an OTLP request body under load) from
//! concurrent appenders, so the writer group-commits, and prints one JSON line: wall time, the
//! process's user and system CPU, the WAL writer thread's on-CPU time, and the whole machine's
//! busy CPU (which also counts page-cache writeback and reclaim on kernel threads).
//!
//! `cargo run -p phoenix-wal --release --example wal_cpu -- direct|buffered [DIR] [MIB] [APPENDERS]`
//! (DIR defaults to the system temp folder; it must not be a tmpfs for a fair test. Few
//! appenders make small groups: more syncs per byte.)

use std::sync::Arc;
use std::time::Instant;

use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use phoenix_wal::{Codec, Wal, WalOptions};

/// Bytes of one record body.
const RECORD: usize = 120 * 1024;
/// Appends in flight by default: groups of many records.
const APPENDERS: usize = 16;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let direct_io = match args.next().as_deref() {
        Some("direct") => true,
        Some("buffered") => false,
        _ => return Err("usage: wal_cpu direct|buffered [DIR] [MIB] [APPENDERS]".into()),
    };
    let base = args.next().map_or_else(std::env::temp_dir, Into::into);
    let mib: usize = args.next().map_or(Ok(1024), |m| m.parse())?;
    let appenders: usize = args.next().map_or(Ok(APPENDERS), |a| a.parse())?;
    let dir = tempfile::tempdir_in(base)?;
    let opened = Wal::open(WalOptions {
        dir: dir.path().to_path_buf(),
        segment_bytes: 64 << 20,
        max_bytes: u64::MAX,
        codec: Codec::Lz4,
        sources: None,
        direct_io,
    })?;
    let wal = opened.wal;
    // Incompressible-looking bytes; the WAL copies them as they are.
    let body: bytes::Bytes = (0..RECORD)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![0]))])?;
    let records = mib * (1 << 20) / RECORD;

    let (proc_before, machine_before) = (proc_cpu()?, machine_busy()?);
    let started = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|a| {
            let (wal, body, batch) = (wal.clone(), body.clone(), batch.clone());
            tokio::spawn(async move {
                for _ in (a..records).step_by(appenders) {
                    wal.append_source_then(&batch, vec![1], body.clone(), |_| {})
                        .await?;
                }
                Ok::<_, phoenix_wal::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let wall = started.elapsed().as_secs_f64();
    let wal_thread_ns = wal_thread_cpu_ns()?;
    let (proc_after, machine_after) = (proc_cpu()?, machine_busy()?);
    println!(
        "{{\"mode\":\"{}\",\"mib\":{},\"appenders\":{},\"wall_s\":{:.2},\"user_s\":{:.2},\"sys_s\":{:.2},\"cpu_s\":{:.2},\"wal_thread_s\":{:.2},\"machine_busy_s\":{:.2}}}",
        if direct_io { "direct" } else { "buffered" },
        (records * RECORD) >> 20,
        appenders,
        wall,
        proc_after.0 - proc_before.0,
        proc_after.1 - proc_before.1,
        (proc_after.0 + proc_after.1) - (proc_before.0 + proc_before.1),
        wal_thread_ns as f64 / 1e9,
        machine_after - machine_before,
    );
    Ok(())
}

/// `USER_HZ`: the unit of `/proc` CPU times, 100 on Linux.
const TICK: f64 = 0.01;

/// The process's (user, system) CPU seconds from `/proc/self/stat`.
fn proc_cpu() -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which ends with the last ')'; utime and stime are the
    // 14th and 15th fields overall, the 12th and 13th after it.
    let rest = stat.rsplit_once(')').ok_or("odd /proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: f64 = fields.get(11).ok_or("no utime")?.parse()?;
    let sys: f64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok((user * TICK, sys * TICK))
}

/// On-CPU nanoseconds of the `phoenix-wal` writer thread, from its `schedstat`.
fn wal_thread_cpu_ns() -> Result<u64, Box<dyn std::error::Error>> {
    for task in std::fs::read_dir("/proc/self/task")? {
        let path = task?.path();
        if std::fs::read_to_string(path.join("comm"))?.trim() == "phoenix-wal" {
            let schedstat = std::fs::read_to_string(path.join("schedstat"))?;
            let ns = schedstat
                .split_whitespace()
                .next()
                .ok_or("empty schedstat")?;
            return Ok(ns.parse()?);
        }
    }
    Err("no phoenix-wal thread".into())
}

/// Busy CPU seconds of the whole machine (all but idle and iowait) from `/proc/stat`.
fn machine_busy() -> Result<f64, Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().ok_or("empty /proc/stat")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq (then steal, guest: not this machine's work).
    let busy: u64 = ticks.iter().take(7).sum::<u64>()
        - ticks.get(3).copied().unwrap_or(0)
        - ticks.get(4).copied().unwrap_or(0);
    Ok(busy as f64 * TICK)
}
