//! The generator framework.

use tidewatch_engine::RollupSpec;
use tidewatch_types::{EventBatch, StreamSchema, TimestampMs};

/// A stream a generator feeds, with the rollups its domain declares on it.
#[derive(Debug, Clone)]
pub struct StreamDeclaration {
    pub schema: StreamSchema,
    pub rollups: Vec<RollupSpec>,
}

/// One domain's source of simulated events.
pub trait Generator: Send {
    /// The streams this generator writes, declared before the first batch.
    fn streams(&self) -> Vec<StreamDeclaration>;

    /// Events with times in `[from, to)`, as `(stream name, batch)` pairs. Deterministic
    /// for a given seed and sequence of calls.
    fn generate(&mut self, from: TimestampMs, to: TimestampMs) -> Vec<(String, EventBatch)>;

    /// Labelled anomalies injected so far (reported by backfill); none by default.
    fn anomalies_injected(&self) -> u64 {
        0
    }
}

/// The generators of every enabled domain, stepped together.
#[derive(Default)]
pub struct Simulator {
    generators: Vec<Box<dyn Generator>>,
}

impl Simulator {
    pub fn new() -> Self {
        Simulator::default()
    }

    /// Adds a domain's generator. New domains plug in here.
    pub fn with(mut self, generator: impl Generator + 'static) -> Self {
        self.generators.push(Box::new(generator));
        self
    }

    pub fn streams(&self) -> Vec<StreamDeclaration> {
        self.generators.iter().flat_map(|g| g.streams()).collect()
    }

    /// Anomalies injected so far, over every generator.
    pub fn anomalies_injected(&self) -> u64 {
        self.generators.iter().map(|g| g.anomalies_injected()).sum()
    }

    pub fn generate(&mut self, from: TimestampMs, to: TimestampMs) -> Vec<(String, EventBatch)> {
        self.generators
            .iter_mut()
            .flat_map(|g| g.generate(from, to))
            .filter(|(_, batch)| !batch.is_empty())
            .collect()
    }
}
