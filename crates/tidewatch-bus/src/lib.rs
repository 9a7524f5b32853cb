//! Bus: live fan-out of pre-serialized messages from the engine to connected clients.
//!
//! Sits between the engine (which publishes rollup deltas and raw events after they are
//! durable and applied) and the WebSocket connections in the server. It knows topics, tag
//! filters, sequence numbers and queues; it does not know what a message means.
//!
//! Invariants:
//! - Publishing never blocks: every client has a bounded queue, and a client whose queue is
//!   full is marked *lagged* and receives nothing more until it is resynchronised with a
//!   fresh snapshot. A slow client can neither stall others nor grow memory without bound.
//! - Sequence numbers are per subscription (topic plus filter): the snapshot carries the
//!   current number and each delta the next one, so a client sees a gap only if the server
//!   dropped something, and then it is told to resync.
//!
//! Layout: [`hub`] holds the subscriptions; [`client`] is one connection's queue.

pub mod client;
pub mod hub;

pub use client::{Client, Outbound, OutboundKind};
pub use hub::{Filter, Hub, SubscriptionId, SubscriptionInfo, TagLookup};
