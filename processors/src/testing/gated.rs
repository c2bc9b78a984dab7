//! A stateful test processor whose checkpoints are written only when the test lets them, so
//! a test can hold a save in flight.

use std::io::Write;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::processor::{Processor, StateSnapshot};
use crate::{Error, Result};

/// How long a snapshot waits for the gate before it fails (a test that never opens it).
const GATE_WAIT: Duration = Duration::from_secs(10);

/// Holds every batch it gets and emits nothing until flushed; its state is the number of
/// batches held. Each snapshot reports that number on `started`, then waits for one `()` on
/// the gate before writing it.
pub(crate) struct Gated {
    since: Option<u64>,
    held: u64,
    /// Whether it offers snapshots (without, the stage writes its checkpoint in place).
    snapshots: bool,
    gate: Arc<Mutex<Receiver<()>>>,
    started: UnboundedSender<u64>,
}

/// The test's side of a [`Gated`]: opens the gate once per save, hears saves start.
pub(crate) struct Gate {
    /// One `()` lets one snapshot write.
    pub open: Sender<()>,
    /// The state (batches held) each snapshot took, as it starts writing.
    pub started: UnboundedReceiver<u64>,
}

impl Gate {
    /// The state the next save took, once it starts writing; panics after 5 s without one.
    pub(crate) async fn next_save(&mut self) -> u64 {
        tokio::time::timeout(Duration::from_secs(5), self.started.recv())
            .await
            .expect("a save starts in time")
            .expect("the processor is alive")
    }
}

impl Gated {
    /// A processor holding nothing, offering snapshots when `snapshots`, and its gate.
    pub(crate) fn new(snapshots: bool) -> (Gated, Gate) {
        let (open, gate) = channel();
        let (tx, started) = unbounded_channel();
        let p = Gated {
            since: None,
            held: 0,
            snapshots,
            gate: Arc::new(Mutex::new(gate)),
            started: tx,
        };
        (p, Gate { open, started })
    }
}

impl Processor for Gated {
    fn process(&mut self, _batch: RecordBatch) -> Result<RecordBatch> {
        unreachable!("the stage calls process_at")
    }

    fn process_at(&mut self, batch: RecordBatch, position: u64) -> Result<RecordBatch> {
        self.since.get_or_insert(position);
        self.held += 1;
        Ok(batch.slice(0, 0))
    }

    fn held_since(&self) -> Option<u64> {
        self.since
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        self.since = None;
        self.held = 0;
        Ok(None)
    }

    fn checkpoint(&self, out: &mut dyn Write) -> Option<Result<()>> {
        Some(
            out.write_all(&self.held.to_le_bytes())
                .map_err(|e| Error::Checkpoint(e.to_string())),
        )
    }

    fn snapshot(&self) -> Option<StateSnapshot> {
        if !self.snapshots {
            return None;
        }
        let (held, gate, started) = (self.held, self.gate.clone(), self.started.clone());
        Some(Box::new(move |out: &mut dyn Write| {
            // The test may have stopped listening; the save goes on regardless.
            let _ = started.send(held);
            let gate = gate.lock().map_err(|e| Error::Checkpoint(e.to_string()))?;
            gate.recv_timeout(GATE_WAIT)
                .map_err(|e| Error::Checkpoint(format!("gate: {e}")))?;
            out.write_all(&held.to_le_bytes())
                .map_err(|e| Error::Checkpoint(e.to_string()))
        }))
    }
}
