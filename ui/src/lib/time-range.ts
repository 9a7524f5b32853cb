// The dashboard's time range. Live mode follows now over a span; a fixed range stops
// following. Charts choose their rollup window from the span they show.

import { signal } from "@preact/signals";

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export type TimeRange = { mode: "live"; spanMs: number } | { mode: "fixed"; from: number; to: number };

/** A span long enough to reach back to the first stored event ("MAX"). */
export const MAX_SPAN = 10 * 365 * DAY;

export const SPANS: { label: string; ms: number }[] = [
  { label: "15m", ms: 15 * MINUTE },
  { label: "1h", ms: HOUR },
  { label: "6h", ms: 6 * HOUR },
  { label: "1D", ms: DAY },
  { label: "1W", ms: 7 * DAY },
  { label: "1M", ms: 30 * DAY },
  { label: "3M", ms: 91 * DAY },
  { label: "1Y", ms: 365 * DAY },
  { label: "MAX", ms: MAX_SPAN },
];

/** The chart horizons of the Market page (a subset of SPANS). */
export const HORIZONS = ["1D", "1W", "1M", "3M", "1Y", "MAX"] as const;
export type Horizon = (typeof HORIZONS)[number];

export function spanOf(label: string): number {
  return SPANS.find((span) => span.label === label)?.ms ?? DAY;
}

export function spanLabel(ms: number): string | null {
  return SPANS.find((span) => span.ms === ms)?.label ?? null;
}

export const timeRange = signal<TimeRange>({ mode: "live", spanMs: DAY });

export function setLive(spanMs: number): void {
  timeRange.value = { mode: "live", spanMs };
}

export function setFixed(from: number, to: number): void {
  if (!(from < to)) return;
  timeRange.value = { mode: "fixed", from, to };
}

/** The range as absolute times; in live mode relative to `now`. */
export function resolveRange(range: TimeRange, now: number): { from: number; to: number } {
  return range.mode === "live" ? { from: now - range.spanMs, to: now } : { from: range.from, to: range.to };
}

export type RollupWindow = "1m" | "5m" | "15m" | "1h" | "1d";

export const WINDOW_MS: Record<RollupWindow, number> = {
  "1m": MINUTE,
  "5m": 5 * MINUTE,
  "15m": 15 * MINUTE,
  "1h": HOUR,
  "1d": DAY,
};

/**
 * The candle window for a span: each window keeps its newest 1440 candles (1m ≈ 1 day,
 * 5m ≈ 5 days, 15m ≈ 15 days, 1h ≈ 60 days), so the window is the finest whose
 * retention covers the span with at most ~700 candles where possible.
 */
export function windowForSpan(spanMs: number): RollupWindow {
  if (spanMs <= 12 * HOUR) return "1m";
  if (spanMs <= 2 * DAY) return "5m";
  if (spanMs <= 8 * DAY) return "15m";
  if (spanMs <= 60 * DAY) return "1h";
  return "1d";
}

/**
 * The span actually covered by data: a live range reaching before the first stored event
 * is shortened to it, so a fresh server shows 1m candles instead of two 5m ones.
 */
export function effectiveSpan(range: TimeRange, now: number, firstEventAt: number | null): number {
  const { from, to } = resolveRange(range, now);
  const start = firstEventAt !== null && firstEventAt > from ? firstEventAt : from;
  return Math.max(MINUTE, to - start);
}
