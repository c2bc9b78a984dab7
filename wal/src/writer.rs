//! The WAL handle and its writer thread (group commit).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use tokio::sync::{mpsc, oneshot};

use crate::direct::{is_unsupported, open_direct, write_blocks, GroupBuf, BLOCK};
use crate::error::io;
use crate::record::{encode_batch, frame, Codec, Payload, SourceDecoder};
use crate::segment::{recover, segment_path, sync_dir, RecoveryReport, Segment};
use crate::{Error, Result};

/// Requests queued for the writer thread before appenders wait.
const QUEUE: usize = 1024;
/// Bytes gathered into one write + sync at most.
const MAX_GROUP_BYTES: usize = 16 << 20;

/// Where and how big the WAL is.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// Folder of the segment files.
    pub dir: PathBuf,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// Appends are refused with [`Error::Full`] while the WAL holds more than this.
    pub max_bytes: u64,
    /// Compression of new records.
    pub codec: Codec,
    /// Decodes the source records that [`Wal::append_source_then`] logged; a WAL that holds
    /// some and has none refuses to open.
    pub sources: Option<SourceDecoder>,
    /// Write segments with `O_DIRECT` (normally `true`): whole zero-padded blocks that bypass
    /// the page cache, so logged bytes are not copied into it and written back at each sync.
    /// Where the filesystem refuses direct I/O the WAL falls back to buffered appends (logged
    /// once); `false` always appends buffered.
    pub direct_io: bool,
}

/// Called on the writer thread with a record's sequence number once it is durable, in
/// sequence order.
pub type OnDurable = Box<dyn FnOnce(u64) + Send>;

/// Failures injected into direct I/O, to test the fallback to buffered appends.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    /// Opening a segment with `O_DIRECT` fails with `EINVAL`.
    pub direct_open: bool,
    /// Direct writes fail with `EINVAL` from this segment write on (0: the first).
    pub direct_write_from: Option<usize>,
}

enum Request {
    Append {
        payload: Payload,
        then: Option<OnDurable>,
        done: oneshot::Sender<Result<u64>>,
    },
    Release(u64),
}

/// Handle to an open WAL; clones share it. The writer thread ends when every handle is gone.
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::Sender<Request>,
    bytes: Arc<AtomicU64>,
    last_synced: Arc<AtomicU64>,
    max_bytes: u64,
    codec: Codec,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("bytes", &self.bytes())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// What [`Wal::open`] hands back besides the handle.
pub struct Opened {
    /// The handle.
    pub wal: Wal,
    /// Records still in the WAL, oldest first, to be replayed into the pipeline.
    pub replay: Vec<(u64, RecordBatch)>,
    /// What recovery found and cut.
    pub report: RecoveryReport,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `options.dir`, repairing torn tails, and starts the
    /// writer thread.
    ///
    /// # Errors
    /// [`Error::Io`] when the folder cannot be read or written.
    pub fn open(options: WalOptions) -> Result<Opened> {
        Self::start(options, Faults::default())
    }

    /// [`Wal::open`] with failures injected into direct I/O.
    #[cfg(test)]
    pub(crate) fn open_with_faults(options: WalOptions, faults: Faults) -> Result<Opened> {
        Self::start(options, faults)
    }

    fn start(options: WalOptions, faults: Faults) -> Result<Opened> {
        let recovered = recover(&options.dir, options.sources.as_ref())?;
        let bytes: u64 = recovered.segments.iter().map(|s| s.bytes).sum();
        let bytes = Arc::new(AtomicU64::new(bytes));
        let last_synced = Arc::new(AtomicU64::new(recovered.next_seq - 1));
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut writer = Writer {
            dir: options.dir.clone(),
            segment_bytes: options.segment_bytes.max(1),
            sealed: recovered.segments.into_iter().collect(),
            active: None,
            next_seq: recovered.next_seq,
            bytes: bytes.clone(),
            last_synced: last_synced.clone(),
            buf: GroupBuf::new(MAX_GROUP_BYTES + 2 * BLOCK),
            direct_io: options.direct_io,
            faults,
            direct_writes: 0,
        };
        std::thread::Builder::new()
            .name("phoenix-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(io(&options.dir))?;
        metrics::gauge!("phoenix_wal_bytes").set(bytes.load(Ordering::Relaxed) as f64);
        Ok(Opened {
            wal: Wal {
                tx,
                bytes,
                last_synced,
                max_bytes: options.max_bytes,
                codec: options.codec,
            },
            replay: recovered.batches,
            report: recovered.report,
        })
    }

    /// Appends a batch and returns its sequence number once it is on disk (fsynced).
    ///
    /// # Errors
    /// [`Error::Full`] past the byte budget (retryable), [`Error::Io`] when the write or sync
    /// failed, [`Error::Closed`] after the writer stopped.
    pub async fn append(&self, batch: &RecordBatch) -> Result<u64> {
        self.append_inner(batch, None).await
    }

    /// Like [`Wal::append`], and runs `then(seq)` on the writer thread as soon as the record is
    /// durable, before any later record's `then`: callers use it to hand data downstream in
    /// exactly the WAL's order. `then` is not run when the append fails.
    ///
    /// # Errors
    /// As [`Wal::append`].
    pub async fn append_then(
        &self,
        batch: &RecordBatch,
        then: impl FnOnce(u64) + Send + 'static,
    ) -> Result<u64> {
        self.append_inner(batch, Some(Box::new(then))).await
    }

    /// Like [`Wal::append_then`] for a batch that `header` and `body` decode to again (through
    /// [`WalOptions::sources`]): with [`Codec::Lz4`] the record holds those bytes instead of the
    /// batch (a copy, where encoding the batch costs an Arrow IPC and an LZ4 pass); with
    /// [`Codec::Zstd`] it holds the batch, which compresses smaller.
    ///
    /// # Errors
    /// As [`Wal::append`].
    pub async fn append_source_then(
        &self,
        batch: &RecordBatch,
        header: Vec<u8>,
        body: bytes::Bytes,
        then: impl FnOnce(u64) + Send + 'static,
    ) -> Result<u64> {
        self.refuse_when_full()?;
        let payload = match self.codec {
            Codec::Lz4 => Payload::Source { header, body },
            Codec::Zstd => Payload::Batch(encode_batch(batch, self.codec)?),
        };
        self.submit(payload, Some(Box::new(then))).await
    }

    async fn append_inner(&self, batch: &RecordBatch, then: Option<OnDurable>) -> Result<u64> {
        self.refuse_when_full()?;
        let payload = Payload::Batch(encode_batch(batch, self.codec)?);
        self.submit(payload, then).await
    }

    /// [`Error::Full`] while the WAL holds its budget.
    fn refuse_when_full(&self) -> Result<()> {
        let held = self.bytes();
        if held >= self.max_bytes {
            metrics::counter!("phoenix_wal_appends_refused_total", "reason" => "full").increment(1);
            return Err(Error::Full {
                bytes: held,
                max_bytes: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Queues `payload` for the writer thread and waits until it is durable.
    async fn submit(&self, payload: Payload, then: Option<OnDurable>) -> Result<u64> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request::Append {
                payload,
                then,
                done,
            })
            .await
            .map_err(|_| Error::Closed)?;
        wait.await.map_err(|_| Error::Closed)?
    }

    /// Deletes segments whose records all have sequence numbers ≤ `upto`: their data is durable
    /// downstream.
    pub async fn release(&self, upto: u64) {
        // A closed writer has nothing left to delete.
        let _ = self.tx.send(Request::Release(upto)).await;
    }

    /// Bytes the WAL holds on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The byte budget.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Sequence number of the last record made durable.
    pub fn last_synced(&self) -> u64 {
        self.last_synced.load(Ordering::Relaxed)
    }
}

struct Active {
    file: File,
    seg: Segment,
    mode: Mode,
}

/// How the active segment is written.
enum Mode {
    /// `O_DIRECT`: whole blocks from `block_at`, the file offset of the block holding the
    /// segment's end; the group buffer starts with that block's `kept` bytes of records.
    Direct { block_at: u64, kept: usize },
    /// Buffered appends.
    Buffered,
}

/// An append taken into the current group.
struct Pending {
    seq: u64,
    payload: Payload,
    then: Option<OnDurable>,
    done: oneshot::Sender<Result<u64>>,
}

struct Writer {
    dir: PathBuf,
    segment_bytes: u64,
    sealed: VecDeque<Segment>,
    active: Option<Active>,
    next_seq: u64,
    bytes: Arc<AtomicU64>,
    last_synced: Arc<AtomicU64>,
    /// Groups are framed here, at an aligned address (see [`GroupBuf`]).
    buf: GroupBuf,
    /// Whether new segments are opened with `O_DIRECT`; off after the filesystem refused it.
    direct_io: bool,
    faults: Faults,
    /// Direct writes attempted, for [`Faults::direct_write_from`].
    direct_writes: usize,
}

impl Writer {
    fn run(&mut self, mut rx: mpsc::Receiver<Request>) {
        let mut group: Vec<Pending> = Vec::new();
        let mut group_bytes = 0usize;
        let mut release: Option<u64> = None;
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            // Group commit: take everything already queued into one write and one sync.
            while let Some(req) = next.take() {
                match req {
                    Request::Append {
                        payload,
                        then,
                        done,
                    } => {
                        let seq = self.next_seq;
                        self.next_seq += 1;
                        group_bytes += payload.framed_len();
                        group.push(Pending {
                            seq,
                            payload,
                            then,
                            done,
                        });
                    }
                    Request::Release(upto) => release = Some(release.map_or(upto, |r| r.max(upto))),
                }
                if group_bytes < MAX_GROUP_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            // Releases name records already durable, so they go first: an append answered after
            // a release was queued never sees that release still pending.
            if let Some(upto) = release.take() {
                if let Err(error) = self.release(upto) {
                    tracing::warn!(%error, "WAL release failed.");
                }
            }
            if !group.is_empty() {
                let result = self.write_group(&group);
                for Pending {
                    seq, then, done, ..
                } in group.drain(..)
                {
                    let answer = match &result {
                        Ok(()) => {
                            if let Some(then) = then {
                                then(seq);
                            }
                            Ok(seq)
                        }
                        Err(e) => Err(Error::Io {
                            path: self.dir.clone(),
                            source: std::io::Error::other(e.to_string()),
                        }),
                    };
                    // The appender may have gone away; its data is durable regardless.
                    let _ = done.send(answer);
                }
                if let Err(error) = result {
                    tracing::error!(%error, "WAL write failed.");
                    // Drop the segment that failed mid-write; the next group starts a new one.
                    self.active = None;
                }
                group_bytes = 0;
            }
        }
    }

    /// Frames `group` into the buffer, writes it to the active segment and syncs.
    fn write_group(&mut self, group: &[Pending]) -> Result<()> {
        let started = Instant::now();
        let first_seq = group.first().map_or(0, |p| p.seq);
        let last_seq = group.last().map_or(0, |p| p.seq);
        if self.active.is_none() {
            self.active = Some(self.open_segment(first_seq)?);
        }
        let Some(active) = self.active.as_mut() else {
            return Err(Error::Closed);
        };
        let kept = match active.mode {
            Mode::Direct { kept, .. } => kept,
            Mode::Buffered => 0,
        };
        self.buf.begin(kept);
        for pending in group {
            frame(self.buf.vec(), pending.seq, &pending.payload);
        }
        let len = self.buf.data().len();
        let group_len = len - kept;
        let path = active.seg.path.clone();
        match active.mode {
            Mode::Direct { block_at, .. } => {
                let injected = self
                    .faults
                    .direct_write_from
                    .is_some_and(|from| self.direct_writes >= from);
                self.direct_writes += 1;
                let written = if injected {
                    Err(std::io::Error::from_raw_os_error(libc::EINVAL))
                } else {
                    write_blocks(&active.file, self.buf.blocks(len), block_at)
                };
                match written {
                    Ok(()) => {
                        let kept = self.buf.keep_partial(len);
                        active.mode = Mode::Direct {
                            block_at: block_at + (len - kept) as u64,
                            kept,
                        };
                    }
                    Err(error) if is_unsupported(&error) => {
                        tracing::info!(path = %path.display(), %error, "WAL: direct writes refused; appending buffered from now on.");
                        self.direct_io = false;
                        // Drop the padding of earlier direct writes: buffered appends go right
                        // after the last record.
                        let file = open_buffered(&path)?;
                        file.set_len(active.seg.bytes).map_err(io(&path))?;
                        active.file = file;
                        active.mode = Mode::Buffered;
                        active
                            .file
                            .write_all(&self.buf.data()[kept..len])
                            .map_err(io(&path))?;
                    }
                    Err(error) => return Err(io(&path)(error)),
                }
            }
            Mode::Buffered => active
                .file
                .write_all(&self.buf.data()[..len])
                .map_err(io(&path))?,
        }
        // Also after direct writes: they may have grown the file, and the device may cache.
        active.file.sync_data().map_err(io(&path))?;
        active.seg.bytes += group_len as u64;
        active.seg.last_seq = Some(last_seq);
        self.bytes.fetch_add(group_len as u64, Ordering::Relaxed);
        self.last_synced.store(last_seq, Ordering::Relaxed);
        metrics::counter!("phoenix_wal_syncs_total").increment(1);
        metrics::counter!("phoenix_wal_bytes_written_total").increment(group_len as u64);
        metrics::histogram!("phoenix_wal_sync_duration_seconds").record(started.elapsed());
        metrics::gauge!("phoenix_wal_bytes").set(self.bytes.load(Ordering::Relaxed) as f64);
        if active.seg.bytes >= self.segment_bytes {
            self.seal();
        }
        Ok(())
    }

    /// Opens the segment whose first record is `first_seq`: with `O_DIRECT` while it works.
    fn open_segment(&mut self, first_seq: u64) -> Result<Active> {
        let path = segment_path(&self.dir, first_seq);
        let mut direct = None;
        let mut refused = None;
        if self.direct_io {
            let opened = if self.faults.direct_open {
                Err(std::io::Error::from_raw_os_error(libc::EINVAL))
            } else {
                open_direct(&path)
            };
            match opened.and_then(|file| file.metadata().map(|m| (file, m.len()))) {
                Ok((file, 0)) => direct = Some(file),
                // A file that already holds bytes is appended to buffered. The writer never
                // opens one: new segments and the marker of `release` start empty, and recovery
                // trims padding.
                Ok(_) => {}
                Err(error) => refused = Some(error),
            }
        }
        let (file, mode) = match direct {
            Some(file) => (
                file,
                Mode::Direct {
                    block_at: 0,
                    kept: 0,
                },
            ),
            None => (open_buffered(&path)?, Mode::Buffered),
        };
        if let Some(error) = refused {
            // Buffered opens work where direct ones fail: this filesystem refuses direct I/O.
            tracing::info!(path = %path.display(), %error, "WAL: O_DIRECT refused; appending buffered from now on.");
            self.direct_io = false;
        }
        sync_dir(&self.dir)?;
        Ok(Active {
            file,
            seg: Segment {
                path,
                last_seq: None,
                bytes: 0,
            },
            mode,
        })
    }

    fn seal(&mut self) {
        if let Some(active) = self.active.take() {
            self.sealed.push_back(active.seg);
        }
    }
    fn release(&mut self, upto: u64) -> Result<()> {
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.seg.last_seq.is_some_and(|l| l <= upto))
        {
            self.seal();
        }
        while let Some(seg) = self.sealed.front() {
            if seg.last_seq.is_none_or(|l| l > upto) {
                break;
            }
            let path = seg.path.clone();
            let bytes = seg.bytes;
            fs::remove_file(&path).map_err(io(&path))?;
            self.sealed.pop_front();
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
            metrics::counter!("phoenix_wal_segments_deleted_total").increment(1);
        }
        if self.active.is_none() && self.sealed.is_empty() {
            // Everything is released: an empty file named like the next segment keeps numbering
            // from going back after a restart (see `segment::recover`); the next append opens
            // that same file as its segment.
            let marker = segment_path(&self.dir, self.next_seq);
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&marker)
                .map_err(io(&marker))?;
            sync_dir(&self.dir)?;
        }
        metrics::gauge!("phoenix_wal_bytes").set(self.bytes.load(Ordering::Relaxed) as f64);
        Ok(())
    }
}

/// Opens (creating) a segment for buffered appends.
fn open_buffered(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))
}
