//! One stream's live state: hot store, rollups, producer-id dedupe set.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tidewatch_bus::Hub;
use tidewatch_rollup::{Change, Rollup};
use tidewatch_store::StreamStore;
use tidewatch_types::{EventBatch, EventId, StreamSchema};
use tokio::sync::watch;

use crate::engine::Applied;
use crate::history::RollupHistory;
use crate::render::event_json;
use crate::topic::{rollup_topic, stream_topic};

/// Called with every batch applied live (after it is durable), in WAL order, under the
/// stream's state lock: it must be quick and must not call back into the engine for the
/// same stream. Not called for batches replayed at recovery.
pub type Observer = Arc<dyn Fn(&StreamSchema, &EventBatch) + Send + Sync>;

/// A declared stream and everything held for it in memory.
pub struct StreamHandle {
    pub schema: Arc<StreamSchema>,
    pub(crate) state: RwLock<StreamState>,
    /// Producer-given ids already stored (or being stored): a re-sent batch is recognised
    /// here. Only producer-given ids are kept; assigned ones cannot repeat.
    pub(crate) producer_ids: Mutex<HashSet<EventId>>,
    pub(crate) observers: RwLock<Vec<Observer>>,
    /// Live commits are applied in the order they entered the WAL.
    pub(crate) order: ApplyOrder,
    stream_topic: String,
}

/// Turns that keep a stream's live apply in WAL order. Appends of one group commit become
/// durable together and their commit tasks then race for the state lock; without turns a
/// later batch could be applied first, so rollups would see it as late and observers
/// (the market's detectors) would judge the feed differently from recovery, which
/// replays the WAL in order.
pub(crate) struct ApplyOrder {
    /// The next turn to hand out.
    issued: Mutex<u64>,
    /// The turn that may apply now: every earlier one has applied or given up.
    current: watch::Sender<u64>,
}

/// A commit's place in its stream's apply order, from [`ApplyOrder::issue`].
#[must_use = "a turn must be waited for, or every later commit of the stream waits forever"]
pub(crate) struct Turn(u64);

impl ApplyOrder {
    fn new() -> Self {
        ApplyOrder {
            issued: Mutex::new(0),
            current: watch::Sender::new(0),
        }
    }

    /// Runs `append` (a WAL append) and, if it succeeds, hands out the next turn: turns
    /// follow the order in which appends reached the WAL.
    pub(crate) fn issue<T, E>(
        &self,
        append: impl FnOnce() -> Result<T, E>,
    ) -> Result<(T, Turn), E> {
        let mut issued = self.issued.lock();
        let appended = append()?;
        let turn = Turn(*issued);
        *issued += 1;
        Ok((appended, turn))
    }

    /// Waits until every earlier turn is over. The turn lasts as long as the guard: apply
    /// (or give up) while holding it.
    pub(crate) async fn wait(&self, turn: Turn) -> TurnGuard<'_> {
        let mut current = self.current.subscribe();
        // The sender lives as long as `self`, so this fails only if it is dropped, which
        // cannot happen while `self` is borrowed.
        let _ = current.wait_for(|&now| now == turn.0).await;
        TurnGuard {
            order: self,
            turn: turn.0,
        }
    }
}

/// The turn being taken; dropping it (also on unwind) lets the next one go.
pub(crate) struct TurnGuard<'a> {
    order: &'a ApplyOrder,
    turn: u64,
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.order.current.send_replace(self.turn + 1);
    }
}

pub(crate) struct StreamState {
    pub(crate) store: StreamStore,
    pub(crate) rollups: Vec<LiveRollup>,
    changes: Vec<Change>,
    /// Largest WAL sequence applied to this stream.
    pub(crate) max_applied_seq: Option<u64>,
    /// Smallest WAL sequence applied since the last checkpoint: the WAL must keep it.
    pub(crate) dirty_since: Option<u64>,
    /// Records up to this sequence are already in the rollups (restored checkpoint);
    /// replay skips them for rollups.
    pub(crate) rollups_through: u64,
    /// When the last checkpoint of this stream was taken (epoch ms, wall clock).
    pub(crate) checkpointed_at: i64,
    /// Size of the checkpoint file the manifest lists.
    pub(crate) checkpoint_bytes: u64,
}

impl StreamState {
    fn note_applied(&mut self, seq: u64) {
        self.max_applied_seq = Some(self.max_applied_seq.map_or(seq, |m| m.max(seq)));
        self.dirty_since = Some(self.dirty_since.map_or(seq, |m| m.min(seq)));
    }
}

pub(crate) struct LiveRollup {
    pub(crate) rollup: Rollup,
    /// The windows the rollup evicted, until rollup retention drops them.
    pub(crate) history: RollupHistory,
    /// Topic name per declared window, in spec order, built once.
    topics: Vec<String>,
}

impl LiveRollup {
    /// Wraps `rollup` (whose evicted windows go to `history` from now on, and already
    /// went there if it kept them).
    pub(crate) fn new(stream: &str, mut rollup: Rollup, history: RollupHistory) -> Self {
        let spec = rollup.spec();
        let topics = spec
            .windows
            .iter()
            .map(|w| rollup_topic(stream, &spec.name, *w))
            .collect();
        rollup.set_keep_evicted(true);
        let mut live = LiveRollup {
            rollup,
            history,
            topics,
        };
        live.collect_evicted();
        live
    }

    pub(crate) fn name(&self) -> &str {
        &self.rollup.spec().name
    }

    /// Moves what the last apply evicted into the history.
    fn collect_evicted(&mut self) {
        let evicted = self.rollup.take_evicted();
        self.history.collect(evicted);
    }
}

impl StreamHandle {
    pub(crate) fn new(schema: Arc<StreamSchema>, store: StreamStore) -> Self {
        StreamHandle {
            stream_topic: stream_topic(&schema.name),
            schema,
            state: RwLock::new(StreamState {
                store,
                rollups: Vec::new(),
                changes: Vec::new(),
                max_applied_seq: None,
                dirty_since: None,
                rollups_through: 0,
                checkpointed_at: tidewatch_types::time::now_ms(),
                checkpoint_bytes: 0,
            }),
            producer_ids: Mutex::new(HashSet::new()),
            observers: RwLock::new(Vec::new()),
            order: ApplyOrder::new(),
        }
    }

    /// Folds a durable batch from WAL record `seq` into the hot store and every rollup,
    /// then publishes what changed on `hub`, tells the observers and marks `seq` done in
    /// `applied`. Holds the state lock throughout: a persist, which takes it too, never
    /// sees the rows of a record that `applied` does not count yet.
    pub(crate) fn apply(&self, batch: &EventBatch, seq: u64, hub: &Hub, applied: &Mutex<Applied>) {
        let mut state = self.state.write();
        let state = &mut *state;
        state.note_applied(seq);
        state.store.append(batch, seq);
        for live in &mut state.rollups {
            state.changes.clear();
            live.rollup.apply(batch, &mut state.changes);
            publish_rollup_changes(hub, live, &state.changes);
            live.collect_evicted();
        }
        self.publish_events(hub, batch);
        for observer in self.observers.read().iter() {
            observer(&self.schema, batch);
        }
        applied.lock().done(seq);
    }

    /// Recovery's apply: `store_rows` (the rows not already in a segment) go to the hot
    /// store, the whole batch to the rollups unless the checkpoint already holds it.
    /// Publishes nothing.
    pub(crate) fn replay(&self, batch: &EventBatch, store_rows: &EventBatch, seq: u64) {
        let mut state = self.state.write();
        let state = &mut *state;
        if !store_rows.is_empty() {
            state.store.append(store_rows, seq);
        }
        if seq > state.rollups_through {
            state.note_applied(seq);
            for live in &mut state.rollups {
                state.changes.clear();
                live.rollup.apply(batch, &mut state.changes);
                live.collect_evicted();
            }
        }
        state.max_applied_seq = Some(state.max_applied_seq.map_or(seq, |m| m.max(seq)));
    }

    /// Recomputes the named rollups from every stored event (hot and cold), replacing
    /// their state; for rollups a checkpoint could not restore. Windows it evicts that are
    /// already in rollup segments are not collected again.
    pub(crate) fn rebuild_rollups(&self, names: &[String]) -> crate::Result<()> {
        let mut state = self.state.write();
        let state = &mut *state;
        let events = state.store.all_events()?;
        for live in state
            .rollups
            .iter_mut()
            .filter(|r| names.iter().any(|n| n == r.name()))
        {
            let spec = live.rollup.spec().clone();
            let config = *live.rollup.config();
            let mut rollup = Rollup::new(spec, &self.schema, config)
                .map_err(|e| crate::Error::Recovery(e.to_string()))?;
            rollup.set_keep_evicted(true);
            live.rollup = rollup;
            for batch in &events {
                state.changes.clear();
                live.rollup.apply(batch, &mut state.changes);
                live.collect_evicted();
            }
        }
        Ok(())
    }

    fn publish_events(&self, hub: &Hub, batch: &EventBatch) {
        if !hub.has_subscribers(&self.stream_topic) {
            return;
        }
        let mut tags: Vec<(&str, Option<&str>)> = Vec::with_capacity(self.schema.tags.len());
        for row in 0..batch.len() {
            tags.clear();
            for (name, column) in self.schema.tags.iter().zip(&batch.tags) {
                tags.push((name, column.value(row).map(|v| &**v)));
            }
            let data: Arc<str> = Arc::from(event_json(&self.schema, batch, row).to_string());
            hub.publish(&self.stream_topic, tags.as_slice(), &data);
        }
    }
}

fn publish_rollup_changes(hub: &Hub, live: &LiveRollup, changes: &[Change]) {
    let windows = &live.rollup.spec().windows;
    for change in changes {
        let Some(topic) = windows
            .iter()
            .position(|w| *w == change.width)
            .map(|i| &live.topics[i])
        else {
            continue;
        };
        if !hub.has_subscribers(topic) {
            continue;
        }
        let Some(row) = live.rollup.row(change) else {
            continue;
        };
        let mut json = row.to_json();
        if let Some(object) = json.as_object_mut() {
            object.insert("correction".into(), change.correction.into());
        }
        let tags: Vec<(&str, Option<&str>)> = row
            .group
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        let data: Arc<str> = Arc::from(json.to_string());
        hub.publish(topic, tags.as_slice(), &data);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;

    use super::ApplyOrder;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn turns_go_in_issue_order_and_a_failed_append_takes_none() {
        let order = Arc::new(ApplyOrder::new());
        let failed: Result<((), _), &str> = order.issue(|| Err("the WAL is closed"));
        assert!(failed.is_err());
        let turns: Vec<_> = (0..3)
            .map(|i| order.issue(|| Ok::<_, ()>(i)).unwrap())
            .collect();
        let taken = Arc::new(Mutex::new(Vec::new()));
        // Waiters start last turn first; each still goes only after the one before.
        let waiters: Vec<_> = turns
            .into_iter()
            .rev()
            .map(|(i, turn)| {
                let (order, taken) = (Arc::clone(&order), Arc::clone(&taken));
                tokio::spawn(async move {
                    let _turn = order.wait(turn).await;
                    taken.lock().push(i);
                })
            })
            .collect();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(*taken.lock(), [0, 1, 2]);
    }
}
