import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { Card, Empty, MetricCard } from "../components/common";
import { getJson, getText, parsePrometheus, sumMetric, type MetricSample } from "../lib/api";
import { connection } from "../lib/connection";
import { formatCompact, formatDateTime, formatInteger, formatNumber, formatRate } from "../lib/format";
import { streams } from "../lib/streams";

export default function System() {
  useEffect(() => streams.use(), []);
  const live = connection();
  const metrics = useSignal<MetricSample[] | null>(null);
  const ready = useSignal<unknown>(null);
  const stats = useSignal({ ...live.stats });
  useEffect(() => {
    const load = async () => {
      const [text, readiness] = await Promise.all([getText("/metrics"), getJson<unknown>("/readyz")]);
      metrics.value = text.ok ? parsePrometheus(text.data) : null;
      ready.value = readiness.ok ? readiness.data : null;
      stats.value = { ...live.stats };
    };
    void load();
    const timer = setInterval(load, 3000);
    return () => clearInterval(timer);
  }, []);
  const samples = metrics.value ?? [];
  const offline = live.state.value !== "open";
  const histogramMean = (name: string) => {
    const sum = sumMetric(samples, `${name}_sum`);
    const count = sumMetric(samples, `${name}_count`);
    return sum !== null && count ? (sum / count) * 1000 : null;
  };
  const list = streams.streams.value;
  return (
    <div class="system">
      <div class="metrics">
        <MetricCard label="Ingest rate" value={formatRate(streams.rate.value)} stale={offline} testId="system-rate" />
        <MetricCard label="Rows ingested" value={formatCompact(sumMetric(samples, "tidewatch_ingest_rows_total"))} hint="since the process started" stale={offline} />
        <MetricCard label="WebSocket clients" value={formatInteger(sumMetric(samples, "tidewatch_ws_clients"))} stale={offline} />
        <MetricCard label="WAL append (mean)" value={histogramMean("tidewatch_wal_append_seconds") === null ? "—" : `${formatNumber(histogramMean("tidewatch_wal_append_seconds"), 2)} ms`} stale={offline} />
      </div>
      <Card title="Streams" stale={offline} testId="streams">
        {list && list.length ? (
          <table class="table">
            <thead>
              <tr>
                <th>Stream</th>
                <th>Tags</th>
                <th>Rollups</th>
                <th class="num">Rows</th>
                <th>First event</th>
                <th>Last event</th>
              </tr>
            </thead>
            <tbody>
              {list.map((stream) => (
                <tr key={stream.name}>
                  <td class="symbol">{stream.name}</td>
                  <td class="muted">{stream.tags.join(", ")}</td>
                  <td class="muted">{(stream.rollups as { name?: string; windows?: string[] }[]).map((r) => `${r.name ?? "?"} (${(r.windows ?? []).join(" ")})`).join(", ")}</td>
                  <td class="num">{formatInteger(stream.rows)}</td>
                  <td>{formatDateTime(stream.first_ts)}</td>
                  <td>{formatDateTime(stream.last_ts)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <Empty>{list ? "No streams declared." : "The server cannot be reached."}</Empty>
        )}
      </Card>
      <div class="grid-2">
        <Card title="This tab's connection" testId="connection">
          <dl class="facts">
            <dt>State</dt>
            <dd>{live.state.value}</dd>
            <dt>Connects</dt>
            <dd>{formatInteger(live.epoch.value)}</dd>
            <dt>Messages</dt>
            <dd>{formatInteger(stats.value.messages)}</dd>
            <dt>Snapshots</dt>
            <dd>{formatInteger(stats.value.snapshots)}</dd>
            <dt>Resyncs (server)</dt>
            <dd>{formatInteger(stats.value.resyncs)}</dd>
            <dt>Gaps seen</dt>
            <dd>{formatInteger(stats.value.gaps)}</dd>
          </dl>
        </Card>
        <Card title="Server" stale={offline}>
          <dl class="facts">
            <dt>Ready</dt>
            <dd>{ready.value ? "yes" : "no"}</dd>
            <dt>Lagged clients</dt>
            <dd>{formatInteger(sumMetric(samples, "tidewatch_ws_lagged_clients_total") ?? 0)}</dd>
            <dt>Resyncs sent</dt>
            <dd>{formatInteger(sumMetric(samples, "tidewatch_ws_resyncs_total") ?? 0)}</dd>
            <dt>Rejected rows</dt>
            <dd>{formatInteger(sumMetric(samples, "tidewatch_ingest_rejected_rows_total") ?? 0)}</dd>
            <dt>fsync (mean)</dt>
            <dd>{histogramMean("tidewatch_wal_fsync_seconds") === null ? "—" : `${formatNumber(histogramMean("tidewatch_wal_fsync_seconds"), 2)} ms`}</dd>
          </dl>
          {ready.value ? <pre class="json small">{JSON.stringify(ready.value, null, 2)}</pre> : null}
        </Card>
      </div>
    </div>
  );
}
