//! Cost anomalies: a metric whose distinct series or datapoints per minute (the `usage`
//! accounting) jump far above its recent minutes.
//!
//! Per metric the detector keeps the last `baseline_minutes` minute figures (summed over
//! services). A minute alarms when its figure is at least `threshold` robust z-scores above the
//! median (scale: 1.4826 × MAD, floored at 5% of the median and at 1, so a flat history does
//! not make every wiggle infinite), at least `min_ratio` × the median, and at least
//! `min_extra_series` (or `min_extra_datapoints`) above it, so tiny metrics never alarm. Steady
//! growth keeps each minute close to the recent median and does not alarm. After an alarm the
//! metric stays quiet for half a baseline unless the figure multiplies again by `min_ratio`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use arrow::array::{RecordBatch, TimestampNanosecondArray};
use phoenix_model::anomaly::{CostAnomalyConfig, KIND_CARDINALITY};
use phoenix_model::usage::col;

use super::recorder::AnomalyRow;
use crate::columns::{column, strings, u64s};
use crate::Result;

const MINUTE_NS: i64 = 60_000_000_000;
/// Minutes in 30 days, for the projection.
const MINUTES_30_DAYS: u64 = 30 * 24 * 60;
/// `detector` of cost anomalies.
pub const COST_DETECTOR: &str = "cost";

/// Which figure jumped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// Distinct series in the minute.
    Series,
    /// Datapoints in the minute.
    Datapoints,
}

impl Figure {
    /// The `driver` column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Figure::Series => "series",
            Figure::Datapoints => "datapoints",
        }
    }
}

/// One cost anomaly, before label keys are known.
#[derive(Debug, Clone, PartialEq)]
pub struct CostAnomaly {
    /// Start of the minute.
    pub minute_ns: i64,
    /// The metric.
    pub metric: String,
    /// The figure that jumped.
    pub figure: Figure,
    /// Its value in the minute.
    pub value: f64,
    /// Its median over the baseline minutes.
    pub baseline: f64,
    /// Robust z-score.
    pub z: f64,
    /// Score in [0.5, 1]: 0.5 at the threshold, towards 1 as z grows.
    pub score: f64,
    /// Extra series over 30 days if the minute's extra series are new each minute (an
    /// unbounded label); an upper bound.
    pub projected_extra_series: u64,
    /// Distinct series of the minute (also for a datapoints anomaly).
    pub series: u64,
}

impl CostAnomaly {
    /// The `anomalies` row, with the attribute keys that grew most (when looked up).
    pub fn into_row(self, label_keys: Option<String>) -> AnomalyRow {
        let ratio = self.value / self.baseline.max(1.0);
        let unit = self.figure.as_str();
        let mut explanation = format!(
            "{} {unit}/min vs median {} ({ratio:.1}x)",
            self.value.round(),
            self.baseline.round()
        );
        if self.projected_extra_series > 0 {
            explanation.push_str(&format!(
                "; up to {} extra series in 30 days if they keep changing",
                self.projected_extra_series
            ));
        }
        if let Some(keys) = &label_keys {
            explanation.push_str(&format!("; growing labels: {keys}"));
        }
        AnomalyRow {
            time_ns: self.minute_ns,
            metric: self.metric,
            service: String::new(),
            series_id: None,
            attributes: Vec::new(),
            value: self.value,
            expected: Some(self.baseline),
            score: self.score,
            kind: KIND_CARDINALITY,
            driver: self.figure.as_str(),
            model_version: 0,
            detector: COST_DETECTOR.to_string(),
            explanation,
            label_keys,
            projected_extra_series: Some(self.projected_extra_series),
        }
    }
}

/// Recent minutes of one metric.
#[derive(Debug, Default)]
struct History {
    last_minute: i64,
    series: VecDeque<f64>,
    datapoints: VecDeque<f64>,
    /// No new alarm up to this minute unless the figure multiplies again.
    quiet_until: i64,
    /// Series and datapoints of the minute that last alarmed.
    peak: [f64; 2],
    /// Observation counter of the latest update, for evicting the least recently seen.
    seen: u64,
}

/// Median and robust scale of `values`.
fn baseline(values: &VecDeque<f64>) -> (f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().collect();
    let median = median_of(&mut v);
    for x in &mut v {
        *x = (*x - median).abs();
    }
    let mad = median_of(&mut v);
    let scale = (1.4826 * mad).max(0.05 * median).max(1.0);
    (median, scale)
}

fn median_of(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The cost anomaly detector over drained `usage` batches.
#[derive(Debug)]
pub struct CostDetector {
    cfg: CostAnomalyConfig,
    metrics: HashMap<String, History>,
    seen: u64,
}

impl CostDetector {
    /// A detector with `cfg`.
    pub fn new(cfg: CostAnomalyConfig) -> Self {
        CostDetector {
            cfg,
            metrics: HashMap::new(),
            seen: 0,
        }
    }

    /// Metrics tracked.
    pub fn tracked(&self) -> usize {
        self.metrics.len()
    }

    /// Feeds one drained `usage` batch (any minutes, metrics and services); returns the
    /// anomalies of its minutes. Rows for a minute a metric already moved past are ignored
    /// (late datapoints after the minute closed).
    ///
    /// # Errors
    /// [`crate::Error::Column`] for a batch not in the `usage` schema.
    pub fn observe(&mut self, usage: &RecordBatch) -> Result<Vec<CostAnomaly>> {
        let minute = column::<TimestampNanosecondArray>(usage, col::MINUTE)?;
        let metric = strings(usage, col::METRIC)?;
        let series = u64s(usage, col::SERIES_IN)?;
        let points = u64s(usage, col::DATAPOINTS_IN)?;
        // (minute, metric) → (series, datapoints), summed over services.
        let mut minutes: BTreeMap<(i64, &str), (u64, u64)> = BTreeMap::new();
        for row in 0..usage.num_rows() {
            let e = minutes
                .entry((minute.value(row), metric.value(row)))
                .or_default();
            e.0 += series.value(row);
            e.1 += points.value(row);
        }
        let mut out = Vec::new();
        for ((m, name), (s, d)) in minutes {
            if let Some(a) = self.observe_minute(m, name, s, d) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Feeds one (minute, metric) figure pair.
    pub fn observe_minute(
        &mut self,
        minute_ns: i64,
        metric: &str,
        series: u64,
        datapoints: u64,
    ) -> Option<CostAnomaly> {
        self.seen += 1;
        if !self.metrics.contains_key(metric) && self.metrics.len() >= self.cfg.max_metrics {
            self.evict_oldest();
        }
        let cfg = &self.cfg;
        let h = self
            .metrics
            .entry(metric.to_string())
            .or_insert_with(|| History {
                last_minute: i64::MIN,
                ..History::default()
            });
        if minute_ns <= h.last_minute {
            return None;
        }
        h.last_minute = minute_ns;
        h.seen = self.seen;
        let (s, d) = (series as f64, datapoints as f64);
        let mut found = None;
        if h.series.len() >= cfg.min_baseline_minutes {
            for (figure, v, hist, min_extra, peak) in [
                (
                    Figure::Series,
                    s,
                    &h.series,
                    cfg.min_extra_series,
                    h.peak[0],
                ),
                (
                    Figure::Datapoints,
                    d,
                    &h.datapoints,
                    cfg.min_extra_datapoints,
                    h.peak[1],
                ),
            ] {
                let (median, scale) = baseline(hist);
                let z = (v - median) / scale;
                let jump = z >= cfg.threshold
                    && v >= cfg.min_ratio * median
                    && v - median >= min_extra as f64;
                let quiet = minute_ns <= h.quiet_until && v < peak * cfg.min_ratio;
                if jump && !quiet {
                    let extra_series = (s - h_median(&h.series)).max(0.0) as u64;
                    found = Some(CostAnomaly {
                        minute_ns,
                        metric: metric.to_string(),
                        figure,
                        value: v,
                        baseline: median,
                        z,
                        score: (0.5 + 0.5 * (1.0 - cfg.threshold / z)).clamp(0.5, 1.0),
                        projected_extra_series: extra_series.saturating_mul(MINUTES_30_DAYS),
                        series,
                    });
                    break;
                }
            }
        }
        if found.is_some() {
            h.quiet_until = minute_ns + (cfg.baseline_minutes as i64 / 2).max(1) * MINUTE_NS;
            h.peak = [s, d];
        }
        for (hist, v) in [(&mut h.series, s), (&mut h.datapoints, d)] {
            hist.push_back(v);
            while hist.len() > cfg.baseline_minutes {
                hist.pop_front();
            }
        }
        found
    }

    fn evict_oldest(&mut self) {
        if let Some(name) = self
            .metrics
            .iter()
            .min_by_key(|(_, h)| h.seen)
            .map(|(k, _)| k.clone())
        {
            self.metrics.remove(&name);
        }
    }
}

fn h_median(values: &VecDeque<f64>) -> f64 {
    baseline(values).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CostAnomalyConfig {
        CostAnomalyConfig {
            min_extra_series: 100,
            ..CostAnomalyConfig::default()
        }
    }

    /// A metric whose series jump 20x in one minute alarms once, with the jump's size and a
    /// 30-day projection; the next (still high) minute does not alarm again.
    #[test]
    fn jump_flags_once() {
        let mut d = CostDetector::new(cfg());
        for m in 0..10 {
            assert!(d
                .observe_minute(m * MINUTE_NS, "http", 50 + (m as u64 % 3), 3000)
                .is_none());
        }
        let a = d
            .observe_minute(10 * MINUTE_NS, "http", 1000, 60_000)
            .expect("a 20x jump alarms");
        assert_eq!(a.figure, Figure::Series);
        assert_eq!(a.baseline, 51.0);
        assert!(a.score > 0.9, "{}", a.score);
        assert_eq!(a.projected_extra_series, 949 * MINUTES_30_DAYS);
        assert!(d
            .observe_minute(11 * MINUTE_NS, "http", 1000, 60_000)
            .is_none());
        let row = a.into_row(Some("user_id".into()));
        assert_eq!(row.kind, "cardinality");
        assert!(
            row.explanation.contains("1000 series/min vs median 51"),
            "{}",
            row.explanation
        );
    }

    /// Steady growth (+3% a minute for two hours), noise, and a small metric's 20x jump below
    /// the minimum extra series never alarm.
    #[test]
    fn steady_growth_and_tiny_metrics_do_not() {
        let mut d = CostDetector::new(cfg());
        let mut v = 1000.0f64;
        for m in 0..120 {
            let noisy = v * if m % 2 == 0 { 1.01 } else { 0.99 };
            assert!(
                d.observe_minute(m * MINUTE_NS, "growing", noisy as u64, noisy as u64 * 6)
                    .is_none(),
                "minute {m}"
            );
            v *= 1.03;
        }
        for m in 0..10 {
            assert!(d.observe_minute(m * MINUTE_NS, "tiny", 2, 12).is_none());
        }
        assert!(d.observe_minute(10 * MINUTE_NS, "tiny", 40, 240).is_none());
    }

    /// A datapoint-rate jump with a steady series count alarms on `datapoints`; late rows for a
    /// past minute are ignored; the metric cap evicts the least recently seen metric.
    #[test]
    fn datapoints_late_rows_and_cap() {
        let mut d = CostDetector::new(CostAnomalyConfig {
            max_metrics: 2,
            ..cfg()
        });
        for m in 0..6 {
            d.observe_minute(m * MINUTE_NS, "a", 100, 6_000);
        }
        let a = d
            .observe_minute(6 * MINUTE_NS, "a", 100, 600_000)
            .expect("datapoints jump");
        assert_eq!(a.figure, Figure::Datapoints);
        assert_eq!(a.projected_extra_series, 0);
        assert!(d.observe_minute(3 * MINUTE_NS, "a", 100_000, 1).is_none());
        d.observe_minute(0, "b", 1, 1);
        d.observe_minute(0, "c", 1, 1);
        assert_eq!(d.tracked(), 2);
        assert!(!d.metrics.contains_key("a"), "least recently seen evicted");
    }
}
