//! One connected client: a bounded queue and a lag flag.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, mpsc};

/// What a queued message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundKind {
    Snapshot,
    Delta,
}

/// A message waiting to be written to a client. `data` is JSON serialized once by the
/// publisher and shared by every recipient.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub kind: OutboundKind,
    pub subscription: u64,
    pub topic: Arc<str>,
    pub seq: u64,
    pub data: Arc<str>,
}

/// The sending half of a client's queue, owned by the hub's subscriptions.
#[derive(Debug)]
pub struct Client {
    pub(crate) id: u64,
    tx: mpsc::Sender<Outbound>,
    lagged: AtomicBool,
    lag_notify: Notify,
}

impl Client {
    pub(crate) fn new(id: u64, tx: mpsc::Sender<Outbound>) -> Self {
        Client {
            id,
            tx,
            lagged: AtomicBool::new(false),
            lag_notify: Notify::new(),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Queues a message unless the client is lagged; a full queue makes it lagged.
    /// Returns whether the message was queued.
    pub(crate) fn offer(&self, message: Outbound) -> bool {
        if self.lagged.load(Ordering::Acquire) {
            return false;
        }
        match self.tx.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.lagged.swap(true, Ordering::AcqRel) {
                    metrics::counter!("tidewatch_ws_lagged_clients_total").increment(1);
                    self.lag_notify.notify_one();
                }
                false
            }
            // The connection is gone; the server removes its subscriptions on close.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a message regardless of the lag flag (snapshots during a resync).
    pub(crate) fn force(&self, message: Outbound) -> bool {
        self.tx.try_send(message).is_ok()
    }

    pub fn is_lagged(&self) -> bool {
        self.lagged.load(Ordering::Acquire)
    }

    /// Lets messages through again. The resync path calls it once fresh snapshots are
    /// queued (or when there is nothing to snapshot).
    pub fn clear_lagged(&self) {
        self.lagged.store(false, Ordering::Release);
    }

    /// Resolves when the client becomes lagged (or already is).
    pub async fn lagged(&self) {
        loop {
            let notified = self.lag_notify.notified();
            if self.is_lagged() {
                return;
            }
            notified.await;
        }
    }
}
