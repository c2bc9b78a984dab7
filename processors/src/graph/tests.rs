//! Graph tests: shapes built from config, fan-out and fan-in delivery, and the commit relay
//! releasing the WAL only once every sink has committed.

use std::path::Path;
use std::time::Duration;

use phoenix_model::config::Config;
use phoenix_model::{metrics_schema, AckToken, Delivery};
use phoenix_wal::{Opened, Wal, WalOptions};

use super::*;
use crate::testing::{batch, rows, Row};

fn config(pipeline_yaml: &str) -> Config {
    Config::from_yaml("t", &format!("pipeline:\n{pipeline_yaml}"), &[]).expect("valid config")
}

/// The WAL in `dir`, one record per segment file: the file count is the number of records held.
pub(super) fn open(dir: &Path) -> Opened {
    Wal::open(WalOptions {
        dir: dir.to_path_buf(),
        segment_bytes: 1,
        max_bytes: 1 << 30,
        codec: phoenix_wal::Codec::default(),
        sources: None,
        direct_io: false,
    })
    .expect("open wal")
}

fn open_wal(dir: &Path) -> Wal {
    open(dir).wal
}

/// WAL records still on disk.
pub(super) fn wal_records(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("wal dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "wal"))
        // An empty file only marks where numbering resumes after a full release.
        .filter(|e| e.metadata().is_ok_and(|m| m.len() > 0))
        .count()
}

/// Waits (bounded) until the WAL holds `n` records.
async fn wait_records(dir: &Path, n: usize) {
    for _ in 0..500 {
        if wal_records(dir) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("WAL holds {} records, expected {n}", wal_records(dir));
}

fn sink<'a>(graph: &'a mut Graph, table: &str) -> &'a mut Box<dyn EdgeReceiver> {
    &mut graph
        .sinks
        .iter_mut()
        .find(|s| s.table == table)
        .expect("sink exists")
        .rx
}

async fn recv(rx: &mut Box<dyn EdgeReceiver>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("delivery in time")
        .expect("edge open")
}

fn mixed(n: i64) -> Vec<Row> {
    (0..n)
        .map(|i| {
            Row::gauge(
                if i % 2 == 0 {
                    "debug.x"
                } else {
                    "http.requests"
                },
                "s",
                i,
                i as f64,
            )
        })
        .collect()
}

/// The default config builds exactly today's shape: no stage, one `metrics` sink reading the
/// entry edge, whose commits release the WAL directly.
#[tokio::test]
async fn default_graph_is_entry_edge_to_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut graph =
        Graph::build(&Config::default(), Some(open_wal(dir.path())), None).expect("builds");
    assert!(graph.stages.is_empty());
    assert_eq!(graph.sinks.len(), 1);
    assert_eq!(graph.sinks[0].table, DEFAULT_TABLE);
    graph.ingress.send(batch(&mixed(4))).await.expect("room");
    graph.ingress.send(batch(&mixed(2))).await.expect("room");
    let rx = &mut graph.sinks[0].rx;
    assert_eq!(recv(rx).await.ack, AckToken(1));
    let d = recv(rx).await;
    assert_eq!((d.ack, d.batch.num_rows()), (AckToken(2), 2));
    assert_eq!(wal_records(dir.path()), 2);
    rx.commit(AckToken(2)).await.expect("commit");
    wait_records(dir.path(), 0).await;
}

/// Without a WAL the default graph still feeds `metrics` from an in-memory entry edge.
#[tokio::test]
async fn default_graph_without_wal() {
    let mut graph = Graph::build(&Config::default(), None, None).expect("builds");
    graph
        .ingress
        .send(arrow::record_batch::RecordBatch::new_empty(metrics_schema()))
        .await
        .expect("room");
    let got = recv(&mut graph.sinks[0].rx).await;
    assert_eq!(got.batch.schema(), metrics_schema());
}

const FAN_OUT: &str = r#"
  processors:
    no_debug: { type: filter, inputs: [otlp], drop: { metric: ["debug.*"] } }
  sinks:
    filtered: { inputs: [no_debug] }
    raw: { inputs: [otlp] }
"#;

/// Fan-out with a WAL at the head: both sinks get every delivery with the same tokens (an
/// empty one when the filter dropped everything), and WAL records are released only once
/// BOTH sinks committed them, up to the lower of the two commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_releases_wal_after_every_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut graph =
        Graph::build(&config(FAN_OUT), Some(open_wal(dir.path())), None).expect("builds");
    assert_eq!(graph.stages.len(), 2, "receivers' fan-out and the filter");
    let inputs = [
        mixed(6),
        vec![Row::gauge("debug.only", "s", 1, 1.0)],
        mixed(3),
    ];
    for rows in &inputs {
        graph.ingress.send(batch(rows)).await.expect("room");
    }
    for (i, input) in inputs.iter().enumerate() {
        let token = AckToken(i as u64 + 1);
        let raw = recv(sink(&mut graph, "raw")).await;
        assert_eq!((raw.ack, rows(&raw.batch)), (token, input.clone()));
        let filtered = recv(sink(&mut graph, "filtered")).await;
        let expected: Vec<Row> = input
            .iter()
            .filter(|r| !r.metric.starts_with("debug."))
            .cloned()
            .collect();
        assert_eq!((filtered.ack, rows(&filtered.batch)), (token, expected));
    }
    assert_eq!(wal_records(dir.path()), 3);

    sink(&mut graph, "filtered")
        .commit(AckToken(3))
        .await
        .expect("commit");
    // Give the relay time to (wrongly) release; then a WAL append orders after any release.
    tokio::time::sleep(Duration::from_millis(200)).await;
    graph.ingress.send(batch(&mixed(1))).await.expect("room");
    assert_eq!(
        wal_records(dir.path()),
        4,
        "nothing released while `raw` has not committed"
    );

    sink(&mut graph, "raw")
        .commit(AckToken(2))
        .await
        .expect("commit");
    wait_records(dir.path(), 2).await;
    sink(&mut graph, "raw")
        .commit(AckToken(4))
        .await
        .expect("commit");
    wait_records(dir.path(), 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        wal_records(dir.path()),
        1,
        "`filtered` committed only up to 3 of 4"
    );
    let _ = recv(sink(&mut graph, "filtered")).await;
    sink(&mut graph, "filtered")
        .commit(AckToken(4))
        .await
        .expect("commit");
    wait_records(dir.path(), 0).await;
}

const FAN_IN: &str = r#"
  processors:
    http: { type: filter, inputs: [otlp], keep: { metric: ["http.*"] } }
    debug: { type: filter, inputs: [otlp], keep: { metric: ["debug.*"] } }
    tagged: { type: attributes, inputs: [debug], actions: [{ hash: [k] }] }
  sinks:
    merged: { inputs: [http, tagged] }
"#;

/// Fan-in: two branches merge into one sink, one delivery per entry delivery with its token;
/// rows of both branches arrive, and the sink's commit releases the WAL through both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_merges_in_lockstep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut graph =
        Graph::build(&config(FAN_IN), Some(open_wal(dir.path())), None).expect("builds");
    for n in [4, 5] {
        graph.ingress.send(batch(&mixed(n))).await.expect("room");
    }
    for (i, n) in [4i64, 5].into_iter().enumerate() {
        let d = recv(sink(&mut graph, "merged")).await;
        assert_eq!(d.ack, AckToken(i as u64 + 1));
        let mut got: Vec<i64> = rows(&d.batch).iter().map(|r| r.time_ns).collect();
        got.sort_unstable();
        assert_eq!(
            got,
            (0..n).collect::<Vec<_>>(),
            "every row once, from both branches"
        );
    }
    sink(&mut graph, "merged")
        .commit(AckToken(2))
        .await
        .expect("commit");
    wait_records(dir.path(), 0).await;
}

/// Shutdown: once the entry edge closes, stages drain and end after the sinks drop their
/// edges, and the sinks' last commits still reach the WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_relays_final_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut graph =
        Graph::build(&config(FAN_OUT), Some(open_wal(dir.path())), None).expect("builds");
    for _ in 0..3 {
        graph.ingress.send(batch(&mixed(2))).await.expect("room");
    }
    let stages = std::mem::take(&mut graph.stages);
    let (ingress, sinks) = graph.into_parts();
    drop(ingress);
    let mut tasks = Vec::new();
    for mut s in sinks {
        tasks.push(tokio::spawn(async move {
            let mut last = None;
            while let Some(d) = s.rx.recv().await {
                last = Some(d.ack);
            }
            if let Some(t) = last {
                s.rx.commit(t).await.expect("commit");
            }
            last
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("sink task"), Some(AckToken(3)));
    }
    for s in stages {
        tokio::time::timeout(Duration::from_secs(5), s)
            .await
            .expect("stage ends")
            .expect("stage task");
    }
    wait_records(dir.path(), 0).await;
}

/// An invalid pipeline is refused with every problem in the message.
#[tokio::test]
async fn invalid_pipeline_is_refused() {
    let mut c = config(FAN_OUT);
    c.pipeline.sinks.insert(
        "orphaned".into(),
        phoenix_model::pipeline::SinkConfig {
            inputs: vec!["nope".into()],
        },
    );
    match Graph::build(&c, None, None) {
        Err(Error::Config(msg)) => {
            assert!(msg.contains("pipeline.sinks.orphaned.inputs[0]"), "{msg}")
        }
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(_) => panic!("expected a config error"),
    }
}

/// Usage accounting through a fan-out graph: every row entering counts as in, each sink's
/// rows count as out (both tables), and the filter's rows as dropped, per metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_in_out_and_dropped() {
    let usage = crate::UsageRecorder::new();
    let mut graph = Graph::build(&config(FAN_OUT), None, Some(usage.clone())).expect("builds");
    let input = mixed(10);
    graph.ingress.send(batch(&input)).await.expect("room");
    let _ = recv(sink(&mut graph, "raw")).await;
    let _ = recv(sink(&mut graph, "filtered")).await;
    let out = usage
        .drain(None, |_| 0.0)
        .expect("drains")
        .expect("one minute");
    let metric = out
        .column_by_name("metric")
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
        .expect("metric");
    let u = |name: &str| {
        out.column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::UInt64Array>())
            .expect("u64 column")
            .values()
            .to_vec()
    };
    assert_eq!(metric.value(0), "debug.x");
    assert_eq!(metric.value(1), "http.requests");
    // 5 points each; debug.x reaches only `raw`, http.requests both sinks.
    assert_eq!(u("datapoints_in"), vec![5, 5]);
    assert_eq!(u("datapoints_out"), vec![5, 10]);
    assert_eq!(u("datapoints_dropped"), vec![5, 0]);
    assert_eq!(u("series_in"), vec![1, 1]);
}

/// An external entry edge that records the commits it receives.
struct RecordingEntry {
    inner: crate::memory_edge::MemoryReceiver,
    commits: std::sync::Arc<std::sync::Mutex<Vec<AckToken>>>,
}

#[async_trait::async_trait]
impl EdgeReceiver for RecordingEntry {
    async fn recv(&mut self) -> Option<Delivery> {
        self.inner.recv().await
    }

    async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError> {
        self.commits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(upto);
        Ok(())
    }
}

/// A graph built on an external entry edge (as the Kafka `process` role does) routes that
/// edge's deliveries to every sink and relays a commit back to it only once every sink
/// committed; its own ingress refuses batches.
#[tokio::test]
async fn external_entry_edge_feeds_sinks_and_gets_commits() {
    let (tx, rx) = memory_edge(
        "external",
        8,
        Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let commits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let entry = RecordingEntry {
        inner: rx,
        commits: commits.clone(),
    };
    let mut graph =
        Graph::build_with_entry(&config(FAN_OUT), Box::new(entry), None).expect("builds");
    let refused = graph.ingress.send(batch(&mixed(1))).await;
    assert!(matches!(refused, Err(EdgeError::Closed)));
    tx.send(batch(&mixed(4))).await.expect("room");
    for table in ["filtered", "raw"] {
        let d = recv(sink(&mut graph, table)).await;
        assert_eq!(d.ack, AckToken(1));
    }
    let seen =
        |c: &std::sync::Mutex<Vec<AckToken>>| c.lock().map(|v| v.clone()).unwrap_or_default();
    sink(&mut graph, "raw")
        .commit(AckToken(1))
        .await
        .expect("commit");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(seen(&commits).is_empty(), "one sink is not enough");
    sink(&mut graph, "filtered")
        .commit(AckToken(1))
        .await
        .expect("commit");
    for _ in 0..500 {
        if seen(&commits) == [AckToken(1)] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("entry edge got commits {:?}", seen(&commits));
}
