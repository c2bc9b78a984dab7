//! The processor trait and the table of processor types.
//!
//! Every component registers one [`Registration`] here, keyed by its YAML `type:`; the graph
//! builder looks types up in [`REGISTRY`] and never names a concrete processor.

use arrow::record_batch::RecordBatch;
use phoenix_model::pipeline::ProcessorParams;

use crate::{attributes, filter, sample, Error, Result};

/// A step of the graph that turns one batch into another.
///
/// Stateless processors implement [`Processor::process`] only. A stateful one (windows, rollups)
/// returns what is ready from `process`, holds the rest, and emits it from [`Processor::flush`];
/// the stage will then have to hold back acknowledgements for input it still holds.
pub trait Processor: Send {
    /// Processes one batch in the metrics schema; the result may be empty.
    ///
    /// # Errors
    /// A kernel failure or a batch not in the metrics schema; the stage counts the batch's
    /// datapoints as dropped with reason `error`.
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch>;

    /// Emits state that is complete once event time reached `watermark_ns` (`None`: at
    /// shutdown, everything). Stateless processors hold nothing.
    ///
    /// # Errors
    /// As [`Processor::process`].
    fn flush(&mut self, _watermark_ns: Option<i64>) -> Result<Option<RecordBatch>> {
        Ok(None)
    }
}

/// Builds a processor from its id and parameters; `None` when the parameters are of another
/// type.
pub type BuildFn = fn(id: &str, params: &ProcessorParams) -> Option<Result<Box<dyn Processor>>>;

/// One processor type.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The YAML `type:` name.
    pub type_name: &'static str,
    /// Its builder.
    pub build: BuildFn,
}

/// Every processor type.
pub const REGISTRY: &[Registration] = &[
    filter::REGISTRATION,
    attributes::REGISTRATION,
    sample::REGISTRATION,
];

/// Builds processor `id` from its parameters through [`REGISTRY`].
///
/// # Errors
/// [`Error::Build`] for an unknown type or parameters that do not build.
pub fn build_processor(id: &str, params: &ProcessorParams) -> Result<Box<dyn Processor>> {
    let type_name = params.type_name();
    let unknown = || Error::Build {
        id: id.to_string(),
        type_name: type_name.to_string(),
        reason: "no processor of this type".into(),
    };
    let reg = REGISTRY
        .iter()
        .find(|r| r.type_name == type_name)
        .ok_or_else(unknown)?;
    (reg.build)(id, params).ok_or_else(unknown)?
}
