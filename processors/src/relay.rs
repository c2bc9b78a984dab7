//! Commit relay: how acknowledgements travel back up the graph.
//!
//! Every edge inside the graph carries, for each delivery the entry edge made, exactly one
//! delivery with the same ack token (a stage forwards an empty batch when its processor
//! dropped everything), so tokens mean the same thing on every edge and increase along each.
//! A consumer's `commit(upto)` on such an edge is recorded in a commit slot; the producing
//! stage takes the minimum over all its output slots — the position every consumer has made
//! durable — and commits that on its own input. The entry edge therefore releases WAL records
//! only once every sink downstream has stored them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use phoenix_model::{AckToken, Delivery, EdgeError, EdgeReceiver};
use tokio::sync::Notify;

use crate::memory_edge::{memory_edge, MemoryReceiver, MemorySender};

/// Admission timeout of edges inside the graph, which stages never use (see [`CommitRelay::edge`]).
const UNUSED_TIMEOUT: Duration = Duration::from_secs(3600);

/// What one consumer has committed on one edge.
#[derive(Debug)]
struct CommitSlot {
    committed: Mutex<Option<AckToken>>,
    /// The consumer dropped its receiver: no further commit will come.
    closed: AtomicBool,
    /// Shared by every slot of one producer: wakes the producer.
    wake: Arc<Notify>,
}

impl CommitSlot {
    fn get(&self) -> Option<AckToken> {
        *self.committed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn commit(&self, upto: AckToken) {
        {
            let mut c = self.committed.lock().unwrap_or_else(|e| e.into_inner());
            if c.is_some_and(|c| c >= upto) {
                return;
            }
            *c = Some(upto);
        }
        self.wake.notify_one();
    }
}

/// The producer's view of its output edges' commits.
#[derive(Debug, Default)]
pub(crate) struct CommitRelay {
    slots: Vec<Arc<CommitSlot>>,
    wake: Arc<Notify>,
}

impl CommitRelay {
    /// A new output edge of this producer: bounded like every in-memory edge, its receiver
    /// reporting commits here.
    pub(crate) fn edge(&mut self, name: &str, capacity: usize) -> (MemorySender, RelayReceiver) {
        // Stages wait for room without a deadline (backpressure reaches the entry edge, which
        // refuses clients after its admission timeout), so these durations are never used.
        let (tx, rx) = memory_edge(name, capacity, UNUSED_TIMEOUT, UNUSED_TIMEOUT);
        let slot = Arc::new(CommitSlot {
            committed: Mutex::new(None),
            closed: AtomicBool::new(false),
            wake: self.wake.clone(),
        });
        self.slots.push(slot.clone());
        (tx, RelayReceiver { inner: rx, slot })
    }

    /// The position every consumer has committed (`None` until each has committed once).
    pub(crate) fn committed(&self) -> Option<AckToken> {
        let mut min: Option<AckToken> = None;
        for s in &self.slots {
            let c = s.get()?;
            min = Some(min.map_or(c, |m| m.min(c)));
        }
        min
    }

    /// Whether every consumer has dropped its receiver.
    pub(crate) fn all_closed(&self) -> bool {
        self.slots.iter().all(|s| s.closed.load(Ordering::Acquire))
    }

    /// Resolves when a consumer committed or closed since the last call.
    pub(crate) async fn changed(&self) {
        self.wake.notified().await;
    }
}

/// Reading end of an edge inside the graph: deliveries as on a [`MemoryReceiver`], commits
/// reported to the producing stage.
#[derive(Debug)]
pub struct RelayReceiver {
    inner: MemoryReceiver,
    slot: Arc<CommitSlot>,
}

#[async_trait]
impl EdgeReceiver for RelayReceiver {
    async fn recv(&mut self) -> Option<Delivery> {
        self.inner.recv().await
    }

    async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError> {
        self.slot.commit(upto);
        Ok(())
    }
}

impl Drop for RelayReceiver {
    fn drop(&mut self) {
        self.slot.closed.store(true, Ordering::Release);
        self.slot.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay reports the minimum over consumers, only once all have committed, and sees
    /// consumers close.
    #[tokio::test]
    async fn minimum_over_consumers() {
        let mut relay = CommitRelay::default();
        let (_tx1, mut rx1) = relay.edge("a", 4);
        let (_tx2, mut rx2) = relay.edge("b", 4);
        assert_eq!(relay.committed(), None);
        rx1.commit(AckToken(5)).await.expect("commit");
        relay.changed().await;
        assert_eq!(relay.committed(), None, "b has not committed");
        rx2.commit(AckToken(3)).await.expect("commit");
        assert_eq!(relay.committed(), Some(AckToken(3)));
        rx2.commit(AckToken(9)).await.expect("commit");
        assert_eq!(relay.committed(), Some(AckToken(5)));
        rx1.commit(AckToken(4))
            .await
            .expect("a lower commit is ignored");
        assert_eq!(relay.committed(), Some(AckToken(5)));
        assert!(!relay.all_closed());
        drop(rx1);
        assert!(!relay.all_closed());
        drop(rx2);
        assert!(relay.all_closed());
        assert_eq!(
            relay.committed(),
            Some(AckToken(5)),
            "closing keeps the last commit"
        );
    }
}
