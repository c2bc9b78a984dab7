//! The running sampler.
//!
//! A series is kept iff `xxh3_64(series_id as 8 LE bytes, seed ^ SAMPLE_SEED) < ratio · 2^64`.
//! The hash depends on the series only, so the decision is the same in every batch, in every
//! process and after restarts, and a kept series keeps all its points.

use std::sync::Arc;

use arrow::array::{Array, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow::buffer::BooleanBuffer;
use arrow::compute::filter_record_batch;
use phoenix_model::pattern::AnyOf;
use phoenix_model::schema::col;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::metrics::SampleMetrics;
use crate::columns::{dropped_rows, f64s, replace, strings, u64s};
use crate::processor::Processor;
use crate::Result;

/// Mixed into the user's seed, so sampling never correlates with other uses of XXH3 on the
/// series id.
const SAMPLE_SEED: u64 = 0x5048_4e58_5341_4d50;

/// Whether a sampler with `threshold` (see [`threshold`]) and `seed` keeps series `series_id`.
#[inline]
pub fn keeps(series_id: u64, seed: u64, threshold: u128) -> bool {
    u128::from(xxh3_64_with_seed(
        &series_id.to_le_bytes(),
        seed ^ SAMPLE_SEED,
    )) < threshold
}

/// `ratio · 2^64`: hashes below it are kept (2^64 keeps everything).
pub fn threshold(ratio: f64) -> u128 {
    // The float→int cast saturates; ratio is in (0, 1], so this is at most 2^64.
    (ratio * 18_446_744_073_709_551_616.0) as u128
}

/// Keeps a `ratio` of series and scales their `sample_rate` by it.
pub struct Sample {
    ratio: f64,
    seed: u64,
    threshold: u128,
    /// Metrics sampled; empty samples all.
    metric: AnyOf,
    metrics: SampleMetrics,
    /// Rows of series the last batch did not keep, for usage accounting.
    dropped: Option<RecordBatch>,
}

impl Sample {
    pub(crate) fn new(ratio: f64, seed: u64, metric: AnyOf, metrics: SampleMetrics) -> Self {
        Sample {
            ratio,
            seed,
            threshold: threshold(ratio),
            metric,
            metrics,
            dropped: None,
        }
    }

    /// Whether row `row` is subject to sampling (its metric is selected).
    #[inline]
    fn selected<'a>(
        &self,
        metric: &'a StringArray,
        row: usize,
        last: &mut Option<(&'a str, bool)>,
    ) -> bool {
        if self.metric.is_empty() {
            return true;
        }
        let name = metric.value(row);
        match *last {
            Some((prev, hit)) if prev == name => hit,
            _ => {
                let hit = self.metric.is_match(name);
                *last = Some((name, hit));
                hit
            }
        }
    }
}

impl Processor for Sample {
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(batch);
        }
        let ids = u64s(&batch, col::SERIES_ID)?;
        let metric = strings(&batch, col::METRIC)?;
        let rates = f64s(&batch, col::SAMPLE_RATE)?;
        let mut last = None;
        let selected =
            BooleanBuffer::collect_bool(rows, |row| self.selected(metric, row, &mut last));
        let keep = BooleanBuffer::collect_bool(rows, |row| {
            !selected.value(row) || keeps(ids.value(row), self.seed, self.threshold)
        });
        let kept = keep.count_set_bits();
        let scaled: Vec<f64> = rates
            .values()
            .iter()
            .enumerate()
            .map(|(row, &rate)| {
                if selected.value(row) {
                    rate * self.ratio
                } else {
                    rate
                }
            })
            .collect();
        let scaled = Float64Array::new(scaled.into(), rates.nulls().cloned());
        let batch = replace(&batch, &[(col::SAMPLE_RATE, Arc::new(scaled))])?;
        if kept == rows {
            return Ok(batch);
        }
        self.metrics.sampled.increment((rows - kept) as u64);
        self.dropped = Some(dropped_rows(&batch, &keep)?);
        if kept == 0 {
            return Ok(batch.slice(0, 0));
        }
        Ok(filter_record_batch(&batch, &BooleanArray::new(keep, None))?)
    }

    fn take_dropped(&mut self) -> Option<RecordBatch> {
        self.dropped.take()
    }
}
