//! Test helpers for this crate and its dependents: build `metrics` batches from a few fields.

use std::sync::Arc;

use arrow::array::{
    new_null_array, ArrayRef, BooleanArray, Float64Array, MapBuilder, RecordBatch, StringArray,
    StringBuilder, TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use phoenix_model::metrics_schema;
use phoenix_model::schema::{col, kind, temporality};

/// One datapoint for a test; fields not listed here get neutral values (no unit, scope `test`,
/// sample rate 1, histogram columns null).
#[derive(Debug, Clone, PartialEq)]
pub struct TestPoint {
    /// `time`, ns since the epoch.
    pub time_ns: i64,
    /// `metric`.
    pub metric: String,
    /// `service`.
    pub service: String,
    /// `value`.
    pub value: Option<f64>,
    /// `series_id`.
    pub series_id: u64,
    /// `attributes`.
    pub attributes: Vec<(String, String)>,
    /// `resource`.
    pub resource: Vec<(String, String)>,
    /// Whether the point is a cumulative monotonic sum (else a gauge).
    pub counter: bool,
}

impl TestPoint {
    /// A gauge point; `series_id` is derived from metric and service.
    pub fn gauge(metric: &str, service: &str, time_ns: i64, value: f64) -> Self {
        let series_id = metric
            .bytes()
            .chain(service.bytes())
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        TestPoint {
            time_ns,
            metric: metric.to_string(),
            service: service.to_string(),
            value: Some(value),
            series_id,
            attributes: Vec::new(),
            resource: vec![("service.name".to_string(), service.to_string())],
            counter: false,
        }
    }

    /// Makes the point a cumulative monotonic sum.
    pub fn counter(mut self) -> Self {
        self.counter = true;
        self
    }

    /// Adds a datapoint attribute.
    pub fn attr(mut self, key: &str, value: &str) -> Self {
        self.attributes.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds a resource attribute.
    pub fn resource(mut self, key: &str, value: &str) -> Self {
        self.resource.push((key.to_string(), value.to_string()));
        self
    }
}

/// A batch in [`metrics_schema`] holding `points` in order.
///
/// # Panics
/// Never for the current schema; a schema change the helper does not know panics (tests only).
pub fn metrics_batch(points: &[TestPoint]) -> RecordBatch {
    let schema = metrics_schema();
    let n = points.len();
    let strings = |f: &dyn Fn(&TestPoint) -> Option<String>| -> ArrayRef {
        Arc::new(points.iter().map(f).collect::<StringArray>())
    };
    let map = |f: &dyn Fn(&TestPoint) -> &[(String, String)]| -> ArrayRef {
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for p in points {
            for (k, v) in f(p) {
                b.keys().append_value(k);
                b.values().append_value(v);
            }
            b.append(true).expect("map entry");
        }
        Arc::new(b.finish())
    };
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| match field.name().as_str() {
            col::TIME => Arc::new(
                TimestampNanosecondArray::from(
                    points.iter().map(|p| p.time_ns).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ) as ArrayRef,
            col::START_TIME => {
                Arc::new(TimestampNanosecondArray::new_null(n).with_timezone("UTC")) as ArrayRef
            }
            col::METRIC => strings(&|p| Some(p.metric.clone())),
            col::KIND => strings(&|p| Some(if p.counter { kind::SUM } else { kind::GAUGE }.into())),
            col::TEMPORALITY => strings(&|p| p.counter.then(|| temporality::CUMULATIVE.into())),
            col::MONOTONIC => Arc::new(
                points
                    .iter()
                    .map(|p| p.counter.then_some(true))
                    .collect::<BooleanArray>(),
            ),
            col::UNIT => strings(&|_| Some(String::new())),
            col::SERVICE => strings(&|p| Some(p.service.clone())),
            col::RESOURCE => map(&|p| &p.resource),
            col::SCOPE => strings(&|_| Some("test".into())),
            col::ATTRIBUTES => map(&|p| &p.attributes),
            col::SERIES_ID => Arc::new(points.iter().map(|p| p.series_id).collect::<UInt64Array>()),
            col::VALUE => Arc::new(points.iter().map(|p| p.value).collect::<Float64Array>()),
            col::SAMPLE_RATE => Arc::new(Float64Array::from(vec![1.0; n])),
            col::FLAGS => Arc::new(UInt32Array::from(vec![0; n])),
            // Columns the fixture does not set are all null, whatever their type.
            _ => new_null_array(field.data_type(), n),
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("batch matches metrics_schema")
}

/// A string map column of `rows` rows, row `r` with `r % 4` entries `k0..`, every third value
/// null and the others `{tag}{r}.{k}`: maps of varying sizes with null values.
pub fn map_with_null_values(rows: usize, tag: &str) -> ArrayRef {
    let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for row in 0..rows {
        for k in 0..row % 4 {
            b.keys().append_value(format!("k{k}"));
            if (row + k) % 3 == 0 {
                b.values().append_null();
            } else {
                b.values().append_value(format!("{tag}{row}.{k}"));
            }
        }
        b.append(true).expect("map row");
    }
    Arc::new(b.finish())
}
