//! A stage: one task that reads its input edge, runs its processor and writes every output
//! edge, and relays its consumers' commits back to its input.

use std::time::{Duration, SystemTime};

use arrow::record_batch::RecordBatch;
use phoenix_model::{AckToken, Delivery, EdgeReceiver};
use tracing::Instrument;

use crate::checkpoint::StageCheckpoint;
use crate::memory_edge::MemorySender;
use crate::metrics::{dropped, DATAPOINTS_IN, DATAPOINTS_OUT, REASON_ERROR};
use crate::processor::Processor;
use crate::relay::CommitRelay;
use crate::usage::UsageRecorder;

/// How often a stage calls [`Processor::tick`].
pub(crate) const TICK_EVERY: Duration = Duration::from_secs(1);

/// Positions whose data a tick emitted with an older token: not committed upstream until
/// every consumer has committed past `until` (so has stored what the tick sent, edges being
/// in order).
#[derive(Debug, Clone, Copy)]
struct TickPin {
    /// Lowest position the tick's rows came from.
    held: u64,
    /// The token they were sent with.
    until: AckToken,
}

/// One output edge of a stage.
pub(crate) struct Output {
    /// Consumer id (for logs).
    pub consumer: String,
    /// The edge.
    pub tx: MemorySender,
}

/// A stage ready to run.
pub(crate) struct Stage {
    /// Processor id (or `otlp` for the receivers' fan-out).
    pub id: String,
    /// Processor type (`fanout` for the receivers' fan-out).
    pub type_name: String,
    /// `None`: forward batches unchanged (the receivers' output feeding several consumers).
    pub processor: Option<Box<dyn Processor>>,
    /// Where batches come from.
    pub input: Box<dyn EdgeReceiver>,
    /// Where they go; every output gets every batch.
    pub outputs: Vec<Output>,
    /// Commits of the outputs' consumers.
    pub relay: CommitRelay,
    /// Usage accounting of deliberately dropped rows.
    pub usage: Option<UsageRecorder>,
    /// How often the processor is ticked ([`TICK_EVERY`]; shorter in tests).
    pub tick_every: Duration,
    /// Where the processor's state is saved, so upstream need not keep what it holds.
    pub checkpoint: Option<StageCheckpoint>,
}

/// Waits for `checkpoint`'s save in flight to end and records it (see
/// [`StageCheckpoint::settle`]).
async fn settle(checkpoint: &mut Option<StageCheckpoint>) {
    if let Some(ck) = checkpoint {
        ck.settle().await;
    }
}

/// Per-stage counters, resolved once.
struct Counters {
    datapoints_in: metrics::Counter,
    datapoints_out: metrics::Counter,
    errors: metrics::Counter,
}

impl Stage {
    /// Runs until the input is drained and every consumer has dropped its edge, relaying
    /// commits all along (so the final flushes of the sinks still release the WAL).
    pub(crate) async fn run(self) {
        let span = tracing::info_span!("processor", id = %self.id, r#type = %self.type_name);
        self.run_inner().instrument(span).await;
    }

    async fn run_inner(mut self) {
        let counters = Counters {
            datapoints_in: metrics::counter!(DATAPOINTS_IN, "processor" => self.id.clone()),
            datapoints_out: metrics::counter!(DATAPOINTS_OUT, "processor" => self.id.clone()),
            errors: dropped(&self.id, REASON_ERROR),
        };
        tracing::debug!(outputs = self.outputs.len(), "Stage started.");
        let mut open = true;
        let mut relayed: Option<AckToken> = None;
        // Emissions of held state not yet committed downstream: (token sent with, oldest
        // position held before). Until consumers commit the token, the rows exist only in
        // flight, so the input may not be committed past that position.
        let mut emitted: std::collections::VecDeque<(AckToken, u64)> = Default::default();
        // Position of the last delivery read; the shutdown flush is sent with it.
        let mut last: Option<AckToken> = None;
        // Set once the shutdown flush emitted rows: the consumers' earlier commits may already
        // cover `last`, so nothing more is committed until they have all stored and closed.
        let mut final_pending = false;
        let mut pin: Option<TickPin> = None;
        // Token of the last delivery whose output had rows: until consumers commit it, some
        // output exists only in flight, and a checkpoint must not cover its input.
        let mut last_output: Option<AckToken> = None;
        let mut ticker = tokio::time::interval(self.tick_every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ticking = self.processor.is_some();
        let every = self
            .checkpoint
            .as_ref()
            .map_or(Duration::from_secs(3600), StageCheckpoint::interval);
        let mut saver = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        saver.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let saving = self.checkpoint.is_some();
        // A restored state may be emitted (on a tick, at shutdown) before any delivery: its
        // rows go out with the position the checkpoint covers.
        if let Some(at) = self
            .checkpoint
            .as_ref()
            .and_then(StageCheckpoint::restored_at)
        {
            last = Some(AckToken(at));
            if let Some(carried) = self.checkpoint.as_mut().and_then(|c| c.carried.take()) {
                counters.datapoints_out.increment(carried.num_rows() as u64);
                last_output = Some(AckToken(at));
                if !self.send_all(carried, AckToken(at)).await {
                    tracing::warn!("Every consumer is gone; stage stops reading.");
                    open = false;
                }
            }
        }
        loop {
            if !open && self.relay.all_closed() {
                break;
            }
            let in_flight = self
                .checkpoint
                .as_ref()
                .is_some_and(StageCheckpoint::saving);
            tokio::select! {
                biased;
                () = self.relay.changed() => {}
                // A save written off this task: once durable, the commits below may pass what
                // it covers.
                () = settle(&mut self.checkpoint), if in_flight => {}
                _ = ticker.tick(), if open && ticking => {
                    self.tick(last, &mut pin, &counters).await;
                }
                _ = saver.tick(), if open && saving => {
                    let stored = self.relay.committed();
                    let quiet = pin.is_none()
                        && emitted.is_empty()
                        && last_output.is_none_or(|o| stored.is_some_and(|c| c >= o));
                    self.save_checkpoint(last, quiet).await;
                }
                delivery = self.input.recv(), if open => match delivery {
                    Some(d) => {
                        last = Some(d.ack);
                        if !self.forward(d, &counters, &mut emitted, &mut last_output).await {
                            tracing::warn!("Every consumer is gone; stage stops reading.");
                            open = false;
                        }
                    }
                    None => {
                        open = false;
                        final_pending = self.flush_state(last, &counters).await;
                        // Dropping the senders closes the consumers' edges once drained.
                        self.outputs.clear();
                    }
                },
            }
            if !final_pending {
                self.relay_commits(&mut relayed, &mut pin, &mut emitted)
                    .await;
            }
        }
        // Every consumer stored everything and closed: no pin is needed any more.
        self.relay_commits(&mut relayed, &mut None, &mut Default::default())
            .await;
        // What the state held was flushed and stored: its checkpoint covers nothing now.
        let drained = self
            .processor
            .as_ref()
            .is_none_or(|p| p.held_since().is_none());
        if let Some(ck) = self.checkpoint.as_mut() {
            // No save outlives the stage, writing its file after the stage is gone.
            ck.settle().await;
            if drained {
                ck.clear().await;
            }
        }
        tracing::debug!("Stage stopped.");
    }

    /// Processes one delivery and sends the result, with the delivery's token, to every
    /// output. Returns false when no output is left.
    async fn forward(
        &mut self,
        d: Delivery,
        counters: &Counters,
        emitted: &mut std::collections::VecDeque<(AckToken, u64)>,
        last_output: &mut Option<AckToken>,
    ) -> bool {
        let skip = self.checkpoint.as_ref().is_some_and(|c| c.skips(d.ack.0));
        let batch = match self.processor.as_mut() {
            None => d.batch,
            // Replayed, and already in the restored state; what it sent then is stored.
            Some(_) if skip => d.batch.slice(0, 0),
            Some(p) => {
                let held_before = p.held_since();
                let rows = d.batch.num_rows() as u64;
                counters.datapoints_in.increment(rows);
                let schema = d.batch.schema();
                let out = p.process_at(d.batch, d.ack.0).unwrap_or_else(|error| {
                    tracing::error!(%error, rows, "Processor failed; dropping the batch.");
                    counters.errors.increment(rows);
                    RecordBatch::new_empty(schema)
                });
                if let (Some(dropped), Some(usage)) = (p.take_dropped(), &self.usage) {
                    usage.record_dropped(&dropped);
                }
                counters.datapoints_out.increment(out.num_rows() as u64);
                if let (Some(held), true) = (held_before, out.num_rows() > 0) {
                    emitted.push_back((d.ack, held));
                }
                out
            }
        };
        if batch.num_rows() > 0 {
            *last_output = Some(d.ack);
        }
        self.send_all(batch, d.ack).await
    }

    /// Saves the processor's state as covering the input up to `last`, when `quiet` (every
    /// output sent is stored downstream).
    async fn save_checkpoint(&mut self, last: Option<AckToken>, quiet: bool) {
        let (Some(last), true) = (last, quiet) else {
            return;
        };
        let holds = self
            .processor
            .as_deref()
            .is_some_and(|p| p.held_since().is_some());
        let Some(ck) = self.checkpoint.as_mut() else {
            return;
        };
        // One save at a time; the next tick after it ends decides again.
        if ck.saving() {
            return;
        }
        if !holds {
            return ck.clear().await;
        }
        if let Some(p) = self.processor.as_deref() {
            ck.save(p, last.0);
        }
    }

    /// Ticks the processor; sends what it emits downstream with the last delivery's token and
    /// pins the positions it came from until the consumers have stored it.
    async fn tick(
        &mut self,
        last: Option<AckToken>,
        pin: &mut Option<TickPin>,
        counters: &Counters,
    ) {
        let Some(p) = self.processor.as_mut() else {
            return;
        };
        let held = p.held_since();
        let out = match p.tick(SystemTime::now()) {
            Ok(Some(out)) if out.num_rows() > 0 => out,
            Ok(_) => return,
            Err(error) => {
                tracing::error!(%error, "Processor tick failed.");
                return;
            }
        };
        let Some(last) = last else {
            // Nothing was read yet, so nothing can be held: a processor bug.
            tracing::warn!(
                rows = out.num_rows(),
                "Tick emitted rows before any input; dropped."
            );
            return;
        };
        let from = held.unwrap_or(last.0).min(last.0);
        *pin = Some(match *pin {
            Some(old) => TickPin {
                held: old.held.min(from),
                until: old.until.max(last),
            },
            None => TickPin {
                held: from,
                until: last,
            },
        });
        if let Some(ck) = self.checkpoint.as_mut() {
            ck.state_changed();
        }
        tracing::debug!(rows = out.num_rows(), "Emitting state on the idle tick.");
        counters.datapoints_out.increment(out.num_rows() as u64);
        self.send_all(out, last).await;
    }

    /// At shutdown: emits what the processor still holds, with the last delivery's token.
    /// Returns whether anything was sent.
    async fn flush_state(&mut self, last: Option<AckToken>, counters: &Counters) -> bool {
        let (Some(p), Some(last)) = (self.processor.as_mut(), last) else {
            return false;
        };
        let out = match p.flush() {
            Ok(Some(out)) if out.num_rows() > 0 => out,
            Ok(_) => return false,
            Err(error) => {
                tracing::error!(%error, "Processor failed to flush its state at shutdown.");
                return false;
            }
        };
        tracing::info!(rows = out.num_rows(), "Emitting held state at shutdown.");
        counters.datapoints_out.increment(out.num_rows() as u64);
        self.send_all(out, last).await;
        true
    }

    /// Sends `batch` with token `ack` to every output, dropping outputs whose consumer is
    /// gone. Returns false when no output is left.
    async fn send_all(&mut self, batch: RecordBatch, ack: AckToken) -> bool {
        // Every output gets the delivery, even an empty one, so its token reaches the sinks
        // and comes back as a commit.
        let mut i = 0;
        while i < self.outputs.len() {
            match self.outputs[i].tx.reserve_unbounded_wait().await {
                Ok(permit) => {
                    permit.send(batch.clone(), Some(ack.0));
                    i += 1;
                }
                Err(_closed) => {
                    let gone = self.outputs.swap_remove(i);
                    tracing::warn!(consumer = %gone.consumer, "Consumer is gone; its output is dropped.");
                }
            }
        }
        !self.outputs.is_empty()
    }

    /// Commits on the input what every consumer has committed, once it advanced, but never
    /// a position whose data the processor still holds or a tick sent and is not stored yet.
    async fn relay_commits(
        &mut self,
        relayed: &mut Option<AckToken>,
        pin: &mut Option<TickPin>,
        emitted: &mut std::collections::VecDeque<(AckToken, u64)>,
    ) {
        let Some(mut upto) = self.relay.committed() else {
            return;
        };
        if pin.is_some_and(|p| upto > p.until) {
            *pin = None;
        }
        // Held state emitted by `forward` is pinned until the consumers stored its token.
        while emitted.front().is_some_and(|&(token, _)| token <= upto) {
            emitted.pop_front();
        }
        let in_flight = emitted.iter().map(|&(_, held)| held).min();
        let held = self.processor.as_ref().and_then(|p| p.held_since());
        let held = [held, pin.map(|p| p.held), in_flight]
            .into_iter()
            .flatten()
            .min()
            // What a checkpoint covers is replayed from it, not from upstream.
            .map(|h| self.checkpoint.as_ref().map_or(h, |c| c.uncovered(h)));
        if let Some(held) = held {
            match held.checked_sub(1) {
                Some(before) if before < upto.0 => upto = AckToken(before),
                Some(_) => {}
                None => return,
            }
        }
        if relayed.is_some_and(|r| r >= upto) {
            return;
        }
        match self.input.commit(upto).await {
            Ok(()) => *relayed = Some(upto),
            // A later commit covers this position too.
            Err(error) => tracing::warn!(%error, upto = upto.0, "Commit relay failed; will retry."),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use arrow::compute::concat_batches;
    use async_trait::async_trait;
    use phoenix_model::{metrics_schema, EdgeError, EdgeSender};

    use super::*;
    use crate::checkpoint::{Checkpoints, Resume};
    use crate::memory_edge::{memory_edge, MemoryReceiver};
    use crate::testing::gated::Gated;
    use crate::testing::{batch, Row};

    /// Holds every batch until it has seen `release_after` of them, then emits them all.
    struct HoldBack {
        held: Vec<RecordBatch>,
        since: Option<u64>,
        release_after: usize,
    }

    impl Processor for HoldBack {
        fn process(&mut self, _batch: RecordBatch) -> crate::Result<RecordBatch> {
            unreachable!("the stage calls process_at")
        }

        fn process_at(&mut self, batch: RecordBatch, position: u64) -> crate::Result<RecordBatch> {
            self.since.get_or_insert(position);
            self.held.push(batch);
            if self.held.len() < self.release_after {
                return Ok(RecordBatch::new_empty(metrics_schema()));
            }
            self.since = None;
            Ok(concat_batches(
                &metrics_schema(),
                &std::mem::take(&mut self.held),
            )?)
        }

        fn held_since(&self) -> Option<u64> {
            self.since
        }

        fn flush(&mut self) -> crate::Result<Option<RecordBatch>> {
            self.since = None;
            let held = std::mem::take(&mut self.held);
            Ok(Some(concat_batches(&metrics_schema(), &held)?))
        }
    }

    /// Holds every batch; each tick emits what is held.
    #[derive(Default)]
    struct TickRelease {
        held: Vec<RecordBatch>,
        since: Option<u64>,
    }

    impl Processor for TickRelease {
        fn process(&mut self, _batch: RecordBatch) -> crate::Result<RecordBatch> {
            unreachable!("the stage calls process_at")
        }

        fn process_at(&mut self, batch: RecordBatch, position: u64) -> crate::Result<RecordBatch> {
            self.since.get_or_insert(position);
            self.held.push(batch);
            Ok(RecordBatch::new_empty(metrics_schema()))
        }

        fn held_since(&self) -> Option<u64> {
            self.since
        }

        fn tick(&mut self, _now: std::time::SystemTime) -> crate::Result<Option<RecordBatch>> {
            if self.held.is_empty() {
                return Ok(None);
            }
            self.since = None;
            let held = std::mem::take(&mut self.held);
            Ok(Some(concat_batches(&metrics_schema(), &held)?))
        }
    }

    /// The stage's input, recording what the stage commits on it.
    struct Recording {
        inner: MemoryReceiver,
        commits: Arc<Mutex<Vec<u64>>>,
    }

    #[async_trait]
    impl EdgeReceiver for Recording {
        async fn recv(&mut self) -> Option<Delivery> {
            self.inner.recv().await
        }
        async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError> {
            self.commits.lock().expect("lock").push(upto.0);
            Ok(())
        }
    }

    /// A running stage around `processor`, fed by `tx`, with what it commits upstream recorded
    /// in `commits` and its one consumer `out_rx`.
    fn spawn_stage(
        processor: Box<dyn Processor>,
        tick_every: Duration,
    ) -> (
        crate::memory_edge::MemorySender,
        Arc<Mutex<Vec<u64>>>,
        crate::relay::RelayReceiver,
        tokio::task::JoinHandle<()>,
    ) {
        spawn_checkpointed(processor, tick_every, None)
    }

    /// As [`spawn_stage`], saving the processor's state through `checkpoint`.
    fn spawn_checkpointed(
        processor: Box<dyn Processor>,
        tick_every: Duration,
        checkpoint: Option<StageCheckpoint>,
    ) -> (
        crate::memory_edge::MemorySender,
        Arc<Mutex<Vec<u64>>>,
        crate::relay::RelayReceiver,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = memory_edge("in", 8, Duration::from_secs(1), Duration::from_secs(1));
        let commits = Arc::new(Mutex::new(Vec::new()));
        let mut relay = CommitRelay::default();
        let (out_tx, out_rx) = relay.edge("out", 8);
        let stage = Stage {
            id: "test".into(),
            type_name: "test".into(),
            processor: Some(processor),
            input: Box::new(Recording {
                inner: rx,
                commits: commits.clone(),
            }),
            outputs: vec![Output {
                consumer: "out".into(),
                tx: out_tx,
            }],
            relay,
            usage: None,
            tick_every,
            checkpoint,
        };
        (tx, commits, out_rx, tokio::spawn(stage.run()))
    }

    fn one_row(t: i64) -> RecordBatch {
        batch(&[Row::gauge("m", "s", t, 1.0)])
    }

    async fn recv(rx: &mut impl EdgeReceiver) -> Delivery {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("delivery in time")
            .expect("edge open")
    }

    /// A stateful processor's held input is never committed upstream, even once the consumer
    /// committed past it; once emitted it is; at shutdown its state is flushed downstream and
    /// the last position is committed only after the consumer stored that and closed.
    #[tokio::test]
    async fn held_state_blocks_commits_and_is_flushed_at_shutdown() {
        let (tx, commits, mut out_rx, task) = spawn_stage(
            Box::new(HoldBack {
                held: Vec::new(),
                since: None,
                release_after: 2,
            }),
            TICK_EVERY,
        );

        tx.send(one_row(1)).await.expect("room");
        let d = recv(&mut out_rx).await;
        assert_eq!((d.ack, d.batch.num_rows()), (AckToken(1), 0), "held back");
        out_rx.commit(AckToken(1)).await.expect("commit");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            commits.lock().expect("lock").iter().all(|&c| c < 1),
            "position 1 is held: it may not be committed"
        );

        tx.send(one_row(2)).await.expect("room");
        let d = recv(&mut out_rx).await;
        assert_eq!(
            (d.ack, d.batch.num_rows()),
            (AckToken(2), 2),
            "both emitted"
        );
        out_rx.commit(AckToken(2)).await.expect("commit");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(commits.lock().expect("lock").last(), Some(&2));

        tx.send(one_row(3)).await.expect("room");
        let d = recv(&mut out_rx).await;
        assert_eq!(d.batch.num_rows(), 0, "held back");
        // The consumer has stored position 3's (empty) delivery: still held by the stage.
        out_rx.commit(AckToken(3)).await.expect("commit");
        drop(tx);
        let d = recv(&mut out_rx).await;
        assert_eq!(
            (d.ack, d.batch.num_rows()),
            (AckToken(3), 1),
            "shutdown flush"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            commits.lock().expect("lock").last(),
            Some(&2),
            "3 waits until the consumer stored the flush and closed"
        );
        out_rx.commit(AckToken(3)).await.expect("commit");
        drop(out_rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stage stops")
            .expect("stage task");
        assert_eq!(commits.lock().expect("lock").last(), Some(&3));
    }

    /// Rows a tick emits go downstream with the last delivery's token; the positions they
    /// came from are committed upstream only once every consumer has committed past that
    /// token (so has stored them), and the last position once the consumers close.
    #[tokio::test]
    async fn tick_output_is_sent_and_pinned_until_stored() {
        let (tx, commits, mut out_rx, task) =
            spawn_stage(Box::new(TickRelease::default()), Duration::from_millis(20));
        let last_commit = || commits.lock().expect("lock").last().copied();

        tx.send(one_row(1)).await.expect("room");
        let d = recv(&mut out_rx).await;
        assert_eq!((d.ack, d.batch.num_rows()), (AckToken(1), 0), "held back");
        out_rx.commit(AckToken(1)).await.expect("commit");
        let d = recv(&mut out_rx).await;
        assert_eq!((d.ack, d.batch.num_rows()), (AckToken(1), 1), "tick output");
        // Stored, but its token was committed before: position 1 stays pinned.
        out_rx.commit(AckToken(1)).await.expect("commit");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            last_commit().unwrap_or(0) < 1,
            "1 is pinned until a later token is committed"
        );

        tx.send(one_row(2)).await.expect("room");
        let d = recv(&mut out_rx).await;
        assert_eq!((d.ack, d.batch.num_rows()), (AckToken(2), 0), "held back");
        out_rx.commit(AckToken(2)).await.expect("commit");
        let d = recv(&mut out_rx).await;
        assert_eq!((d.ack, d.batch.num_rows()), (AckToken(2), 1), "tick output");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(last_commit(), Some(1), "1 released; 2 pinned");

        drop(tx);
        let end = tokio::time::timeout(Duration::from_secs(5), out_rx.recv())
            .await
            .expect("edge closes in time");
        assert!(end.is_none(), "nothing held at shutdown, edge closed");
        drop(out_rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stage stops")
            .expect("stage task");
        assert_eq!(last_commit(), Some(2), "committed once the consumer closed");
    }

    /// Held rows emitted by `process_at` travel with a later token: the positions they came
    /// from stay uncommitted upstream until the consumer committed that token (stored them),
    /// even though the consumer had already committed the earlier, empty deliveries.
    #[tokio::test]
    async fn emitted_state_is_pinned_until_stored() {
        let (tx, commits, mut out_rx, task) = spawn_stage(
            Box::new(HoldBack {
                held: Vec::new(),
                since: None,
                release_after: 2,
            }),
            TICK_EVERY,
        );
        tx.send(one_row(1)).await.expect("room");
        let d = recv(&mut out_rx).await;
        assert_eq!(d.batch.num_rows(), 0, "held back");
        out_rx.commit(AckToken(1)).await.expect("commit");
        tx.send(one_row(2)).await.expect("room");
        let d = recv(&mut out_rx).await;
        assert_eq!((d.ack, d.batch.num_rows()), (AckToken(2), 2), "emitted");
        // Nothing is held any more, and the consumer committed 1: still, 1 is in flight.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            commits.lock().expect("lock").iter().all(|&c| c < 1),
            "position 1 is only in flight: it may not be committed"
        );
        out_rx.commit(AckToken(2)).await.expect("commit");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(commits.lock().expect("lock").last(), Some(&2));
        drop(tx);
        drop(out_rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stage stops")
            .expect("stage task");
    }

    /// While a checkpoint is written off the stage's task, the stage keeps reading and
    /// forwarding; held input is committed upstream only once the save is durable, and only
    /// as far as the saved state covers.
    #[tokio::test]
    async fn stage_keeps_forwarding_while_a_checkpoint_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let resume = Resume {
            first_replayed: None,
            last_synced: 0,
        };
        let store = Checkpoints::new(dir.path(), Duration::from_millis(10), resume);
        let (p, mut gate) = Gated::new(true);
        let ck = StageCheckpoint::new(&store, "test", "{}".into());
        let (tx, commits, mut out_rx, task) = spawn_checkpointed(Box::new(p), TICK_EVERY, Some(ck));
        let last_commit = || commits.lock().expect("lock").last().copied();
        let position = || store.load("test").expect("load").map(|s| s.position);

        tx.send(one_row(1)).await.expect("room");
        let d = recv(&mut out_rx).await;
        assert_eq!((d.ack, d.batch.num_rows()), (AckToken(1), 0), "held");
        out_rx.commit(AckToken(1)).await.expect("commit");
        assert_eq!(gate.next_save().await, 1, "the state at 1");

        // The save waits at the gate; deliveries go through meanwhile.
        for n in 2..=3 {
            tx.send(one_row(n as i64)).await.expect("room");
            let d = recv(&mut out_rx).await;
            assert_eq!(d.ack, AckToken(n), "forwarded during the save");
            out_rx.commit(d.ack).await.expect("commit");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            last_commit().is_none_or(|c| c < 1),
            "nothing is durable yet: position 1 is held"
        );
        assert_eq!(position(), None);

        gate.open.send(()).expect("gate open");
        for _ in 0..500 {
            if last_commit() == Some(1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            last_commit(),
            Some(1),
            "the save covers 1; 2 and 3 are held"
        );
        assert_eq!(position(), Some(1));

        assert_eq!(gate.next_save().await, 3, "the state at 3");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(last_commit(), Some(1), "not durable yet");
        gate.open.send(()).expect("gate open");
        for _ in 0..500 {
            if last_commit() == Some(3) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(last_commit(), Some(3));
        assert_eq!(position(), Some(3));

        drop(tx);
        assert!(recv_end(&mut out_rx).await, "nothing held at shutdown");
        drop(out_rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stage stops")
            .expect("stage task");
        assert_eq!(position(), None, "a clean shutdown removes the file");
    }

    /// Whether `rx` closes within 5 s with nothing more on it.
    async fn recv_end(rx: &mut impl EdgeReceiver) -> bool {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("edge closes in time")
            .is_none()
    }
}
