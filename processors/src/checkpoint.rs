//! Checkpoints of stateful processors on local disk, so the WAL need not keep what they hold.
//!
//! A rollup holds `window + allowed_lateness` of input in memory; without a checkpoint the WAL
//! must keep all of it for replay, which at high rates fills its byte budget. Every
//! `interval` the stage writes its processor's state, with the input position it covers, to
//! `{dir}/{processor id}.ckpt` (written to a temporary file, synced, renamed); from then on the
//! stage may commit upstream — and the WAL release — everything up to that position.
//!
//! On startup the graph restores each checkpoint that still joins the WAL (the replay starts
//! at or before the position after it) and the stage skips the replayed deliveries it covers.
//! A checkpoint written under other parameters is restored into a processor built from the
//! parameters it was written with and flushed at once, so its windows are emitted as that
//! configuration defined them instead of being lost.
//!
//! File layout: `magic (8) | position u64 LE | config_len u32 LE | config (JSON of the
//! processor's config) | state | state_len u64 LE | crc32 u32 LE` (over everything before
//! it). The state is streamed into the file as it is encoded, so saving a large state needs
//! no encoded copy of it in memory.
//!
//! Encoding a large state takes hundreds of milliseconds, during which the stage would read
//! nothing and its input would fill. So a processor that offers a [`Processor::snapshot`]
//! (a copy of its state, taken in a few milliseconds) has it written on the blocking pool
//! while the stage goes on; the checkpoint covers its position only once the file is
//! durable. One save is in flight at a time.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use phoenix_model::pipeline::{ProcessorConfig, ProcessorParams};

use crate::processor::{build_processor, Processor};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"PHXCKPT1";

/// After a save that took `d`, the next waits at least `d × SAVE_SPACING`.
const SAVE_SPACING: u32 = 19;

/// Where the WAL stood at startup: which checkpoints still join it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// Position of the first record replayed, `None` when nothing is replayed.
    pub first_replayed: Option<u64>,
    /// Position of the last record the WAL made durable.
    pub last_synced: u64,
}

impl Resume {
    /// Where the WAL just opened stands: its first replayed record and its last durable one.
    pub fn after(opened: &phoenix_wal::Opened) -> Resume {
        Resume {
            first_replayed: opened.replay.first().map(|(seq, _)| *seq),
            last_synced: opened.wal.last_synced(),
        }
    }

    /// Whether a checkpoint at `position` joins the WAL: every record after it is still
    /// there to replay. A checkpoint past the WAL's end (the WAL was removed) does not.
    pub fn joins(&self, position: u64) -> bool {
        position <= self.last_synced
            && self
                .first_replayed
                .map_or(position == self.last_synced, |first| first <= position + 1)
    }
}

/// The checkpoint folder and how often stages write to it.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
    interval: Duration,
    resume: Resume,
}

/// One processor's saved state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Saved {
    /// The last input position the state covers.
    pub position: u64,
    /// JSON of the processor's config when it was written.
    pub config: String,
    /// [`crate::Processor::checkpoint`]'s bytes.
    pub state: Vec<u8>,
}

impl Checkpoints {
    /// Checkpoints in `dir`, written every `interval`, restored against the WAL at `resume`.
    pub fn new(dir: impl Into<PathBuf>, interval: Duration, resume: Resume) -> Self {
        Checkpoints {
            dir: dir.into(),
            interval,
            resume,
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        // Processor ids are YAML keys: keep file names plain whatever they hold.
        let name: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c.to_string()
                } else {
                    format!("%{:02x}", u32::from(c))
                }
            })
            .collect();
        self.dir.join(format!("{name}.ckpt"))
    }

    /// The checkpoint of processor `id`, if one was written.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the file cannot be read or is damaged.
    pub(crate) fn load(&self, id: &str) -> Result<Option<Saved>> {
        let path = self.path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, &e)),
        };
        decode(&bytes)
            .map(Some)
            .ok_or_else(|| Error::Checkpoint(format!("{} is damaged", path.display())))
    }

    /// Writes processor `id`'s checkpoint durably, replacing the previous one only once the
    /// new one is complete on disk. Blocking.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when writing, syncing or renaming fails.
    #[cfg(test)]
    pub(crate) fn save(&self, id: &str, saved: &Saved) -> Result<u64> {
        self.save_with(id, saved.position, &saved.config, |w| {
            w.write_all(&saved.state)
                .map_err(|e| Error::Checkpoint(e.to_string()))
        })
    }

    /// Writes processor `id`'s checkpoint at `position`, its state written by `state`, durably;
    /// the previous one is replaced only once the new one is complete on disk. Blocking.
    /// Returns the file's size.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when `state` fails, or writing, syncing or renaming fails.
    pub(crate) fn save_with(
        &self,
        id: &str,
        position: u64,
        config: &str,
        state: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<u64> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, &e))?;
        let path = self.path(id);
        let tmp = path.with_extension("ckpt.tmp");
        let file = File::create(&tmp).map_err(|e| io_error(&tmp, &e))?;
        let mut out = CrcWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            crc: crc32fast::Hasher::new(),
            len: 0,
        };
        let io = |e: std::io::Error| io_error(&tmp, &e);
        out.write_all(MAGIC).map_err(io)?;
        out.write_all(&position.to_le_bytes()).map_err(io)?;
        // Configs are a few hundred bytes; a longer one is cut rather than wrapped.
        let config = &config.as_bytes()[..config.len().min(u32::MAX as usize)];
        out.write_all(&(config.len() as u32).to_le_bytes())
            .map_err(io)?;
        out.write_all(config).map_err(io)?;
        let header = out.len;
        state(&mut out)?;
        let state_len = out.len - header;
        out.write_all(&state_len.to_le_bytes()).map_err(io)?;
        let crc = out.crc.clone().finalize();
        let mut file = out.inner.into_inner().map_err(|e| io(e.into_error()))?;
        file.write_all(&crc.to_le_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        fs::rename(&tmp, &path).map_err(|e| io_error(&path, &e))?;
        sync_dir(&self.dir)?;
        Ok(out.len + 4)
    }

    /// Removes processor `id`'s checkpoint (its state is empty or emitted). Blocking.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the file exists and cannot be removed.
    pub(crate) fn remove(&self, id: &str) -> Result<()> {
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, &e)),
        }
    }
}

/// JSON of a processor's parameters, as checkpoints record them.
fn params_json(params: &ProcessorParams) -> Result<String> {
    serde_json::to_string(params)
        .map_err(|e| Error::Checkpoint(format!("recording the config: {e}")))
}

/// The parameters recorded by [`params_json`].
fn parse_params(json: &str) -> Result<ProcessorParams> {
    let config: ProcessorConfig = serde_json::from_str(json)
        .map_err(|e| Error::Checkpoint(format!("recorded config: {e}")))?;
    match config.params {
        ProcessorParams::Invalid(i) => Err(Error::Checkpoint(format!(
            "recorded config: {}: {}",
            i.key, i.reason
        ))),
        params => Ok(params),
    }
}

/// Counters of one stage's checkpoints.
struct CheckpointMetrics {
    written: metrics::Counter,
    failed: metrics::Counter,
    bytes: metrics::Gauge,
    position: metrics::Gauge,
    duration: metrics::Histogram,
    snapshot: metrics::Histogram,
}

impl CheckpointMetrics {
    fn new(id: &str) -> Self {
        let l = || [("processor", id.to_string())];
        CheckpointMetrics {
            written: metrics::counter!("phoenix_checkpoints_written_total", &l()),
            failed: metrics::counter!("phoenix_checkpoint_failures_total", &l()),
            bytes: metrics::gauge!("phoenix_checkpoint_bytes", &l()),
            position: metrics::gauge!("phoenix_checkpoint_position", &l()),
            duration: metrics::histogram!("phoenix_checkpoint_duration_seconds", &l()),
            snapshot: metrics::histogram!("phoenix_checkpoint_snapshot_duration_seconds", &l()),
        }
    }
}

/// A writer that keeps a CRC-32 and a count of what went through it.
struct CrcWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A save being written on the blocking pool.
struct Pending {
    task: tokio::task::JoinHandle<Result<u64>>,
    /// The input position the state it writes covers.
    position: u64,
    started: Instant,
    /// Whether the state had changed without new input before this save took it.
    changed: bool,
}

/// One stage's checkpoint: where it goes and what the durable one covers.
pub(crate) struct StageCheckpoint {
    store: Checkpoints,
    id: String,
    config: String,
    /// Last input position the durable checkpoint covers.
    covered: Option<u64>,
    /// Whether a file exists (possibly one that covers nothing any more).
    file: bool,
    /// The state changed without new input (a tick emitted windows): the file must be
    /// rewritten even though the position is the same.
    changed: bool,
    /// No save before this: saving stalls the stage, so a state that takes long to save
    /// (cumulative points buffered in windows grow with the rate) is saved less often.
    not_before: Option<Instant>,
    /// Replayed deliveries up to here are in the restored state already.
    skip_upto: Option<u64>,
    /// The save in flight, if any.
    pending: Option<Pending>,
    /// Rows of a checkpoint written under other parameters, flushed at restore; the stage
    /// sends them first, with the position the checkpoint covers.
    pub carried: Option<RecordBatch>,
    metrics: CheckpointMetrics,
}

impl StageCheckpoint {
    /// Checkpoints of processor `id`, whose config is `config` (JSON), none written yet.
    pub(crate) fn new(store: &Checkpoints, id: &str, config: String) -> Self {
        StageCheckpoint {
            store: store.clone(),
            id: id.to_string(),
            config,
            covered: None,
            file: false,
            changed: false,
            not_before: None,
            skip_upto: None,
            pending: None,
            carried: None,
            metrics: CheckpointMetrics::new(id),
        }
    }

    /// How often to save.
    pub(crate) fn interval(&self) -> Duration {
        self.store.interval
    }

    /// The position the restored checkpoint covers, `None` when nothing was restored.
    pub(crate) fn restored_at(&self) -> Option<u64> {
        self.skip_upto
    }

    /// Whether the delivery at `position` is already in the restored state.
    pub(crate) fn skips(&self, position: u64) -> bool {
        self.skip_upto.is_some_and(|s| position <= s)
    }

    /// `held` (a lowest held input position) raised past what the checkpoint covers: those
    /// positions need not be kept upstream.
    pub(crate) fn uncovered(&self, held: u64) -> u64 {
        self.covered.map_or(held, |c| held.max(c.saturating_add(1)))
    }

    /// Saves `processor`'s state as covering the input up to `last` (when it holds nothing,
    /// call [`StageCheckpoint::clear`] instead). Call only when every output the stage sent is
    /// stored downstream, since deliveries a restore skips must have nothing left to send.
    ///
    /// With a [`Processor::snapshot`], the copy is written on the blocking pool and
    /// [`StageCheckpoint::settle`] records the outcome; does nothing while a save is in
    /// flight. Without one, the state is encoded straight into the file on this thread (the
    /// stage waits: its state must not change meanwhile); on a multi-threaded runtime the
    /// worker's other tasks move elsewhere for that time.
    pub(crate) fn save(&mut self, processor: &dyn Processor, last: u64) {
        if self.pending.is_some() || (self.covered == Some(last) && !self.changed) {
            return;
        }
        let started = Instant::now();
        if self.not_before.is_some_and(|t| started < t) {
            return;
        }
        // The state saved is this one: only a change from here on needs another save.
        let changed = std::mem::take(&mut self.changed);
        let runtime = tokio::runtime::Handle::try_current();
        let (Some(snapshot), Ok(runtime)) = (processor.snapshot(), &runtime) else {
            let write = || {
                self.store.save_with(&self.id, last, &self.config, |w| {
                    processor.checkpoint(w).unwrap_or_else(|| {
                        Err(Error::Checkpoint(
                            "the processor keeps no checkpoints".into(),
                        ))
                    })
                })
            };
            let written = match runtime.map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                    tokio::task::block_in_place(write)
                }
                _ => write(),
            };
            return self.record(last, started, changed, written);
        };
        self.metrics.snapshot.record(started.elapsed());
        let (store, id, config) = (self.store.clone(), self.id.clone(), self.config.clone());
        let task = runtime.spawn_blocking(move || store.save_with(&id, last, &config, snapshot));
        self.pending = Some(Pending {
            task,
            position: last,
            started,
            changed,
        });
    }

    /// Whether a save is in flight.
    pub(crate) fn saving(&self) -> bool {
        self.pending.is_some()
    }

    /// Waits for the save in flight, if any, and records how it went: from then on a
    /// successful one covers its position. Cancel-safe: dropped before the save ends, it
    /// leaves the save in flight.
    pub(crate) async fn settle(&mut self) {
        let Some(pending) = self.pending.as_mut() else {
            return;
        };
        let written = (&mut pending.task)
            .await
            .unwrap_or_else(|e| Err(Error::Checkpoint(format!("checkpoint task: {e}"))));
        if let Some(p) = self.pending.take() {
            self.record(p.position, p.started, p.changed, written);
        }
    }

    /// Records the outcome of a save of the state at `last` begun at `started`; `changed`:
    /// whether the state had changed without input before it was taken.
    fn record(&mut self, last: u64, started: Instant, changed: bool, written: Result<u64>) {
        match written {
            Ok(bytes) => {
                self.covered = Some(last);
                self.file = true;
                self.metrics.written.increment(1);
                self.metrics.bytes.set(bytes as f64);
                self.metrics.position.set(last as f64);
                let took = started.elapsed();
                self.metrics.duration.record(took);
                // At most about 5% of the time goes to saving (stalled, or, written on the
                // blocking pool, a core's share).
                self.not_before = Some(Instant::now() + took * SAVE_SPACING);
                tracing::debug!(position = last, bytes, "Checkpoint written.");
            }
            Err(error) => {
                // The change is still unsaved; and a failure after the rename may have left
                // a new file, which `clear` must then remove.
                self.changed |= changed;
                self.file = true;
                self.metrics.failed.increment(1);
                tracing::warn!(%error, "Checkpoint not written; the WAL keeps the held input.");
            }
        }
    }

    /// Notes that the state changed without new input (windows emitted on the wall clock),
    /// so the next save rewrites the file: it must not hold windows already emitted.
    pub(crate) fn state_changed(&mut self) {
        self.changed = true;
    }

    /// Removes the file: the processor holds nothing (its state was emitted and stored).
    /// Waits first for the save in flight, which would otherwise bring the file back.
    pub(crate) async fn clear(&mut self) {
        self.settle().await;
        if !self.file {
            return;
        }
        let (store, id) = (self.store.clone(), self.id.clone());
        match tokio::task::spawn_blocking(move || store.remove(&id)).await {
            Ok(Ok(())) => {
                self.file = false;
                self.covered = None;
                self.changed = false;
                self.metrics.bytes.set(0.0);
            }
            Ok(Err(error)) => tracing::warn!(%error, "Cannot remove the checkpoint."),
            Err(error) => tracing::warn!(%error, "Checkpoint task failed."),
        }
    }
}

/// Sets up checkpoints for processor `id` and restores its state from the last one, when it
/// still joins the WAL. `None` when the processor keeps no checkpoints.
pub(crate) fn restore(
    store: &Checkpoints,
    id: &str,
    params: &ProcessorParams,
    processor: &mut dyn Processor,
) -> Result<Option<StageCheckpoint>> {
    if processor.checkpoint(&mut std::io::sink()).is_none() {
        return Ok(None);
    }
    let mut ck = StageCheckpoint::new(store, id, params_json(params)?);
    let saved = match store.load(id) {
        Ok(Some(saved)) => saved,
        Ok(None) => return Ok(Some(ck)),
        Err(error) => {
            // Written by rename after a sync, so damage means the disk lost it; the WAL no
            // longer holds what it covered. The file is kept aside for inspection.
            ck.metrics.failed.increment(1);
            let path = store.path(id);
            ck.file = fs::rename(&path, path.with_extension("ckpt.unreadable")).is_err();
            tracing::error!(processor = id, %error, "Checkpoint unreadable; its windows are lost.");
            return Ok(Some(ck));
        }
    };
    ck.file = true;
    let position = saved.position;
    if !store.resume.joins(position) {
        tracing::info!(processor = id, position, resume = ?store.resume, "Checkpoint predates the WAL's replay; state is rebuilt from the WAL.");
        return Ok(Some(ck));
    }
    let restored = if saved.config == ck.config {
        processor.restore(&saved.state).map(|()| {
            ck.covered = Some(position);
        })
    } else {
        carry_over(id, &saved).map(|rows| {
            tracing::warn!(
                processor = id,
                position,
                rows = rows.as_ref().map_or(0, RecordBatch::num_rows),
                "Checkpoint was written under other parameters; its windows are emitted as they were configured."
            );
            ck.carried = rows;
        })
    };
    match restored {
        Ok(()) => {
            ck.skip_upto = Some(position);
            tracing::info!(
                processor = id,
                position,
                "State restored from its checkpoint."
            );
        }
        Err(error) => {
            // The WAL no longer holds what the checkpoint covered; starting is still better
            // than refusing to. The file is kept aside for inspection.
            ck.metrics.failed.increment(1);
            let path = store.path(id);
            let aside = path.with_extension("ckpt.unrestorable");
            ck.file = fs::rename(&path, &aside).is_err();
            tracing::error!(processor = id, position, %error, kept = %aside.display(), "Checkpoint does not restore; the windows it held are lost.");
        }
    }
    Ok(Some(ck))
}

/// Restores a checkpoint written under other parameters into a processor built from those,
/// and flushes it: its rows, to be emitted before anything else.
fn carry_over(id: &str, saved: &Saved) -> Result<Option<RecordBatch>> {
    let old = parse_params(&saved.config)?;
    let mut previous = build_processor(id, &old)?;
    previous.restore(&saved.state)?;
    previous.flush()
}

fn decode(bytes: &[u8]) -> Option<Saved> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let (body, state_len) = body.split_at_checked(body.len().checked_sub(8)?)?;
    let rest = body.strip_prefix(MAGIC)?;
    let (position, rest) = rest.split_at_checked(8)?;
    let (config_len, rest) = rest.split_at_checked(4)?;
    let config_len = u32::from_le_bytes(config_len.try_into().ok()?) as usize;
    let (config, state) = rest.split_at_checked(config_len)?;
    if u64::from_le_bytes(state_len.try_into().ok()?) != state.len() as u64 {
        return None;
    }
    Some(Saved {
        position: u64::from_le_bytes(position.try_into().ok()?),
        config: String::from_utf8(config.to_vec()).ok()?,
        state: state.to_vec(),
    })
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Checkpoint(format!("{}: {e}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    OpenOptions::new()
        .read(true)
        .open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::gated::{Gate, Gated};

    fn store(dir: &Path) -> Checkpoints {
        let resume = Resume {
            first_replayed: None,
            last_synced: 0,
        };
        Checkpoints::new(dir, Duration::from_secs(1), resume)
    }

    /// A saved checkpoint reads back whole; a missing one is `None`; removing it is final.
    #[test]
    fn save_load_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        assert_eq!(s.load("rollup_1m").expect("load"), None);
        let saved = Saved {
            position: 42,
            config: r#"{"type":"aggregate"}"#.into(),
            state: vec![1, 2, 3, 255],
        };
        s.save("rollup_1m", &saved).expect("save");
        assert_eq!(s.load("rollup_1m").expect("load"), Some(saved));
        s.remove("rollup_1m").expect("remove");
        assert_eq!(s.load("rollup_1m").expect("load"), None);
    }

    /// Any flipped byte or cut tail is reported as damage, never read as state.
    #[test]
    fn damage_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        let saved = Saved {
            position: 7,
            config: "{}".into(),
            state: (0..200).map(|i| i as u8).collect(),
        };
        s.save("a/b", &saved).expect("save");
        let path = s.path("a/b");
        assert!(path.file_name().is_some_and(|n| n == "a%2fb.ckpt"));
        let good = fs::read(&path).expect("read");
        for at in [0, 9, 20, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            fs::write(&path, &bad).expect("write");
            assert!(s.load("a/b").is_err(), "flipped byte {at} went unnoticed");
        }
        fs::write(&path, &good[..good.len() - 3]).expect("write");
        assert!(s.load("a/b").is_err(), "a cut tail went unnoticed");
    }

    /// One held batch at position 1 in a [`Gated`] processor.
    fn holding_one(snapshots: bool) -> (Gated, Gate) {
        let (mut p, gate) = Gated::new(snapshots);
        let b = crate::testing::batch(&[crate::testing::Row::gauge("m", "s", 1, 1.0)]);
        p.process_at(b, 1).expect("processes");
        (p, gate)
    }

    /// `clear` waits for the save in flight before removing the file, so that save cannot
    /// bring back, after the clear, a file holding windows already emitted.
    #[tokio::test]
    async fn clear_waits_for_the_save_in_flight() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        let (p, mut gate) = holding_one(true);
        let mut ck = StageCheckpoint::new(&s, "rollup", "{}".into());
        ck.save(&p, 1);
        assert!(ck.saving(), "written off this task");
        assert_eq!(gate.next_save().await, 1);
        let open = gate.open.clone();
        let opener = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            open.send(()).expect("gate open");
        });
        ck.clear().await;
        assert!(!ck.saving(), "the save ended before the clear");
        assert_eq!(
            s.load("rollup").expect("load"),
            None,
            "the file it wrote is removed"
        );
        opener.join().expect("opener");
    }

    /// A state change while a save is in flight is not taken as saved when that save ends:
    /// the next save rewrites the file at the same position.
    #[tokio::test]
    async fn change_during_a_save_is_saved_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        let (p, mut gate) = holding_one(true);
        let mut ck = StageCheckpoint::new(&s, "rollup", "{}".into());
        ck.save(&p, 1);
        assert_eq!(gate.next_save().await, 1);
        ck.state_changed();
        gate.open.send(()).expect("gate open");
        ck.settle().await;
        assert_eq!(ck.uncovered(1), 2, "the save covers position 1");
        ck.not_before = None;
        ck.save(&p, 1);
        assert!(ck.saving(), "the changed state is saved again");
        gate.open.send(()).expect("gate open");
        ck.settle().await;
        ck.not_before = None;
        ck.save(&p, 1);
        assert!(!ck.saving(), "nothing changed since: no save");
    }

    /// A processor without snapshots is saved in place: the file covers the position as soon
    /// as `save` returns.
    #[tokio::test]
    async fn processor_without_snapshots_is_saved_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        let (p, _gate) = holding_one(false);
        let mut ck = StageCheckpoint::new(&s, "rollup", "{}".into());
        ck.save(&p, 1);
        assert!(!ck.saving());
        assert_eq!(ck.uncovered(1), 2);
        let saved = s.load("rollup").expect("load").expect("written");
        assert_eq!(
            (saved.position, saved.state),
            (1, 1u64.to_le_bytes().to_vec())
        );
    }

    /// A checkpoint joins the WAL only when every record after it can still be replayed.
    #[test]
    fn joins_the_wal() {
        let r = |first_replayed, last_synced| Resume {
            first_replayed,
            last_synced,
        };
        assert!(r(Some(5), 20).joins(10), "replay starts before it");
        assert!(r(Some(11), 20).joins(10), "replay starts right after it");
        assert!(!r(Some(12), 20).joins(10), "record 11 is gone");
        assert!(r(None, 10).joins(10), "nothing came after it");
        assert!(!r(None, 12).joins(10), "records after it are gone");
        assert!(!r(Some(1), 5).joins(10), "past the WAL's end");
    }
}
