//! Integration tests against a real Kafka-protocol broker (nisshi, started by
//! `scripts/kafka-broker.sh`; `scripts/test.sh` sets `PHOENIX_KAFKA_BROKERS`). Tests that need
//! the broker skip with a message when the variable is unset.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use phoenix_bus::partition::partition_of;
use phoenix_bus::payload::{self, DLQ_REASON_HEADER, PRODUCER_HEADER, SCHEMA_VERSION_HEADER};
use phoenix_bus::testing::{metrics_batch, rows_of};
use phoenix_bus::topics::{ensure_topics, partition_count};
use phoenix_bus::{KafkaReceiver, KafkaSender, ReceiverOptions, Topics};
use phoenix_model::config::KafkaConfig;
use phoenix_model::{AckToken, Delivery, EdgeError, EdgeReceiver, EdgeSender};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Longest wait for anything the broker does (group joins take a few seconds).
const PATIENCE: Duration = Duration::from_secs(60);

/// Brokers under test, or `None` (with a message) when the tests should skip.
fn brokers() -> Option<String> {
    match std::env::var("PHOENIX_KAFKA_BROKERS") {
        Ok(b) if !b.trim().is_empty() => Some(b),
        _ => {
            eprintln!(
                "skipped: PHOENIX_KAFKA_BROKERS is unset (start a broker with \
                 scripts/kafka-broker.sh start PORT and export it)"
            );
            None
        }
    }
}

/// A config with topics and group unique to this test run.
fn config(brokers: &str, name: &str, partitions: u32) -> KafkaConfig {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut cfg = KafkaConfig {
        brokers: brokers.to_string(),
        topic_prefix: format!("t{nanos}.{name}."),
        partitions,
        group_id: format!("g{nanos}-{name}"),
        delivery_timeout_ms: 15_000,
        ..KafkaConfig::default()
    };
    cfg.properties
        .insert("session.timeout.ms".into(), "6000".into());
    cfg
}

async fn sender(cfg: &KafkaConfig) -> KafkaSender {
    KafkaSender::connect(cfg, Duration::from_secs(5), Duration::from_secs(1))
        .await
        .expect("sender connects")
}

async fn receiver(cfg: &KafkaConfig) -> KafkaReceiver {
    KafkaReceiver::connect(cfg, ReceiverOptions::default())
        .await
        .expect("receiver joins")
}

/// Next delivery within `wait`, or `None`.
async fn recv_within(rx: &mut KafkaReceiver, wait: Duration) -> Option<Delivery> {
    tokio::time::timeout(wait, rx.recv()).await.ok().flatten()
}

/// Receives until `want` rows arrived (or panics after [`PATIENCE`]); returns the deliveries.
async fn recv_rows(rx: &mut KafkaReceiver, want: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    let mut rows = 0;
    while rows < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let d = recv_within(rx, left)
            .await
            .unwrap_or_else(|| panic!("only {rows} of {want} rows arrived"));
        rows += d.batch.num_rows();
        got.push(d);
    }
    got
}

/// `(series_id, time)` rows for `series` series at `times` timestamps starting at `t0`.
fn grid(series: u64, times: i64, t0: i64) -> Vec<(u64, i64)> {
    let mut rows = Vec::new();
    for t in 0..times {
        for s in 0..series {
            rows.push((s.wrapping_mul(0x9E37_79B9_7F4A_7C15), t0 + t));
        }
    }
    rows
}

fn sorted(mut rows: Vec<(u64, i64)>) -> Vec<(u64, i64)> {
    rows.sort_unstable();
    rows
}

/// A plain consumer reading every partition of `topic` from the beginning (no group offsets).
fn raw_consumer(cfg: &KafkaConfig, topic: &str, partitions: i32) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", format!("{}-raw", cfg.group_id))
        .set("enable.auto.commit", "false")
        .create()
        .expect("raw consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// Batches sent to the ingest topic come back whole: the same rows, in the metrics schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip() {
    let Some(brokers) = brokers() else { return };
    let cfg = config(&brokers, "roundtrip", 4);
    let tx = sender(&cfg).await;
    assert_eq!(tx.partitions(), 4);
    let mut rx = receiver(&cfg).await;
    let mut sent = Vec::new();
    for i in 0..3 {
        let rows = grid(20, 5, i * 100);
        tx.send(metrics_batch(&rows)).await.expect("acknowledged");
        sent.extend(rows);
    }
    let got = recv_rows(&mut rx, sent.len()).await;
    let rows: Vec<(u64, i64)> = got.iter().flat_map(|d| rows_of(&d.batch)).collect();
    assert_eq!(sorted(rows), sorted(sent));
    assert!(got
        .iter()
        .all(|d| d.batch.schema() == phoenix_model::metrics_schema()));
    let last = got.iter().map(|d| d.ack).max().expect("deliveries");
    rx.commit(last).await.expect("commit");
    // Tokens increase in delivery order.
    assert!(got.windows(2).all(|w| w[0].ack < w[1].ack));
}

/// Every row is in the partition of its series, so each series has one writer and one reader;
/// messages carry the documented headers and decode with the documented format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_affinity() {
    let Some(brokers) = brokers() else { return };
    let cfg = config(&brokers, "affinity", 6);
    let tx = sender(&cfg).await;
    let rows = grid(50, 4, 1_000);
    for chunk in rows.chunks(37) {
        tx.send(metrics_batch(chunk)).await.expect("acknowledged");
    }
    let topic = Topics::new(&cfg.topic_prefix).ingest;
    let consumer = raw_consumer(&cfg, &topic, 6);
    let deadline = Instant::now() + PATIENCE;
    let mut seen: BTreeMap<u64, BTreeSet<i32>> = BTreeMap::new();
    let mut count = 0;
    while count < rows.len() {
        assert!(Instant::now() < deadline, "only {count} rows read back");
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.expect("message");
        let headers = m.headers().expect("headers");
        let header = |k: &str| {
            headers
                .iter()
                .find(|h| h.key == k)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header(SCHEMA_VERSION_HEADER).as_deref(), Some("1"));
        assert!(header(PRODUCER_HEADER).is_some_and(|p| p.contains(':')));
        let batch = payload::decode(m.payload()).expect("documented format");
        for (id, _) in rows_of(&batch) {
            assert_eq!(partition_of(id, 6), m.partition(), "series {id}");
            seen.entry(id).or_default().insert(m.partition());
        }
        count += batch.num_rows();
    }
    assert_eq!(count, rows.len());
    assert_eq!(seen.len(), 50);
    assert!(seen.values().all(|p| p.len() == 1));
    let used: BTreeSet<i32> = seen.values().flatten().copied().collect();
    assert!(used.len() > 1, "series spread over partitions: {used:?}");
}

/// After a consumer restart, exactly the messages after the last commit are delivered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivers_after_last_commit() {
    let Some(brokers) = brokers() else { return };
    let cfg = config(&brokers, "redeliver", 1);
    let tx = sender(&cfg).await;
    let batches: Vec<Vec<(u64, i64)>> = (0..5).map(|i| grid(3, 2, i * 10)).collect();
    for b in &batches {
        tx.send(metrics_batch(b)).await.expect("acknowledged");
    }
    let mut rx = receiver(&cfg).await;
    let got = recv_rows(&mut rx, 5 * 6).await;
    assert_eq!(got.len(), 5);
    rx.commit(got[2].ack).await.expect("commit");
    let status = rx.handle().monitor().partitions();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].pending, 2);
    drop(rx);

    let mut rx = receiver(&cfg).await;
    let again = recv_rows(&mut rx, 2 * 6).await;
    let rows: Vec<(u64, i64)> = again.iter().flat_map(|d| rows_of(&d.batch)).collect();
    let want: Vec<(u64, i64)> = batches[3..].concat();
    assert_eq!(rows, want);
    assert!(recv_within(&mut rx, Duration::from_secs(3)).await.is_none());
    let last = again.last().map(|d| d.ack).expect("deliveries");
    rx.commit(last).await.expect("commit");
    drop(rx);

    // Everything committed: a new member gets nothing.
    let mut rx = receiver(&cfg).await;
    assert!(recv_within(&mut rx, Duration::from_secs(8)).await.is_none());
}

/// A message that cannot be decoded goes to the dead-letter topic with a reason, processing
/// continues with the next message, and the poison is committed past (not redelivered), even
/// when `recv` is cancelled mid-way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_dead_letters() {
    let Some(brokers) = brokers() else { return };
    let cfg = config(&brokers, "poison", 1);
    ensure_topics(&cfg).await.expect("topics");
    let topics = Topics::new(&cfg.topic_prefix);
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .create()
        .expect("producer");
    raw.send(
        FutureRecord::<(), [u8]>::to(&topics.ingest)
            .partition(0)
            .payload(b"definitely not arrow".as_slice()),
        Duration::from_secs(10),
    )
    .await
    .expect("poison produced");
    let tx = sender(&cfg).await;
    let good = grid(2, 2, 0);
    tx.send(metrics_batch(&good)).await.expect("acknowledged");

    let mut rx = receiver(&cfg).await;
    // Receive with a tiny timeout, as a `select!` in a sink would: cancelled calls must not
    // lose the message while its dead letter is being produced.
    let deadline = Instant::now() + PATIENCE;
    let first = loop {
        if let Some(d) = recv_within(&mut rx, Duration::from_millis(1)).await {
            break d;
        }
        assert!(Instant::now() < deadline, "no poison delivery");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(first.batch.num_rows(), 0, "poison is delivered empty");
    let second = recv_within(&mut rx, PATIENCE).await.expect("next message");
    assert_eq!(rows_of(&second.batch), good);
    rx.commit(second.ack).await.expect("commit");

    let dlq = raw_consumer(&cfg, &topics.dlq, 1);
    let deadline = Instant::now() + PATIENCE;
    let letter = loop {
        assert!(Instant::now() < deadline, "no dead letter");
        if let Some(m) = dlq.poll(Duration::from_millis(200)) {
            break m.expect("dead letter").detach();
        }
    };
    assert_eq!(letter.payload(), Some(b"definitely not arrow".as_slice()));
    let reason = letter
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == DLQ_REASON_HEADER))
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .expect("reason header");
    assert!(reason.contains("Arrow IPC"), "{reason}");
    drop(rx);

    let mut rx = receiver(&cfg).await;
    assert!(recv_within(&mut rx, Duration::from_secs(8)).await.is_none());
}

/// Two members of one group split the partitions between them, and together receive every
/// row exactly once, each only from partitions it owns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_split_partitions() {
    let Some(brokers) = brokers() else { return };
    let cfg = config(&brokers, "group", 4);
    let tx = sender(&cfg).await;
    let mut a = receiver(&cfg).await;
    let mut b = receiver(&cfg).await;
    let (ma, mb) = (a.handle().monitor().clone(), b.handle().monitor().clone());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let pa: BTreeSet<i32> = ma.partitions().iter().map(|p| p.partition).collect();
        let pb: BTreeSet<i32> = mb.partitions().iter().map(|p| p.partition).collect();
        if !pa.is_empty() && !pb.is_empty() && pa.is_disjoint(&pb) && pa.len() + pb.len() == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "partitions not split: {pa:?} {pb:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows = grid(40, 3, 0);
    tx.send(metrics_batch(&rows)).await.expect("acknowledged");
    let owned = |m: &phoenix_bus::BusMonitor| -> BTreeSet<i32> {
        m.partitions().iter().map(|p| p.partition).collect()
    };
    let (pa, pb) = (owned(&ma), owned(&mb));
    let want_a = rows
        .iter()
        .filter(|(id, _)| pa.contains(&partition_of(*id, 4)))
        .count();
    let got_a = recv_rows(&mut a, want_a).await;
    let got_b = recv_rows(&mut b, rows.len() - want_a).await;
    let rows_a: Vec<(u64, i64)> = got_a.iter().flat_map(|d| rows_of(&d.batch)).collect();
    let rows_b: Vec<(u64, i64)> = got_b.iter().flat_map(|d| rows_of(&d.batch)).collect();
    assert!(rows_a
        .iter()
        .all(|(id, _)| pa.contains(&partition_of(*id, 4))));
    assert!(rows_b
        .iter()
        .all(|(id, _)| pb.contains(&partition_of(*id, 4))));
    assert_eq!(sorted([rows_a, rows_b].concat()), sorted(rows));
    for (rx, got) in [(&mut a, &got_a), (&mut b, &got_b)] {
        let last = got.iter().map(|d| d.ack).max().unwrap_or(AckToken(0));
        rx.commit(last).await.expect("commit");
    }
    assert!(ma.figures().contains_key("consumer_lag"));
}

/// Topics that exist keep their partition count; missing ones are created with the configured one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_missing_topics_once() {
    let Some(brokers) = brokers() else { return };
    let cfg = config(&brokers, "topics", 3);
    assert_eq!(ensure_topics(&cfg).await.expect("created"), 3);
    let more = KafkaConfig {
        partitions: 5,
        ..cfg.clone()
    };
    assert_eq!(ensure_topics(&more).await.expect("exists"), 3);
    let dlq = Topics::new(&cfg.topic_prefix).dlq;
    assert_eq!(partition_count(&cfg, &dlq).await.expect("dlq"), 1);
}

/// With no broker listening, a send fails with a retryable error once the delivery timeout
/// passes, so ingest answers 503/UNAVAILABLE instead of dropping data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_is_retryable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let cfg = KafkaConfig {
        brokers: format!("127.0.0.1:{port}"),
        delivery_timeout_ms: 1_500,
        ..KafkaConfig::default()
    };
    let tx = KafkaSender::new(
        &cfg,
        "phoenix.ingest",
        4,
        Duration::from_millis(500),
        Duration::from_secs(2),
    )
    .expect("sender");
    let err = tx
        .send(metrics_batch(&grid(5, 1, 0)))
        .await
        .expect_err("nothing acknowledges");
    assert!(err.is_retryable());
    assert!(
        matches!(err, EdgeError::Full { retry_after } if retry_after == Duration::from_secs(2))
    );
}

/// A member that loses partitions in a rebalance releases them only once what it delivered
/// from them is committed, so the next owner starts after it: nothing is delivered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_waits_for_commit_before_release() {
    let Some(brokers) = brokers() else { return };
    let cfg = config(&brokers, "revoke", 4);
    let tx = sender(&cfg).await;
    let first = grid(40, 2, 0);
    tx.send(metrics_batch(&first)).await.expect("acknowledged");
    let mut a = receiver(&cfg).await;
    let got_a = recv_rows(&mut a, first.len()).await;
    let last_a = got_a.iter().map(|d| d.ack).max().expect("deliveries");
    assert_eq!(a.handle().monitor().partitions().len(), 4);

    // B joins while A still holds uncommitted deliveries from every partition.
    let mut b = receiver(&cfg).await;
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let b_task = tokio::spawn(async move {
        while let Some(d) = b.recv().await {
            let ack = d.ack;
            if seen_tx.send(rows_of(&d.batch)).is_err() {
                break;
            }
            if b.commit(ack).await.is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(seen_rx.try_recv().is_err(), "B got data A has not released");
    a.commit(last_a).await.expect("commit while revoking");

    // Once released, B owns some partitions; new data is split, old data is never redelivered.
    let mb_deadline = Instant::now() + PATIENCE;
    let ma = a.handle().monitor().clone();
    while ma.partitions().len() == 4 {
        assert!(Instant::now() < mb_deadline, "A never released a partition");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let owned_a: BTreeSet<i32> = ma.partitions().iter().map(|p| p.partition).collect();
    let second = grid(40, 2, 1_000);
    tx.send(metrics_batch(&second)).await.expect("acknowledged");
    let want_a = second
        .iter()
        .filter(|(id, _)| owned_a.contains(&partition_of(*id, 4)))
        .count();
    let got_a2 = recv_rows(&mut a, want_a).await;
    let mut rows_b = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while rows_b.len() < second.len() - want_a {
        let left = deadline.saturating_duration_since(Instant::now());
        let rows = tokio::time::timeout(left, seen_rx.recv())
            .await
            .ok()
            .flatten()
            .expect("B receives its share");
        rows_b.extend(rows);
    }
    let rows_a: Vec<(u64, i64)> = got_a2.iter().flat_map(|d| rows_of(&d.batch)).collect();
    assert_eq!(sorted([rows_a, rows_b].concat()), sorted(second));
    b_task.abort();
}

/// Partitioned mode: deliveries carry `position(partition, offset)`; committing one partition
/// through the committer moves only that partition (a new member resumes there, and re-reads
/// the other partition from the start); a stale epoch's commit is ignored; a revocation calls
/// the hook instead of waiting for commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_commits_per_partition() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let Some(brokers) = brokers() else { return };
    let cfg = config(&brokers, "partitioned", 2);
    let tx = sender(&cfg).await;
    // Series 0, 2, 4 → partition 0; 1, 3, 5 → partition 1; one message per partition per send.
    for i in 0..3 {
        tx.send(metrics_batch(&grid(6, 1, i * 10)))
            .await
            .expect("acknowledged");
    }
    let mut rx = receiver(&cfg).await;
    let revoked = Arc::new(AtomicUsize::new(0));
    let seen = revoked.clone();
    rx.set_revoke_hook(phoenix_bus::RevokeHook(Box::new(move |parts: &[i32]| {
        seen.fetch_add(parts.len(), Ordering::SeqCst);
    })));
    let mut by_partition: BTreeMap<i32, Vec<(u64, u64)>> = BTreeMap::new();
    let deadline = Instant::now() + PATIENCE;
    while by_partition.values().map(Vec::len).sum::<usize>() < 6 {
        let left = deadline.saturating_duration_since(Instant::now());
        let r = tokio::time::timeout(left, rx.recv_partitioned())
            .await
            .expect("in time")
            .expect("open");
        let (p, next) = phoenix_bus::split_position(r.delivery.ack.0).expect("a position");
        assert_eq!(p as i32, r.partition);
        by_partition
            .entry(r.partition)
            .or_default()
            .push((r.epoch, next));
    }
    for (p, msgs) in &by_partition {
        let nexts: Vec<u64> = msgs.iter().map(|m| m.1).collect();
        assert_eq!(nexts, [1, 2, 3], "partition {p}: offsets 0..3 in order");
    }
    let committer = rx.committer();
    let epoch0 = by_partition[&0][0].0;
    committer
        .commit(epoch0 + 1000, phoenix_bus::position(0, 2))
        .await
        .expect("a stale epoch is ignored");
    committer
        .commit(epoch0, phoenix_bus::position(0, 1))
        .await
        .expect("commit");
    let status = rx.handle().monitor().partitions();
    assert_eq!(
        status
            .iter()
            .find(|s| s.partition == 0)
            .and_then(|s| s.committed),
        Some(2)
    );
    assert_eq!(
        status
            .iter()
            .find(|s| s.partition == 1)
            .and_then(|s| s.committed),
        None
    );
    drop(rx);
    assert_eq!(
        revoked.load(Ordering::SeqCst),
        0,
        "closing is not a revocation to stop graphs"
    );

    // A new member: partition 0 resumes at offset 2, partition 1 from the start.
    let mut rx = receiver(&cfg).await;
    let mut again: BTreeMap<i32, usize> = BTreeMap::new();
    let deadline = Instant::now() + PATIENCE;
    while again.values().sum::<usize>() < 4 {
        let left = deadline.saturating_duration_since(Instant::now());
        let r = tokio::time::timeout(left, rx.recv_partitioned())
            .await
            .expect("in time")
            .expect("open");
        *again.entry(r.partition).or_default() += 1;
    }
    assert_eq!(again, BTreeMap::from([(0, 1), (1, 3)]));
}
