//! Sharing one object store between nodes: re-listing and per-partition positions.

mod common;

use std::sync::Arc;

use common::*;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use phoenix_model::config::StorageConfig;
use phoenix_model::edge::{AckToken, Delivery, EdgeError, EdgeReceiver};
use phoenix_storage::testing::metrics_batch;
use phoenix_storage::{position_dedup, stored_in_hour, Storage, HOUR_NANOS};

/// Position encoding of these tests: partition in the high 32 bits, next offset below.
fn split(p: u64) -> Option<(u32, u64)> {
    Some(((p >> 32) as u32, p & 0xffff_ffff))
}

fn pos(partition: u64, next: u64) -> u64 {
    (partition << 32) | next
}

/// Deliveries from a list, commits ignored.
struct Feed(Vec<Delivery>);

#[async_trait::async_trait]
impl EdgeReceiver for Feed {
    async fn recv(&mut self) -> Option<Delivery> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }
    async fn commit(&mut self, _upto: AckToken) -> Result<(), EdgeError> {
        Ok(())
    }
}

/// A second node's files appear after `refresh`, and files another node deleted go.
#[tokio::test]
async fn refresh_sees_other_nodes_files() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cfg = StorageConfig::default();
    let a = Storage::open_with_store(Arc::clone(&store), &cfg)
        .await
        .expect("a");
    let b = Storage::open_with_store(Arc::clone(&store), &cfg)
        .await
        .expect("b");
    let tb = b.table("metrics").expect("table");
    tb.append(metrics_batch(&points("cpu", "web", T0, 10)))
        .expect("append");
    tb.flush().await.expect("flush");
    let rollup = b.table("metrics_1m").expect("rollup");
    rollup
        .append(metrics_batch(&points("cpu", "web", T0, 3)))
        .expect("append");
    rollup.flush().await.expect("flush");

    assert!(a
        .table("metrics")
        .expect("metrics")
        .snapshot()
        .files
        .is_empty());
    assert_eq!(a.refresh().await.expect("refresh"), 2);
    assert_eq!(
        a.table("metrics").expect("metrics").snapshot().files.len(),
        1
    );
    assert_eq!(
        a.get_table("metrics_1m")
            .expect("found")
            .snapshot()
            .files
            .len(),
        1
    );
    assert_eq!(a.refresh().await.expect("refresh"), 0, "nothing new");

    tb.delete_files_older_than(i64::MAX).await.expect("delete");
    a.refresh().await.expect("refresh");
    assert!(a
        .table("metrics")
        .expect("metrics")
        .snapshot()
        .files
        .is_empty());
}

/// Files record per-partition positions; a new owner's sink edge drops rows of positions a
/// file holds, passes later ones, and for windowed tables drops windows up to the newest
/// stored one.
#[tokio::test]
async fn dedup_skips_what_files_hold() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cfg = StorageConfig::default();
    let storage = Storage::open_with_store(store, &cfg)
        .await
        .expect("storage");
    let table = storage.table("metrics").expect("table");
    table.set_position_split(split);
    let batch = |t: i64| metrics_batch(&points("cpu", "web", t, 2));
    table
        .append_acked(batch(T0), Some(pos(3, 5)))
        .expect("append");
    table
        .append_acked(batch(T0 + 10 * SEC), Some(pos(3, 6)))
        .expect("append");
    table
        .append_acked(batch(T0), Some(pos(1, 9)))
        .expect("append");
    table.flush().await.expect("flush");
    let hour = T0.div_euclid(HOUR_NANOS);
    let st = stored_in_hour(&table, hour, 3)
        .await
        .expect("lookup")
        .expect("stored");
    assert_eq!(st.next, 6);
    assert_eq!(st.max_time, T0 + 10 * SEC + SEC);

    let feed = |ds: Vec<(u64, i64)>| -> Box<dyn EdgeReceiver> {
        Box::new(Feed(
            ds.into_iter()
                .map(|(p, t)| Delivery {
                    batch: batch(t),
                    ack: AckToken(p),
                })
                .collect(),
        ))
    };
    // Plain table: positions 5 and 6 are stored, 7 is not (even with older times).
    let mut rx = position_dedup(
        table.clone(),
        feed(vec![(pos(3, 5), T0), (pos(3, 6), T0), (pos(3, 7), T0)]),
        3,
        false,
    );
    let mut rows = Vec::new();
    while let Some(d) = rx.recv().await {
        rows.push((d.ack.0, d.batch.num_rows()));
    }
    assert_eq!(rows, [(pos(3, 5), 0), (pos(3, 6), 0), (pos(3, 7), 2)]);
    // Windowed: position 7 rows at or before the newest stored time are dropped too.
    let mut rx = position_dedup(
        table.clone(),
        feed(vec![(pos(3, 7), T0 + 10 * SEC), (pos(3, 8), T0 + 20 * SEC)]),
        3,
        true,
    );
    let mut rows = Vec::new();
    while let Some(d) = rx.recv().await {
        rows.push(d.batch.num_rows());
    }
    assert_eq!(rows, [0, 2]);
    // Another partition is unaffected by partition 3's positions.
    let mut rx = position_dedup(table, feed(vec![(pos(2, 1), T0)]), 2, false);
    assert_eq!(rx.recv().await.expect("delivery").batch.num_rows(), 2);
}
