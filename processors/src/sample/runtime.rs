//! The running sampler: series sampling, then (optionally) downsampling of what is kept.
//!
//! A series is kept iff `xxh3_64(series_id as 8 LE bytes, seed ^ SAMPLE_SEED) < ratio · 2^64`.
//! The hash depends on the series only, so the decision is the same in every batch, in every
//! process and after restarts, and a kept series keeps all its points.

use std::sync::Arc;
use std::time::SystemTime;

use arrow::array::{Array, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{concat_batches, filter_record_batch, not};
use phoenix_model::metrics_schema;
use phoenix_model::pattern::AnyOf;
use phoenix_model::schema::col;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::metrics::SampleMetrics;
use crate::aggregate::Aggregate;
use crate::columns::{dropped_rows, f64s, replace, strings, u64s, usage_keys};
use crate::processor::{Processor, StateSnapshot};
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

/// Series sampling parameters.
struct Ratio {
    ratio: f64,
    seed: u64,
    threshold: u128,
}

/// Keeps a `ratio` of series and scales their `sample_rate` by it, then downsamples the
/// selected metrics when configured.
pub struct Sample {
    ratio: Option<Ratio>,
    /// The downsampling engine (the aggregator in downsampling mode).
    downsample: Option<Aggregate>,
    /// Metrics sampled; empty samples all.
    metric: AnyOf,
    metrics: SampleMetrics,
    /// Rows the last call dropped on purpose, for usage accounting.
    dropped: Option<RecordBatch>,
    /// Position assumed by [`Processor::process`].
    next_position: u64,
}

impl Sample {
    pub(crate) fn new(
        ratio: Option<f64>,
        seed: u64,
        metric: AnyOf,
        downsample: Option<Aggregate>,
        metrics: SampleMetrics,
    ) -> Self {
        Sample {
            ratio: ratio.map(|ratio| Ratio {
                ratio,
                seed,
                threshold: threshold(ratio),
            }),
            downsample,
            metric,
            metrics,
            dropped: None,
            next_position: 0,
        }
    }

    /// Which rows of `batch` are subject to sampling (their metric is selected); `None` when
    /// every row is.
    fn selected(&self, batch: &RecordBatch) -> Result<Option<BooleanBuffer>> {
        if self.metric.is_empty() {
            return Ok(None);
        }
        let metric: &StringArray = strings(batch, col::METRIC)?;
        let mut last: Option<(&str, bool)> = None;
        Ok(Some(BooleanBuffer::collect_bool(batch.num_rows(), |row| {
            let name = metric.value(row);
            match last {
                Some((prev, hit)) if prev == name => hit,
                _ => {
                    let hit = self.metric.is_match(name);
                    last = Some((name, hit));
                    hit
                }
            }
        })))
    }

    /// Series sampling of the selected rows; returns the kept rows and sets `dropped`.
    fn sample_series(
        &mut self,
        batch: RecordBatch,
        selected: Option<&BooleanBuffer>,
    ) -> Result<RecordBatch> {
        let Some(r) = &self.ratio else {
            return Ok(batch);
        };
        let rows = batch.num_rows();
        let is_selected = |row: usize| selected.is_none_or(|s| s.value(row));
        let ids = u64s(&batch, col::SERIES_ID)?;
        let rates = f64s(&batch, col::SAMPLE_RATE)?;
        let keep = BooleanBuffer::collect_bool(rows, |row| {
            !is_selected(row) || keeps(ids.value(row), r.seed, r.threshold)
        });
        let kept = keep.count_set_bits();
        let scaled: Vec<f64> = rates
            .values()
            .iter()
            .enumerate()
            .map(|(row, &rate)| {
                if is_selected(row) {
                    rate * r.ratio
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

    /// Adds the downsampler's dropped rows (late, no value, over `max_series`) to `dropped`.
    fn collect_dropped(&mut self) -> Result<()> {
        let Some(more) = self.downsample.as_mut().and_then(Processor::take_dropped) else {
            return Ok(());
        };
        // Both in the usage-key shape: the sampler's drops are projected to it already, the
        // downsampler's carry every column.
        let more = usage_keys(&more)?;
        self.dropped = Some(match self.dropped.take() {
            Some(d) => concat_batches(&d.schema(), [&d, &more])?,
            None => more,
        });
        Ok(())
    }
}

impl Processor for Sample {
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let position = self.next_position;
        self.process_at(batch, position)
    }

    fn process_at(&mut self, batch: RecordBatch, position: u64) -> Result<RecordBatch> {
        self.next_position = position.saturating_add(1);
        self.dropped = None;
        if batch.num_rows() == 0 {
            return Ok(batch);
        }
        let selected = self.selected(&batch)?;
        let batch = self.sample_series(batch, selected.as_ref())?;
        if self.downsample.is_none() {
            return Ok(batch);
        }
        // Unselected rows pass around the downsampler.
        let (down_in, passed) = match &selected {
            None => (batch, None),
            Some(_) => {
                let mask = BooleanArray::new(
                    self.selected(&batch)?
                        .unwrap_or_else(|| BooleanBuffer::new_set(batch.num_rows())),
                    None,
                );
                let passed = filter_record_batch(&batch, &not(&mask)?)?;
                (filter_record_batch(&batch, &mask)?, Some(passed))
            }
        };
        let out = match self.downsample.as_mut() {
            Some(d) => d.process_at(down_in, position)?,
            None => down_in,
        };
        self.collect_dropped()?;
        match passed {
            Some(p) if p.num_rows() > 0 => Ok(concat_batches(&metrics_schema(), [&out, &p])?),
            _ => Ok(out),
        }
    }

    fn held_since(&self) -> Option<u64> {
        self.downsample.as_ref().and_then(Processor::held_since)
    }

    fn checkpoint(&self, out: &mut dyn std::io::Write) -> Option<Result<()>> {
        self.downsample.as_ref().and_then(|d| d.checkpoint(out))
    }

    fn snapshot(&self) -> Option<StateSnapshot> {
        self.downsample.as_ref().and_then(Processor::snapshot)
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        match self.downsample.as_mut() {
            Some(d) => d.restore(state),
            None => Err(crate::Error::Checkpoint(
                "this sample processor does not downsample, so it keeps no state".into(),
            )),
        }
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        self.dropped = None;
        match self.downsample.as_mut() {
            Some(d) => d.flush(),
            None => Ok(None),
        }
    }

    fn tick(&mut self, now: SystemTime) -> Result<Option<RecordBatch>> {
        self.dropped = None;
        match self.downsample.as_mut() {
            Some(d) => d.tick(now),
            None => Ok(None),
        }
    }

    fn take_dropped(&mut self) -> Option<RecordBatch> {
        self.dropped.take()
    }
}
