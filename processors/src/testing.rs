//! Test helpers: build metrics batches from plain rows and read them back.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, Float64Array, Float64Builder, ListArray,
    ListBuilder, MapBuilder, RecordBatch, StringArray, StringBuilder, TimestampNanosecondArray,
    UInt32Array, UInt64Array, UInt64Builder,
};
use phoenix_model::metrics_schema;
use phoenix_model::schema::col;
use phoenix_model::series_id::series_id;

use crate::columns::{f64s, string_map, strings, u64s};

pub(crate) mod gated;

/// Map entries as plain values.
pub(crate) type Entries = Vec<(String, Option<String>)>;

/// One datapoint as plain Rust values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub time_ns: i64,
    pub metric: String,
    pub kind: String,
    pub service: String,
    pub resource: Entries,
    pub attributes: Entries,
    pub series_id: u64,
    pub value: Option<f64>,
    pub sample_rate: f64,
    /// Sum / histogram fields (`None` for gauges).
    pub hist: HistFields,
}

/// The `start_time`, `temporality`, `monotonic` and histogram columns of a [`Row`].
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct HistFields {
    pub start_ns: Option<i64>,
    pub temporality: Option<String>,
    pub monotonic: Option<bool>,
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub bounds: Option<Vec<f64>>,
    pub bucket_counts: Option<Vec<u64>>,
}

impl Row {
    /// A gauge of `metric` for service `svc` (resource `service.name=svc`), value `v`.
    pub fn gauge(metric: &str, svc: &str, time_ns: i64, v: f64) -> Row {
        let mut r = Row {
            time_ns,
            metric: metric.into(),
            kind: "gauge".into(),
            service: svc.into(),
            resource: vec![("service.name".into(), Some(svc.into()))],
            attributes: Vec::new(),
            series_id: 0,
            value: Some(v),
            sample_rate: 1.0,
            hist: HistFields::default(),
        };
        r.rehash();
        r
    }

    /// A monotonic sum of `metric` with `temporality` (`delta` / `cumulative`), start
    /// `start_ns`, value `v`.
    pub fn sum(
        metric: &str,
        svc: &str,
        temporality: &str,
        start_ns: Option<i64>,
        time_ns: i64,
        v: f64,
    ) -> Row {
        let mut r = Row::gauge(metric, svc, time_ns, v).kind("sum");
        r.hist.start_ns = start_ns;
        r.hist.temporality = Some(temporality.into());
        r.hist.monotonic = Some(true);
        r
    }

    /// An explicit-bucket histogram with `temporality`, `bounds` and `buckets` (count is their
    /// total), sum `sum`, no min/max.
    #[allow(clippy::too_many_arguments)] // One field per column.
    pub fn histogram(
        metric: &str,
        svc: &str,
        temporality: &str,
        start_ns: Option<i64>,
        time_ns: i64,
        bounds: &[f64],
        buckets: &[u64],
        sum: Option<f64>,
    ) -> Row {
        let mut r = Row::gauge(metric, svc, time_ns, 0.0).kind("histogram");
        r.value = None;
        r.hist = HistFields {
            start_ns,
            temporality: Some(temporality.into()),
            monotonic: None,
            count: Some(buckets.iter().sum()),
            sum,
            min: None,
            max: None,
            bounds: Some(bounds.to_vec()),
            bucket_counts: Some(buckets.to_vec()),
        };
        r
    }

    /// Adds a datapoint attribute.
    pub fn attr(mut self, k: &str, v: &str) -> Row {
        self.attributes.push((k.into(), Some(v.into())));
        self.rehash();
        self
    }

    /// Adds a datapoint attribute without a value.
    pub fn attr_null(mut self, k: &str) -> Row {
        self.attributes.push((k.into(), None));
        self.rehash();
        self
    }

    /// Adds a resource attribute.
    pub fn res(mut self, k: &str, v: &str) -> Row {
        self.resource.push((k.into(), Some(v.into())));
        self.rehash();
        self
    }

    /// Sets the kind.
    pub fn kind(mut self, kind: &str) -> Row {
        self.kind = kind.into();
        self
    }

    /// Recomputes `series_id` with the recipe, from plain values (the independent reference).
    pub fn rehash(&mut self) {
        self.series_id = series_id(
            &self.metric,
            self.resource
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref())),
            self.attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref())),
        );
    }
}

/// A batch in the metrics schema holding `rows` in order.
pub(crate) fn batch(rows: &[Row]) -> RecordBatch {
    let schema = metrics_schema();
    let n = rows.len();
    let strs = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let map = |f: &dyn Fn(&Row) -> &Entries| -> ArrayRef {
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for r in rows {
            for (k, v) in f(r) {
                b.keys().append_value(k);
                b.values().append_option(v.as_deref());
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
                TimestampNanosecondArray::from(rows.iter().map(|r| r.time_ns).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ) as ArrayRef,
            col::START_TIME => Arc::new(
                rows.iter()
                    .map(|r| r.hist.start_ns)
                    .collect::<TimestampNanosecondArray>()
                    .with_timezone("UTC"),
            ) as ArrayRef,
            col::METRIC => strs(&|r| Some(r.metric.clone())),
            col::KIND => strs(&|r| Some(r.kind.clone())),
            col::TEMPORALITY => strs(&|r| r.hist.temporality.clone()),
            col::MONOTONIC => Arc::new(
                rows.iter()
                    .map(|r| r.hist.monotonic)
                    .collect::<BooleanArray>(),
            ),
            col::COUNT => Arc::new(rows.iter().map(|r| r.hist.count).collect::<UInt64Array>()),
            col::SUM => Arc::new(rows.iter().map(|r| r.hist.sum).collect::<Float64Array>()),
            col::MIN => Arc::new(rows.iter().map(|r| r.hist.min).collect::<Float64Array>()),
            col::MAX => Arc::new(rows.iter().map(|r| r.hist.max).collect::<Float64Array>()),
            col::BOUNDS => {
                let mut b = ListBuilder::new(Float64Builder::new());
                for r in rows {
                    match &r.hist.bounds {
                        Some(v) => b.append_value(v.iter().map(|x| Some(*x))),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            col::BUCKET_COUNTS => {
                let mut b = ListBuilder::new(UInt64Builder::new());
                for r in rows {
                    match &r.hist.bucket_counts {
                        Some(v) => b.append_value(v.iter().map(|x| Some(*x))),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            col::UNIT => strs(&|_| Some(String::new())),
            col::SERVICE => strs(&|r| Some(r.service.clone())),
            col::RESOURCE => map(&|r| &r.resource),
            col::SCOPE => strs(&|_| Some("test".into())),
            col::ATTRIBUTES => map(&|r| &r.attributes),
            col::SERIES_ID => Arc::new(rows.iter().map(|r| r.series_id).collect::<UInt64Array>()),
            col::VALUE => Arc::new(rows.iter().map(|r| r.value).collect::<Float64Array>()),
            col::SAMPLE_RATE => Arc::new(
                rows.iter()
                    .map(|r| Some(r.sample_rate))
                    .collect::<Float64Array>(),
            ),
            col::FLAGS => Arc::new(UInt32Array::from(vec![0; n])),
            // Columns the fixture does not set are all null, whatever their type.
            _ => new_null_array(field.data_type(), n),
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("batch matches metrics_schema")
}

/// Reads a metrics batch back into rows (the columns [`Row`] has).
pub(crate) fn rows(batch: &RecordBatch) -> Vec<Row> {
    assert_eq!(batch.schema(), metrics_schema(), "schema kept");
    let time = batch
        .column_by_name(col::TIME)
        .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
        .expect("time");
    let metric = strings(batch, col::METRIC).expect("metric");
    let kind = strings(batch, col::KIND).expect("kind");
    let service = strings(batch, col::SERVICE).expect("service");
    let resource = string_map(batch, col::RESOURCE).expect("resource");
    let attributes = string_map(batch, col::ATTRIBUTES).expect("attributes");
    let ids = u64s(batch, col::SERIES_ID).expect("series_id");
    let value = f64s(batch, col::VALUE).expect("value");
    let rate = f64s(batch, col::SAMPLE_RATE).expect("sample_rate");
    let start = batch
        .column_by_name(col::START_TIME)
        .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
        .expect("start_time");
    let temporality = strings(batch, col::TEMPORALITY).expect("temporality");
    let monotonic = batch
        .column_by_name(col::MONOTONIC)
        .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
        .expect("monotonic");
    let count = u64s(batch, col::COUNT).expect("count");
    let sum = f64s(batch, col::SUM).expect("sum");
    let min = f64s(batch, col::MIN).expect("min");
    let max = f64s(batch, col::MAX).expect("max");
    let list = |name: &'static str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<ListArray>())
            .expect("list column")
    };
    let (bounds, buckets) = (list(col::BOUNDS), list(col::BUCKET_COUNTS));
    let f = |a: &Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
    (0..batch.num_rows())
        .map(|i| Row {
            time_ns: time.value(i),
            metric: metric.value(i).into(),
            kind: kind.value(i).into(),
            service: service.value(i).into(),
            resource: resource
                .range(i)
                .map(|j| (resource.key(j).into(), resource.value(j).map(Into::into)))
                .collect(),
            attributes: attributes
                .range(i)
                .map(|j| {
                    (
                        attributes.key(j).into(),
                        attributes.value(j).map(Into::into),
                    )
                })
                .collect(),
            series_id: ids.value(i),
            value: value.is_valid(i).then(|| value.value(i)),
            sample_rate: rate.value(i),
            hist: HistFields {
                start_ns: start.is_valid(i).then(|| start.value(i)),
                temporality: temporality
                    .is_valid(i)
                    .then(|| temporality.value(i).to_string()),
                monotonic: monotonic.is_valid(i).then(|| monotonic.value(i)),
                count: count.is_valid(i).then(|| count.value(i)),
                sum: f(sum, i),
                min: f(min, i),
                max: f(max, i),
                bounds: bounds.is_valid(i).then(|| {
                    let v = bounds.value(i);
                    let v = v.as_any().downcast_ref::<Float64Array>().expect("f64 list");
                    v.values().to_vec()
                }),
                bucket_counts: buckets.is_valid(i).then(|| {
                    let v = buckets.value(i);
                    let v = v.as_any().downcast_ref::<UInt64Array>().expect("u64 list");
                    v.values().to_vec()
                }),
            },
        })
        .collect()
}
