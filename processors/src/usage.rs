//! Usage accounting: per minute (of event time), metric and service, the datapoints that
//! entered the graph, that its sinks wrote and that its processors dropped, with distinct
//! series in and out. The cost features read the `usage` table this feeds, so every count is
//! exact: the entry edge, each sink edge and each processor's deliberate drops are tapped.
//!
//! A minute's row is taken out by [`UsageRecorder::drain`] once the minute is closed (its end
//! plus a grace long enough for windows downstream to emit). Points that arrive for a minute
//! already drained start a new row for it: sum the counters over rows of one minute (their
//! series counts may overlap).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampNanosecondArray, UInt64Array};
use async_trait::async_trait;
use phoenix_model::schema::col;
use phoenix_model::usage::usage_schema;
use phoenix_model::{AckToken, Delivery, EdgeError, EdgeReceiver};
use xxhash_rust::xxh3::xxh3_128_with_seed;

use crate::columns::{column, short_eq, strings, u64s};
use crate::Result;

const MINUTE_NS: i64 = 60_000_000_000;

/// Where a batch was seen.
#[derive(Debug, Clone)]
pub enum Flow {
    /// Entering the graph.
    In,
    /// Written by the sink of this table.
    Out(Arc<str>),
    /// Dropped by a processor on purpose.
    Dropped,
}

/// Flag of a series that entered.
const IN: u8 = 1;
/// Flag of a series that a sink wrote.
const OUT: u8 = 2;

/// Distinct series ids of one (minute, metric, service), each flagged in and/or out.
///
/// One table for both directions, since most series are seen entering and leaving: an open
/// addressing table of the raw ids (0 marks a free slot; id 0 itself is kept aside) with two
/// flag bits per slot. Ids are hashes already, so a multiply spreads them. That is 8.25 bytes
/// per slot at a load of at most 4/5; two hash sets cost 9 bytes per slot each.
#[derive(Debug, Default)]
struct SeriesSet {
    /// Ids by slot; 0 is free. Empty or a power of two long.
    slots: Vec<u64>,
    /// Two flag bits per slot, four slots a byte.
    flags: Vec<u8>,
    /// Flags of id 0.
    zero: u8,
    /// Ids held in `slots`.
    held: usize,
    /// Series flagged in.
    ins: u64,
    /// Series flagged out.
    outs: u64,
}

impl SeriesSet {
    /// Smallest table allocated.
    const MIN_SLOTS: usize = 16;

    /// Home slot of `id` in a table of `len` slots (a power of two).
    #[inline]
    fn home(id: u64, len: usize) -> usize {
        // Fibonacci hashing: the top bits of the product, as many as the table needs.
        let bits = len.trailing_zeros();
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// Flags `id` with `flag` (`IN` or `OUT`).
    #[inline]
    fn insert(&mut self, id: u64, flag: u8) {
        let old = if id == 0 {
            let old = self.zero;
            self.zero |= flag;
            old
        } else {
            if (self.held + 1) * 5 > self.slots.len() * 4 {
                self.grow();
            }
            let mask = self.slots.len() - 1;
            let mut i = Self::home(id, self.slots.len());
            loop {
                let k = self.slots[i];
                if k == id {
                    break;
                }
                if k == 0 {
                    self.slots[i] = id;
                    self.held += 1;
                    break;
                }
                i = (i + 1) & mask;
            }
            let (byte, shift) = (i / 4, (i % 4) * 2);
            let old = (self.flags[byte] >> shift) & 3;
            self.flags[byte] |= flag << shift;
            old
        };
        if old & flag == 0 {
            if flag == IN {
                self.ins += 1;
            } else {
                self.outs += 1;
            }
        }
    }

    /// Doubles the table (or allocates the first one) and re-places every id with its flags.
    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(Self::MIN_SLOTS);
        let slots = std::mem::replace(&mut self.slots, vec![0; len]);
        let flags = std::mem::replace(&mut self.flags, vec![0; len / 4]);
        let mask = len - 1;
        for (j, id) in slots.into_iter().enumerate() {
            if id == 0 {
                continue;
            }
            let mut i = Self::home(id, len);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = id;
            let f = (flags[j / 4] >> ((j % 4) * 2)) & 3;
            self.flags[i / 4] |= f << ((i % 4) * 2);
        }
    }

    /// Heap bytes held.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8 + self.flags.capacity()
    }
}

/// Counters of one (minute, metric, service).
#[derive(Debug, Default)]
struct Counts {
    datapoints_in: u64,
    datapoints_out: u64,
    dropped: u64,
    /// Series in and out.
    series: SeriesSet,
    /// Rows written per table, to estimate bytes with each table's bytes per row.
    out_by_table: Vec<(Arc<str>, u64)>,
}

/// The counters of one metric and service in one minute.
#[derive(Debug)]
struct Group {
    metric: Box<str>,
    service: Box<str>,
    counts: Counts,
}

/// One open minute: its groups, found by a 128-bit hash of (metric, service).
///
/// A run of rows used to find its counters through two string-keyed maps, whose keys live on
/// the heap: each compare was a cache miss, and with ~10 rows per run those lookups missed the
/// cache more often than the per-row series sets (callgrind's cache simulation of
/// `stage_cost pipeline`: 7.1M vs 5.8M first-level misses; this key cut the pipeline's
/// instructions by 6% and its misses by 8%). The 128-bit keyed hash (seeded per process, so
/// senders cannot aim at a collision) makes a collision among a minute's groups as unlikely as
/// two random 128-bit values meeting, so no string is compared.
#[derive(Debug, Default)]
struct Minute {
    index: rustc_hash::FxHashMap<u128, usize>,
    groups: Vec<Group>,
}

impl Minute {
    /// The counters of `metric` and `service` (whose key is `key`), created when new.
    fn counts(&mut self, key: u128, metric: &str, service: &str) -> &mut Counts {
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.groups.push(Group {
                    metric: Box::from(metric),
                    service: Box::from(service),
                    counts: Counts::default(),
                });
                let i = self.groups.len() - 1;
                self.index.insert(key, i);
                i
            }
        };
        &mut self.groups[i].counts
    }
}

/// This process's seed of group keys (random, so senders cannot precompute collisions).
fn group_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), "phoenix-usage")
    })
}

/// The key of (metric, service): their lengths go in too, so no two pairs concatenate alike.
#[inline]
fn group_key(metric: &str, service: &str, buf: &mut Vec<u8>) -> u128 {
    buf.clear();
    buf.extend_from_slice(&(metric.len() as u64).to_le_bytes());
    buf.extend_from_slice(metric.as_bytes());
    buf.extend_from_slice(service.as_bytes());
    xxh3_128_with_seed(buf, group_seed())
}

/// Open minutes.
#[derive(Debug, Default)]
struct State {
    minutes: BTreeMap<i64, Minute>,
    /// Scratch for [`group_key`].
    key_buf: Vec<u8>,
}

/// Shared usage accounting of one graph. Cheap to clone; clones share state.
#[derive(Debug, Clone, Default)]
pub struct UsageRecorder {
    state: Arc<Mutex<State>>,
}

impl UsageRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts the rows of `batch` (metrics schema; only `time`, `metric`, `service` and
    /// `series_id` are read) as `flow`.
    ///
    /// # Errors
    /// [`crate::Error::Column`] when one of those columns is missing.
    pub fn record(&self, batch: &RecordBatch, flow: &Flow) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let time = column::<TimestampNanosecondArray>(batch, col::TIME)?;
        let metric = strings(batch, col::METRIC)?;
        let service = strings(batch, col::SERVICE)?;
        let ids = u64s(batch, col::SERIES_ID)?;
        let times = time.values();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut start = 0;
        // Decoded batches hold long runs of one metric and service within one minute: look
        // the counters up once per run.
        while start < rows {
            let minute = times[start].div_euclid(MINUTE_NS) * MINUTE_NS;
            // Rows of the same minute: a range check instead of a division per row.
            let until = minute.saturating_add(MINUTE_NS);
            let (m, s) = (metric.value(start), service.value(start));
            let mut end = start + 1;
            while end < rows
                && (minute..until).contains(&times[end])
                && short_eq(metric.value(end), m)
                && short_eq(service.value(end), s)
            {
                end += 1;
            }
            let key = group_key(m, s, &mut st.key_buf);
            let counts = st.minutes.entry(minute).or_default().counts(key, m, s);
            let n = (end - start) as u64;
            let run = &ids.values()[start..end];
            match flow {
                Flow::In => {
                    counts.datapoints_in += n;
                    for &id in run {
                        counts.series.insert(id, IN);
                    }
                }
                Flow::Out(table) => {
                    counts.datapoints_out += n;
                    for &id in run {
                        counts.series.insert(id, OUT);
                    }
                    // The graph hands every batch of a sink the same `Arc`: compare pointers
                    // before strings.
                    let same = |t: &Arc<str>| Arc::ptr_eq(t, table) || t == table;
                    match counts.out_by_table.iter_mut().find(|(t, _)| same(t)) {
                        Some((_, rows)) => *rows += n,
                        None => counts.out_by_table.push((Arc::clone(table), n)),
                    }
                }
                Flow::Dropped => counts.dropped += n,
            }
            start = end;
        }
        Ok(())
    }

    /// Counts deliberately dropped rows (see [`UsageRecorder::record`]); a batch that is not
    /// in the metrics schema is logged and skipped.
    pub fn record_dropped(&self, batch: &RecordBatch) {
        if let Err(error) = self.record(batch, &Flow::Dropped) {
            tracing::warn!(%error, "Usage accounting skipped a dropped batch.");
        }
    }

    /// Minutes held.
    pub fn open_minutes(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .minutes
            .len()
    }

    /// Takes out the rows of minutes starting before `before_ns` (every minute for `None`)
    /// as a batch in the `usage` schema; `bytes_per_row(table)` estimates the stored bytes of
    /// each table's rows. `None` when no minute is due.
    ///
    /// # Errors
    /// [`crate::Error::Arrow`] when the batch cannot be assembled (a bug).
    pub fn drain(
        &self,
        before_ns: Option<i64>,
        bytes_per_row: impl Fn(&str) -> f64,
    ) -> Result<Option<RecordBatch>> {
        let due = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match before_ns {
                None => std::mem::take(&mut st.minutes),
                Some(before) => {
                    let keep = st.minutes.split_off(&before);
                    std::mem::replace(&mut st.minutes, keep)
                }
            }
        };
        if due.is_empty() {
            return Ok(None);
        }
        let mut minute = Vec::new();
        let mut metric = StringBuilder::new();
        let mut service = StringBuilder::new();
        let mut cols: [Vec<u64>; 6] = Default::default();
        for (m, mut groups) in due.into_iter().map(|(m, minute)| (m, minute.groups)) {
            // Sorted, so the rows of one drain come out in a stable order.
            groups.sort_unstable_by(|a, b| (&a.metric, &a.service).cmp(&(&b.metric, &b.service)));
            for g in groups {
                let c = g.counts;
                minute.push(m);
                metric.append_value(&g.metric);
                service.append_value(&g.service);
                let bytes: f64 = c
                    .out_by_table
                    .iter()
                    .map(|(t, rows)| *rows as f64 * bytes_per_row(t))
                    .sum();
                let row = [
                    c.datapoints_in,
                    c.datapoints_out,
                    c.dropped,
                    c.series.ins,
                    c.series.outs,
                    bytes.round() as u64,
                ];
                for (col, v) in cols.iter_mut().zip(row) {
                    col.push(v);
                }
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampNanosecondArray::from(minute).with_timezone("UTC")),
            Arc::new(metric.finish()),
            Arc::new(service.finish()),
        ];
        columns.extend(
            cols.into_iter()
                .map(|c| Arc::new(UInt64Array::from(c)) as ArrayRef),
        );
        Ok(Some(RecordBatch::try_new(usage_schema(), columns)?))
    }
}

/// An edge receiver that counts every batch it delivers as `flow`.
pub struct UsageTap {
    inner: Box<dyn EdgeReceiver>,
    usage: UsageRecorder,
    flow: Flow,
}

impl UsageTap {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn EdgeReceiver>, usage: UsageRecorder, flow: Flow) -> Self {
        UsageTap { inner, usage, flow }
    }
}

#[async_trait]
impl EdgeReceiver for UsageTap {
    async fn recv(&mut self) -> Option<Delivery> {
        let d = self.inner.recv().await?;
        if let Err(error) = self.usage.record(&d.batch, &self.flow) {
            tracing::warn!(%error, "Usage accounting skipped a batch.");
        }
        Some(d)
    }

    async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError> {
        self.inner.commit(upto).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch, Row};

    /// Counts land in the event-time minute of each row, series are distinct per minute, and
    /// drains take only closed minutes.
    #[test]
    fn counts_by_minute_metric_service() {
        let usage = UsageRecorder::new();
        let m0 = 60 * MINUTE_NS;
        let rows = vec![
            Row::gauge("a", "s1", m0 + 1, 1.0).attr("k", "1"),
            Row::gauge("a", "s1", m0 + 2, 1.0).attr("k", "1"),
            Row::gauge("a", "s1", m0 + 3, 1.0).attr("k", "2"),
            Row::gauge("a", "s2", m0 + 4, 1.0),
            Row::gauge("a", "s1", m0 + MINUTE_NS, 1.0).attr("k", "1"),
        ];
        usage.record(&batch(&rows), &Flow::In).expect("in");
        let table: Arc<str> = Arc::from("metrics");
        usage
            .record(&batch(&rows[..2]), &Flow::Out(table.clone()))
            .expect("out");
        usage.record_dropped(&batch(&rows[2..3]));
        assert_eq!(usage.open_minutes(), 2);
        let out = usage
            .drain(Some(m0 + MINUTE_NS), |t| {
                if t == "metrics" {
                    10.0
                } else {
                    0.0
                }
            })
            .expect("drains")
            .expect("one minute due");
        assert_eq!(usage.open_minutes(), 1, "the later minute stays open");
        assert_eq!(out.num_rows(), 2);
        let u = |name: &str| {
            out.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
                .expect("u64 column")
                .values()
                .to_vec()
        };
        // Rows sorted by service: s1 then s2.
        assert_eq!(u("datapoints_in"), vec![3, 1]);
        assert_eq!(u("series_in"), vec![2, 1]);
        assert_eq!(u("datapoints_out"), vec![2, 0]);
        assert_eq!(u("series_out"), vec![1, 0]);
        assert_eq!(u("datapoints_dropped"), vec![1, 0]);
        assert_eq!(u("bytes_stored"), vec![20, 0]);
        let rest = usage.drain(None, |_| 0.0).expect("drains").expect("rest");
        assert_eq!(rest.num_rows(), 1);
        assert_eq!(usage.open_minutes(), 0);
    }

    /// Metric and service names that concatenate to the same bytes stay apart.
    #[test]
    fn groups_split_on_the_name_boundary() {
        let usage = UsageRecorder::new();
        let rows = vec![
            Row::gauge("ab", "c", 1, 1.0),
            Row::gauge("a", "bc", 2, 1.0),
            Row::gauge("a", "bc", 3, 1.0),
        ];
        usage.record(&batch(&rows), &Flow::In).expect("in");
        let out = usage.drain(None, |_| 0.0).expect("drains").expect("rows");
        let metric = strings(&out, "metric").expect("metric");
        let service = strings(&out, "service").expect("service");
        let dp = u64s(&out, "datapoints_in").expect("datapoints_in");
        let got: Vec<(&str, &str, u64)> = (0..out.num_rows())
            .map(|i| (metric.value(i), service.value(i), dp.value(i)))
            .collect();
        assert_eq!(got, vec![("a", "bc", 2), ("ab", "c", 1)]);
    }

    /// The set counts exactly the distinct ids flagged in and out (id 0, ids sharing a home
    /// slot and growth included), as two hash sets would.
    #[test]
    fn series_set_counts_like_hash_sets() {
        use std::collections::HashSet;
        let mut set = SeriesSet::default();
        let (mut ins, mut outs) = (HashSet::new(), HashSet::new());
        let mut x = 0x1234_5678_9abc_def0u64;
        for k in 0..50_000u64 {
            // xorshift ids, a few small ones and repeats, so collisions and 0 occur.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = match k % 7 {
                0 => k % 5,
                1 => x >> 50,
                _ => x,
            };
            if k % 3 == 0 {
                set.insert(id, OUT);
                outs.insert(id);
            } else {
                set.insert(id, IN);
                ins.insert(id);
            }
        }
        assert_eq!(set.ins, ins.len() as u64);
        assert_eq!(set.outs, outs.len() as u64);
        assert_eq!(set.held, ins.union(&outs).filter(|&&id| id != 0).count());
    }

    /// Memory bound: a series seen in and out costs at most 21 bytes (one 8.25-byte slot, load
    /// at least 2/5 after a doubling), where two hash sets of u64 cost up to 41.
    #[test]
    fn series_set_bytes_per_series() {
        for n in [1_000u64, 100_000, 300_000] {
            let mut set = SeriesSet::default();
            for id in 1..=n {
                let id = id.wrapping_mul(0x2545_F491_4F6C_DD1D);
                set.insert(id, IN);
                set.insert(id, OUT);
            }
            assert_eq!((set.ins, set.outs), (n, n));
            let per_series = set.heap_bytes() as f64 / n as f64;
            assert!(per_series <= 21.0, "{per_series} bytes per series at {n}");
        }
    }
}
