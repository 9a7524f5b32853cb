import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { AlertList, kindLabel } from "../components/AlertList";
import { Card, Empty, MetricCard } from "../components/common";
import { connection } from "../lib/connection";
import { formatInteger } from "../lib/format";
import { alerts } from "../lib/market";
import { timeOf } from "../lib/store";
import { resolveRange, timeRange } from "../lib/time-range";

export default function Alerts() {
  useEffect(() => alerts.use(), []);
  const kind = useSignal("");
  const severity = useSignal("");
  const { from, to } = resolveRange(timeRange.value, Date.now());
  const all = alerts.alerts.value;
  const inRange = all.filter((alert) => {
    const at = timeOf(alert.ts);
    return at >= from && (timeRange.value.mode === "live" || at <= to);
  });
  const shown = inRange.filter((alert) => (!kind.value || alert.kind === kind.value) && (!severity.value || alert.severity === severity.value));
  const kinds = [...new Set(all.map((alert) => alert.kind))].sort();
  const stale = alerts.feed.stale.value || connection().state.value !== "open";
  return (
    <div class="alerts-page">
      <div class="metrics">
        <MetricCard label="Alerts in range" value={formatInteger(inRange.length)} stale={stale} testId="alerts-count" />
        <MetricCard label="Critical" value={formatInteger(inRange.filter((a) => a.severity === "critical").length)} stale={stale} />
        <MetricCard label="Warnings" value={formatInteger(inRange.filter((a) => a.severity === "warning").length)} stale={stale} />
        <MetricCard label="Symbols affected" value={formatInteger(new Set(inRange.map((a) => a.symbol)).size)} stale={stale} />
      </div>
      <Card
        title="Market alerts"
        stale={stale}
        testId="alerts"
        actions={
          <div class="filters">
            <select aria-label="Kind" value={kind.value} onChange={(e) => (kind.value = (e.currentTarget as HTMLSelectElement).value)}>
              <option value="">every kind</option>
              {kinds.map((k) => (
                <option value={k}>{kindLabel(k)}</option>
              ))}
            </select>
            <select aria-label="Severity" value={severity.value} onChange={(e) => (severity.value = (e.currentTarget as HTMLSelectElement).value)}>
              <option value="">every severity</option>
              <option value="critical">critical</option>
              <option value="warning">warning</option>
            </select>
          </div>
        }
      >
        {shown.length ? (
          <AlertList alerts={shown} limit={200} />
        ) : (
          <Empty>{alerts.status.value === "unavailable" ? "Alerts are not available on this server yet: the market detectors have not been built." : "No alerts in this range."}</Empty>
        )}
      </Card>
      <p class="muted small">Market anomalies (price spikes, volume surges) today; the other domains' detectors report here as they are built.</p>
    </div>
  );
}
