//! The hub: topics, subscriptions and publishing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use tokio::sync::mpsc;

use crate::client::{Client, Outbound, OutboundKind};

/// Identifies a subscription within the hub.
pub type SubscriptionId = u64;

/// Tag name and required value pairs; a message matches when it carries all of them.
pub type Filter = Vec<(String, String)>;

/// A subscription as its client sees it, for a resync.
#[derive(Debug, Clone)]
pub struct SubscriptionInfo {
    pub id: SubscriptionId,
    pub topic: Arc<str>,
    pub filter: Filter,
}

/// How a published message exposes its tag values to subscription filters.
pub trait TagLookup {
    fn tag(&self, name: &str) -> Option<&str>;
}

impl TagLookup for [(&str, Option<&str>)] {
    fn tag(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).and_then(|(_, v)| *v)
    }
}

struct Subscription {
    id: SubscriptionId,
    client: Arc<Client>,
    topic: Arc<str>,
    filter: Filter,
    seq: AtomicU64,
}

impl Subscription {
    fn matches(&self, tags: &(impl TagLookup + ?Sized)) -> bool {
        self.filter
            .iter()
            .all(|(name, value)| tags.tag(name) == Some(value.as_str()))
    }
}

/// All live subscriptions, by topic.
#[derive(Default)]
pub struct Hub {
    topics: RwLock<HashMap<Arc<str>, Vec<Arc<Subscription>>>>,
    next_id: AtomicU64,
}

impl Hub {
    pub fn new() -> Self {
        Hub::default()
    }

    /// A new client with a queue of `capacity` messages; the receiver goes to the
    /// connection's writer.
    pub fn connect(&self, capacity: usize) -> (Arc<Client>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        (Arc::new(Client::new(id, tx)), rx)
    }

    /// Registers a subscription and queues its snapshot. The caller computes `snapshot`
    /// while holding whatever lock serialises publishing on `topic`, so that no delta is
    /// published between the snapshot and the registration.
    pub fn subscribe(
        &self,
        client: &Arc<Client>,
        topic: &str,
        filter: Filter,
        snapshot: Arc<str>,
    ) -> SubscriptionId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let topic: Arc<str> = Arc::from(topic);
        let subscription = Arc::new(Subscription {
            id,
            client: Arc::clone(client),
            topic: Arc::clone(&topic),
            filter,
            seq: AtomicU64::new(0),
        });
        let mut topics = self.topics.write();
        client.offer(Outbound {
            kind: OutboundKind::Snapshot,
            subscription: id,
            topic: Arc::clone(&topic),
            seq: 0,
            data: snapshot,
        });
        topics.entry(topic).or_default().push(subscription);
        id
    }

    /// Removes one subscription of `client`; returns whether it existed.
    pub fn unsubscribe(&self, client: &Client, id: SubscriptionId) -> bool {
        let mut topics = self.topics.write();
        let mut found = false;
        topics.retain(|_, subs| {
            subs.retain(|s| {
                let hit = s.id == id && s.client.id == client.id;
                found |= hit;
                !hit
            });
            !subs.is_empty()
        });
        found
    }

    /// Removes every subscription of `client` (on disconnect).
    pub fn disconnect(&self, client: &Client) {
        let mut topics = self.topics.write();
        topics.retain(|_, subs| {
            subs.retain(|s| s.client.id != client.id);
            !subs.is_empty()
        });
    }

    /// The subscriptions of `client`, for a resync.
    pub fn subscriptions_of(&self, client: &Client) -> Vec<SubscriptionInfo> {
        let topics = self.topics.read();
        topics
            .values()
            .flatten()
            .filter(|s| s.client.id == client.id)
            .map(|s| SubscriptionInfo {
                id: s.id,
                topic: Arc::clone(&s.topic),
                filter: s.filter.clone(),
            })
            .collect()
    }

    /// Queues a fresh snapshot for a subscription of a lagged client, carrying the
    /// subscription's current sequence number. The lag flag stays set, so no delta can
    /// crowd out the snapshots still to come; the caller clears it with
    /// [`Client::clear_lagged`] once every subscription has its snapshot queued. The same
    /// locking rule as [`Hub::subscribe`] applies. Returns whether it was queued.
    pub fn resnapshot(&self, client: &Client, id: SubscriptionId, snapshot: Arc<str>) -> bool {
        let topics = self.topics.read();
        let Some(sub) = topics
            .values()
            .flatten()
            .find(|s| s.id == id && s.client.id == client.id)
        else {
            return false;
        };
        client.force(Outbound {
            kind: OutboundKind::Snapshot,
            subscription: id,
            topic: Arc::clone(&sub.topic),
            seq: sub.seq.load(Ordering::Acquire),
            data: snapshot,
        })
    }

    /// Whether anyone listens on `topic`: publishers skip serialising otherwise.
    pub fn has_subscribers(&self, topic: &str) -> bool {
        self.topics.read().contains_key(topic)
    }

    /// Offers `data` to every subscription of `topic` whose filter matches `tags`.
    /// Returns how many queued it.
    pub fn publish(&self, topic: &str, tags: &(impl TagLookup + ?Sized), data: &Arc<str>) -> usize {
        let topics = self.topics.read();
        let Some(subs) = topics.get(topic) else {
            return 0;
        };
        let mut delivered = 0;
        // Lagged clients are skipped before their filter is evaluated: they take nothing.
        for sub in subs
            .iter()
            .filter(|s| !s.client.is_lagged() && s.matches(tags))
        {
            // The sequence advances only for queued messages: a dropped one leaves the
            // client lagged, and its resync snapshot carries the current number.
            let seq = sub.seq.load(Ordering::Acquire) + 1;
            let queued = sub.client.offer(Outbound {
                kind: OutboundKind::Delta,
                subscription: sub.id,
                topic: Arc::clone(&sub.topic),
                seq,
                data: Arc::clone(data),
            });
            if queued {
                sub.seq.store(seq, Ordering::Release);
                delivered += 1;
            }
        }
        delivered
    }

    /// Number of distinct connected clients with at least one subscription.
    pub fn subscribed_clients(&self) -> usize {
        let topics = self.topics.read();
        let mut ids: Vec<u64> = topics.values().flatten().map(|s| s.client.id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[tokio::test]
    async fn snapshot_then_deltas_with_dense_sequence_numbers() {
        let hub = Hub::new();
        let (client, mut rx) = hub.connect(16);
        let id = hub.subscribe(&client, "t", vec![], data("snap"));
        let no_tags: &[(&str, Option<&str>)] = &[];
        for i in 0..3 {
            assert_eq!(hub.publish("t", no_tags, &data(&format!("d{i}"))), 1);
        }
        let first = rx.recv().await.unwrap();
        assert_eq!(
            (first.kind, first.seq, &*first.data, first.subscription),
            (OutboundKind::Snapshot, 0, "snap", id)
        );
        for expected in 1..=3 {
            let m = rx.recv().await.unwrap();
            assert_eq!((m.kind, m.seq), (OutboundKind::Delta, expected));
        }
    }

    #[tokio::test]
    async fn filters_select_by_tag() {
        let hub = Hub::new();
        let (client, mut rx) = hub.connect(16);
        hub.subscribe(
            &client,
            "t",
            vec![("symbol".into(), "BTC".into())],
            data("s"),
        );
        let _ = rx.recv().await;
        let eth: &[(&str, Option<&str>)] = &[("symbol", Some("ETH"))];
        let btc: &[(&str, Option<&str>)] = &[("symbol", Some("BTC"))];
        let null: &[(&str, Option<&str>)] = &[("symbol", None)];
        assert_eq!(hub.publish("t", eth, &data("e")), 0);
        assert_eq!(hub.publish("t", null, &data("n")), 0);
        assert_eq!(hub.publish("t", btc, &data("b")), 1);
        assert_eq!(&*rx.recv().await.unwrap().data, "b");
        assert_eq!(hub.publish("other", btc, &data("b")), 0);
    }

    #[tokio::test]
    async fn a_full_queue_marks_the_client_lagged_without_affecting_others() {
        let hub = Hub::new();
        let (slow, mut slow_rx) = hub.connect(2);
        let (fast, mut fast_rx) = hub.connect(100);
        let slow_sub = hub.subscribe(&slow, "t", vec![], data("s"));
        hub.subscribe(&fast, "t", vec![], data("s"));
        let no_tags: &[(&str, Option<&str>)] = &[];
        for i in 0..10 {
            hub.publish("t", no_tags, &data(&i.to_string()));
        }
        assert!(slow.is_lagged());
        assert!(!fast.is_lagged());
        // The slow client's queue holds the snapshot and one delta; nothing more was queued.
        let mut slow_got = 0;
        while slow_rx.try_recv().is_ok() {
            slow_got += 1;
        }
        assert_eq!(slow_got, 2);
        let mut fast_got = 0;
        while fast_rx.try_recv().is_ok() {
            fast_got += 1;
        }
        assert_eq!(fast_got, 11);
        // Resync: a fresh snapshot carries the last queued sequence number, then deltas resume.
        assert!(hub.resnapshot(&slow, slow_sub, data("fresh")));
        assert!(
            slow.is_lagged(),
            "still lagged until the caller has queued every snapshot"
        );
        slow.clear_lagged();
        hub.publish("t", no_tags, &data("after"));
        let snap = slow_rx.recv().await.unwrap();
        assert_eq!((snap.kind, snap.seq), (OutboundKind::Snapshot, 1));
        let next = slow_rx.recv().await.unwrap();
        assert_eq!(
            (next.kind, next.seq, &*next.data),
            (OutboundKind::Delta, 2, "after")
        );
        tokio::time::timeout(std::time::Duration::from_secs(1), slow.lagged())
            .await
            .unwrap_err();
    }

    #[tokio::test]
    async fn unsubscribe_and_disconnect_stop_delivery() {
        let hub = Hub::new();
        let (client, _rx) = hub.connect(16);
        let a = hub.subscribe(&client, "a", vec![], data("s"));
        hub.subscribe(&client, "b", vec![], data("s"));
        assert_eq!(hub.subscriptions_of(&client).len(), 2);
        assert!(hub.unsubscribe(&client, a));
        assert!(!hub.unsubscribe(&client, a));
        assert!(!hub.has_subscribers("a"));
        assert_eq!(hub.subscribed_clients(), 1);
        hub.disconnect(&client);
        assert!(!hub.has_subscribers("b"));
        assert_eq!(hub.subscribed_clients(), 0);
    }
}
