import { formatAge, formatTime } from "../lib/format";
import type { MarketAlert } from "../lib/market";
import { navigate } from "../lib/router";

const KIND_LABELS: Record<string, string> = { price_spike: "Price spike", volume_surge: "Volume surge" };

export function kindLabel(kind: string): string {
  return KIND_LABELS[kind] ?? kind.replace(/_/g, " ");
}

export function AlertList({ alerts, limit = 20, now = Date.now() }: { alerts: readonly MarketAlert[]; limit?: number; now?: number }) {
  return (
    <ul class="alert-list" data-testid="alert-list">
      {alerts.slice(0, limit).map((alert) => (
        <li key={alert.id} class={`alert ${alert.severity}`}>
          <span class={`severity ${alert.severity}`}>{alert.severity}</span>
          <div class="alert-body">
            <div class="alert-title">
              <a
                href={`/market/${encodeURIComponent(alert.symbol)}`}
                onClick={(event) => {
                  event.preventDefault();
                  navigate(`/market/${encodeURIComponent(alert.symbol)}`);
                }}
              >
                {alert.symbol}
              </a>{" "}
              · {kindLabel(alert.kind)}
            </div>
            <div class="alert-message">{alert.message}</div>
          </div>
          <time title={formatTime(alert.ts)}>{formatAge(alert.ts, now)}</time>
        </li>
      ))}
    </ul>
  );
}
