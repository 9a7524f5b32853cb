//! Alerts: what every domain's detectors raise, kept as events of one stream.
//!
//! An alert is an event of the stream `alerts` (tags `domain`, `kind`, `subject`,
//! `severity`; fields `message`, `score`, `evidence` as JSON text), so it is durable like
//! any event, queryable through the events API and pushed live on the topic
//! `stream.alerts` (subscribers filter by `domain`, `kind` or `subject`).
//!
//! Detectors run inside the engine's apply path, where they may not call back into it, so
//! they hand alerts to an [`AlertSink`]; [`run_writer`] drains it and ingests them.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tidewatch_engine::{Engine, EventsPage, EventsRequest};
use tidewatch_ingest::ids::assign_id;
use tidewatch_types::batch::TagInterner;
use tidewatch_types::schema::FieldDef;
use tidewatch_types::time::format_rfc3339_ms;
use tidewatch_types::{EventBatch, FieldColumn, FieldType, StreamSchema, TagColumn, TimestampMs};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

pub const ALERTS_STREAM: &str = "alerts";

/// Alerts written in one batch at most; more wait for the next one.
const MAX_BATCH: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One alert as a detector raises it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Event time of what triggered it.
    pub ts: TimestampMs,
    /// The raising domain, e.g. `market`.
    pub domain: &'static str,
    /// What was detected, e.g. `price_spike`.
    pub kind: &'static str,
    /// What it is about, e.g. a symbol.
    pub subject: String,
    pub severity: Severity,
    pub message: String,
    /// How far past its threshold the detector's statistic went (e.g. the z-score).
    pub score: f64,
    /// The figures the detector decided on.
    pub evidence: Value,
}

pub fn schema() -> StreamSchema {
    let field = |name: &str, field_type| FieldDef {
        name: name.into(),
        field_type,
    };
    StreamSchema {
        name: ALERTS_STREAM.into(),
        tags: vec![
            "domain".into(),
            "kind".into(),
            "subject".into(),
            "severity".into(),
        ],
        fields: vec![
            field("message", FieldType::Str),
            field("score", FieldType::F64),
            field("evidence", FieldType::Str),
        ],
    }
}

/// Declares the alerts stream (idempotent, as at every start).
pub fn declare(engine: &Engine) -> tidewatch_engine::Result<()> {
    engine.declare_stream(schema()).map(|_| ())
}

/// Where detectors put alerts; cheap to clone. Alerts are rare, so the channel is
/// unbounded: a detector never waits, and never drops what it found.
#[derive(Debug, Clone)]
pub struct AlertSink(mpsc::UnboundedSender<Alert>);

impl AlertSink {
    pub fn channel() -> (AlertSink, mpsc::UnboundedReceiver<Alert>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (AlertSink(tx), rx)
    }

    pub fn raise(&self, alert: Alert) {
        // Fails only once the writer has stopped at shutdown.
        let _ = self.0.send(alert);
    }
}

/// Ingests alerts from `alerts` into the alerts stream until `shutdown`, then writes what
/// is still queued. A write that fails is logged and retried once a second.
pub async fn run_writer(
    engine: Arc<Engine>,
    mut alerts: mpsc::UnboundedReceiver<Alert>,
    shutdown: CancellationToken,
) {
    let mut pending = Vec::new();
    loop {
        tokio::select! {
            received = alerts.recv_many(&mut pending, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
            }
            () = shutdown.cancelled() => {
                while let Ok(alert) = alerts.try_recv() {
                    pending.push(alert);
                }
                write(&engine, &mut pending).await;
                break;
            }
        }
        while !write(&engine, &mut pending).await {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// Writes `pending`; true (and `pending` emptied) when it is durable.
async fn write(engine: &Engine, pending: &mut Vec<Alert>) -> bool {
    if pending.is_empty() {
        return true;
    }
    match engine.ingest_batch(ALERTS_STREAM, to_batch(pending)).await {
        Ok(_) => {
            pending.clear();
            true
        }
        Err(e) => {
            warn!(error = %e, alerts = pending.len(), "alerts not written yet");
            false
        }
    }
}

fn to_batch(alerts: &[Alert]) -> EventBatch {
    let mut tags = vec![TagColumn::default(); 4];
    let mut interners = vec![TagInterner::default(); 4];
    let (mut message, mut score, mut evidence) = (Vec::new(), Vec::new(), Vec::new());
    for alert in alerts {
        let values = [
            alert.domain,
            alert.kind,
            alert.subject.as_str(),
            alert.severity.as_str(),
        ];
        for ((column, interner), value) in tags.iter_mut().zip(&mut interners).zip(values) {
            interner.push(column, Some(value));
        }
        message.push(Some(alert.message.clone()));
        score.push(alert.score.is_finite().then_some(alert.score));
        evidence.push(Some(alert.evidence.to_string()));
    }
    EventBatch {
        ids: alerts.iter().map(|_| assign_id()).collect(),
        ts: alerts.iter().map(|a| a.ts).collect(),
        tags,
        fields: vec![
            FieldColumn::Str(message),
            FieldColumn::F64(score),
            FieldColumn::Str(evidence),
        ],
    }
}

/// Stored alerts, newest first, with `evidence` as JSON again rather than text.
pub fn query(engine: &Engine, request: &EventsRequest) -> tidewatch_engine::Result<EventsPage> {
    let mut page = engine.events(ALERTS_STREAM, request)?;
    for event in &mut page.events {
        if let Some(evidence) = event.get_mut("evidence")
            && let Some(text) = evidence.as_str()
        {
            *evidence = serde_json::from_str(text).unwrap_or(Value::Null);
        }
    }
    Ok(page)
}

/// `ts` as the API shows it; for messages that quote a time.
pub fn format_ts(ts: TimestampMs) -> String {
    format_rfc3339_ms(ts)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tidewatch_engine::EngineConfig;

    use super::*;

    fn alert(subject: &str, score: f64) -> Alert {
        Alert {
            ts: 1_795_428_000_000,
            domain: "market",
            kind: "price_spike",
            subject: subject.into(),
            severity: Severity::Warning,
            message: format!("{subject} jumped"),
            score,
            evidence: json!({"z": score, "window": 200}),
        }
    }

    #[tokio::test]
    async fn raised_alerts_are_stored_and_come_back_with_their_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(EngineConfig::test_config(dir.path())).unwrap());
        declare(&engine).unwrap();
        declare(&engine).unwrap();
        let (sink, rx) = AlertSink::channel();
        let shutdown = CancellationToken::new();
        let writer = tokio::spawn(run_writer(Arc::clone(&engine), rx, shutdown.clone()));
        sink.raise(alert("AAPL", 9.5));
        sink.raise(alert("BTCUSDT", 12.0));
        // Queued alerts are written on shutdown at the latest.
        shutdown.cancel();
        writer.await.unwrap();

        let page = query(&engine, &EventsRequest::default()).unwrap();
        assert_eq!(page.events.len(), 2);
        let mut subjects: Vec<&str> = page
            .events
            .iter()
            .map(|e| e["subject"].as_str().unwrap())
            .collect();
        subjects.sort_unstable();
        assert_eq!(subjects, ["AAPL", "BTCUSDT"]);
        let btc = page
            .events
            .iter()
            .find(|e| e["subject"] == "BTCUSDT")
            .unwrap();
        assert_eq!(btc["evidence"], json!({"z": 12.0, "window": 200}));
        assert_eq!(btc["severity"], "warning");
        assert_eq!(btc["domain"], "market");
        assert_eq!(btc["score"], 12.0);
        assert_eq!(btc["ts"], format_ts(1_795_428_000_000));
    }
}
