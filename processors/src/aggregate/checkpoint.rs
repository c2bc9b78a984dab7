//! The aggregator's state as checkpoint bytes: its output series, open windows, cumulative
//! streams and watermark, in postcard.
//!
//! A checkpoint lets the WAL drop the input the windows already hold (see
//! `crate::checkpoint`); what is restored must therefore be exactly what was held, so every
//! accumulator is saved as it is (sketches included), not re-derived. Strings are saved once
//! per series and shared again on restore.
//!
//! A snapshot clones the state (strings are shared `Arc`s, so that is mostly copying numbers)
//! and writes it later, elsewhere, through the same encoder as a checkpoint written in place.

use serde::{Deserialize, Serialize};

use super::group::OutSeries;
use super::runtime::Aggregate;
use super::window::Window;
use crate::delta::CumulativeState;
use crate::processor::StateSnapshot;
use crate::{Error, Result};

/// Version of the layout below; a checkpoint of another version is refused.
const VERSION: u32 = 1;

/// The state, borrowed for writing.
#[derive(Serialize)]
struct StateRef<'a> {
    version: u32,
    series: &'a [Option<OutSeries>],
    last_window: &'a [i64],
    windows: &'a [(i64, Window)],
    cumulative: &'a CumulativeState,
    max_time: i64,
    floor: i64,
}

/// Writes `state` into `out`: the one encoder of checkpoints and snapshots.
fn encode(state: &StateRef<'_>, out: &mut dyn std::io::Write) -> Result<()> {
    postcard::to_io(state, out)
        .map(|_| ())
        .map_err(|e| Error::Checkpoint(format!("encoding: {e}")))
}

/// The state, read back, or copied out of the aggregator for a snapshot.
#[derive(Deserialize)]
struct State {
    version: u32,
    series: Vec<Option<OutSeries>>,
    last_window: Vec<i64>,
    windows: Vec<(i64, Window)>,
    cumulative: CumulativeState,
    max_time: i64,
    floor: i64,
}

impl State {
    /// The state as [`encode`] takes it.
    fn borrow(&self) -> StateRef<'_> {
        StateRef {
            version: self.version,
            series: &self.series,
            last_window: &self.last_window,
            windows: &self.windows,
            cumulative: &self.cumulative,
            max_time: self.max_time,
            floor: self.floor,
        }
    }
}

impl Aggregate {
    /// Writes the state into `out`.
    pub(super) fn save_state(&self, out: &mut dyn std::io::Write) -> Result<()> {
        let (series, last_window) = self.groups.slots();
        let state = StateRef {
            version: VERSION,
            series,
            last_window,
            windows: &self.windows,
            cumulative: &self.cumulative,
            max_time: self.max_time,
            floor: self.floor,
        };
        encode(&state, out)
    }

    /// A copy of the state that writes what [`Aggregate::save_state`] writes now.
    pub(super) fn snapshot_state(&self) -> StateSnapshot {
        let (series, last_window) = self.groups.slots();
        let owned = State {
            version: VERSION,
            series: series.to_vec(),
            last_window: last_window.to_vec(),
            windows: self.windows.clone(),
            cumulative: self.cumulative.clone(),
            max_time: self.max_time,
            floor: self.floor,
        };
        Box::new(move |out| encode(&owned.borrow(), out))
    }

    /// Replaces the state with `bytes` from [`Aggregate::save_state`].
    pub(super) fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let state: State =
            postcard::from_bytes(bytes).map_err(|e| Error::Checkpoint(format!("decoding: {e}")))?;
        if state.version != VERSION {
            return Err(Error::Checkpoint(format!(
                "aggregate state version {} (this build reads {VERSION})",
                state.version
            )));
        }
        let slots = state.series.len();
        // Windows refer to series by slot: a slot out of range means damaged bytes.
        let bad_slot = state.windows.iter().any(|(_, w)| {
            w.accs.keys().chain(w.downs.keys()).any(|i| {
                state
                    .series
                    .get(i as usize)
                    .is_none_or(|s: &Option<OutSeries>| s.is_none())
            })
        });
        if bad_slot || u32::try_from(slots).is_err() || state.last_window.len() != slots {
            return Err(Error::Checkpoint(
                "aggregate state refers to series it does not hold".into(),
            ));
        }
        self.groups.restore(state.series, state.last_window);
        self.windows = state.windows;
        self.cumulative = state.cumulative;
        self.max_time = state.max_time;
        self.floor = state.floor;
        self.idle_mark = None;
        Ok(())
    }
}
