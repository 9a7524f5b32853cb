//! Prometheus metrics: one process-wide recorder, per-route latency middleware.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket bounds in seconds for every `*_seconds` histogram: 50 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// The process-wide Prometheus recorder, installed on first use. Several servers in one
/// process (tests) share it.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; metrics then go there.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(
        "tidewatch_ingest_rows_total",
        "rows accepted and made durable, by stream"
    );
    metrics::describe_counter!(
        "tidewatch_ingest_batches_total",
        "batches accepted, by stream"
    );
    metrics::describe_counter!(
        "tidewatch_ingest_rejected_rows_total",
        "rows rejected by validation, by stream"
    );
    metrics::describe_histogram!("tidewatch_wal_fsync_seconds", "time of one WAL fdatasync");
    metrics::describe_histogram!(
        "tidewatch_wal_append_seconds",
        "time from WAL submit to durable acknowledgement"
    );
    metrics::describe_histogram!(
        "tidewatch_http_request_duration_seconds",
        "HTTP request latency by route"
    );
    metrics::describe_gauge!("tidewatch_ws_clients", "connected WebSocket clients");
    metrics::describe_counter!(
        "tidewatch_ws_lagged_clients_total",
        "clients whose queue overflowed"
    );
    metrics::describe_counter!(
        "tidewatch_ws_resyncs_total",
        "resyncs sent to lagged clients"
    );
}

/// Records `tidewatch_http_request_duration_seconds{method, route, status}`; the route is
/// the matched pattern (`/api/v1/streams/{stream}/events`), never the raw path.
pub async fn track_latency(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("tidewatch_http_request_duration_seconds", "method" => method, "route" => route, "status" => status)
        .record(started.elapsed().as_secs_f64());
    response
}
