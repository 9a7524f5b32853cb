//! Integration tests: each starts the real `tidewatch` binary on an ephemeral port and
//! talks HTTP and WebSocket to it, as a user would.

mod api;
mod backfill;
mod bad_input;
mod commerce;
mod demo;
mod durability;
mod market;
mod ops;
mod persist;
mod sql;
mod support;
mod websocket;
mod wsclient;
