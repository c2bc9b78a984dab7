//! Runs a flush's per-column work on several threads.
//!
//! A table flushes one file at a time, and sorting and encoding a file is per-column work on one
//! blocking thread: under load that thread was the busiest in the process (82% of a core with
//! the empty pipeline at 1.2M datapoints/s, the tokio workers at 30% each), so it bounded the
//! sustained rate while the other core idled. Columns are independent (each has its own gather
//! and its own Parquet column writer), so they are spread over scoped threads.

use std::sync::Mutex;

use crate::{Error, Result};

/// Fewest rows worth spreading: below this, starting threads costs more than it saves (the
/// compaction writes 8k-row slices and stays on its thread).
pub(crate) const MIN_PARALLEL_ROWS: usize = 32 * 1024;

/// Most threads one flush uses.
const MAX_THREADS: usize = 4;

#[cfg(test)]
thread_local! {
    /// Threads [`threads_for`] answers on this thread, whatever the size (tests compare the
    /// parallel path with the serial one).
    pub(crate) static FORCE_THREADS: std::cell::Cell<Option<usize>> =
        const { std::cell::Cell::new(None) };
}

/// Threads for work over `rows` rows: one when small, else up to the cores available.
pub(crate) fn threads_for(rows: usize) -> usize {
    #[cfg(test)]
    if let Some(n) = FORCE_THREADS.with(std::cell::Cell::get) {
        return n;
    }
    if rows < MIN_PARALLEL_ROWS {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
}

/// `run` applied to every task, on up to `threads` threads, results in task order. Tasks are
/// taken in order, so put the costly ones first. Stops at the first error.
///
/// # Errors
/// The first error a task returns; [`Error::Task`] if a worker panicked.
pub(crate) fn map_tasks<T, R>(
    tasks: Vec<T>,
    threads: usize,
    run: impl Fn(T) -> Result<R> + Sync,
) -> Result<Vec<R>>
where
    T: Send,
    R: Send,
{
    let n = tasks.len();
    if threads <= 1 || n <= 1 {
        return tasks.into_iter().map(run).collect();
    }
    let queue = Mutex::new(tasks.into_iter().enumerate());
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(n));
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let worker = || loop {
        let next = match queue.lock() {
            Ok(mut q) => q.next(),
            Err(_) => None,
        };
        let Some((i, task)) = next else { break };
        match run(task) {
            Ok(r) => {
                if let Ok(mut d) = done.lock() {
                    d.push((i, r));
                }
            }
            Err(e) => {
                if let Ok(mut f) = failed.lock() {
                    f.get_or_insert(e);
                }
                // Nothing more is taken: the caller gets the error either way.
                if let Ok(mut q) = queue.lock() {
                    q.by_ref().for_each(drop);
                }
                break;
            }
        }
    };
    let panicked = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads.min(n)).map(|_| s.spawn(worker)).collect();
        worker();
        helpers.into_iter().any(|h| h.join().is_err())
    });
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut done = done
        .into_inner()
        .map_err(|_| Error::Task("a flush worker panicked".into()))?;
    if panicked || done.len() != n {
        return Err(Error::Task("a flush worker panicked".into()));
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Results come back in task order whatever thread ran them, and an error stops the run.
    #[test]
    fn results_keep_task_order_and_errors_surface() {
        let tasks: Vec<u64> = (0..100).collect();
        let out = map_tasks(tasks.clone(), 3, |t| {
            // Uneven work, so threads finish out of order.
            std::thread::sleep(std::time::Duration::from_micros((t % 7) * 50));
            Ok(t * 2)
        })
        .expect("no error");
        assert_eq!(out, tasks.iter().map(|t| t * 2).collect::<Vec<_>>());

        let err = map_tasks(tasks, 3, |t| {
            if t == 42 {
                Err(Error::Task("task 42".into()))
            } else {
                Ok(t)
            }
        });
        assert!(matches!(err, Err(Error::Task(m)) if m == "task 42"));
    }

    /// Small work stays on the calling thread.
    #[test]
    fn small_work_is_not_spread() {
        assert_eq!(threads_for(MIN_PARALLEL_ROWS - 1), 1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(threads_for(MIN_PARALLEL_ROWS), cores.min(MAX_THREADS));
    }
}
