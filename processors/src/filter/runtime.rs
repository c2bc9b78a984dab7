//! The running filter: compiled conditions evaluated into one mask per batch.

use arrow::array::{BooleanArray, RecordBatch, StringArray};
use arrow::buffer::BooleanBuffer;
use arrow::compute::filter_record_batch;
use phoenix_model::pattern::{AnyOf, Matcher};
use phoenix_model::schema::col;

use super::metrics::FilterMetrics;
use crate::columns::{dropped_rows, string_map, strings, MapView};
use crate::processor::Processor;
use crate::Result;

/// A compiled condition: every non-empty part must match.
pub(crate) struct Condition {
    /// Metric name patterns (any); empty matches every name.
    pub metric: AnyOf,
    /// `kind` values (any); empty matches every kind.
    pub kinds: Vec<&'static str>,
    /// Datapoint attributes that must match: key and value pattern (`None`: key exists).
    pub attributes: Vec<(String, Option<Matcher>)>,
    /// Resource attributes, as `attributes`.
    pub resource: Vec<(String, Option<Matcher>)>,
}

/// The columns a condition reads.
struct Cols<'a> {
    metric: &'a StringArray,
    kind: &'a StringArray,
    attributes: MapView<'a>,
    resource: MapView<'a>,
}

/// Last string seen in a column and whether it matched: decoded batches hold long runs of one
/// metric (and kind), so most rows cost one string comparison.
#[derive(Default)]
struct RunCache<'a> {
    metric: Option<(&'a str, bool)>,
    kind: Option<(&'a str, bool)>,
}

#[inline]
fn cached<'a>(
    slot: &mut Option<(&'a str, bool)>,
    value: &'a str,
    eval: impl FnOnce(&str) -> bool,
) -> bool {
    match *slot {
        Some((v, hit)) if v == value => hit,
        _ => {
            let hit = eval(value);
            *slot = Some((value, hit));
            hit
        }
    }
}

#[inline]
fn pairs_match(map: &MapView<'_>, row: usize, pairs: &[(String, Option<Matcher>)]) -> bool {
    pairs.iter().all(|(key, pattern)| match map.get(row, key) {
        None => false,
        Some(value) => match pattern {
            None => true,
            Some(p) => value.is_some_and(|v| p.is_match(v)),
        },
    })
}

impl Condition {
    #[inline]
    fn matches<'a>(&self, cols: &Cols<'a>, row: usize, cache: &mut RunCache<'a>) -> bool {
        if !self.metric.is_empty()
            && !cached(&mut cache.metric, cols.metric.value(row), |m| {
                self.metric.is_match(m)
            })
        {
            return false;
        }
        if !self.kinds.is_empty()
            && !cached(&mut cache.kind, cols.kind.value(row), |k| {
                self.kinds.contains(&k)
            })
        {
            return false;
        }
        pairs_match(&cols.attributes, row, &self.attributes)
            && pairs_match(&cols.resource, row, &self.resource)
    }
}

/// Which rows of `batch` match `cond` (the `anomaly` processor's selector).
///
/// # Errors
/// [`crate::Error::Column`] when a column the condition reads is missing.
pub(crate) fn condition_mask(cond: &Condition, batch: &RecordBatch) -> Result<BooleanBuffer> {
    let cols = Cols {
        metric: strings(batch, col::METRIC)?,
        kind: strings(batch, col::KIND)?,
        attributes: string_map(batch, col::ATTRIBUTES)?,
        resource: string_map(batch, col::RESOURCE)?,
    };
    let mut cache = RunCache::default();
    Ok(BooleanBuffer::collect_bool(batch.num_rows(), |row| {
        cond.matches(&cols, row, &mut cache)
    }))
}

/// Keeps datapoints matching `keep` (when set) and not matching `drop` (when set).
pub struct Filter {
    keep: Option<Condition>,
    drop: Option<Condition>,
    metrics: FilterMetrics,
    /// Rows the last batch filtered out, for usage accounting.
    dropped: Option<RecordBatch>,
}

impl Filter {
    pub(crate) fn new(
        keep: Option<Condition>,
        drop: Option<Condition>,
        metrics: FilterMetrics,
    ) -> Self {
        Filter {
            keep,
            drop,
            metrics,
            dropped: None,
        }
    }

    /// Which rows pass, and how many.
    fn mask(&self, batch: &RecordBatch) -> Result<(BooleanBuffer, usize)> {
        let cols = Cols {
            metric: strings(batch, col::METRIC)?,
            kind: strings(batch, col::KIND)?,
            attributes: string_map(batch, col::ATTRIBUTES)?,
            resource: string_map(batch, col::RESOURCE)?,
        };
        let (mut keep_cache, mut drop_cache) = (RunCache::default(), RunCache::default());
        let mut kept = 0;
        let mask = BooleanBuffer::collect_bool(batch.num_rows(), |row| {
            let pass = self
                .keep
                .as_ref()
                .is_none_or(|c| c.matches(&cols, row, &mut keep_cache))
                && !self
                    .drop
                    .as_ref()
                    .is_some_and(|c| c.matches(&cols, row, &mut drop_cache));
            kept += usize::from(pass);
            pass
        });
        Ok((mask, kept))
    }
}

impl Processor for Filter {
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(batch);
        }
        let (mask, kept) = self.mask(&batch)?;
        if kept == rows {
            return Ok(batch);
        }
        self.metrics.filtered.increment((rows - kept) as u64);
        self.dropped = Some(dropped_rows(&batch, &mask)?);
        if kept == 0 {
            return Ok(batch.slice(0, 0));
        }
        Ok(filter_record_batch(&batch, &BooleanArray::new(mask, None))?)
    }

    fn take_dropped(&mut self) -> Option<RecordBatch> {
        self.dropped.take()
    }
}
