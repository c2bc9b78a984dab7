//! Fan-in: one reader over several edges, merged in lockstep.
//!
//! Every edge in the graph carries one delivery per entry-edge delivery, with the same token
//! (see [`crate::relay`]). So the merge takes one delivery from each input, in input order,
//! and emits their rows as one delivery with that token; the merged edge keeps increasing
//! tokens, and a commit on it commits the same position on every input.

use arrow::compute::concat_batches;
use async_trait::async_trait;
use phoenix_model::{metrics_schema, AckToken, Delivery, EdgeError, EdgeReceiver};

/// An [`EdgeReceiver`] merging several inputs in lockstep.
///
/// `recv` is cancel-safe (consumers call it inside `select!`): deliveries taken from some
/// inputs wait in the merger until the others have theirs.
pub struct FanIn {
    inputs: Vec<Box<dyn EdgeReceiver>>,
    /// Taken off each input for the next merged delivery.
    pending: Vec<Option<Delivery>>,
    /// Inputs that returned `None`.
    done: Vec<bool>,
    name: String,
}

impl FanIn {
    /// Merges `inputs` for the consumer `name` (used in logs).
    pub fn new(name: &str, inputs: Vec<Box<dyn EdgeReceiver>>) -> Self {
        FanIn {
            pending: inputs.iter().map(|_| None).collect(),
            done: vec![false; inputs.len()],
            inputs,
            name: name.to_string(),
        }
    }

    /// Merges what is pending into one delivery (`None` when nothing is).
    fn merge(&mut self) -> Option<Delivery> {
        let mut got: Vec<Delivery> = self.pending.iter_mut().filter_map(Option::take).collect();
        // Equal by construction; should they ever differ, the lowest is the safe one to
        // acknowledge (a commit then covers less, never more).
        let ack = got.iter().map(|d| d.ack).min()?;
        if got.iter().any(|d| d.ack != ack) {
            tracing::error!(consumer = %self.name, "Fan-in inputs are out of step; acknowledging the lowest position.");
        }
        if got.len() == 1 {
            return got.pop();
        }
        let schema = got
            .iter()
            .find(|d| d.batch.num_rows() > 0)
            .map_or_else(metrics_schema, |d| d.batch.schema());
        let batch = match concat_batches(&schema, got.iter().map(|d| &d.batch)) {
            Ok(b) => b,
            Err(error) => {
                // Every edge carries the metrics schema, so this is a bug; keep the first
                // input's rows rather than lose the delivery's position.
                tracing::error!(consumer = %self.name, %error, "Cannot merge fan-in batches; keeping the first input's rows.");
                got.swap_remove(0).batch
            }
        };
        Some(Delivery { batch, ack })
    }
}

#[async_trait]
impl EdgeReceiver for FanIn {
    async fn recv(&mut self) -> Option<Delivery> {
        loop {
            for i in 0..self.inputs.len() {
                if self.done[i] || self.pending[i].is_some() {
                    continue;
                }
                match self.inputs[i].recv().await {
                    Some(d) => self.pending[i] = Some(d),
                    None => self.done[i] = true,
                }
            }
            match self.merge() {
                Some(d) => return Some(d),
                None if self.done.iter().all(|d| *d) => return None,
                None => {}
            }
        }
    }

    async fn commit(&mut self, upto: AckToken) -> Result<(), EdgeError> {
        let mut result = Ok(());
        for rx in &mut self.inputs {
            if let Err(e) = rx.commit(upto).await {
                result = Err(e);
            }
        }
        result
    }
}
