//! Output series: which one a row belongs to, and their metadata and running totals.
//!
//! An output series is keyed by its `series_id` (the input's in temporal mode, recomputed from
//! the kept attributes in spatial mode), its [`Shape`] and its `sample_rate`. Its strings are
//! allocated once, when it is created; rows only hash borrowed strings to find it. Strings and
//! map entries are interned, so the series of one metric, exporter or label value share them:
//! with a million series, owned copies were most of the processor's memory.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use phoenix_model::series_id::{combine, name_hash, pair_hash, ATTRIBUTE_SEED, RESOURCE_SEED};

use super::buckets::HistAcc;
use super::input::{Input, Shape};
use crate::columns::MapView;
use crate::series::SERVICE_NAME;

/// A hash map for keys that are small integers or already hashes (FxHash).
pub(super) type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// Identity of an output series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct OutKey {
    /// Its `series_id` (before any gauge-function suffix).
    pub id: u64,
    /// What it aggregates into.
    pub shape: Shape,
    /// Bits of its `sample_rate`: rows of different rates never merge.
    pub rate: u64,
}

/// How rows are grouped into output series.
#[derive(Debug, Clone)]
pub(super) enum Grouping {
    /// Per input series.
    Temporal,
    /// Per metric and kept attributes.
    Spatial {
        /// Datapoint attribute keys kept.
        attributes: Vec<String>,
        /// Resource attribute keys kept.
        resource: Vec<String>,
    },
}

/// Running totals of a cumulative output series.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) enum Running {
    /// None yet.
    #[default]
    Empty,
    /// A sum since `start`.
    Sum {
        /// Window start of the first total.
        start: i64,
        /// The total.
        value: f64,
    },
    /// A histogram since `start`.
    Histogram {
        /// Window start of the first total.
        start: i64,
        /// The total.
        hist: HistAcc,
    },
}

/// Map entries of an output series, shared by every series with equal entries.
pub(super) type Entries = Arc<[(Arc<str>, Option<Arc<str>>)]>;

/// Interned strings, entry lists and output name lists.
///
/// Entries only the interner holds are dropped when series expire, so churning label values
/// do not accumulate.
#[derive(Default)]
struct Interner {
    strings: HashSet<Arc<str>>,
    lists: HashSet<Entries>,
    /// Output names per metric (one per gauge function and quantile).
    names: HashMap<Arc<str>, Arc<[Arc<str>]>>,
}

impl Interner {
    /// The shared copy of `s`.
    fn str(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = s.into();
        self.strings.insert(Arc::clone(&a));
        a
    }

    /// The shared copy of `entries`.
    fn list(&mut self, entries: Vec<(Arc<str>, Option<Arc<str>>)>) -> Entries {
        if let Some(l) = self.lists.get(entries.as_slice()) {
            return Arc::clone(l);
        }
        let l: Entries = entries.into();
        self.lists.insert(Arc::clone(&l));
        l
    }

    /// Drops what no series uses any more.
    fn purge(&mut self) {
        self.names.retain(|_, names| Arc::strong_count(names) > 1);
        self.lists.retain(|l| Arc::strong_count(l) > 1);
        self.strings.retain(|s| Arc::strong_count(s) > 1);
    }
}

/// Most bucket layouts remembered per series (more than one only while bounds change).
const LAYOUTS: usize = 4;

/// One output series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OutSeries {
    /// Its key.
    pub key: OutKey,
    /// Output metric names: one per gauge function and quantile, or the metric's own.
    pub names: Arc<[Arc<str>]>,
    /// `series_id` of each name.
    pub ids: Vec<u64>,
    /// `unit` of its first row.
    pub unit: Arc<str>,
    /// `scope` of its first row.
    pub scope: Arc<str>,
    /// `service` (from the kept resource).
    pub service: Arc<str>,
    /// Kept resource attributes.
    pub resource: Entries,
    /// Kept datapoint attributes.
    pub attributes: Entries,
    /// Whether every sum merged into it was monotonic.
    pub monotonic: bool,
    /// `sample_rate` of its rows.
    pub sample_rate: f64,
    /// Running totals (cumulative output).
    pub running: Running,
    /// Recently seen bucket bounds, shared by its buffered points.
    layouts: Vec<Arc<[f64]>>,
}

/// Metric-name hash of the previous row (rows of one metric come in runs).
#[derive(Default)]
pub(super) struct NameCache<'a>(Option<(&'a str, u64)>);

impl<'a> NameCache<'a> {
    #[inline]
    fn hash(&mut self, name: &'a str) -> u64 {
        match self.0 {
            Some((prev, h)) if prev == name => h,
            _ => {
                let h = name_hash(name);
                self.0 = Some((name, h));
                h
            }
        }
    }
}

/// Every output series, in a slab addressed by `u32` so windows refer to them cheaply.
pub(super) struct Groups {
    grouping: Grouping,
    /// Suffixes of gauge output names, one per function then quantile.
    suffixes: Vec<String>,
    index: FastMap<OutKey, u32>,
    slots: Vec<Option<OutSeries>>,
    /// Start of the latest window each slot got a row in (for idle expiry); apart from the
    /// series, so the per-row update touches 8 dense bytes, not the series' cache lines.
    last_window: Vec<i64>,
    free: Vec<u32>,
    interner: Interner,
}

/// `entries` with every string replaced by its interned copy.
fn reintern(interner: &mut Interner, entries: &Entries) -> Vec<(Arc<str>, Option<Arc<str>>)> {
    entries
        .iter()
        .map(|(k, v)| (interner.str(k), v.as_deref().map(|v| interner.str(v))))
        .collect()
}

/// Wrapping sum of the pair hashes of the entries of `row` whose key is in `keep`.
#[inline]
fn kept_sum(map: &MapView<'_>, row: usize, keep: &[String], seed: u64) -> u64 {
    map.range(row)
        .filter(|&i| keep.iter().any(|k| k == map.key(i)))
        .fold(0u64, |acc, i| {
            acc.wrapping_add(pair_hash(seed, map.key(i), map.value(i)))
        })
}

/// Owned entries of `row` whose key is in `keep` (all when `None`), sorted by key when
/// filtered so the output does not depend on which row came first.
fn entries(
    interner: &mut Interner,
    map: &MapView<'_>,
    row: usize,
    keep: Option<&[String]>,
) -> Entries {
    let mut out: Vec<(Arc<str>, Option<Arc<str>>)> = map
        .range(row)
        .filter(|&i| keep.is_none_or(|keep| keep.iter().any(|k| k == map.key(i))))
        .map(|i| {
            let value = map.value(i).map(|v| interner.str(v));
            (interner.str(map.key(i)), value)
        })
        .collect();
    if keep.is_some() {
        out.sort();
    }
    interner.list(out)
}

/// Wrapping sum of the pair hashes of owned entries.
fn entries_sum(entries: &Entries, seed: u64) -> u64 {
    entries.iter().fold(0u64, |acc, (k, v)| {
        acc.wrapping_add(pair_hash(seed, k, v.as_deref()))
    })
}

impl Groups {
    /// No series yet; gauges get one output name per suffix.
    pub(super) fn new(grouping: Grouping, suffixes: Vec<String>) -> Self {
        Groups {
            grouping,
            suffixes,
            index: FastMap::default(),
            slots: Vec::new(),
            last_window: Vec::new(),
            free: Vec::new(),
            interner: Interner::default(),
        }
    }

    /// Series held.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// The output series key of row `row`.
    #[inline]
    pub(super) fn key<'a>(
        &self,
        input: &Input<'a>,
        row: usize,
        shape: Shape,
        names: &mut NameCache<'a>,
    ) -> OutKey {
        let id = match &self.grouping {
            Grouping::Temporal => input.series_id[row],
            Grouping::Spatial {
                attributes,
                resource,
            } => combine(
                names.hash(input.metric.value(row)),
                kept_sum(&input.resource, row, resource, RESOURCE_SEED),
                kept_sum(&input.attributes, row, attributes, ATTRIBUTE_SEED),
            ),
        };
        OutKey {
            id,
            shape,
            rate: input.sample_rate[row].to_bits(),
        }
    }

    /// The slot of `key`, created from row `row` when new; `None` when new and `max` series
    /// are already held.
    pub(super) fn find_or_insert(
        &mut self,
        key: OutKey,
        input: &Input<'_>,
        row: usize,
        max: usize,
    ) -> Option<u32> {
        if let Some(&idx) = self.index.get(&key) {
            return Some(idx);
        }
        if self.index.len() >= max {
            return None;
        }
        let series = self.create(key, input, row);
        let idx = match self.free.pop() {
            Some(idx) => {
                self.slots[idx as usize] = Some(series);
                self.last_window[idx as usize] = i64::MIN;
                idx
            }
            None => {
                self.slots.push(Some(series));
                self.last_window.push(i64::MIN);
                u32::try_from(self.slots.len() - 1).ok()?
            }
        };
        self.index.insert(key, idx);
        Some(idx)
    }

    /// A new output series from its first row.
    fn create(&mut self, key: OutKey, input: &Input<'_>, row: usize) -> OutSeries {
        let metric = input.metric.value(row);
        let interner = &mut self.interner;
        let (resource, attributes, service) = match &self.grouping {
            Grouping::Temporal => (
                entries(interner, &input.resource, row, None),
                entries(interner, &input.attributes, row, None),
                interner.str(input.service.value(row)),
            ),
            Grouping::Spatial {
                attributes,
                resource,
            } => {
                let res = entries(interner, &input.resource, row, Some(resource));
                let service = res
                    .iter()
                    .find(|(k, _)| &**k == SERVICE_NAME)
                    .and_then(|(_, v)| v.clone())
                    .unwrap_or_else(|| interner.str(""));
                (
                    res,
                    entries(interner, &input.attributes, row, Some(attributes)),
                    service,
                )
            }
        };
        // No suffixes (downsampling): gauges keep their name and id.
        let (names, ids) = if key.shape == Shape::Gauge && !self.suffixes.is_empty() {
            let r = entries_sum(&resource, RESOURCE_SEED);
            let a = entries_sum(&attributes, ATTRIBUTE_SEED);
            let suffixes = &self.suffixes;
            let names = match self.interner.names.get(metric) {
                Some(names) => Arc::clone(names),
                None => {
                    let names: Arc<[Arc<str>]> = suffixes
                        .iter()
                        .map(|suffix| Arc::from(format!("{metric}.{suffix}")))
                        .collect();
                    let metric = self.interner.str(metric);
                    self.interner.names.insert(metric, Arc::clone(&names));
                    names
                }
            };
            let ids = names
                .iter()
                .map(|name| combine(name_hash(name), r, a))
                .collect();
            (names, ids)
        } else {
            let name: Arc<[Arc<str>]> = Arc::new([self.interner.str(metric)]);
            (name, vec![key.id])
        };
        OutSeries {
            key,
            names,
            ids,
            unit: self.interner.str(input.unit.value(row)),
            scope: self.interner.str(input.scope.value(row)),
            service,
            resource,
            attributes,
            monotonic: true,
            sample_rate: input.sample_rate[row],
            running: Running::Empty,
            layouts: Vec::new(),
        }
    }

    /// Notes that series `idx` got a row in the window starting at `start`.
    #[inline]
    pub(super) fn touch(&mut self, idx: u32, start: i64) {
        if let Some(w) = self.last_window.get_mut(idx as usize) {
            *w = (*w).max(start);
        }
    }

    /// Every slot, free ones `None`, and each slot's latest window start (for checkpoints).
    pub(super) fn slots(&self) -> (&[Option<OutSeries>], &[i64]) {
        (&self.slots, &self.last_window)
    }

    /// Replaces every series with `slots` and their latest window starts, read from a
    /// checkpoint (equal lengths), sharing their strings again as
    /// [`Groups::find_or_insert`] would have.
    pub(super) fn restore(&mut self, slots: Vec<Option<OutSeries>>, last_window: Vec<i64>) {
        self.index.clear();
        self.free.clear();
        self.interner = Interner::default();
        self.slots = slots;
        self.last_window = last_window;
        let suffix = self.suffixes.first().map(|s| format!(".{s}"));
        let interner = &mut self.interner;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            // The caller checked that the slot count fits a u32.
            let idx = i as u32;
            let Some(s) = slot else {
                self.free.push(idx);
                continue;
            };
            s.unit = interner.str(&s.unit);
            s.scope = interner.str(&s.scope);
            s.service = interner.str(&s.service);
            let resource = reintern(interner, &s.resource);
            s.resource = interner.list(resource);
            let attributes = reintern(interner, &s.attributes);
            s.attributes = interner.list(attributes);
            // Gauge name lists are shared per metric, found by stripping the first suffix.
            let metric = match (&suffix, s.key.shape) {
                (Some(suffix), Shape::Gauge) => s
                    .names
                    .first()
                    .and_then(|n| n.strip_suffix(suffix.as_str())),
                _ => None,
            };
            match metric.map(|m| interner.str(m)) {
                Some(metric) => match interner.names.get(&metric) {
                    Some(names) if names[..] == s.names[..] => s.names = Arc::clone(names),
                    Some(_) => {}
                    None => {
                        interner.names.insert(metric, Arc::clone(&s.names));
                    }
                },
                None => {
                    s.names = s.names.iter().map(|n| interner.str(n)).collect();
                }
            }
            self.index.insert(s.key, idx);
        }
        // Slots freed last are reused first, as before the restart.
        self.free.reverse();
    }

    /// Series `idx`.
    #[inline]
    pub(super) fn get(&self, idx: u32) -> Option<&OutSeries> {
        self.slots.get(idx as usize).and_then(Option::as_ref)
    }

    /// Series `idx`, mutably.
    #[inline]
    pub(super) fn get_mut(&mut self, idx: u32) -> Option<&mut OutSeries> {
        self.slots.get_mut(idx as usize).and_then(Option::as_mut)
    }

    /// Forgets series whose latest window started before `cutoff`; returns how many.
    pub(super) fn expire(&mut self, cutoff: i64) -> usize {
        let mut n = 0;
        for (i, (slot, &last)) in self.slots.iter_mut().zip(&self.last_window).enumerate() {
            if slot.is_some() && last < cutoff {
                if let Some(s) = slot.take() {
                    self.index.remove(&s.key);
                    // Slots are created from a u32 index, so this fits.
                    self.free.push(i as u32);
                    n += 1;
                }
            }
        }
        if n > 0 {
            self.interner.purge();
        }
        n
    }
}

impl OutSeries {
    /// Shared bounds equal to `bounds`, allocated only when the series has not seen them lately.
    pub(super) fn layout(&mut self, bounds: &[f64]) -> Arc<[f64]> {
        if let Some(l) = self.layouts.iter().find(|l| l[..] == *bounds) {
            return l.clone();
        }
        if self.layouts.len() == LAYOUTS {
            self.layouts.remove(0);
        }
        let l: Arc<[f64]> = bounds.into();
        self.layouts.push(l.clone());
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equal strings and entry lists come back as one shared allocation, and purging drops
    /// exactly what no series holds any more (churning label values do not accumulate).
    #[test]
    fn interner_shares_and_purges() {
        let mut i = Interner::default();
        let a = i.str("service.name");
        let b = i.str("service.name");
        assert!(Arc::ptr_eq(&a, &b));
        let list = |i: &mut Interner, v: &str| {
            let (k, v) = (i.str("host"), Some(i.str(v)));
            i.list(vec![(k, v)])
        };
        let kept = list(&mut i, "h-1");
        assert!(Arc::ptr_eq(&kept, &list(&mut i, "h-1")));
        drop(list(&mut i, "h-2"));
        drop((a, b));
        i.purge();
        assert_eq!(i.lists.len(), 1, "only the held list stays");
        let mut left: Vec<&str> = i.strings.iter().map(|s| &**s).collect();
        left.sort_unstable();
        assert_eq!(left, ["h-1", "host"]);
        assert!(Arc::ptr_eq(&kept, &list(&mut i, "h-1")));
    }
}
