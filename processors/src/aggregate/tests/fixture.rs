//! Plain-Rust points in and rows out, a default config, and a runner.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Float64Array, Float64Builder,
    ListArray, ListBuilder, MapBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampNanosecondArray, UInt32Array, UInt64Array, UInt64Builder,
};
use arrow::datatypes::{Float64Type, UInt64Type};
use phoenix_model::metrics_schema;
use phoenix_model::pipeline::{
    AggregateConfig, GaugeFunction, InitialValueMode, Interval, LatePolicy, OutputTemporality,
};
use phoenix_model::schema::col;
use phoenix_model::series_id::series_id;

use crate::aggregate::{build, Aggregate};
use crate::columns::{column, f64s, string_map, strings, u64s};
use crate::processor::Processor;

/// Start of a minute (2023-11-14T22:13:00Z), so window starts are `T0 + k·MIN`.
pub const T0: i64 = 1_699_999_980_000_000_000;
/// One second in ns.
pub const SEC: i64 = 1_000_000_000;
/// One minute in ns.
pub const MIN: i64 = 60 * SEC;

/// Map entries.
pub type Entries = Vec<(String, Option<String>)>;

/// One input datapoint.
#[derive(Debug, Clone, PartialEq)]
pub struct P {
    pub time: i64,
    pub start: Option<i64>,
    pub metric: String,
    pub kind: &'static str,
    pub temporality: Option<&'static str>,
    pub monotonic: Option<bool>,
    pub resource: Entries,
    pub attributes: Entries,
    pub value: Option<f64>,
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub bounds: Option<Vec<f64>>,
    pub buckets: Option<Vec<u64>>,
    pub sample_rate: f64,
    pub flags: u32,
}

impl P {
    fn base(metric: &str, host: &str, time: i64, kind: &'static str) -> P {
        P {
            time,
            start: None,
            metric: metric.into(),
            kind,
            temporality: None,
            monotonic: None,
            resource: vec![
                ("service.name".into(), Some("svc".into())),
                ("host.name".into(), Some(host.into())),
            ],
            attributes: Vec::new(),
            value: None,
            count: None,
            sum: None,
            min: None,
            max: None,
            bounds: None,
            buckets: None,
            sample_rate: 1.0,
            flags: 0,
        }
    }

    /// A gauge value of `metric` from host `host`.
    pub fn gauge(metric: &str, host: &str, time: i64, v: f64) -> P {
        P {
            value: Some(v),
            ..P::base(metric, host, time, "gauge")
        }
    }

    /// A monotonic cumulative sum value started at `start`.
    pub fn counter(metric: &str, host: &str, start: Option<i64>, time: i64, v: f64) -> P {
        P {
            value: Some(v),
            start,
            temporality: Some("cumulative"),
            monotonic: Some(true),
            ..P::base(metric, host, time, "sum")
        }
    }

    /// A monotonic delta sum value.
    pub fn delta(metric: &str, host: &str, time: i64, v: f64) -> P {
        P {
            value: Some(v),
            temporality: Some("delta"),
            monotonic: Some(true),
            ..P::base(metric, host, time, "sum")
        }
    }

    /// A histogram of `temporality` with bounds, bucket counts (count is their sum), sum,
    /// min and max.
    #[allow(clippy::too_many_arguments)] // One histogram's fields.
    pub fn histogram(
        metric: &str,
        host: &str,
        temporality: &'static str,
        time: i64,
        bounds: &[f64],
        buckets: &[u64],
        sum: f64,
        min_max: Option<(f64, f64)>,
    ) -> P {
        P {
            temporality: Some(temporality),
            count: Some(buckets.iter().sum()),
            sum: Some(sum),
            min: min_max.map(|m| m.0),
            max: min_max.map(|m| m.1),
            bounds: Some(bounds.to_vec()),
            buckets: Some(buckets.to_vec()),
            ..P::base(metric, host, time, "histogram")
        }
    }

    /// Adds a datapoint attribute.
    pub fn attr(mut self, k: &str, v: &str) -> P {
        self.attributes.push((k.into(), Some(v.into())));
        self
    }

    /// The series id by the recipe.
    pub fn series_id(&self) -> u64 {
        id_of(&self.metric, &self.resource, &self.attributes)
    }
}

/// `series_id` of a metric name and maps, by the recipe.
pub fn id_of(metric: &str, resource: &Entries, attributes: &Entries) -> u64 {
    series_id(
        metric,
        resource.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
        attributes.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
    )
}

/// The window start of `t` for windows of `w` ns.
pub fn window_of(t: i64, w: i64) -> i64 {
    t - t.rem_euclid(w)
}

/// A batch in the metrics schema holding `points` in order.
pub fn batch(points: &[P]) -> RecordBatch {
    let schema = metrics_schema();
    let n = points.len();
    let strs = |f: &dyn Fn(&P) -> Option<String>| -> ArrayRef {
        Arc::new(points.iter().map(f).collect::<StringArray>())
    };
    let f64col = |f: &dyn Fn(&P) -> Option<f64>| -> ArrayRef {
        Arc::new(points.iter().map(f).collect::<Float64Array>())
    };
    let ts = |f: &dyn Fn(&P) -> Option<i64>| -> ArrayRef {
        Arc::new(
            TimestampNanosecondArray::from(points.iter().map(f).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let map = |f: &dyn Fn(&P) -> &Entries| -> ArrayRef {
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for p in points {
            for (k, v) in f(p) {
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
            col::TIME => ts(&|p| Some(p.time)),
            col::START_TIME => ts(&|p| p.start),
            col::METRIC => strs(&|p| Some(p.metric.clone())),
            col::KIND => strs(&|p| Some(p.kind.into())),
            col::TEMPORALITY => strs(&|p| p.temporality.map(Into::into)),
            col::MONOTONIC => {
                Arc::new(points.iter().map(|p| p.monotonic).collect::<BooleanArray>())
            }
            col::UNIT => strs(&|_| Some("1".into())),
            col::SERVICE => strs(&|_| Some("svc".into())),
            col::RESOURCE => map(&|p| &p.resource),
            col::SCOPE => strs(&|_| Some("test".into())),
            col::ATTRIBUTES => map(&|p| &p.attributes),
            col::SERIES_ID => Arc::new(points.iter().map(P::series_id).collect::<UInt64Array>()),
            col::VALUE => f64col(&|p| p.value),
            col::COUNT => Arc::new(points.iter().map(|p| p.count).collect::<UInt64Array>()),
            col::SUM => f64col(&|p| p.sum),
            col::MIN => f64col(&|p| p.min),
            col::MAX => f64col(&|p| p.max),
            col::BOUNDS => {
                let mut b = ListBuilder::new(Float64Builder::new());
                for p in points {
                    match &p.bounds {
                        Some(v) => {
                            b.values().append_slice(v);
                            b.append(true);
                        }
                        None => b.append(false),
                    }
                }
                Arc::new(b.finish())
            }
            col::BUCKET_COUNTS => {
                let mut b = ListBuilder::new(UInt64Builder::new());
                for p in points {
                    match &p.buckets {
                        Some(v) => {
                            b.values().append_slice(v);
                            b.append(true);
                        }
                        None => b.append(false),
                    }
                }
                Arc::new(b.finish())
            }
            col::SAMPLE_RATE => f64col(&|p| Some(p.sample_rate)),
            col::FLAGS => Arc::new(points.iter().map(|p| p.flags).collect::<UInt32Array>()),
            _ => new_null_array(field.data_type(), n),
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("batch matches metrics_schema")
}

/// One output row.
#[derive(Debug, Clone, PartialEq)]
pub struct Out {
    pub time: i64,
    pub start: Option<i64>,
    pub metric: String,
    pub kind: String,
    pub temporality: Option<String>,
    pub monotonic: Option<bool>,
    pub service: String,
    pub resource: Entries,
    pub attributes: Entries,
    pub series_id: u64,
    pub value: Option<f64>,
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub bounds: Option<Vec<f64>>,
    pub buckets: Option<Vec<u64>>,
    pub sample_rate: f64,
}

impl Out {
    /// A total order for comparing row sets (floats by bits).
    pub fn sort_key(&self) -> (i64, u64, String, u64) {
        (
            self.time,
            self.series_id,
            self.metric.clone(),
            self.sample_rate.to_bits(),
        )
    }
}

fn opt_f64(a: &Float64Array, i: usize) -> Option<f64> {
    a.is_valid(i).then(|| a.value(i))
}

fn list<T: arrow::datatypes::ArrowPrimitiveType>(
    a: &ListArray,
    i: usize,
) -> Option<Vec<T::Native>> {
    a.is_valid(i)
        .then(|| a.value(i).as_primitive::<T>().values().to_vec())
}

/// Reads a batch back into rows.
pub fn read(batch: &RecordBatch) -> Vec<Out> {
    assert_eq!(batch.schema(), metrics_schema(), "schema kept");
    let time = column::<TimestampNanosecondArray>(batch, col::TIME).expect("time");
    let start = column::<TimestampNanosecondArray>(batch, col::START_TIME).expect("start");
    let metric = strings(batch, col::METRIC).expect("metric");
    let kind = strings(batch, col::KIND).expect("kind");
    let temporality = strings(batch, col::TEMPORALITY).expect("temporality");
    let monotonic = column::<BooleanArray>(batch, col::MONOTONIC).expect("monotonic");
    let service = strings(batch, col::SERVICE).expect("service");
    let resource = string_map(batch, col::RESOURCE).expect("resource");
    let attributes = string_map(batch, col::ATTRIBUTES).expect("attributes");
    let ids = u64s(batch, col::SERIES_ID).expect("series_id");
    let value = f64s(batch, col::VALUE).expect("value");
    let count = u64s(batch, col::COUNT).expect("count");
    let sum = f64s(batch, col::SUM).expect("sum");
    let min = f64s(batch, col::MIN).expect("min");
    let max = f64s(batch, col::MAX).expect("max");
    let bounds = column::<ListArray>(batch, col::BOUNDS).expect("bounds");
    let buckets = column::<ListArray>(batch, col::BUCKET_COUNTS).expect("buckets");
    let rate = f64s(batch, col::SAMPLE_RATE).expect("sample_rate");
    let entries = |m: &crate::columns::MapView<'_>, i: usize| -> Entries {
        m.range(i)
            .map(|j| (m.key(j).to_string(), m.value(j).map(str::to_string)))
            .collect()
    };
    (0..batch.num_rows())
        .map(|i| Out {
            time: time.value(i),
            start: start.is_valid(i).then(|| start.value(i)),
            metric: metric.value(i).into(),
            kind: kind.value(i).into(),
            temporality: temporality.is_valid(i).then(|| temporality.value(i).into()),
            monotonic: monotonic.is_valid(i).then(|| monotonic.value(i)),
            service: service.value(i).into(),
            resource: entries(&resource, i),
            attributes: entries(&attributes, i),
            series_id: ids.value(i),
            value: opt_f64(value, i),
            count: count.is_valid(i).then(|| count.value(i)),
            sum: opt_f64(sum, i),
            min: opt_f64(min, i),
            max: opt_f64(max, i),
            bounds: list::<Float64Type>(bounds, i),
            buckets: list::<UInt64Type>(buckets, i),
            sample_rate: rate.value(i),
        })
        .collect()
}

/// A 1-minute temporal rollup with 10 s lateness, every gauge function, keep-first counters.
pub fn config() -> AggregateConfig {
    AggregateConfig {
        window: Interval(Duration::from_secs(60)),
        allowed_lateness: Interval(Duration::from_secs(10)),
        late_policy: LatePolicy::Drop,
        group_by: None,
        group_by_resource: vec!["service.name".into()],
        functions: GaugeFunction::ALL.to_vec(),
        quantiles: Vec::new(),
        relative_error: 0.01,
        output_temporality: OutputTemporality::Delta,
        initial_value: InitialValueMode::Keep,
        max_series: 100_000,
        idle_timeout: Interval(Duration::from_secs(600)),
        idle_grace: Interval(Duration::from_secs(5)),
    }
}

/// Builds an aggregator.
pub fn aggregator(c: &AggregateConfig) -> Aggregate {
    build("agg", c).expect("builds")
}

/// Feeds `batches` (positions 1, 2, …) then flushes; every output row, in emission order.
pub fn run(c: &AggregateConfig, batches: &[Vec<P>]) -> Vec<Out> {
    let mut a = aggregator(c);
    let mut out = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        out.extend(read(
            &a.process_at(batch(b), i as u64 + 1).expect("processes"),
        ));
    }
    if let Some(b) = a.flush().expect("flushes") {
        out.extend(read(&b));
    }
    out
}

/// Rows sorted by [`Out::sort_key`].
pub fn sorted(mut rows: Vec<Out>) -> Vec<Out> {
    rows.sort_by_key(Out::sort_key);
    rows
}

/// Deterministic pseudo-random numbers (SplitMix64), so tests need no RNG crate.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
