//! Simulator: deterministic, realistic event streams so Tidewatch runs end to end with no
//! API keys and no network.
//!
//! Each domain contributes a [`Generator`]: the streams (and rollups) it feeds, and batches
//! of events for a span of simulated time. The same seed and the same sequence of calls
//! give the same events (ids aside: each run assigns fresh ones). [`runner`] drives
//! generators into an in-process engine (`tidewatch serve --demo`), [`backfill`] writes
//! history through the same engine as fast as it goes (`tidewatch backfill`); the binary's
//! `simulate` command drives them into a remote server over HTTP.
//!
//! Layout:
//! - [`backfill`]: a span of simulated history committed through the ingest path.
//! - [`commerce`]: a shop's catalog and orders with labelled fraud.
//! - [`generator`]: the [`Generator`] trait and [`Simulator`], the set of generators.
//! - [`ids`]: event ids for generated batches, cheaply.
//! - [`market`]: equities and crypto ticks with labelled anomalies.
//! - [`runner`]: the real-time loop feeding an [`tidewatch_engine::Engine`], and the
//!   last stored prices a restarted feed resumes from.

pub mod backfill;
pub mod commerce;
pub mod generator;
pub mod ids;
pub mod market;
pub mod runner;

pub use commerce::{CommerceConfig, CommerceGenerator};
pub use generator::{Generator, Simulator, StreamDeclaration};
pub use market::{AnomalyKind, AnomalyLabel, MarketConfig, MarketGenerator};
