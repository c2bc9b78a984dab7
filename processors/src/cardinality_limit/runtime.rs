//! The running cardinality limiter.
//!
//! Per metric name, the first `max_series` distinct `series_id`s seen are admitted and stay so
//! while they keep sending (an admitted series idle for `expire_after` frees its slot). Rows
//! of admitted series, of unselected metrics and of kinds not limited pass unchanged. Other
//! rows overflow: cumulative ones are first turned into deltas per original series (in
//! `(series_id, time)` order), then all are folded per overflow series and time (see
//! [`super::merge`]) and appended after the passing rows.

use std::collections::HashMap;

use arrow::array::{Array, BooleanArray, RecordBatch, StringArray};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{concat_batches, filter_record_batch};
use phoenix_model::pattern::AnyOf;
use phoenix_model::schema::col;
use phoenix_model::series_id::{combine, name_hash, pair_hash, ATTRIBUTE_SEED, RESOURCE_SEED};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::merge::{Buckets, Merger, Point};
use super::metrics::CardinalityMetrics;
use crate::columns::{dropped_rows, short_eq, string_map, strings, MapView};
use crate::delta::{bounds_layout, CumulativeState, IdMap, InitialValue, Skip};
use crate::processor::Processor;
use crate::temporality::view::{opt_f64, Kind, PointView, Temp};
use crate::Result;

/// The attribute key of overflow series.
pub const OVERFLOW_KEY: &str = "otel.metric.overflow";
/// Its value.
pub const OVERFLOW_VALUE: &str = "true";

/// Seed of the class hash of an overflow point.
const CLASS_SEED: u64 = 0x5048_4e58_434c_4153;

/// An admitted series.
struct Admitted {
    /// Index of its metric in `admitted_per_metric`.
    metric: u32,
    /// Clock of the last batch it appeared in.
    touched: i64,
}

/// Caps the series of each metric, folding the rest into overflow series.
pub struct CardinalityLimit {
    max_series: usize,
    /// Metrics limited; empty limits all.
    metric: AnyOf,
    expire_after_ns: i64,
    /// Metric name → index into `admitted_per_metric`.
    metric_ids: HashMap<String, u32>,
    admitted_per_metric: Vec<usize>,
    admitted: IdMap<Admitted>,
    /// Cumulative → delta state of overflowed cumulative series.
    deltas: CumulativeState,
    /// Attribute sum of `{otel.metric.overflow: "true"}` in the series-id recipe.
    overflow_attrs: u64,
    now_ns: i64,
    last_sweep_ns: i64,
    sweep_every_ns: i64,
    metrics: CardinalityMetrics,
    /// Rows the last batch dropped, for usage accounting.
    dropped: Option<RecordBatch>,
    merger: Merger,
    /// Converted bucket counts of the current batch.
    arena: Vec<u64>,
    buf: Vec<u64>,
}

/// Whether rows of this kind and temporality are limited. Cumulative exponential histograms
/// are not (they cannot be turned into deltas yet), nor unknown kinds or temporalities.
#[inline]
fn limited(kind: Kind, temporality: Temp) -> bool {
    match kind {
        Kind::Gauge | Kind::Summary => true,
        Kind::Sum | Kind::Histogram => temporality != Temp::None,
        Kind::ExponentialHistogram => temporality == Temp::Delta,
        Kind::Other => false,
    }
}

/// Whether an overflow row of this kind is cumulative (converted to delta before folding).
/// Summaries' count and sum are cumulative by definition.
#[inline]
fn cumulative(kind: Kind, temporality: Temp) -> bool {
    kind == Kind::Summary
        || (matches!(kind, Kind::Sum | Kind::Histogram) && temporality == Temp::Cumulative)
}

/// Sum of the resource pair hashes of `row` (step 3 of the series-id recipe).
#[inline]
fn resource_sum(resource: &MapView<'_>, row: usize) -> u64 {
    resource.range(row).fold(0u64, |acc, i| {
        acc.wrapping_add(pair_hash(RESOURCE_SEED, resource.key(i), resource.value(i)))
    })
}

/// Whether overflow rows `j` and `i` fold into the same overflow series and class (the inputs
/// of the series hash and [`CardinalityLimit::class`] are equal; not for exponential
/// histograms, whose class is per row).
#[inline]
fn same_group(
    v: &PointView<'_>,
    resource: &MapView<'_>,
    unit: &StringArray,
    scope: &StringArray,
    j: usize,
    i: usize,
) -> bool {
    let kind = v.kind(i);
    let entries_equal = || {
        let (a, b) = (resource.range(j), resource.range(i));
        a.len() == b.len()
            && a.zip(b).all(|(x, y)| {
                resource.key(x) == resource.key(y) && resource.value(x) == resource.value(y)
            })
    };
    kind == v.kind(j)
        && v.kind.value(i) == v.kind.value(j)
        && v.temporality(i) == v.temporality(j)
        && v.monotonic.is_valid(i) == v.monotonic.is_valid(j)
        && (v.monotonic.is_null(i) || v.monotonic.value(i) == v.monotonic.value(j))
        && v.sample_rate.value(i).to_bits() == v.sample_rate.value(j).to_bits()
        && v.metric.value(i) == v.metric.value(j)
        && unit.value(i) == unit.value(j)
        && scope.value(i) == scope.value(j)
        && (kind != Kind::Histogram
            || (v.buckets(i).len() == v.buckets(j).len()
                && v.bounds(i)
                    .iter()
                    .map(|b| b.to_bits())
                    .eq(v.bounds(j).iter().map(|b| b.to_bits()))))
        && entries_equal()
}

impl CardinalityLimit {
    pub(crate) fn new(
        max_series: usize,
        metric: AnyOf,
        expire_after_ns: i64,
        initial: InitialValue,
        metrics: CardinalityMetrics,
        now_ns: i64,
    ) -> Self {
        CardinalityLimit {
            max_series,
            metric,
            expire_after_ns,
            metric_ids: HashMap::new(),
            admitted_per_metric: Vec::new(),
            admitted: IdMap::default(),
            deltas: CumulativeState::new_at(initial, expire_after_ns, now_ns),
            overflow_attrs: pair_hash(ATTRIBUTE_SEED, OVERFLOW_KEY, Some(OVERFLOW_VALUE)),
            now_ns,
            last_sweep_ns: now_ns,
            sweep_every_ns: (expire_after_ns / 10).max(1),
            metrics,
            dropped: None,
            merger: Merger::default(),
            arena: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Series admitted now, over all metrics.
    pub fn admitted(&self) -> usize {
        self.admitted.len()
    }

    /// Advances the clock, sweeping idle series now and then.
    fn clock(&mut self, now_ns: i64) {
        self.now_ns = self.now_ns.max(now_ns);
        if self.now_ns.saturating_sub(self.last_sweep_ns) < self.sweep_every_ns {
            self.deltas.tick(self.now_ns);
            return;
        }
        self.last_sweep_ns = self.now_ns;
        let cutoff = self.now_ns.saturating_sub(self.expire_after_ns);
        let counts = &mut self.admitted_per_metric;
        let before = self.admitted.len();
        self.admitted.retain(|_, a| {
            let keep = a.touched >= cutoff;
            if !keep {
                counts[a.metric as usize] -= 1;
            }
            keep
        });
        let states = self.deltas.expire(self.now_ns);
        let freed = before - self.admitted.len();
        if freed + states > 0 {
            tracing::debug!(freed, states, "Idle series forgotten.");
        }
    }

    /// Index of metric `name`, registered on first sight.
    fn metric_index(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.metric_ids.get(name) {
            return i;
        }
        let i = self.admitted_per_metric.len() as u32;
        self.admitted_per_metric.push(0);
        self.metric_ids.insert(name.to_string(), i);
        i
    }

    /// Whether row `i` of series `id` (metric `name`) is admitted, admitting it if a slot is
    /// free; `metric` caches the index of the previous row's metric.
    fn admit<'a>(&mut self, id: u64, name: &'a str, metric: &mut Option<(&'a str, u32)>) -> bool {
        let now = self.now_ns;
        if let Some(a) = self.admitted.get_mut(&id) {
            a.touched = now;
            return true;
        }
        let m = match *metric {
            Some((prev, m)) if prev == name => m,
            _ => {
                let m = self.metric_index(name);
                *metric = Some((name, m));
                m
            }
        };
        let count = &mut self.admitted_per_metric[m as usize];
        if *count >= self.max_series {
            return false;
        }
        *count += 1;
        self.admitted.insert(
            id,
            Admitted {
                metric: m,
                touched: now,
            },
        );
        true
    }

    /// Whether metric `name` is limited; `last` caches the previous row's answer.
    #[inline]
    fn selected<'a>(&self, name: &'a str, last: &mut Option<(&'a str, bool)>) -> bool {
        if self.metric.is_empty() {
            return true;
        }
        match *last {
            Some((prev, hit)) if prev == name => hit,
            _ => {
                let hit = self.metric.is_match(name);
                *last = Some((name, hit));
                hit
            }
        }
    }

    /// The delta contribution of cumulative overflow row `i`.
    fn convert(&mut self, v: &PointView<'_>, i: usize) -> Result<Point, Skip> {
        let (id, start, time) = (v.series_id.value(i), v.start(i), v.time.value(i));
        let mut p = Point {
            row: i as u32,
            start: None,
            value: None,
            count: None,
            sum: None,
            min: None,
            max: None,
            buckets: Buckets::None,
            temporality: Temp::Delta,
        };
        let skip = |s: &CumulativeState| s.last_skip().unwrap_or(Skip::NoValue);
        match v.kind(i) {
            Kind::Sum => {
                let value = v.value_or_nan(i);
                let d = if v.monotonic(i) {
                    self.deltas.sum(id, start, time, value)
                } else {
                    self.deltas.non_monotonic_sum(id, start, time, value)
                };
                let d = d.ok_or_else(|| skip(&self.deltas))?;
                p.start = Some(d.start_ns);
                p.value = Some(d.value);
            }
            kind => {
                let count = v.count(i).ok_or(Skip::NoValue)?;
                let histogram = kind == Kind::Histogram;
                let (buckets, layout) = if histogram {
                    (v.buckets(i), bounds_layout(v.bounds(i)))
                } else {
                    (&[][..], u64::MAX)
                };
                let h = self
                    .deltas
                    .histogram_into(
                        id,
                        start,
                        time,
                        count,
                        opt_f64(v.sum, i),
                        buckets,
                        layout,
                        &mut self.buf,
                    )
                    .ok_or_else(|| skip(&self.deltas))?;
                p.start = Some(h.start_ns);
                p.count = Some(h.count);
                p.sum = h.sum;
                if h.reset {
                    p.min = opt_f64(v.min, i);
                    p.max = opt_f64(v.max, i);
                }
                if histogram {
                    p.buckets = Buckets::Arena(self.arena.len(), self.buf.len());
                    self.arena.extend_from_slice(&self.buf);
                }
            }
        }
        Ok(p)
    }

    /// The contribution of delta (or gauge) overflow row `i`, as it is.
    fn direct(v: &PointView<'_>, i: usize) -> Result<Point, Skip> {
        let kind = v.kind(i);
        let mut p = Point {
            row: i as u32,
            start: v.start(i),
            value: None,
            count: None,
            sum: None,
            min: None,
            max: None,
            buckets: Buckets::None,
            temporality: v.temporality(i),
        };
        if matches!(kind, Kind::Gauge | Kind::Sum) {
            let value = v.value_or_nan(i);
            if value.is_nan() {
                return Err(Skip::NoValue);
            }
            p.value = Some(value);
        } else {
            p.count = Some(v.count(i).ok_or(Skip::NoValue)?);
            p.sum = opt_f64(v.sum, i);
            p.min = opt_f64(v.min, i);
            p.max = opt_f64(v.max, i);
            if kind == Kind::Histogram {
                p.buckets = Buckets::Row;
            }
        }
        Ok(p)
    }

    /// Hash of what must be equal for two overflow points to fold into one.
    fn class(v: &PointView<'_>, unit: &StringArray, scope: &StringArray, p: &Point) -> u64 {
        let i = p.row as usize;
        let kind = v.kind(i);
        let mut h = xxh3_64_with_seed(v.kind.value(i).as_bytes(), CLASS_SEED);
        h = xxh3_64_with_seed(unit.value(i).as_bytes(), h);
        h = xxh3_64_with_seed(scope.value(i).as_bytes(), h);
        let monotonic = match (kind, v.monotonic.is_valid(i)) {
            (Kind::Sum, true) => u64::from(v.monotonic.value(i)),
            _ => 2,
        };
        let layout = match kind {
            Kind::Histogram => bounds_layout(v.bounds(i)) ^ (v.buckets(i).len() as u64),
            // Exponential histograms are not folded: each keeps its own point.
            Kind::ExponentialHistogram => i as u64,
            _ => 0,
        };
        let mut tail = [0u8; 33];
        tail[0] = p.temporality as u8;
        tail[1..9].copy_from_slice(&monotonic.to_le_bytes());
        tail[9..17].copy_from_slice(&v.sample_rate.value(i).to_bits().to_le_bytes());
        tail[17..25].copy_from_slice(&layout.to_le_bytes());
        tail[25..].copy_from_slice(&(kind as u64).to_le_bytes());
        xxh3_64_with_seed(&tail, h)
    }

    /// Processes `batch` with `now_ns` as the state's clock (wall clock in production).
    ///
    /// # Errors
    /// A batch not in the metrics schema, or a kernel failure.
    pub(crate) fn process_now(&mut self, batch: RecordBatch, now_ns: i64) -> Result<RecordBatch> {
        self.dropped = None;
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(batch);
        }
        self.clock(now_ns);
        let v = PointView::new(&batch)?;

        // 1. Admission.
        let mut over: Vec<u32> = Vec::new();
        let (mut selected, mut metric) = (None, None);
        // Rows come in runs of one kind and temporality: compare with the previous row's
        // strings instead of classifying each row.
        let mut last: Option<(&str, Option<&str>, bool)> = None;
        for i in 0..rows {
            let kind = v.kind.value(i);
            let temporality = v.temporality.is_valid(i).then(|| v.temporality.value(i));
            let hit = match last {
                Some((k, t, hit))
                    if short_eq(k, kind)
                        && match (t, temporality) {
                            (None, None) => true,
                            (Some(a), Some(b)) => short_eq(a, b),
                            _ => false,
                        } =>
                {
                    hit
                }
                _ => {
                    let hit = limited(v.kind(i), v.temporality(i));
                    last = Some((kind, temporality, hit));
                    hit
                }
            };
            if !hit {
                continue;
            }
            let name = v.metric.value(i);
            if !self.selected(name, &mut selected) {
                continue;
            }
            if !self.admit(v.series_id.value(i), name, &mut metric) {
                over.push(i as u32);
            }
        }
        self.metrics.state_series.set(self.admitted.len() as f64);
        if over.is_empty() {
            return Ok(batch);
        }

        // 2. Cumulative overflow rows to deltas, per series in time order.
        self.arena.clear();
        let mut points: Vec<Option<Result<Point, Skip>>> = vec![None; over.len()];
        let mut order: Vec<usize> = (0..over.len())
            .filter(|&k| {
                let i = over[k] as usize;
                cumulative(v.kind(i), v.temporality(i))
            })
            .collect();
        order.sort_unstable_by_key(|&k| {
            let i = over[k] as usize;
            (v.series_id.value(i), v.time.value(i), k)
        });
        for k in order {
            points[k] = Some(self.convert(&v, over[k] as usize));
        }

        // 3. Fold, in input order.
        let resource = string_map(&batch, col::RESOURCE)?;
        let unit = strings(&batch, col::UNIT)?;
        let scope = strings(&batch, col::SCOPE)?;
        self.merger.clear();
        // `false` for rows dropped (late, duplicate or without value).
        let mut not_dropped = vec![true; rows];
        let mut pass = vec![true; rows];
        let mut skipped = [0u64; 3];
        let mut name_cache: Option<(&str, u64)> = None;
        let mut prev: Option<(usize, u64, u64)> = None;
        for (k, &row) in over.iter().enumerate() {
            let i = row as usize;
            pass[i] = false;
            let p = match points[k].take() {
                Some(p) => p,
                None => Self::direct(&v, i),
            };
            let p = match p {
                Ok(p) => p,
                Err(why) => {
                    skipped[why as usize] += 1;
                    // A first cumulative point is the baseline of later deltas, not a loss.
                    not_dropped[i] = why == Skip::Initial;
                    continue;
                }
            };
            // Decoded batches hold runs of one metric and resource: reuse the previous row's
            // hashes when everything they cover is equal.
            let (series, class) = match prev {
                Some((j, series, class)) if same_group(&v, &resource, unit, scope, j, i) => {
                    (series, class)
                }
                _ => {
                    let name = v.metric.value(i);
                    let n = match name_cache {
                        Some((prev, h)) if prev == name => h,
                        _ => {
                            let h = name_hash(name);
                            name_cache = Some((name, h));
                            h
                        }
                    };
                    let series = combine(n, resource_sum(&resource, i), self.overflow_attrs);
                    (series, Self::class(&v, unit, scope, &p))
                }
            };
            if v.kind(i) != Kind::ExponentialHistogram {
                prev = Some((i, series, class));
            }
            self.merger.add(&v, series, class, &p, &self.arena);
        }
        let lost = skipped[Skip::OutOfOrder as usize] + skipped[Skip::NoValue as usize];
        self.metrics.overflow.increment(over.len() as u64 - lost);
        for why in [Skip::OutOfOrder, Skip::NoValue] {
            let n = skipped[why as usize];
            if n > 0 {
                self.metrics.dropped(why, n);
            }
        }
        if lost > 0 {
            self.dropped = Some(dropped_rows(&batch, &BooleanBuffer::from(not_dropped))?);
        }

        // 4. Passing rows, then the overflow points.
        let passing = filter_record_batch(&batch, &BooleanArray::from(pass))?;
        match self.merger.finish(&batch)? {
            Some(overflow) => Ok(concat_batches(&batch.schema(), [&passing, &overflow])?),
            None => Ok(passing),
        }
    }
}

impl Processor for CardinalityLimit {
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        self.process_now(batch, crate::delta::wall_clock_ns())
    }

    fn take_dropped(&mut self) -> Option<RecordBatch> {
        self.dropped.take()
    }
}
