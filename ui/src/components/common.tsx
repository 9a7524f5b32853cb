import type { ComponentChildren } from "preact";
import { StaleTag } from "./LiveBadge";

export function Card({ title, children, stale = false, actions, class: className = "", testId }: { title?: string; children: ComponentChildren; stale?: boolean; actions?: ComponentChildren; class?: string; testId?: string }) {
  return (
    <section class={`card ${stale ? "is-stale" : ""} ${className}`} data-testid={testId}>
      {(title || actions) && (
        <header class="card-header">
          <h2>{title}</h2>
          <StaleTag stale={stale} />
          <div class="card-actions">{actions}</div>
        </header>
      )}
      {children}
    </section>
  );
}

export function MetricCard({ label, value, hint, stale = false, testId }: { label: string; value: ComponentChildren; hint?: ComponentChildren; stale?: boolean; testId?: string }) {
  return (
    <div class={`metric ${stale ? "is-stale" : ""}`} data-testid={testId}>
      <div class="metric-label">{label}</div>
      <div class="metric-value" data-testid={testId ? `${testId}-value` : undefined}>
        {value}
      </div>
      {hint && <div class="metric-hint">{hint}</div>}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

/** A price line as an inline SVG; `values` oldest first. */
export function Sparkline({ values, width = 96, height = 28 }: { values: readonly number[]; width?: number; height?: number }) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length < 2) return <svg class="sparkline" width={width} height={height} />;
  const min = Math.min(...finite);
  const max = Math.max(...finite);
  const span = max - min || 1;
  const step = width / (finite.length - 1);
  const points = finite.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - ((v - min) / span) * (height - 4)).toFixed(1)}`).join(" ");
  const rising = finite[finite.length - 1]! >= finite[0]!;
  return (
    <svg class={`sparkline ${rising ? "up" : "down"}`} width={width} height={height} viewBox={`0 0 ${width} ${height}`} aria-hidden="true">
      <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round" />
    </svg>
  );
}
