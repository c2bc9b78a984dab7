//! The running `anomaly` processor: per-series detector state, scoring, passthrough.

use arrow::array::RecordBatch;
use arrow::buffer::BooleanBuffer;
use phoenix_anomaly::{Detector, Direction, Driver, Score, SeriesState};
use phoenix_model::anomaly::KIND_POINT;
use phoenix_model::schema::col;

use super::metrics::AnomalyMetrics;
use super::recorder::{AnomalyRecorder, AnomalyRow};
use super::value::scored_value;
use crate::aggregate::input::{Class, Input};
use crate::columns::string_map;
use crate::delta::{wall_clock_ns, CumulativeState, IdMap, InitialValue};
use crate::filter::{condition_mask, Condition};
use crate::processor::Processor;
use crate::Result;

/// How often (wall clock) idle series are looked for.
const EXPIRY_EVERY_NS: i64 = 10_000_000_000;

/// One scored series.
struct Series {
    state: SeriesState,
    /// Wall clock of its last point, for idle expiry.
    touched_ns: i64,
    /// Event time of its last scored or seen point.
    last_time: i64,
    /// Whether it is in an alarm episode (counted in `phoenix_anomaly_open`).
    open: bool,
}

/// Scores the selected series of every batch and passes the batch on unchanged.
pub struct AnomalyProcessor {
    id: String,
    select: Option<Condition>,
    quantile: Option<f64>,
    max_series: usize,
    idle_ns: i64,
    detector: Detector,
    series: IdMap<Series>,
    cumulative: CumulativeState,
    recorder: AnomalyRecorder,
    metrics: AnomalyMetrics,
    open: usize,
    last_expiry_ns: i64,
    buckets: Vec<u64>,
}

/// What [`super::build`] assembled.
pub(crate) struct Parts {
    pub id: String,
    pub select: Option<Condition>,
    pub quantile: Option<f64>,
    pub max_series: usize,
    pub idle_ns: i64,
    pub detector: Detector,
    pub recorder: AnomalyRecorder,
}

impl AnomalyProcessor {
    pub(crate) fn new(p: Parts) -> Self {
        let now = wall_clock_ns();
        AnomalyProcessor {
            metrics: AnomalyMetrics::new(&p.id),
            id: p.id,
            select: p.select,
            quantile: p.quantile,
            max_series: p.max_series,
            idle_ns: p.idle_ns,
            detector: p.detector,
            series: IdMap::default(),
            cumulative: CumulativeState::new(InitialValue::Drop, p.idle_ns),
            recorder: p.recorder,
            open: 0,
            last_expiry_ns: now,
            buckets: Vec::new(),
        }
    }

    /// Series with detector state.
    pub fn series(&self) -> usize {
        self.series.len()
    }

    /// Series in an alarm episode.
    pub fn open(&self) -> usize {
        self.open
    }

    /// Forgets series idle for longer than `idle_expiry_secs` as of `now_ns` (wall clock).
    pub fn expire(&mut self, now_ns: i64) {
        let cutoff = now_ns.saturating_sub(self.idle_ns);
        let mut closed = 0;
        self.series.retain(|_, s| {
            let keep = s.touched_ns >= cutoff;
            if !keep && s.open {
                closed += 1;
            }
            keep
        });
        self.open -= closed;
        self.cumulative.expire(now_ns);
        self.last_expiry_ns = now_ns;
    }

    /// Scores the selected rows of `batch` at wall clock `now_ns`.
    fn score_batch(&mut self, batch: &RecordBatch, now_ns: i64) -> Result<()> {
        let input = Input::new(batch)?;
        let mask: Option<BooleanBuffer> = match &self.select {
            Some(c) => Some(condition_mask(c, batch)?),
            None => None,
        };
        let mut attributes = None;
        for row in 0..batch.num_rows() {
            if mask.as_ref().is_some_and(|m| !m.value(row)) {
                continue;
            }
            let class = input.class(row);
            if class == Class::Other {
                self.metrics.unsupported.increment(1);
                continue;
            }
            let id = input.series_id[row];
            let time = input.time[row];
            let prev_time = match self.series.get(&id) {
                Some(s) => Some(s.last_time),
                None if self.series.len() >= self.max_series => {
                    self.metrics.max_series.increment(1);
                    continue;
                }
                None => None,
            };
            if prev_time.is_some_and(|p| time <= p) {
                self.metrics.out_of_order.increment(1);
                continue;
            }
            let value = scored_value(
                &input,
                row,
                class,
                prev_time,
                self.quantile,
                &mut self.cumulative,
                &mut self.buckets,
            );
            let detector = &self.detector;
            let s = self.series.entry(id).or_insert_with(|| Series {
                state: detector.new_state(),
                touched_ns: now_ns,
                last_time: time,
                open: false,
            });
            s.touched_ns = now_ns;
            s.last_time = time;
            let Some(value) = value else {
                self.metrics.no_value.increment(1);
                continue;
            };
            let version = s.state.model_version();
            let Ok(score) = self.detector.score(&mut s.state, value) else {
                self.metrics.no_value.increment(1);
                continue;
            };
            self.metrics.scored.increment(1);
            if s.state.model_version() > version {
                self.metrics.refits.increment(1);
            }
            let open = score.alarm || s.state.suppressing();
            if open != s.open {
                s.open = open;
                if open {
                    self.open += 1;
                } else {
                    self.open -= 1;
                }
            }
            if score.alarm {
                let spread = s.state.spread();
                let map = match &attributes {
                    Some(m) => m,
                    None => attributes.insert(string_map(batch, col::ATTRIBUTES)?),
                };
                let attrs = map
                    .range(row)
                    .map(|i| (map.key(i).to_string(), map.value(i).map(str::to_string)))
                    .collect();
                self.recorder.record(AnomalyRow {
                    time_ns: time,
                    metric: input.metric.value(row).to_string(),
                    service: input.service.value(row).to_string(),
                    series_id: Some(id),
                    attributes: attrs,
                    value,
                    expected: score.expected.is_finite().then_some(score.expected),
                    score: score.score,
                    kind: KIND_POINT,
                    driver: score.driver.as_str(),
                    model_version: score.model_version,
                    detector: self.id.clone(),
                    explanation: explain(value, &score, spread),
                    label_keys: None,
                    projected_extra_series: None,
                });
            }
        }
        Ok(())
    }
}

impl Processor for AnomalyProcessor {
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let now = wall_clock_ns();
        if now - self.last_expiry_ns >= EXPIRY_EVERY_NS {
            self.expire(now);
        }
        if batch.num_rows() > 0 {
            self.score_batch(&batch, now)?;
        }
        self.metrics.open.set(self.open as f64);
        self.metrics.series.set(self.series.len() as f64);
        Ok(batch)
    }
}

/// Short human text: `value 950 vs expected 100±12 (spike, forecast)`.
pub(crate) fn explain(value: f64, score: &Score, spread: f64) -> String {
    let what = match (score.driver, score.direction) {
        (Driver::Stuck, _) => "stuck value",
        (Driver::Volatility, _) => "volatility change",
        (Driver::Pattern, _) => "unusual pattern",
        (_, Direction::Above) => "spike",
        (_, Direction::Below) => "dip",
        (_, Direction::Level) => "change",
    };
    if score.expected.is_finite() {
        format!(
            "value {} vs expected {}±{} ({what}, {})",
            num(value),
            num(score.expected),
            num(spread),
            score.driver.as_str()
        )
    } else {
        format!("value {} ({what}, {})", num(value), score.driver.as_str())
    }
}

/// A number with about four significant digits.
fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.3}")
    } else {
        format!("{v:.3e}")
    }
}
