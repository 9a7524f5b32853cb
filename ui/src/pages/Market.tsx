import { useComputed, useSignal, type ReadonlySignal, type Signal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { AlertList } from "../components/AlertList";
import { Card, Empty, Sparkline } from "../components/common";
import { axis, candlesPlugin, timeRangeX, UChart, uPlot } from "../components/UChart";
import { connection } from "../lib/connection";
import { changeClass, formatAge, formatBps, formatCompact, formatNumber, formatPercent, formatPrice, formatSpread, formatTick } from "../lib/format";
import { alerts, candleFromRow, fetchCandles, fetchSentiment, market, TICKS, upsertCandle, type Candle, type Quote, type Sentiment } from "../lib/market";
import { navigate } from "../lib/router";
import { RollupFeed } from "../lib/store";
import { streams } from "../lib/streams";
import { effectiveSpan, HORIZONS, resolveRange, setLive, spanLabel, spanOf, timeRange, windowForSpan } from "../lib/time-range";
import type { PageProps } from "./registry";

type ChartType = "candles" | "line";

export default function Market({ rest }: PageProps) {
  useEffect(() => {
    const releases = [market.use(), alerts.use(), streams.use()];
    return () => releases.forEach((release) => release());
  }, []);
  const symbols = market.symbols.value;
  const requested = rest.split("/")[0]?.toUpperCase() ?? "";
  const selected = requested || symbols[0] || "";
  const chartType = useSignal<ChartType>("candles");

  if (!selected) {
    return <Empty>{connection().state.value === "open" ? "Waiting for market data…" : "No market data: the server cannot be reached."}</Empty>;
  }
  const select = (symbol: string) => navigate(`/market/${encodeURIComponent(symbol)}`);
  return (
    <div class="market">
      <SymbolTabs symbols={symbols} selected={selected} onSelect={select} />
      <div class="grid-2-1">
        <Card class="chart-card" testId="market-chart-card">
          <QuoteHeader quote={market.quote(selected)} />
          <ChartControls chartType={chartType} />
          <PriceChart symbol={selected} chartType={chartType.value} />
        </Card>
        <div class="stack">
          <SentimentGauge symbol={selected} />
          <MarketAlerts symbol={selected} />
        </div>
      </div>
      <Watchlist symbols={symbols} selected={selected} onSelect={select} />
    </div>
  );
}

function MarketAlerts({ symbol }: { symbol: string }) {
  const onlyThis = useSignal(false);
  const list = onlyThis.value ? alerts.alerts.value.filter((alert) => alert.symbol === symbol) : alerts.alerts.value;
  return (
    <Card
      title="Market alerts"
      testId="market-alerts"
      actions={
        <button type="button" class={onlyThis.value ? "chip active" : "chip"} onClick={() => (onlyThis.value = !onlyThis.value)} title="Show only the selected symbol's alerts">
          {symbol} only
        </button>
      }
    >
      {list.length ? (
        <AlertList alerts={list} limit={8} />
      ) : (
        <Empty>{alerts.status.value === "unavailable" ? "Alerts are not available on this server yet." : onlyThis.value ? `No alerts for ${symbol} so far.` : "No alerts so far."}</Empty>
      )}
    </Card>
  );
}

function LiveChange({ quote }: { quote: ReadonlySignal<Quote> }) {
  const text = useComputed(() => formatPercent(quote.value.change_24h_pct));
  const className = useComputed(() => `change ${changeClass(quote.value.change_24h_pct)}`);
  return <span class={className}>{text}</span>;
}

function SymbolTabs({ symbols, selected, onSelect }: { symbols: string[]; selected: string; onSelect: (s: string) => void }) {
  const list = symbols.includes(selected) ? symbols : [selected, ...symbols];
  const strip = useRef<HTMLDivElement>(null);
  useEffect(() => {
    strip.current?.querySelector(".tab.active")?.scrollIntoView({ block: "nearest", inline: "nearest" });
  }, [selected]);
  return (
    <div class="symbol-tabs" role="tablist" ref={strip} data-testid="symbol-tabs">
      {list.map((symbol) => (
        <button type="button" role="tab" aria-selected={symbol === selected} class={symbol === selected ? "tab active" : "tab"} onClick={() => onSelect(symbol)} data-symbol={symbol} key={symbol}>
          <span class="tab-symbol">{symbol}</span>
          <LiveChange quote={market.quote(symbol)} />
        </button>
      ))}
    </div>
  );
}

function QuoteHeader({ quote }: { quote: Signal<Quote> }) {
  const q = quote.value;
  const change = q.open_24h !== null && q.price !== null ? q.price - q.open_24h : null;
  return (
    <div class="quote-header" data-testid="quote-header" data-symbol={q.symbol}>
      <div class="quote-title">
        <span class="quote-symbol" data-testid="selected-symbol">
          {q.symbol}
        </span>
        {q.venue && <span class="badge venue">{q.venue}</span>}
        <span class="muted">{q.name !== q.symbol ? q.name : ""}</span>
      </div>
      <div class="quote-price">
        <span class={`price ${q.tick > 0 ? "up" : q.tick < 0 ? "down" : ""}`} data-testid="quote-price">
          {formatPrice(q.price)}
        </span>
        <span class={`change ${changeClass(change)}`}>
          {change === null ? "" : `${change >= 0 ? "+" : "−"}${formatPrice(Math.abs(change))}`} ({formatPercent(q.change_24h_pct)})
        </span>
      </div>
      <div class="quote-facts muted small">
        <span>Bid {formatPrice(q.bid)}</span>
        <span>Ask {formatPrice(q.ask)}</span>
        <span>Spread {formatBps(q.spread_bps)}</span>
        {typeof q.low_24h === "number" && typeof q.high_24h === "number" && (
          <span>
            24 h range {formatPrice(q.low_24h)} – {formatPrice(q.high_24h)}
          </span>
        )}
        <span>Vol 24 h {formatCompact(q.volume_24h)}</span>
        <span>{q.updatedAt ? `updated ${formatAge(q.updatedAt)}` : ""}</span>
      </div>
    </div>
  );
}

function ChartControls({ chartType }: { chartType: Signal<ChartType> }) {
  const range = timeRange.value;
  const active = range.mode === "live" ? spanLabel(range.spanMs) : null;
  return (
    <div class="chart-controls">
      <div class="segmented" role="group" aria-label="Time horizon" data-testid="horizons">
        {HORIZONS.map((horizon) => (
          <button type="button" class={active === horizon ? "active" : ""} onClick={() => setLive(spanOf(horizon))} key={horizon}>
            {horizon}
          </button>
        ))}
      </div>
      <div class="legend small">
        <span class="legend-ema20">EMA 20</span>
        <span class="legend-ema50">EMA 50</span>
      </div>
      <div class="segmented" role="group" aria-label="Chart type" data-testid="chart-type">
        {(["candles", "line"] as const).map((type) => (
          <button type="button" class={chartType.value === type ? "active" : ""} onClick={() => (chartType.value = type)} key={type}>
            {type === "candles" ? "Candles" : "Line"}
          </button>
        ))}
      </div>
    </div>
  );
}

/** Series layout of the price chart: x, close, EMA 20, EMA 50, open, high, low. */
const CLOSE = 1;
const OPEN = 4;
const HIGH = 5;
const LOW = 6;

function toData(candles: Candle[]): uPlot.AlignedData {
  return [
    candles.map((c) => c.time / 1000),
    candles.map((c) => c.close),
    candles.map((c) => c.ema20),
    candles.map((c) => c.ema50),
    candles.map((c) => c.open),
    candles.map((c) => c.high),
    candles.map((c) => c.low),
  ];
}

function PriceChart({ symbol, chartType }: { symbol: string; chartType: ChartType }) {
  const range = timeRange.value;
  const epoch = connection().epoch.value;
  const known = streams.streams.value !== null;
  const window = windowForSpan(effectiveSpan(range, Date.now(), streams.firstEventAt(TICKS)));
  const rangeKey = range.mode === "live" ? `live:${range.spanMs}` : `fixed:${range.from}:${range.to}`;
  const plot = useRef<uPlot | null>(null);
  const candles = useRef<Candle[]>([]);
  const mode = useRef<ChartType>(chartType);
  const status = useSignal<"loading" | "ready" | "empty">("loading");
  const stale = useSignal(false);
  const loadedSymbol = useSignal("");

  mode.current = chartType;
  useEffect(() => {
    plot.current?.setSeries(CLOSE, { show: chartType === "line" });
    plot.current?.redraw();
  }, [chartType]);

  useEffect(() => {
    if (!known) return;
    const abort = new AbortController();
    candles.current = [];
    status.value = "loading";
    const redraw = () => {
      const data = toData(candles.current);
      status.value = candles.current.length ? "ready" : "empty";
      plot.current?.setData(data);
    };
    const { from, to } = resolveRange(range, Date.now());
    let cleanupLive = () => {};
    void fetchCandles(symbol, window, from, range.mode === "fixed" ? to : null, abort.signal).then(({ candles: loaded }) => {
      if (abort.signal.aborted) return;
      candles.current = loaded;
      loadedSymbol.value = symbol;
      redraw();
      if (range.mode !== "live") return;
      const feed = new RollupFeed(["symbol"], 4);
      const unsubscribe = connection().subscribe(`rollup.${TICKS}.ohlc.${window}`, { symbol }, feed);
      const stopFlush = feed.onFlush((f) => {
        for (const row of f.rowsOf(symbol)) {
          const candle = candleFromRow(row);
          if (candle) upsertCandle(candles.current, candle);
        }
        redraw();
      });
      const stopStale = feed.stale.subscribe((value) => (stale.value = value));
      const follow = setInterval(redraw, 5000);
      cleanupLive = () => {
        unsubscribe();
        stopFlush();
        stopStale();
        clearInterval(follow);
      };
    });
    return () => {
      abort.abort();
      cleanupLive();
    };
  }, [known, symbol, window, rangeKey, epoch]);

  const yRange = (u: uPlot): uPlot.Range.MinMax => {
    const xs = u.data[0];
    const xMin = u.scales.x?.min ?? -Infinity;
    const xMax = u.scales.x?.max ?? Infinity;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < xs.length; i++) {
      if (xs[i]! < xMin || xs[i]! > xMax) continue;
      for (const index of [LOW, HIGH, 2, 3]) {
        const value = u.data[index]![i];
        if (value == null) continue;
        if (value < min) min = value;
        if (value > max) max = value;
      }
    }
    if (!Number.isFinite(min)) return [0, 1];
    const pad = (max - min) * 0.08 || Math.abs(max) * 0.01 || 1;
    return [min - pad, max + pad];
  };

  return (
    <div class={stale.value ? "is-stale" : ""}>
      <UChart
        handle={plot}
        height={340}
        testId="price-chart"
        data={() => toData(candles.current)}
        options={(colors) => ({
          legend: { show: false },
          cursor: { drag: { x: false, y: false } },
          scales: {
            x: { time: true, range: timeRangeX },
            y: { range: yRange },
          },
          axes: [axis(colors), axis(colors, { values: (_u, ticks, _axis, _space, increment) => ticks.map((t) => formatTick(t, increment)), size: 76 })],
          series: [
            {},
            { label: "Close", stroke: colors.accent, width: 2, points: { show: false }, show: mode.current === "line" },
            { label: "EMA 20", stroke: colors.series[1], width: 1.5, points: { show: false } },
            { label: "EMA 50", stroke: colors.series[2], width: 1.5, points: { show: false } },
            { label: "Open", show: false },
            { label: "High", show: false },
            { label: "Low", show: false },
          ],
          plugins: [candlesPlugin({ open: OPEN, high: HIGH, low: LOW, close: CLOSE }, () => mode.current === "candles", colors)],
        })}
      />
      <div class="chart-footer muted small" data-testid="chart-status" data-symbol={loadedSymbol.value} data-status={status.value} data-mode={range.mode}>
        {status.value === "loading" ? "Loading candles…" : status.value === "empty" ? "No candles in this range yet." : `${symbol} · ${window} candles · ${range.mode === "live" ? "live" : "fixed range"}`}
      </div>
    </div>
  );
}

function Gauge({ score }: { score: number }) {
  const clamped = Math.max(-1, Math.min(1, score));
  const angle = (clamped * 90 * Math.PI) / 180; // -90° (bearish) .. +90° (bullish)
  const x = 60 + 44 * Math.sin(angle);
  const y = 62 - 44 * Math.cos(angle);
  return (
    <svg class="gauge" viewBox="0 0 120 70" role="img" aria-label={`sentiment ${clamped.toFixed(2)}`}>
      <path d="M10 62 A50 50 0 0 1 35 18.7" class="gauge-bear" />
      <path d="M35 18.7 A50 50 0 0 1 85 18.7" class="gauge-neutral" />
      <path d="M85 18.7 A50 50 0 0 1 110 62" class="gauge-bull" />
      <line x1="60" y1="62" x2={x.toFixed(1)} y2={y.toFixed(1)} class="gauge-needle" />
      <circle cx="60" cy="62" r="4" class="gauge-hub" />
    </svg>
  );
}

function SentimentGauge({ symbol }: { symbol: string }) {
  const sentiment = useSignal<Sentiment | null>(null);
  const unavailable = useSignal(false);
  const epoch = connection().epoch.value;
  useEffect(() => {
    const abort = new AbortController();
    sentiment.value = null;
    const load = async () => {
      const result = await fetchSentiment(symbol, abort.signal);
      if (abort.signal.aborted) return;
      if (result.ok) {
        sentiment.value = result.data;
        unavailable.value = false;
      } else if (result.status === 404 && !sentiment.peek()) {
        unavailable.value = true;
      }
    };
    void load();
    const timer = setInterval(load, 5000);
    return () => {
      abort.abort();
      clearInterval(timer);
    };
  }, [symbol, epoch]);
  const value = sentiment.value;
  return (
    <Card title="Sentiment" testId="sentiment" actions={value?.window ? <span class="muted small">{value.window}</span> : null}>
      {value ? (
        <div class="sentiment">
          <Gauge score={value.score} />
          <div class={`sentiment-label ${value.score > 0.1 ? "up" : value.score < -0.1 ? "down" : "flat"}`}>
            {value.label} <span class="muted">({formatNumber(value.score, 2)})</span>
          </div>
          {value.components && (
            <dl class="components small">
              {Object.entries(value.components).map(([name, score]) => (
                <div key={name}>
                  <dt>{name.replace(/_/g, " ")}</dt>
                  <dd>{formatNumber(score, 2)}</dd>
                </div>
              ))}
            </dl>
          )}
        </div>
      ) : (
        <Empty>{unavailable.value ? "Sentiment is not available on this server yet." : "Loading…"}</Empty>
      )}
    </Card>
  );
}

function WatchRow({ symbol, selected, onSelect }: { symbol: string; selected: boolean; onSelect: (s: string) => void }) {
  const quote = market.quote(symbol);
  // Bound text: each cell updates in place without re-rendering the row.
  const price = useComputed(() => formatPrice(quote.value.price));
  const priceClass = useComputed(() => `num price ${quote.value.tick > 0 ? "up" : quote.value.tick < 0 ? "down" : ""}`);
  const change = useComputed(() => formatPercent(quote.value.change_24h_pct));
  const changeClassName = useComputed(() => `num ${changeClass(quote.value.change_24h_pct)}`);
  const spread = useComputed(() => `${formatSpread(quote.value.spread)} · ${formatBps(quote.value.spread_bps)}`);
  const volume = useComputed(() => formatCompact(quote.value.volume_24h));
  const sparkline = useComputed(() => {
    const q = quote.value;
    return q.price !== null && q.sparkline.length ? [...q.sparkline, q.price] : q.sparkline;
  });
  const name = useComputed(() => quote.value.name);
  return (
    <tr class={selected ? "clickable selected" : "clickable"} onClick={() => onSelect(symbol)} data-symbol={symbol} aria-selected={selected}>
      <td class="symbol">{symbol}</td>
      <td class="muted name">{name}</td>
      <td class={priceClass} data-testid={`price-${symbol}`}>
        {price}
      </td>
      <td class={changeClassName}>{change}</td>
      <td class="num muted">{spread}</td>
      <td class="num">{volume}</td>
      <td class="spark">
        <SparkCell values={sparkline} />
      </td>
    </tr>
  );
}

function SparkCell({ values }: { values: ReadonlySignal<number[]> }) {
  return <Sparkline values={values.value} />;
}

function Watchlist({ symbols, selected, onSelect }: { symbols: string[]; selected: string; onSelect: (s: string) => void }) {
  const stale = market.feed.stale.value || connection().state.value !== "open";
  return (
    <Card title="Watchlist" stale={stale} testId="watchlist" actions={market.status.value === "unavailable" ? <span class="muted small">live prices only: 24 h figures are not available on this server yet</span> : <span class="muted small">click a row to chart it</span>}>
      <div class="table-scroll">
        <table class="table watchlist">
          <thead>
            <tr>
              <th>Symbol</th>
              <th>Name</th>
              <th class="num">Price</th>
              <th class="num">24 h %</th>
              <th class="num">Bid/ask spread</th>
              <th class="num">Volume 24 h</th>
              <th>Trend 24 h</th>
            </tr>
          </thead>
          <tbody>
            {symbols.map((symbol) => (
              <WatchRow key={symbol} symbol={symbol} selected={symbol === selected} onSelect={onSelect} />
            ))}
          </tbody>
        </table>
      </div>
    </Card>
  );
}
