//! Checkpoints end to end through the graph: the WAL lets go of what a rollup's checkpoint
//! covers, and a crash loses and doubles nothing of it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::tests::{open, wal_records};
use super::*;
use crate::checkpoint::{Checkpoints, Resume};
use crate::testing::{batch, Row};
use arrow::array::{AsArray, Float64Array};
use arrow::record_batch::RecordBatch;
use phoenix_model::config::Config;
use phoenix_model::schema::col;
use phoenix_model::AckToken;

const ROLLUP: &str = r#"
pipeline:
  processors:
    rollup: { type: aggregate, inputs: [otlp], window: 60s, allowed_lateness: 10s }
  sinks:
    metrics: { inputs: [otlp] }
    rollup_1m: { inputs: [rollup] }
"#;

/// Opens the WAL under `dir/wal` and builds `config`'s graph on it with checkpoints under
/// `dir/checkpoints` every 20 ms, as `phoenix serve` does; also returns the checkpoints and the
/// records to replay.
fn start(dir: &Path, config: &Config) -> (Graph, Checkpoints, Vec<(u64, RecordBatch)>) {
    let opened = open(&dir.join("wal"));
    let store = Checkpoints::new(
        dir.join("checkpoints"),
        Duration::from_millis(20),
        Resume::after(&opened),
    );
    let graph =
        Graph::build_checkpointed(config, Some(opened.wal), None, None, Some(store.clone()))
            .expect("builds");
    (graph, store, opened.replay)
}

/// Polls `cond` for up to 5 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Start of the minute 10 minutes ago: a window well inside the accepted time range.
fn window_start() -> i64 {
    let now = crate::delta::wall_clock_ns();
    let minute = 60_000_000_000;
    now - now.rem_euclid(minute) - 10 * minute
}

/// Batch `n` (1-based): three points of each of two series, all in the window at `w`.
fn points(w: i64, n: i64) -> Vec<Row> {
    (0..3)
        .flat_map(|i| {
            let t = w + (n * 3 + i) * 1_000_000_000;
            [
                Row::gauge("cpu", "a", t, (n * 10 + i) as f64),
                Row::gauge("cpu", "b", t, -((n * 10 + i) as f64)),
            ]
        })
        .collect()
}

/// The exact `(count, sum)` per service over batches `ns`, computed from the points.
fn exact(w: i64, ns: std::ops::RangeInclusive<i64>) -> BTreeMap<String, (f64, f64)> {
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for n in ns {
        for p in points(w, n) {
            let e = out.entry(p.service.clone()).or_default();
            e.0 += 1.0;
            e.1 += p.value.unwrap_or(f64::NAN);
        }
    }
    out
}

/// `(cpu.count, cpu.sum)` per service in rollup rows.
fn rolled(batches: &[RecordBatch]) -> BTreeMap<String, (f64, f64)> {
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for b in batches {
        let metric = b
            .column_by_name(col::METRIC)
            .expect("metric")
            .as_string::<i32>();
        let service = b
            .column_by_name(col::SERVICE)
            .expect("service")
            .as_string::<i32>();
        let value = b
            .column_by_name(col::VALUE)
            .expect("value")
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("f64");
        for i in 0..b.num_rows() {
            let e = out.entry(service.value(i).to_string()).or_default();
            match metric.value(i) {
                "cpu.count" => e.0 += value.value(i),
                "cpu.sum" => e.1 += value.value(i),
                _ => {}
            }
        }
    }
    out
}

fn sink_rx(graph: &mut Graph, table: &str) -> Box<dyn EdgeReceiver> {
    let at = graph
        .sinks
        .iter()
        .position(|s| s.table == table)
        .expect("sink exists");
    graph.sinks.remove(at).rx
}

/// Kill -9, as far as a test can: the stage tasks stop where they are, no state is flushed,
/// nothing more is committed.
async fn crash(graph: Graph, sinks: Vec<Box<dyn EdgeReceiver>>) {
    for s in &graph.stages {
        s.abort();
    }
    for s in graph.stages {
        let _ = s.await;
    }
    drop(sinks);
    drop(graph.ingress);
    // Let the WAL writer thread see its last handle go.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// A rollup's checkpoint lets the WAL release records whose points still sit in an open
/// window; after a crash, the restored state plus the replay (whose first records the
/// checkpoint already covers) emit the window with exactly every point once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_checkpoint_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal_dir = dir.path().join("wal");
    let config = Config::from_yaml("t", ROLLUP, &[]).expect("config");
    let w = window_start();

    // First run: batches 1–3 stored raw and committed; the window stays open.
    let (mut graph, probe, _) = start(dir.path(), &config);
    let (mut raw, mut roll) = (
        sink_rx(&mut graph, "metrics"),
        sink_rx(&mut graph, "rollup_1m"),
    );
    for n in 1..=3 {
        graph
            .ingress
            .send(batch(&points(w, n)))
            .await
            .expect("room");
    }
    for n in 1..=3 {
        assert_eq!(raw.recv().await.expect("raw").ack, AckToken(n));
        let d = roll.recv().await.expect("rollup");
        assert_eq!(
            (d.ack, d.batch.num_rows()),
            (AckToken(n), 0),
            "window still open"
        );
    }
    raw.commit(AckToken(3)).await.expect("commit");
    roll.commit(AckToken(3)).await.expect("commit");
    eventually("the checkpoint covers 3 and the WAL is empty", || {
        wal_records(&wal_dir) == 0
    })
    .await;
    assert_eq!(
        probe.load("rollup").expect("load").map(|s| s.position),
        Some(3)
    );

    // Batches 4–5: the rollup's consumer commits them (nothing to store), the raw table
    // does not, so the WAL keeps them, and the checkpoint moves on to cover them.
    for n in 4..=5 {
        graph
            .ingress
            .send(batch(&points(w, n)))
            .await
            .expect("room");
    }
    for n in 4..=5 {
        assert_eq!(raw.recv().await.expect("raw").ack, AckToken(n));
        assert_eq!(roll.recv().await.expect("rollup").ack, AckToken(n));
    }
    roll.commit(AckToken(5)).await.expect("commit");
    eventually("the checkpoint covers 5", || {
        probe.load("rollup").ok().flatten().map(|s| s.position) == Some(5)
    })
    .await;
    assert_eq!(
        wal_records(&wal_dir),
        2,
        "records 4 and 5 wait for the raw table"
    );
    crash(graph, vec![raw, roll]).await;

    // Restart: replay 4–5 (the raw table needs them), which the restored state already holds.
    let (mut graph, _, replay) = start(dir.path(), &config);
    let positions: Vec<u64> = replay.iter().map(|(s, _)| *s).collect();
    assert_eq!(positions, [4, 5]);
    let (mut raw, mut roll) = (
        sink_rx(&mut graph, "metrics"),
        sink_rx(&mut graph, "rollup_1m"),
    );
    graph.replay(replay).await.expect("replay");
    graph
        .ingress
        .send(batch(&points(w, 6)))
        .await
        .expect("room");
    let stages = std::mem::take(&mut graph.stages);
    drop(graph);
    let raw_task = tokio::spawn(async move {
        let mut acks = Vec::new();
        while let Some(d) = raw.recv().await {
            acks.push(d.ack.0);
        }
        if let Some(&last) = acks.last() {
            raw.commit(AckToken(last)).await.expect("commit");
        }
        acks
    });
    let mut out = Vec::new();
    let mut last = None;
    while let Some(d) = roll.recv().await {
        last = Some(d.ack);
        out.push(d.batch);
    }
    roll.commit(last.expect("deliveries"))
        .await
        .expect("commit");
    drop(roll);
    assert_eq!(raw_task.await.expect("raw sink"), [4, 5, 6]);
    for s in stages {
        tokio::time::timeout(Duration::from_secs(5), s)
            .await
            .expect("stage ends")
            .expect("stage task");
    }
    assert_eq!(rolled(&out), exact(w, 1..=6), "every point exactly once");
    assert_eq!(
        probe.load("rollup").expect("load"),
        None,
        "a clean shutdown emitted the state, so no checkpoint is left"
    );
}

/// Runs `config` on the WAL and checkpoints under `dir`, sends the batches `ns`, lets both
/// sinks commit them, and waits until a checkpoint covers the last one and the WAL is empty.
async fn checkpointed_run(
    dir: &Path,
    config: &Config,
    w: i64,
    ns: std::ops::RangeInclusive<i64>,
) -> Graph {
    let (mut graph, store, _) = start(dir, config);
    let (mut raw, mut roll) = (
        sink_rx(&mut graph, "metrics"),
        sink_rx(&mut graph, "rollup_1m"),
    );
    let last = *ns.end();
    for n in ns {
        graph
            .ingress
            .send(batch(&points(w, n)))
            .await
            .expect("room");
        raw.recv().await.expect("raw");
        roll.recv().await.expect("rollup");
    }
    raw.commit(AckToken(last as u64)).await.expect("commit");
    roll.commit(AckToken(last as u64)).await.expect("commit");
    eventually(
        "the checkpoint covers everything and the WAL is empty",
        || {
            wal_records(&dir.join("wal")) == 0
                && store.load("rollup").ok().flatten().map(|s| s.position) == Some(last as u64)
        },
    )
    .await;
    graph.sinks.push(SinkEdge {
        table: "metrics".into(),
        rx: raw,
    });
    graph.sinks.push(SinkEdge {
        table: "rollup_1m".into(),
        rx: roll,
    });
    graph
}

/// A checkpoint written under other parameters (the window changed across a crash) is
/// closed out as it was configured: its windows are emitted with the old window length, not
/// lost and not reinterpreted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_parameters_emit_the_old_windows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = window_start();
    let config = Config::from_yaml("t", ROLLUP, &[]).expect("config");
    let graph = checkpointed_run(dir.path(), &config, w, 1..=3).await;
    crash(graph, Vec::new()).await;

    let changed = Config::from_yaml("t", &ROLLUP.replace("window: 60s", "window: 120s"), &[])
        .expect("config");
    let (mut graph, _, replay) = start(dir.path(), &changed);
    assert!(
        replay.is_empty(),
        "the checkpoint let the WAL go of everything"
    );
    let mut roll = sink_rx(&mut graph, "rollup_1m");
    // The carried rows go out first, with the checkpoint's position.
    graph.ingress.send(batch(&[])).await.expect("room");
    let d = roll.recv().await.expect("delivery");
    assert_eq!(
        rolled(std::slice::from_ref(&d.batch)),
        exact(w, 1..=3),
        "the old windows, exactly"
    );
    let times = d.batch.column_by_name(col::TIME).expect("time");
    let times = times.as_primitive::<arrow::datatypes::TimestampNanosecondType>();
    assert!(
        times.iter().all(|t| t == Some(w)),
        "stamped with the old 60 s window"
    );
}

/// A checkpoint that joins the WAL but does not decode does not keep the server from
/// starting: it is moved aside (kept for inspection) and the graph runs without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrestorable_checkpoint_is_set_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = window_start();
    let config = Config::from_yaml("t", ROLLUP, &[]).expect("config");
    let graph = checkpointed_run(dir.path(), &config, w, 1..=2).await;
    crash(graph, Vec::new()).await;
    let ck_dir = dir.path().join("checkpoints");
    let file = ck_dir.join("rollup.ckpt");
    let opened = open(&dir.path().join("wal"));
    let store = Checkpoints::new(&ck_dir, Duration::from_millis(20), Resume::after(&opened));
    let mut saved = store.load("rollup").expect("load").expect("written");
    saved.state.truncate(saved.state.len() / 2);
    store.save("rollup", &saved).expect("save");

    let graph = Graph::build_checkpointed(&config, Some(opened.wal), None, None, Some(store))
        .expect("builds despite the checkpoint");
    assert!(!file.exists(), "moved away");
    assert!(
        ck_dir.join("rollup.ckpt.unrestorable").exists(),
        "kept aside"
    );
    crash(graph, Vec::new()).await;
}

/// A restored state with nothing after it to replay is still emitted at a clean shutdown,
/// with the position the checkpoint covers, and its file is then removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_state_without_input_is_emitted_at_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = window_start();
    let config = Config::from_yaml("t", ROLLUP, &[]).expect("config");
    let graph = checkpointed_run(dir.path(), &config, w, 1..=3).await;
    crash(graph, Vec::new()).await;

    let (mut graph, store, replay) = start(dir.path(), &config);
    assert!(replay.is_empty());
    let mut roll = sink_rx(&mut graph, "rollup_1m");
    let stages = std::mem::take(&mut graph.stages);
    drop(graph);
    let d = roll.recv().await.expect("the shutdown flush");
    assert_eq!(d.ack, AckToken(3));
    assert_eq!(rolled(std::slice::from_ref(&d.batch)), exact(w, 1..=3));
    roll.commit(d.ack).await.expect("commit");
    assert!(roll.recv().await.is_none(), "nothing more");
    drop(roll);
    for s in stages {
        tokio::time::timeout(Duration::from_secs(5), s)
            .await
            .expect("stage ends")
            .expect("stage task");
    }
    assert_eq!(store.load("rollup").expect("load"), None, "file removed");
}
