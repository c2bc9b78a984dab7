//! The processor trait and the table of processor types.
//!
//! Every component registers one [`Registration`] here, keyed by its YAML `type:`; the graph
//! builder looks types up in [`REGISTRY`] and never names a concrete processor.

use arrow::record_batch::RecordBatch;
use phoenix_model::pipeline::ProcessorParams;

use crate::{
    aggregate, anomaly, attributes, cardinality_limit, filter, sample, temporality, Error, Result,
};

/// A copy of a processor's held state that writes, on any thread, exactly the bytes
/// [`Processor::checkpoint`] would have written for it.
pub type StateSnapshot = Box<dyn FnOnce(&mut dyn std::io::Write) -> Result<()> + Send>;

/// A step of the graph that turns one batch into another.
///
/// Stateless processors implement [`Processor::process`] only. A stateful one (windows,
/// rollups) implements [`Processor::process_at`], returns what is ready, holds the rest, and
/// reports through [`Processor::held_since`] the oldest input position it still holds, so the
/// stage never acknowledges upstream (and the WAL never releases) data that lives only in its
/// memory; [`Processor::flush`] emits everything at shutdown, and [`Processor::tick`] lets it
/// emit on the wall clock when the input is idle. A processor that holds input for long
/// (windows) also implements [`Processor::checkpoint`] and [`Processor::restore`], so the
/// stage can save its state and let the WAL go of what the state covers; one whose state is
/// large also implements [`Processor::snapshot`], so the save is written off the stage's task.
pub trait Processor: Send {
    /// Processes one batch in the metrics schema; the result may be empty.
    ///
    /// # Errors
    /// A kernel failure or a batch not in the metrics schema; the stage counts the batch's
    /// datapoints as dropped with reason `error`.
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch>;

    /// As [`Processor::process`], told the input position (ack token) the batch came with.
    /// Positions increase from one call to the next.
    ///
    /// # Errors
    /// As [`Processor::process`].
    fn process_at(&mut self, batch: RecordBatch, _position: u64) -> Result<RecordBatch> {
        self.process(batch)
    }

    /// The lowest input position some of whose datapoints are held in state and not yet
    /// emitted; `None` when nothing is held.
    fn held_since(&self) -> Option<u64> {
        None
    }

    /// Emits everything held (at shutdown, once the input is drained).
    ///
    /// # Errors
    /// As [`Processor::process`].
    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        Ok(None)
    }

    /// Called by the stage about once a second with the wall clock, whether or not input
    /// arrived; a stateful processor may emit what has waited long enough (the windows of an
    /// idle input). The stage sends the result downstream with the last input position.
    ///
    /// # Errors
    /// As [`Processor::process`].
    fn tick(&mut self, _now: std::time::SystemTime) -> Result<Option<RecordBatch>> {
        Ok(None)
    }

    /// Writes its held state into `out`, for [`Processor::restore`] after a restart; `None`
    /// when it keeps no state worth saving (then its held input stays in the WAL).
    fn checkpoint(&self, _out: &mut dyn std::io::Write) -> Option<Result<()>> {
        None
    }

    /// A copy of its held state that writes [`Processor::checkpoint`]'s bytes, so the stage
    /// saves it on another thread while it goes on processing; `None` when it makes no copies
    /// (the stage then writes [`Processor::checkpoint`] itself and waits for it).
    fn snapshot(&self) -> Option<StateSnapshot> {
        None
    }

    /// Replaces its state with one written by [`Processor::checkpoint`] of a processor with
    /// the same parameters.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the bytes do not decode or the type keeps no checkpoints.
    fn restore(&mut self, _state: &[u8]) -> Result<()> {
        Err(Error::Checkpoint(
            "this processor type keeps no checkpoints".into(),
        ))
    }

    /// The rows the last call dropped on purpose (filtered, sampled, too late), for usage
    /// accounting; `None` when it dropped nothing. Only `time`, `metric`, `service` and
    /// `series_id` are read.
    fn take_dropped(&mut self) -> Option<RecordBatch> {
        None
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
    temporality::REGISTRATION,
    cardinality_limit::REGISTRATION,
    aggregate::REGISTRATION,
    anomaly::REGISTRATION,
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
