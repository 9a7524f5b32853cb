import { useComputed, useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { AlertList } from "../components/AlertList";
import { Card, Empty, MetricCard } from "../components/common";
import { axis, timeRangeX, UChart, uPlot } from "../components/UChart";
import { connection } from "../lib/connection";
import { changeClass, formatCompact, formatInteger, formatPercent, formatPrice, formatQuantity, formatRate, formatTick, formatTime } from "../lib/format";
import { equalWeightedIndex } from "../lib/indicators";
import { alerts, candleFromRow, fetchAllCandles, market, TICKS, upsertCandle, type Candle } from "../lib/market";
import { navigate } from "../lib/router";
import { EventFeed, RollupFeed, timeOf, type Row } from "../lib/store";
import { streams } from "../lib/streams";
import { effectiveSpan, resolveRange, timeRange, windowForSpan } from "../lib/time-range";

/** Below this span the index is drawn from 1s quotes instead of 1m candles. */
const QUOTES_SPAN_MS = 5 * 60_000;

export default function Overview() {
  useEffect(() => {
    const releases = [market.use(), alerts.use(), streams.use()];
    return () => releases.forEach((release) => release());
  }, []);
  return (
    <div class="overview">
      <Metrics />
      <div class="grid-2-1">
        <MarketPerformance />
        <ActivityFeed />
      </div>
      <div class="grid-2">
        <Movers />
        <Card title="Latest market alerts" testId="overview-alerts">
          {alerts.alerts.value.length ? <AlertList alerts={alerts.alerts.value} limit={6} /> : <Empty>{alerts.status.value === "unavailable" ? "Alerts are not available on this server yet." : "No alerts so far."}</Empty>}
        </Card>
      </div>
    </div>
  );
}

function Metrics() {
  const offline = connection().state.value !== "open";
  const hourAgo = Date.now() - 3_600_000;
  const recentAlerts = alerts.alerts.value.filter((alert) => timeOf(alert.ts) >= hourAgo).length;
  const list = streams.streams.value;
  return (
    <div class="metrics" data-testid="metrics">
      <MetricCard label="Events per second" value={formatRate(streams.rate.value)} hint="ingested, all streams" stale={offline} testId="metric-eps" />
      <MetricCard label="Symbols tracked" value={formatInteger(market.symbols.value.length || null)} hint="NASDAQ equities and crypto pairs" stale={offline} testId="metric-symbols" />
      <MetricCard label="Open alerts" value={alerts.status.value === "unavailable" ? "—" : formatInteger(recentAlerts)} hint="market anomalies, last hour" stale={offline} testId="metric-alerts" />
      <MetricCard label="Events stored" value={formatCompact(streams.totalRows.value)} hint={list ? `${list.length} stream${list.length === 1 ? "" : "s"}` : "—"} stale={offline} testId="metric-rows" />
    </div>
  );
}

/** Equal-weighted performance of all symbols over the time range, in percent. */
function MarketPerformance() {
  const range = timeRange.value;
  const epoch = connection().epoch.value;
  const first = streams.firstEventAt(TICKS);
  const known = streams.streams.value !== null;
  const span = effectiveSpan(range, Date.now(), first);
  // A fresh server has only a few minutes: per-second quotes draw a line at once.
  const window = span <= QUOTES_SPAN_MS ? "1s" : windowForSpan(span);
  const rangeKey = range.mode === "live" ? `live:${range.spanMs}` : `fixed:${range.from}:${range.to}`;
  const plot = useRef<uPlot | null>(null);
  const hasData = useSignal(false);
  const stale = useSignal(false);
  const candles = useRef(new Map<string, Candle[]>());

  useEffect(() => {
    if (!known) return;
    const abort = new AbortController();
    const bySymbol = new Map<string, Candle[]>();
    candles.current = bySymbol;
    const redraw = () => {
      const { from, to } = resolveRange(timeRange.peek(), Date.now());
      const series: [number[], number[]][] = [];
      for (const list of bySymbol.values()) {
        const inRange = list.filter((c) => c.time >= from - 1 && c.time <= to);
        series.push([inRange.map((c) => c.time / 1000), inRange.map((c) => c.close)]);
      }
      const [times, values] = equalWeightedIndex(series);
      hasData.value = times.length > 1;
      plot.current?.setData([times, values]);
    };
    const { from, to } = resolveRange(range, Date.now());
    let cleanupLive = () => {};
    void fetchAllCandles(window, from, range.mode === "fixed" ? to : null, abort.signal).then((loaded) => {
      if (abort.signal.aborted) return;
      for (const [symbol, list] of loaded) bySymbol.set(symbol, list);
      redraw();
      if (range.mode !== "live") return;
      // Live: follow the open windows of every symbol (the shared quotes feed for 1s).
      const shared = window === "1s";
      const feed = shared ? market.feed : new RollupFeed(["symbol"], 4);
      const unsubscribe = shared ? () => {} : connection().subscribe(`rollup.${TICKS}.ohlc.${window}`, {}, feed);
      const stopFlush = feed.onFlush((f) => {
        for (const symbol of f.changedGroups) {
          let list = bySymbol.get(symbol);
          if (!list) bySymbol.set(symbol, (list = []));
          for (const row of f.rowsOf(symbol)) {
            const candle = candleFromRow(row);
            if (candle) upsertCandle(list, candle);
          }
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
  }, [known, window, rangeKey, epoch]);

  return (
    <Card title="Market performance" stale={stale.value} testId="market-performance" actions={<span class="muted small">equal-weighted, {window} windows</span>}>
      <UChart
        handle={plot}
        height={260}
        testId="performance-chart"
        data={() => [[], []]}
        options={(colors) => ({
          legend: { show: false },
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true, range: timeRangeX }, y: { auto: true } },
          axes: [axis(colors), axis(colors, { values: (_u, ticks, _axis, _space, increment) => ticks.map((t) => `${formatTick(t, increment)}%`), size: 70 })],
          series: [
            {},
            {
              label: "Index",
              stroke: colors.accent,
              width: 2,
              fill: colors.accent + "33",
              points: { show: false },
              value: (_u, v) => formatPercent(v),
            },
          ],
        })}
      />
      {!hasData.value && <div class="chart-empty">Waiting for at least two windows of data…</div>}
    </Card>
  );
}

interface Activity {
  id: string;
  ts: unknown;
  symbol: string;
  text: string;
  side: "up" | "down" | "flat";
  alert?: string;
}

/** The newest trades (sampled twice a second) and alerts. */
function ActivityFeed() {
  const items = useSignal<Activity[]>([]);
  const stale = useSignal(true);
  useEffect(() => {
    const feed = new EventFeed(12);
    const unsubscribe = connection().subscribe(`stream.${TICKS}`, {}, feed);
    const lastPrice = new Map<string, number>();
    const render = () => {
      const trades: Activity[] = feed.events().map((row: Row) => {
        const price = Number(row.price);
        const symbol = String(row.symbol ?? "");
        const previous = lastPrice.get(symbol);
        lastPrice.set(symbol, price);
        return {
          id: String(row.id ?? `${symbol}${String(row.ts)}`),
          ts: row.ts,
          symbol,
          text: `${formatQuantity(Number(row.size))} @ ${formatPrice(price)}`,
          side: previous === undefined ? "flat" : changeClass(price - previous),
        };
      });
      const recentAlerts: Activity[] = alerts.alerts.peek().slice(0, 3).filter((a) => Date.now() - timeOf(a.ts) < 600_000).map((a) => ({ id: a.id, ts: a.ts, symbol: a.symbol, text: a.message, side: "flat", alert: a.severity }));
      items.value = [...recentAlerts, ...trades].slice(0, 12);
    };
    const timer = setInterval(render, 500);
    const stopStale = feed.stale.subscribe((value) => (stale.value = value));
    return () => {
      clearInterval(timer);
      unsubscribe();
      stopStale();
    };
  }, []);
  return (
    <Card title="Live activity" stale={stale.value} testId="activity-feed" actions={<span class="muted small">trades and alerts</span>}>
      {items.value.length === 0 ? (
        <Empty>Waiting for events…</Empty>
      ) : (
        <ul class="activity">
          {items.value.map((item) => (
            <li key={item.id} class={item.alert ? `alert-row ${item.alert}` : ""}>
              <time>{formatTime(item.ts as string)}</time>
              <a
                class="symbol"
                href={`/market/${item.symbol}`}
                onClick={(event) => {
                  event.preventDefault();
                  navigate(`/market/${item.symbol}`);
                }}
              >
                {item.symbol}
              </a>
              <span class={`activity-text ${item.side}`}>{item.alert ? `⚠ ${item.text}` : item.text}</span>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

/** The symbols that moved most over 24 hours. */
function Movers() {
  const rows = useComputed(() =>
    market.symbols.value
      .map((symbol) => market.quote(symbol).value)
      .filter((quote) => quote.change_24h_pct !== null)
      .sort((a, b) => Math.abs(b.change_24h_pct!) - Math.abs(a.change_24h_pct!))
      .slice(0, 6),
  );
  return (
    <Card title="Top movers (24 h)" testId="movers">
      {rows.value.length === 0 ? (
        <Empty>{market.status.value === "unavailable" ? "24 h figures are not available on this server yet." : "Waiting for quotes…"}</Empty>
      ) : (
        <table class="table compact">
          <tbody>
            {rows.value.map((quote) => (
              <tr key={quote.symbol} class="clickable" onClick={() => navigate(`/market/${quote.symbol}`)}>
                <td class="symbol">{quote.symbol}</td>
                <td class="muted">{quote.name}</td>
                <td class="num">{formatPrice(quote.price)}</td>
                <td class={`num ${changeClass(quote.change_24h_pct)}`}>{formatPercent(quote.change_24h_pct)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Card>
  );
}
