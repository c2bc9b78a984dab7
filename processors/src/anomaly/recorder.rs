//! [`AnomalyRecorder`]: the anomalies found by the graph's `anomaly` processors and by the
//! cost detector, held until a task drains them into the `anomalies` table, and handed to an
//! optional notifier (the webhook) as they are found.

use std::sync::{Arc, Mutex};

use arrow::array::{
    ArrayRef, Float64Array, MapBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use phoenix_model::anomaly::anomalies_schema;
use tokio::sync::mpsc;

use super::metrics::{detected, DROPPED, REASON_BUFFER_FULL, REASON_QUEUE_FULL, WEBHOOK_DROPPED};
use crate::Result;

/// Rows held between drains by default; past it new rows are dropped and counted.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// One anomaly, one row of the `anomalies` table (see `phoenix_model::anomaly::col`).
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRow {
    /// Event time of the point, or start of the usage minute.
    pub time_ns: i64,
    /// Metric name.
    pub metric: String,
    /// `service.name` ("" for cost anomalies).
    pub service: String,
    /// Series id (`None` for cost anomalies).
    pub series_id: Option<u64>,
    /// Datapoint attributes of the series.
    pub attributes: Vec<(String, Option<String>)>,
    /// The scored value.
    pub value: f64,
    /// What was expected, when known.
    pub expected: Option<f64>,
    /// Score in [0, 1].
    pub score: f64,
    /// `point` or `cardinality`.
    pub kind: &'static str,
    /// What stood out.
    pub driver: &'static str,
    /// Model version that scored it.
    pub model_version: u32,
    /// Processor id, or `cost`.
    pub detector: String,
    /// Short human text.
    pub explanation: String,
    /// Attribute keys that grew most (cost anomalies).
    pub label_keys: Option<String>,
    /// Extra series over 30 days if the growth goes on (cost anomalies).
    pub projected_extra_series: Option<u64>,
}

#[derive(Debug)]
struct Inner {
    pending: Mutex<Vec<AnomalyRow>>,
    capacity: usize,
    notify: Option<mpsc::Sender<Arc<AnomalyRow>>>,
}

/// Shared sink of anomalies. Cheap to clone; clones share the pending rows.
#[derive(Debug, Clone)]
pub struct AnomalyRecorder {
    inner: Arc<Inner>,
}

impl Default for AnomalyRecorder {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY, None)
    }
}

impl AnomalyRecorder {
    /// A recorder holding at most `capacity` rows between drains; every recorded row is also
    /// offered to `notify` without waiting (a full queue drops the notification, counted).
    pub fn new(capacity: usize, notify: Option<mpsc::Sender<Arc<AnomalyRow>>>) -> Self {
        AnomalyRecorder {
            inner: Arc::new(Inner {
                pending: Mutex::new(Vec::new()),
                capacity: capacity.max(1),
                notify,
            }),
        }
    }

    /// Records one anomaly; never blocks on the notifier.
    pub fn record(&self, row: AnomalyRow) {
        detected(row.kind).increment(1);
        if let Some(tx) = &self.inner.notify {
            if tx.try_send(Arc::new(row.clone())).is_err() {
                metrics::counter!(WEBHOOK_DROPPED, "reason" => REASON_QUEUE_FULL).increment(1);
            }
        }
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() >= self.inner.capacity {
            metrics::counter!(DROPPED, "reason" => REASON_BUFFER_FULL).increment(1);
            return;
        }
        pending.push(row);
    }

    /// Rows waiting for the next drain.
    pub fn pending(&self) -> usize {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Takes every pending row out as one batch in the `anomalies` schema; `None` when there
    /// is none.
    ///
    /// # Errors
    /// [`crate::Error::Arrow`] when the batch cannot be assembled (a bug).
    pub fn drain(&self) -> Result<Option<RecordBatch>> {
        let rows =
            std::mem::take(&mut *self.inner.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if rows.is_empty() {
            return Ok(None);
        }
        to_batch(&rows).map(Some)
    }
}

/// The rows as a batch in the `anomalies` schema.
///
/// # Errors
/// [`crate::Error::Arrow`] when the batch cannot be assembled (a bug).
pub fn to_batch(rows: &[AnomalyRow]) -> Result<RecordBatch> {
    let mut attributes = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for r in rows {
        for (k, v) in &r.attributes {
            attributes.keys().append_value(k);
            attributes.values().append_option(v.as_deref());
        }
        attributes.append(true)?;
    }
    let strs = |f: fn(&AnomalyRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.time_ns))
                .with_timezone("UTC"),
        ),
        strs(|r| Some(&r.metric)),
        strs(|r| Some(&r.service)),
        Arc::new(rows.iter().map(|r| r.series_id).collect::<UInt64Array>()),
        Arc::new(attributes.finish()),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.value))),
        Arc::new(rows.iter().map(|r| r.expected).collect::<Float64Array>()),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.score))),
        strs(|r| Some(r.kind)),
        strs(|r| Some(r.driver)),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.model_version),
        )),
        strs(|r| Some(&r.detector)),
        strs(|r| Some(&r.explanation)),
        strs(|r| r.label_keys.as_deref()),
        Arc::new(
            rows.iter()
                .map(|r| r.projected_extra_series)
                .collect::<UInt64Array>(),
        ),
    ];
    Ok(RecordBatch::try_new(anomalies_schema(), columns)?)
}
