//! Test helpers: build metrics batches from plain rows and read them back.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, Float64Array, MapBuilder, RecordBatch,
    StringArray, StringBuilder, TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use phoenix_model::metrics_schema;
use phoenix_model::schema::col;
use phoenix_model::series_id::series_id;

use crate::columns::{f64s, string_map, strings, u64s};

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
        };
        r.rehash();
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
            col::START_TIME => {
                Arc::new(TimestampNanosecondArray::new_null(n).with_timezone("UTC")) as ArrayRef
            }
            col::METRIC => strs(&|r| Some(r.metric.clone())),
            col::KIND => strs(&|r| Some(r.kind.clone())),
            col::TEMPORALITY => strs(&|_| None),
            col::MONOTONIC => Arc::new(BooleanArray::new_null(n)),
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
        })
        .collect()
}
