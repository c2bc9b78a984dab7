//! `type: anomaly`: scores the selected series with the streaming detector of
//! `phoenix-anomaly`, records each alarm in the shared [`AnomalyRecorder`] (drained into the
//! `anomalies` table) and passes every batch through unchanged, so it can sit inline.
//!
//! See `README.md` for the keys. [`cost`] holds the cost (cardinality) detector that runs on
//! the usage accounting rather than in the graph.

pub mod cost;
pub mod metrics;
mod recorder;
mod runtime;
#[cfg(test)]
mod tests;
mod value;

use phoenix_anomaly::{Detector, DetectorConfig};
pub use phoenix_model::pipeline::AnomalyConfig;
use phoenix_model::pipeline::ProcessorParams;

pub use cost::{CostAnomaly, CostDetector, Figure};
pub use recorder::{to_batch, AnomalyRecorder, AnomalyRow, DEFAULT_CAPACITY};
pub use runtime::AnomalyProcessor;

use crate::filter::compile;
use crate::processor::{Processor, Registration};
use crate::{Error, Result};

/// The YAML `type:` name.
pub const TYPE: &str = AnomalyConfig::TYPE;

/// Registration for [`crate::processor::REGISTRY`]; processors built through it record into
/// a recorder of their own, which nothing drains: the graph builds `anomaly` processors with
/// the graph's recorder instead (see [`crate::Graph::build_recording`]).
pub const REGISTRATION: Registration = Registration {
    type_name: TYPE,
    build: |id, params| match params {
        ProcessorParams::Anomaly(c) => Some(
            build(id, c, AnomalyRecorder::default()).map(|p| Box::new(p) as Box<dyn Processor>),
        ),
        _ => None,
    },
};

/// Builds the processor `id`, recording into `recorder`.
///
/// # Errors
/// [`Error::Build`] for a selector pattern or a detector parameter that does not build.
pub fn build(
    id: &str,
    config: &AnomalyConfig,
    recorder: AnomalyRecorder,
) -> Result<AnomalyProcessor> {
    let err = |reason: String| Error::Build {
        id: id.to_string(),
        type_name: TYPE.to_string(),
        reason,
    };
    let select = config
        .select
        .as_ref()
        .map(compile)
        .transpose()
        .map_err(err)?;
    let mut dc = DetectorConfig::default();
    for (key, value) in &config.detector {
        // f64 displays integers without a fraction ("64"), which integer keys parse.
        dc.set(key, &value.to_string())
            .map_err(|e| err(format!("detector.{key}: {e}")))?;
    }
    let detector = Detector::new(dc).map_err(|e| err(format!("detector: {e}")))?;
    Ok(AnomalyProcessor::new(runtime::Parts {
        id: id.to_string(),
        select,
        quantile: config.histogram_quantile,
        max_series: config.max_series,
        idle_ns: i64::try_from(config.idle_expiry_secs.saturating_mul(1_000_000_000))
            .unwrap_or(i64::MAX),
        detector,
        recorder,
    }))
}
