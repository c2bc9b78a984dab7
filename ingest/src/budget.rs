//! Admission control by bytes: one memory budget shared by both receivers.
//!
//! Every request holds a [`Charge`] against the [`MemoryBudget`] from before its body is read
//! until the pipeline took its batch. The charge starts as a guess from the declared body size
//! (the only step that waits, up to the admission timeout, and while holding nothing, so
//! requests cannot deadlock each other) and is corrected without waiting as the real figures
//! become known: bytes received, bytes inflated, then the parsed message and batch estimate.
//! A correction that cannot be had now is a retryable rejection; one larger than the whole
//! budget can never be had and is final.
//!
//! Bytes are counted exactly; the semaphore underneath counts whole KiB (tokio takes at most
//! `u32::MAX` permits at once).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics;

/// Granularity of the semaphore.
const UNIT: usize = 1024;

/// Semaphore units covering `bytes`.
fn units(bytes: usize) -> usize {
    bytes.div_ceil(UNIT)
}

/// Why a charge could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// Not enough budget free now (retryable).
    #[error("ingest memory budget is exhausted")]
    Exhausted,
    /// More than the whole budget (never satisfiable).
    #[error("request needs about {needed} bytes of memory, more than the whole ingest budget of {budget} bytes")]
    TooLarge {
        /// Bytes the request needs.
        needed: usize,
        /// `ingest.max_in_flight_bytes`.
        budget: usize,
    },
}

/// A memory budget for requests in flight (`ingest.max_in_flight_bytes`).
#[derive(Debug)]
pub struct MemoryBudget {
    sem: Arc<Semaphore>,
    capacity: usize,
    capacity_units: usize,
    in_flight: AtomicUsize,
    wait: Duration,
}

impl MemoryBudget {
    /// A budget of `capacity` bytes (at least one KiB; at most `Semaphore::MAX_PERMITS` KiB);
    /// [`admit`](Self::admit) waits up to `wait` for room.
    pub fn new(capacity: usize, wait: Duration) -> Arc<Self> {
        let capacity_units = units(capacity).clamp(1, Semaphore::MAX_PERMITS);
        metrics::memory_budget(capacity);
        metrics::in_flight_bytes(0);
        Arc::new(Self {
            sem: Arc::new(Semaphore::new(capacity_units)),
            capacity,
            capacity_units,
            in_flight: AtomicUsize::new(0),
            wait,
        })
    }

    /// The budget, in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes charged by requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Waits up to the admission timeout for `bytes` (cut to the whole budget, so any request
    /// can at least start alone) and returns the charge holding them.
    ///
    /// # Errors
    /// [`BudgetError::Exhausted`] when the bytes did not free up in time.
    pub async fn admit(self: &Arc<Self>, bytes: usize) -> Result<Charge, BudgetError> {
        let bytes = bytes.min(self.capacity);
        let n = self.units_u32(bytes)?;
        let acquire = Arc::clone(&self.sem).acquire_many_owned(n);
        // tokio polls the acquisition before the timer, so a zero wait still takes free room.
        let permit = match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => return Err(BudgetError::Exhausted),
        };
        self.add(bytes);
        Ok(Charge {
            budget: Arc::clone(self),
            held: Mutex::new(Held {
                permit: Some(permit),
                bytes,
            }),
        })
    }

    fn units_u32(&self, bytes: usize) -> Result<u32, BudgetError> {
        let n = units(bytes);
        if n > self.capacity_units {
            return Err(BudgetError::TooLarge {
                needed: bytes,
                budget: self.capacity,
            });
        }
        u32::try_from(n).map_err(|_| BudgetError::TooLarge {
            needed: bytes,
            budget: self.capacity,
        })
    }

    fn add(&self, bytes: usize) {
        let now = self.in_flight.fetch_add(bytes, Ordering::Relaxed) + bytes;
        metrics::in_flight_bytes(now);
    }

    fn sub(&self, bytes: usize) {
        let now = self.in_flight.fetch_sub(bytes, Ordering::Relaxed) - bytes;
        metrics::in_flight_bytes(now);
    }
}

#[derive(Debug)]
struct Held {
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

/// Bytes one request holds against the budget; released when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<MemoryBudget>,
    // Shared between the gRPC front layer and the handler, hence the lock (never contended).
    held: Mutex<Held>,
}

impl Charge {
    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Grows the charge to at least `bytes`, without waiting.
    ///
    /// # Errors
    /// [`BudgetError::Exhausted`] when the room is not free now; [`BudgetError::TooLarge`] when
    /// `bytes` exceeds the whole budget. The charge is unchanged on error.
    pub fn at_least(&self, bytes: usize) -> Result<(), BudgetError> {
        let mut held = self.lock();
        if bytes <= held.bytes {
            return Ok(());
        }
        self.set(&mut held, bytes)
    }

    /// Grows the charge to at least `bytes` cut to the whole budget, without waiting: for
    /// predictions, which must not refuse a request that may well fit.
    ///
    /// # Errors
    /// [`BudgetError::Exhausted`] when the room is not free now.
    pub fn anticipate(&self, bytes: usize) -> Result<(), BudgetError> {
        self.at_least(bytes.min(self.budget.capacity))
    }

    /// Sets the charge to exactly `bytes`: shrinking releases at once, growing does not wait.
    ///
    /// # Errors
    /// As [`at_least`](Self::at_least).
    pub fn resize(&self, bytes: usize) -> Result<(), BudgetError> {
        let mut held = self.lock();
        self.set(&mut held, bytes)
    }

    fn set(&self, held: &mut Held, bytes: usize) -> Result<(), BudgetError> {
        let have = held
            .permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits);
        let want = self.budget.units_u32(bytes)? as usize;
        if want > have {
            let more = u32::try_from(want - have).map_err(|_| BudgetError::Exhausted)?;
            let extra = Arc::clone(&self.budget.sem)
                .try_acquire_many_owned(more)
                .map_err(|_| BudgetError::Exhausted)?;
            match &mut held.permit {
                Some(p) => p.merge(extra),
                None => held.permit = Some(extra),
            }
        } else if want < have {
            // Dropping the split-off part returns it to the budget.
            drop(held.permit.as_mut().and_then(|p| p.split(have - want)));
        }
        if bytes > held.bytes {
            self.budget.add(bytes - held.bytes);
        } else {
            self.budget.sub(held.bytes - bytes);
        }
        held.bytes = bytes;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let held = self.held.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.budget.sub(held.bytes);
        // The permit, dropped with `held`, returns the units.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admission takes room, fails after the timeout while it is held, waits for it when the
    /// timeout allows, and gives it back on drop.
    #[tokio::test]
    async fn admit_waits_and_releases() {
        let quick = MemoryBudget::new(10 * UNIT, Duration::from_millis(20));
        let held = quick.admit(6 * UNIT).await.expect("room");
        assert_eq!(quick.in_flight(), 6 * UNIT);
        assert_eq!(
            quick.admit(6 * UNIT).await.err(),
            Some(BudgetError::Exhausted)
        );
        drop(held);
        assert_eq!(quick.in_flight(), 0);

        let patient = MemoryBudget::new(10 * UNIT, Duration::from_secs(10));
        let first = patient.admit(6 * UNIT).await.expect("room");
        let b = Arc::clone(&patient);
        let waiter = tokio::spawn(async move { b.admit(6 * UNIT).await.map(|c| c.bytes()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "waits while the room is held");
        drop(first);
        assert_eq!(waiter.await.expect("join"), Ok(6 * UNIT));
        assert_eq!(patient.in_flight(), 0);
        assert_eq!(patient.sem.available_permits(), 10);
    }

    /// Requests above the budget are cut to it on admission; growth beyond it is final.
    #[tokio::test]
    async fn whole_budget_is_the_ceiling() {
        let b = MemoryBudget::new(4 * UNIT, Duration::ZERO);
        let c = b.admit(100 * UNIT).await.expect("cut to the budget");
        assert_eq!(c.bytes(), 4 * UNIT);
        assert_eq!(
            c.at_least(4 * UNIT + 1),
            Err(BudgetError::TooLarge {
                needed: 4 * UNIT + 1,
                budget: 4 * UNIT
            })
        );
        assert_eq!(c.bytes(), 4 * UNIT);
    }

    /// Growing never waits and fails while others hold the room; shrinking frees room at once;
    /// bytes are exact while units round up.
    #[tokio::test]
    async fn grow_and_shrink() {
        let b = MemoryBudget::new(10 * UNIT, Duration::ZERO);
        let a = b.admit(100).await.expect("room");
        assert_eq!(b.sem.available_permits(), 9);
        let other = b.admit(5 * UNIT).await.expect("room");
        assert_eq!(a.at_least(6 * UNIT), Err(BudgetError::Exhausted));
        assert_eq!(a.bytes(), 100);
        a.at_least(5 * UNIT).expect("fits");
        assert_eq!(b.in_flight(), 10 * UNIT);
        assert_eq!(a.at_least(10), Ok(()), "at_least never shrinks");
        assert_eq!(a.bytes(), 5 * UNIT);
        a.resize(UNIT + 1).expect("shrink");
        assert_eq!(b.sem.available_permits(), 3);
        assert_eq!(b.in_flight(), 6 * UNIT + 1);
        drop(other);
        drop(a);
        assert_eq!(b.in_flight(), 0);
        assert_eq!(b.sem.available_permits(), 10);
    }
}
