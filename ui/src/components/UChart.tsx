// uPlot in a Preact component. The plot is created once (again only when the theme or
// `optionsKey` changes) and then updated in place by its owner through `handle.plot`:
// live data never re-renders the page around it.

import type { RefObject } from "preact";
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { cssVar, theme } from "../lib/theme";
import { resolveRange, timeRange } from "../lib/time-range";

export interface ChartColors {
  text: string;
  muted: string;
  grid: string;
  accent: string;
  up: string;
  down: string;
  candleUp: string;
  candleDown: string;
  series: string[];
}

export function chartColors(): ChartColors {
  return {
    text: cssVar("--text"),
    muted: cssVar("--muted"),
    grid: cssVar("--grid"),
    accent: cssVar("--accent"),
    up: cssVar("--up"),
    down: cssVar("--down"),
    candleUp: cssVar("--candle-up"),
    candleDown: cssVar("--candle-down"),
    series: [cssVar("--series-1"), cssVar("--series-2"), cssVar("--series-3")],
  };
}

export function axis(colors: ChartColors, extra: Partial<uPlot.Axis> = {}): uPlot.Axis {
  return {
    stroke: colors.muted,
    grid: { stroke: colors.grid, width: 1 },
    ticks: { stroke: colors.grid, width: 1 },
    font: "11px system-ui, sans-serif",
    ...extra,
  };
}

export interface ChartProps {
  /** Builds the options (without size) for the current theme's colours. */
  options: (colors: ChartColors) => Omit<uPlot.Options, "width" | "height">;
  /** The data to start with; afterwards the owner calls `handle.current.setData`. */
  data: () => uPlot.AlignedData;
  handle: RefObject<uPlot | null>;
  height: number;
  /** Recreate the plot when this changes (e.g. a different series layout). */
  optionsKey?: string;
  testId?: string;
}

export function UChart({ options, data, handle, height, optionsKey, testId }: ChartProps) {
  const container = useRef<HTMLDivElement>(null);
  const currentTheme = theme.value;
  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const width = Math.max(200, element.clientWidth);
    const plot = new uPlot({ ...options(chartColors()), width, height }, data(), element);
    handle.current = plot;
    const observer = new ResizeObserver(() => {
      const newWidth = Math.max(200, element.clientWidth);
      if (Math.abs(newWidth - plot.width) > 1) plot.setSize({ width: newWidth, height });
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      plot.destroy();
      if (handle.current === plot) handle.current = null;
    };
    // The owner updates data in place; only the theme, size or layout rebuild the plot.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [currentTheme, height, optionsKey]);
  return <div class="chart" ref={container} data-testid={testId} style={{ minHeight: `${height}px` }} />;
}

/** Draws OHLC candles from series `open`, `high`, `low`, `close` (by index) when enabled. */
export function candlesPlugin(indices: { open: number; high: number; low: number; close: number }, enabled: () => boolean, colors: ChartColors): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        if (!enabled()) return;
        const ctx = u.ctx;
        const xs = u.data[0];
        const opens = u.data[indices.open]!;
        const highs = u.data[indices.high]!;
        const lows = u.data[indices.low]!;
        const closes = u.data[indices.close]!;
        const { left, top, width, height } = u.bbox;
        const xMin = u.scales.x!.min ?? -Infinity;
        const xMax = u.scales.x!.max ?? Infinity;
        // Body width from the spacing of neighbouring candles.
        let spacing = width;
        for (let i = 1; i < xs.length; i++) {
          const gap = u.valToPos(xs[i]!, "x", true) - u.valToPos(xs[i - 1]!, "x", true);
          if (gap > 0 && gap < spacing) spacing = gap;
        }
        const body = Math.max(1, Math.min(24 * devicePixelRatio, spacing * 0.7));
        ctx.save();
        ctx.beginPath();
        ctx.rect(left, top, width, height);
        ctx.clip();
        for (let i = 0; i < xs.length; i++) {
          const x = xs[i]!;
          if (x < xMin || x > xMax) continue;
          const open = opens[i];
          const close = closes[i];
          const high = highs[i];
          const low = lows[i];
          if (open == null || close == null || high == null || low == null) continue;
          const cx = Math.round(u.valToPos(x, "x", true));
          const yOpen = u.valToPos(open, "y", true);
          const yClose = u.valToPos(close, "y", true);
          const up = close >= open;
          ctx.strokeStyle = ctx.fillStyle = up ? colors.candleUp : colors.candleDown;
          ctx.lineWidth = Math.max(1, devicePixelRatio);
          ctx.beginPath();
          ctx.moveTo(cx + 0.5, u.valToPos(high, "y", true));
          ctx.lineTo(cx + 0.5, u.valToPos(low, "y", true));
          ctx.stroke();
          const bodyTop = Math.min(yOpen, yClose);
          const bodyHeight = Math.max(1, Math.abs(yClose - yOpen));
          ctx.fillRect(cx - body / 2, bodyTop, body, bodyHeight);
        }
        ctx.restore();
      },
    },
  };
}

/**
 * The x range (seconds) of a time chart under the dashboard's time range: live reaches to
 * now, fixed stops at its end; neither starts before the first point (no empty left half).
 */
const MIN_SPAN_S = 60;

export function timeRangeX(u: uPlot): uPlot.Range.MinMax {
  const xs = u.data[0];
  const range = timeRange.peek();
  const { from, to } = resolveRange(range, Date.now());
  const first = xs.length ? xs[0]! : to / 1000;
  const last = xs.length ? xs[xs.length - 1]! : to / 1000;
  const start = Math.max(from / 1000, first);
  const end = range.mode === "live" ? Math.max(to / 1000, last) : to / 1000;
  // At least a minute, so that a few seconds of data do not fill the width.
  const minimumStart = range.mode === "live" ? Math.max(from / 1000, end - MIN_SPAN_S) : start;
  return end > start ? [Math.min(start, minimumStart), end] : [start - MIN_SPAN_S, start + MIN_SPAN_S];
}

export { uPlot };
