//! Consumer-side state shared by the receiver, librdkafka's callbacks and health: which
//! partitions this node owns, what it delivered and has not committed yet, and the lag.
//!
//! Rebalances: on assignment a partition starts a new epoch (messages fetched under an older
//! epoch are dropped, Kafka redelivers them from the committed offset). On revocation the
//! partition stops delivering at once, and the callback waits — bounded by the revoke timeout —
//! until everything already delivered from it has been committed, so its next owner starts
//! right after what this node stored and nothing is stored twice. Only then does librdkafka
//! release the partition. With a revoke hook (per-partition graphs, `phoenix serve`), the
//! revocation instead stops the partitions' graphs and releases them at once: storage skips
//! what they stored, by file positions.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use phoenix_model::AckToken;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::statistics::Statistics;

use crate::metrics::{CONSUMER_LAG, OWNED_PARTITIONS, REBALANCES};

/// Delivered, uncommitted messages and figures of one owned partition.
#[derive(Debug, Default)]
pub(crate) struct PartitionState {
    /// Increases on every assignment; fetched messages carry the epoch they were fetched in.
    pub(crate) epoch: u64,
    /// Revocation in progress: deliver nothing more from it.
    pub(crate) revoking: bool,
    /// `(token, offset)` of delivered messages not yet committed, in delivery order.
    pub(crate) pending: VecDeque<(AckToken, i64)>,
    /// Next offset committed by this node (the position a new owner starts from).
    pub(crate) committed: Option<i64>,
    /// Last consumer lag reported by librdkafka.
    pub(crate) lag: Option<i64>,
}

/// Everything the callbacks and the receiver share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) topic: String,
    pub(crate) group: String,
    pub(crate) state: Mutex<State>,
    /// Signalled when commits drain pending messages (the revoke callback waits on it).
    pub(crate) drained: Condvar,
    pub(crate) revoke_timeout: Duration,
    /// When the consumer last reported an error (broker unreachable, fetch failure).
    pub(crate) last_error: Mutex<Option<Instant>>,
    /// Partitioned mode: called on revocation instead of waiting for commits; returns once
    /// the partitions' graphs are stopped (their next owner skips what they stored).
    pub(crate) on_revoke: Mutex<Option<RevokeHook>>,
}

/// Stops the per-partition graphs of revoked partitions; blocks until they are stopped.
pub struct RevokeHook(pub Box<RevokeFn>);

/// The function inside a [`RevokeHook`].
pub type RevokeFn = dyn Fn(&[i32]) + Send + Sync;

impl std::fmt::Debug for RevokeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevokeHook")
    }
}

/// Mutable part of [`Shared`].
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) partitions: BTreeMap<i32, PartitionState>,
    /// Epoch counter; never reused, so a reassigned partition gets a fresh epoch.
    next_epoch: u64,
    /// The receiver is gone: revocations release at once.
    pub(crate) closing: bool,
}

impl Shared {
    pub(crate) fn new(topic: &str, group: &str, revoke_timeout: Duration) -> Arc<Self> {
        Arc::new(Shared {
            topic: topic.to_string(),
            group: group.to_string(),
            state: Mutex::new(State::default()),
            drained: Condvar::new(),
            revoke_timeout,
            last_error: Mutex::new(None),
            on_revoke: Mutex::new(None),
        })
    }

    /// Current epoch of `partition`, if owned and not being revoked.
    pub(crate) fn epoch_of(&self, partition: i32) -> Option<u64> {
        let st = self.state.lock();
        st.partitions
            .get(&partition)
            .filter(|p| !p.revoking)
            .map(|p| p.epoch)
    }

    fn assign(&self, partitions: &[i32]) {
        let mut st = self.state.lock();
        for &p in partitions {
            st.next_epoch += 1;
            let epoch = st.next_epoch;
            // A partition we still track (cooperative re-assignment) keeps its pending list.
            let ps = st.partitions.entry(p).or_default();
            ps.epoch = epoch;
            ps.revoking = false;
        }
        metrics::gauge!(OWNED_PARTITIONS, "topic" => self.topic.clone())
            .set(st.partitions.len() as f64);
        metrics::counter!(REBALANCES, "kind" => "assign").increment(partitions.len() as u64);
        tracing::info!(topic = %self.topic, group = %self.group, assigned = ?partitions, owned = ?st.partitions.keys().collect::<Vec<_>>(), "Kafka partitions assigned.");
    }

    /// Stops delivering from `partitions`, waits (bounded) until what was delivered from them
    /// is committed, then forgets them.
    fn revoke(&self, partitions: &[i32], lost: bool) {
        let mut st = self.state.lock();
        for p in partitions {
            if let Some(ps) = st.partitions.get_mut(p) {
                ps.revoking = true;
            }
        }
        let hooked = {
            let hook = self.on_revoke.lock();
            match hook.as_ref() {
                Some(hook) if !st.closing => {
                    // The graphs commit while stopping: never hold the state lock meanwhile.
                    drop(st);
                    (hook.0)(partitions);
                    st = self.state.lock();
                    true
                }
                _ => false,
            }
        };
        if hooked {
            // What the stopped graphs stored is skipped by the next owner (file positions);
            // what they had not stored is read again from the last commit.
            for p in partitions {
                if let Some(ps) = st.partitions.get_mut(p) {
                    ps.pending.clear();
                }
            }
        }
        let deadline = Instant::now() + self.revoke_timeout;
        let pending = |st: &State| -> usize {
            partitions
                .iter()
                .filter_map(|p| st.partitions.get(p))
                .map(|ps| ps.pending.len())
                .sum()
        };
        // A lost assignment (session expired) may already belong to another node: waiting
        // would not help, its commits are fenced off.
        while !st.closing && !lost && pending(&st) > 0 {
            if self.drained.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
        let left = pending(&st);
        if left > 0 && !st.closing {
            metrics::counter!(crate::metrics::REVOKED_UNCOMMITTED).increment(left as u64);
            tracing::warn!(topic = %self.topic, partitions = ?partitions, uncommitted = left, "Released partitions with deliveries not yet durable; their next owner will process them again.");
        }
        for p in partitions {
            st.partitions.remove(p);
            metrics::gauge!(CONSUMER_LAG, "topic" => self.topic.clone(), "partition" => p.to_string())
                .set(0.0);
        }
        metrics::gauge!(OWNED_PARTITIONS, "topic" => self.topic.clone())
            .set(st.partitions.len() as f64);
        metrics::counter!(REBALANCES, "kind" => "revoke").increment(partitions.len() as u64);
        tracing::info!(topic = %self.topic, group = %self.group, revoked = ?partitions, owned = ?st.partitions.keys().collect::<Vec<_>>(), "Kafka partitions revoked.");
    }

    fn stats(&self, stats: &Statistics) {
        let Some(topic) = stats.topics.get(&self.topic) else {
            return;
        };
        let mut st = self.state.lock();
        for (p, ps) in st.partitions.iter_mut() {
            if let Some(tp) = topic.partitions.get(p) {
                if tp.consumer_lag >= 0 {
                    ps.lag = Some(tp.consumer_lag);
                    metrics::gauge!(CONSUMER_LAG, "topic" => self.topic.clone(), "partition" => p.to_string())
                        .set(tp.consumer_lag as f64);
                }
            }
        }
    }
}

/// librdkafka callbacks of Phoenix's consumer.
pub(crate) struct ConsumerCallbacks {
    pub(crate) shared: Arc<Shared>,
}

impl ClientContext for ConsumerCallbacks {
    fn stats(&self, statistics: Statistics) {
        self.shared.stats(&statistics);
    }
}

impl ConsumerContext for ConsumerCallbacks {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts = partitions_of(tpl, &self.shared.topic);
            self.shared.revoke(&parts, consumer.assignment_lost());
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let parts = partitions_of(tpl, &self.shared.topic);
                self.shared.assign(&parts);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                tracing::warn!(topic = %self.shared.topic, error = %e, "Kafka rebalance failed.")
            }
        }
    }
}

fn partitions_of(tpl: &rdkafka::TopicPartitionList, topic: &str) -> Vec<i32> {
    tpl.elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect()
}

/// One owned partition, as health shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    /// Partition number.
    pub partition: i32,
    /// Messages not yet committed (high watermark minus committed offset), once known.
    pub lag: Option<i64>,
    /// Messages delivered downstream and not yet durable.
    pub pending: usize,
    /// Next offset committed by this node, once it committed.
    pub committed: Option<i64>,
}

/// Read-only view of a receiver's partitions and lag, for health; cheap to clone.
#[derive(Debug, Clone)]
pub struct BusMonitor {
    pub(crate) shared: Arc<Shared>,
}

impl BusMonitor {
    /// The topic consumed.
    pub fn topic(&self) -> &str {
        &self.shared.topic
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.shared.group
    }

    /// Time since the consumer last reported an error, if it ever did.
    pub fn since_last_error(&self) -> Option<Duration> {
        self.shared.last_error.lock().map(|t| t.elapsed())
    }

    /// Owned partitions in order, with their figures.
    pub fn partitions(&self) -> Vec<PartitionStatus> {
        let st = self.shared.state.lock();
        st.partitions
            .iter()
            .map(|(&partition, ps)| PartitionStatus {
                partition,
                lag: ps.lag,
                pending: ps.pending.len(),
                committed: ps.committed,
            })
            .collect()
    }

    /// Health figures: topic, group, partitions owned, lag per partition and in total.
    pub fn figures(&self) -> serde_json::Map<String, serde_json::Value> {
        let parts = self.partitions();
        let mut lag = serde_json::Map::new();
        for p in &parts {
            lag.insert(
                p.partition.to_string(),
                p.lag.map_or(serde_json::Value::Null, Into::into),
            );
        }
        let total: i64 = parts.iter().filter_map(|p| p.lag).sum();
        let mut f = serde_json::Map::new();
        f.insert("kind".into(), "kafka".into());
        f.insert("topic".into(), self.shared.topic.clone().into());
        f.insert("group".into(), self.shared.group.clone().into());
        f.insert(
            "partitions_owned".into(),
            parts
                .iter()
                .map(|p| serde_json::Value::from(p.partition))
                .collect::<Vec<_>>()
                .into(),
        );
        f.insert("consumer_lag".into(), lag.into());
        f.insert("consumer_lag_total".into(), total.into());
        f.insert(
            "seconds_since_consumer_error".into(),
            self.since_last_error()
                .map_or(serde_json::Value::Null, |d| d.as_secs().into()),
        );
        f.insert(
            "pending_messages".into(),
            parts.iter().map(|p| p.pending).sum::<usize>().into(),
        );
        f
    }
}
