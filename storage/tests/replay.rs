//! Per-sink replay deduplication: a sink's edge drops replayed rows its own table holds.

mod common;

use common::*;
use phoenix_model::edge::{AckToken, Delivery};
use phoenix_storage::{dedup_receiver, Storage};

/// Two tables flushed to different positions: each wrapped edge drops exactly the replayed
/// rows its table holds (per hour), keeps positions and commits, and passes later deliveries.
#[tokio::test]
async fn each_table_skips_only_what_it_stored() {
    let storage = Storage::open(&cfg("memory://")).await.expect("open");
    let ahead = storage.table("ahead").expect("table");
    let behind = storage.table("behind").expect("table");
    // Records 1 and 2 in hour 0, record 3 spans hours 0 and 1.
    let records = vec![
        (1, batch("cpu", "web", T0, 5)),
        (2, batch("cpu", "web", T0 + 60 * SEC, 5)),
        (3, batch("cpu", "web", T0 + 3590 * SEC, 20)),
    ];
    // `ahead` stored records 1..=2; `behind` stored record 1 only.
    for (pos, b) in &records[..2] {
        ahead.append_acked(b.clone(), Some(*pos)).expect("append");
    }
    ahead.flush().await.expect("flush");
    behind
        .append_acked(records[0].1.clone(), Some(1))
        .expect("append");
    behind.flush().await.expect("flush");

    for (table, expect_rows) in [(&ahead, [0, 0, 20, 7]), (&behind, [0, 5, 20, 7])] {
        let (tx, edge) = test_edge(8);
        let commits = edge.commits.clone();
        let mut rx = dedup_receiver(table, &records, Box::new(edge))
            .await
            .expect("wrap");
        for (pos, b) in &records {
            tx.send(Delivery {
                batch: b.clone(),
                ack: AckToken(*pos),
            })
            .await
            .expect("send");
        }
        tx.send(Delivery {
            batch: batch("cpu", "web", T0, 7),
            ack: AckToken(4),
        })
        .await
        .expect("send");
        let mut got = Vec::new();
        for pos in 1..=4 {
            let d = rx.recv().await.expect("delivery");
            assert_eq!(d.ack, AckToken(pos), "positions kept");
            got.push(d.batch.num_rows());
        }
        assert_eq!(got, expect_rows, "table {}", table.name());
        rx.commit(AckToken(4)).await.expect("commit");
        assert_eq!(*commits.lock().expect("lock"), vec![4]);
    }
}

/// With nothing to replay the edge is returned as is.
#[tokio::test]
async fn nothing_to_replay_passes_through() {
    let storage = Storage::open(&cfg("memory://")).await.expect("open");
    let table = storage.table("metrics").expect("table");
    let (tx, edge) = test_edge(2);
    let mut rx = dedup_receiver(&table, &[], Box::new(edge))
        .await
        .expect("wrap");
    tx.send(Delivery {
        batch: batch("cpu", "web", T0, 3),
        ack: AckToken(1),
    })
    .await
    .expect("send");
    assert_eq!(rx.recv().await.expect("delivery").batch.num_rows(), 3);
}
