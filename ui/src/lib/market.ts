// The market domain on the client: symbols with their 24 h figures (REST), live quotes
// (WebSocket), candles (REST history + live windows) and alerts.

import { batch, signal, type Signal } from "@preact/signals";
import { getJson, withQuery } from "./api";
import { connection } from "./connection";
import { emaSeries } from "./indicators";
import { EventFeed, RollupFeed, timeOf, type Row } from "./store";
import type { RollupWindow } from "./time-range";

export const TICKS = "market.ticks";

export interface SymbolInfo {
  symbol: string;
  name: string;
  venue: string;
  asset_class: string;
  price: number | null;
  change_24h_pct: number | null;
  bid: number | null;
  ask: number | null;
  spread: number | null;
  spread_bps: number | null;
  volume_24h: number | null;
  ts: string | null;
  sparkline: number[];
  /** Sent by the symbols and quote endpoints; derived from the change when absent. */
  open_24h?: number | null;
  high_24h?: number | null;
  low_24h?: number | null;
  trades_24h?: number | null;
}

export interface Quote extends SymbolInfo {
  /** Price 24 h ago, derived from the REST change, so live prices give a live change. */
  open_24h: number | null;
  /** Local time of the last live update, 0 if none yet. */
  updatedAt: number;
  /** +1 or -1 for the last price move, 0 if none. */
  tick: number;
}

export interface Candle {
  time: number; // window start, epoch ms
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  ema20: number | null;
  ema50: number | null;
  closed: boolean;
}

export interface MarketAlert {
  id: string;
  ts: string;
  symbol: string;
  kind: string;
  severity: "warning" | "critical" | string;
  message: string;
  evidence?: Record<string, unknown>;
}

export interface Sentiment {
  symbol: string;
  score: number;
  label: string;
  window?: string;
  components?: Record<string, number | null>;
  ts?: string;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** Builds a quote from the REST record. */
export function quoteFromInfo(info: SymbolInfo): Quote {
  const price = num(info.price);
  const change = num(info.change_24h_pct);
  const open = num(info.open_24h) ?? (price !== null && change !== null ? price / (1 + change / 100) : null);
  return { ...info, sparkline: info.sparkline ?? [], open_24h: open, updatedAt: 0, tick: 0 };
}

/**
 * Applies a live quote row (the `quotes` rollup's `price`, or a candle's `close`) to a
 * quote: price, bid/ask, spread and the change against the 24 h open. `volumeAdded` is the
 * volume traded since the previous row.
 */
export function applyQuoteRow(quote: Quote, row: Row, volumeAdded: number, now: number): Quote {
  const price = num(row.price) ?? num(row.close) ?? quote.price;
  const bid = num(row.bid) ?? quote.bid;
  const ask = num(row.ask) ?? quote.ask;
  const spread = bid !== null && ask !== null ? ask - bid : quote.spread;
  const mid = bid !== null && ask !== null ? (bid + ask) / 2 : null;
  const open = quote.open_24h;
  return {
    ...quote,
    price,
    bid,
    ask,
    spread,
    spread_bps: spread !== null && mid ? (spread / mid) * 10_000 : quote.spread_bps,
    change_24h_pct: open && price !== null ? (price / open - 1) * 100 : quote.change_24h_pct,
    volume_24h: quote.volume_24h !== null ? quote.volume_24h + volumeAdded : volumeAdded || null,
    high_24h: price !== null && typeof quote.high_24h === "number" ? Math.max(quote.high_24h, price) : quote.high_24h,
    low_24h: price !== null && typeof quote.low_24h === "number" ? Math.min(quote.low_24h, price) : quote.low_24h,
    ts: typeof row.window_end === "string" ? row.window_end : quote.ts,
    updatedAt: now,
    tick: price !== null && quote.price !== null && price !== quote.price ? Math.sign(price - quote.price) : quote.tick,
  };
}

/**
 * A quote after a REST refresh: the 24 h figures from the server, but a live price that is
 * newer than the server's record is kept (with the change recomputed against it).
 */
export function refreshQuote(current: Quote, info: SymbolInfo): Quote {
  const fresh = quoteFromInfo(info);
  const liveIsNewer = current.updatedAt > 0 && current.price !== null && timeOf(info.ts) <= current.updatedAt;
  if (!liveIsNewer) return fresh;
  const price = current.price!;
  return {
    ...fresh,
    price,
    bid: current.bid,
    ask: current.ask,
    spread: current.spread,
    spread_bps: current.spread_bps,
    change_24h_pct: fresh.open_24h ? (price / fresh.open_24h - 1) * 100 : fresh.change_24h_pct,
    updatedAt: current.updatedAt,
    tick: current.tick,
  };
}

function placeholderInfo(symbol: string): SymbolInfo {
  return {
    symbol,
    name: symbol,
    venue: "",
    asset_class: "",
    price: null,
    change_24h_pct: null,
    bid: null,
    ask: null,
    spread: null,
    spread_bps: null,
    volume_24h: null,
    ts: null,
    sparkline: [],
  };
}

/** Live market state shared by the Overview and Market pages while either is shown. */
class MarketLive {
  /** Symbol order as the server lists it. */
  readonly symbols: Signal<string[]> = signal([]);
  /** "ok" once the symbols endpoint answered; "unavailable" when it does not exist (yet). */
  readonly status: Signal<"loading" | "ok" | "unavailable"> = signal("loading");
  readonly feed = new RollupFeed(["symbol"], 2);
  private quotes = new Map<string, Signal<Quote>>();
  private users = 0;
  private stopTimer: ReturnType<typeof setTimeout> | null = null;
  private cleanups: (() => void)[] = [];
  /** Per symbol: the window start and volume of the last applied row, to add only new volume. */
  private lastRow = new Map<string, { start: number; volume: number }>();

  quote(symbol: string): Signal<Quote> {
    let quote = this.quotes.get(symbol);
    if (!quote) {
      quote = signal(quoteFromInfo(placeholderInfo(symbol)));
      this.quotes.set(symbol, quote);
    }
    return quote;
  }

  /** Holds the live subscriptions open until the returned function is called. */
  use(): () => void {
    this.users++;
    if (this.stopTimer) {
      clearTimeout(this.stopTimer);
      this.stopTimer = null;
    } else if (this.users === 1 && this.cleanups.length === 0) {
      this.start();
    }
    return () => {
      this.users--;
      if (this.users === 0) this.stopTimer = setTimeout(() => this.stop(), 5000);
    };
  }

  private start(): void {
    const live = connection();
    let unsubscribe = live.subscribe(`rollup.${TICKS}.quotes.1s`, {}, this.feed);
    // Servers without the quotes rollup: 1m candles, close as the price.
    let fellBack = false;
    const fallback = this.feed.error.subscribe((error) => {
      if (error && !fellBack) {
        fellBack = true;
        unsubscribe();
        unsubscribe = live.subscribe(`rollup.${TICKS}.ohlc.1m`, {}, this.feed);
      }
    });
    const flush = this.feed.onFlush((feed) => this.applyRows(feed));
    // Refetch the 24 h figures at every (re)connect and every 30 s.
    const epoch = live.epoch.subscribe(() => void this.refresh());
    const timer = setInterval(() => void this.refresh(), 30_000);
    this.cleanups = [() => unsubscribe(), fallback, flush, epoch, () => clearInterval(timer)];
  }

  private stop(): void {
    this.stopTimer = null;
    for (const cleanup of this.cleanups) cleanup();
    this.cleanups = [];
  }

  async refresh(): Promise<void> {
    const result = await getJson<{ symbols: SymbolInfo[] }>("/api/v1/market/symbols");
    if (!result.ok) {
      if (result.status !== 0) this.status.value = "unavailable";
      return;
    }
    batch(() => {
      for (const info of result.data.symbols) {
        const quote = this.quote(info.symbol);
        quote.value = refreshQuote(quote.peek(), info);
      }
      this.symbols.value = result.data.symbols.map((info) => info.symbol);
      this.status.value = "ok";
    });
  }

  private applyRows(feed: RollupFeed): void {
    const now = Date.now();
    const latest = feed.latest();
    batch(() => {
      for (const key of feed.changedGroups) {
        const row = latest.get(key);
        if (!row) continue;
        const start = timeOf(row.window_start);
        const volume = num(row.volume) ?? 0;
        const previous = this.lastRow.get(key);
        const added = previous === undefined ? 0 : previous.start === start ? Math.max(0, volume - previous.volume) : volume;
        this.lastRow.set(key, { start, volume });
        const quote = this.quote(key);
        quote.value = applyQuoteRow(quote.peek(), row, added, now);
      }
      // Before the symbols endpoint answers (or without it), list what the feed shows.
      if (this.status.peek() !== "ok") {
        const known = new Set(this.symbols.peek());
        const missing = feed.groupKeys().filter((key) => key && !known.has(key));
        if (missing.length) this.symbols.value = [...this.symbols.peek(), ...missing].sort();
      }
    });
  }
}

export const market = new MarketLive();

/** Converts a candle record (market endpoint or raw rollup row) to a Candle. */
export function candleFromRow(row: Row): Candle | null {
  const time = timeOf(row.window_start);
  // Raw quote rows (the 1s `quotes` rollup) carry a last `price` instead of a close.
  const close = num(row.close) ?? num(row.price);
  if (!Number.isFinite(time) || close === null) return null;
  return {
    time,
    open: num(row.open) ?? close,
    high: num(row.high) ?? close,
    low: num(row.low) ?? close,
    close,
    volume: num(row.volume) ?? 0,
    ema20: num(row.ema20),
    ema50: num(row.ema50),
    closed: row.closed === true,
  };
}

/** Fills in the EMAs that the server did not send (all of them for raw rollup rows). */
export function fillEmas(candles: Candle[]): void {
  const closes = candles.map((c) => c.close);
  const ema20 = emaSeries(closes, 20, candles.map((c) => c.ema20));
  const ema50 = emaSeries(closes, 50, candles.map((c) => c.ema50));
  candles.forEach((candle, i) => {
    candle.ema20 = ema20[i]!;
    candle.ema50 = ema50[i]!;
  });
}

/**
 * Inserts or replaces `candle` (by window start) in `candles`, oldest first; recomputes
 * the EMAs of the replaced or appended candle from its predecessor. Returns false when
 * the candle is older than the loaded range.
 */
export function upsertCandle(candles: Candle[], candle: Candle): boolean {
  const last = candles[candles.length - 1];
  let index: number;
  if (!last || candle.time > last.time) {
    candles.push(candle);
    index = candles.length - 1;
  } else {
    index = candles.findIndex((c) => c.time === candle.time);
    if (index < 0) return false;
    candles[index] = candle;
  }
  const previous = candles[index - 1];
  if (previous && previous.ema20 !== null && previous.ema50 !== null) {
    candle.ema20 = (2 / 21) * candle.close + (1 - 2 / 21) * previous.ema20;
    candle.ema50 = (2 / 51) * candle.close + (1 - 2 / 51) * previous.ema50;
  } else {
    candle.ema20 ??= candle.close;
    candle.ema50 ??= candle.close;
  }
  return true;
}

/** Candles of one symbol from the market endpoint, falling back to the raw rollup. */
export async function fetchCandles(symbol: string, window: RollupWindow, from: number, to: number | null, signal?: AbortSignal): Promise<{ candles: Candle[]; source: "market" | "rollup" | "none" }> {
  const params = { symbol, window, from: Math.floor(from), to: to === null ? null : Math.ceil(to), limit: 1440 };
  const market = await getJson<{ candles: Row[] }>(withQuery("/api/v1/market/candles", params), signal);
  let rows: Row[] | null = null;
  let source: "market" | "rollup" | "none" = "none";
  if (market.ok) {
    rows = market.data.candles;
    source = "market";
  } else if (market.status === 404) {
    const rollup = await getJson<{ rows: Row[] }>(
      withQuery(`/api/v1/streams/${TICKS}/rollups/ohlc`, { window, symbol, from: params.from, to: params.to }),
      signal,
    );
    if (rollup.ok) {
      rows = rollup.data.rows;
      source = "rollup";
    }
  }
  const candles = (rows ?? []).map(candleFromRow).filter((c): c is Candle => c !== null);
  candles.sort((a, b) => a.time - b.time);
  fillEmas(candles);
  return { candles, source };
}

/**
 * Closes of every symbol (the Overview's index) from the raw rollup: `ohlc` candles, or
 * for "1s" the `quotes` rollup (a fresh server has too few minutes for a line).
 */
export async function fetchAllCandles(window: RollupWindow | "1s", from: number, to: number | null, signal?: AbortSignal): Promise<Map<string, Candle[]>> {
  const rollup = window === "1s" ? "quotes" : "ohlc";
  const result = await getJson<{ rows: Row[] }>(
    withQuery(`/api/v1/streams/${TICKS}/rollups/${rollup}`, { window, from: Math.floor(from), to: to === null ? null : Math.ceil(to) }),
    signal,
  );
  const bySymbol = new Map<string, Candle[]>();
  if (!result.ok) return bySymbol;
  for (const row of result.data.rows) {
    const candle = candleFromRow(row);
    const symbol = typeof row.symbol === "string" ? row.symbol : null;
    if (!candle || !symbol) continue;
    let list = bySymbol.get(symbol);
    if (!list) bySymbol.set(symbol, (list = []));
    list.push(candle);
  }
  for (const list of bySymbol.values()) list.sort((a, b) => a.time - b.time);
  return bySymbol;
}

export function fetchSentiment(symbol: string, signal?: AbortSignal) {
  return getJson<Sentiment>(withQuery("/api/v1/market/sentiment", { symbol }), signal);
}

/** An alert event of the `stream.alerts` topic, as a market alert. */
export function alertFromEvent(row: Row): MarketAlert | null {
  if (typeof row.id !== "string") return null;
  const evidence = typeof row.evidence === "string" ? safeParse(row.evidence) : (row.evidence as Record<string, unknown> | undefined);
  return {
    id: row.id,
    ts: typeof row.ts === "string" ? row.ts : new Date(timeOf(row.ts)).toISOString(),
    symbol: String(row.symbol ?? row.subject ?? ""),
    kind: String(row.kind ?? "alert"),
    severity: String(row.severity ?? "warning"),
    message: String(row.message ?? ""),
    evidence,
  };
}

function safeParse(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === "object" ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Merges alerts by id, newest first, at most `limit`. */
export function mergeAlerts(current: readonly MarketAlert[], incoming: readonly MarketAlert[], limit = 200): MarketAlert[] {
  const byId = new Map<string, MarketAlert>();
  for (const alert of [...incoming, ...current]) if (!byId.has(alert.id)) byId.set(alert.id, alert);
  return [...byId.values()].sort((a, b) => timeOf(b.ts) - timeOf(a.ts)).slice(0, limit);
}

/** Market alerts: REST history plus live ones from `stream.alerts`. */
class AlertsLive {
  readonly alerts: Signal<MarketAlert[]> = signal([]);
  readonly status: Signal<"loading" | "ok" | "unavailable"> = signal("loading");
  readonly feed = new EventFeed(100);
  private users = 0;
  private cleanups: (() => void)[] = [];

  use(): () => void {
    if (++this.users === 1) this.start();
    return () => {
      if (--this.users === 0) {
        for (const cleanup of this.cleanups) cleanup();
        this.cleanups = [];
      }
    };
  }

  private start(): void {
    const live = connection();
    const unsubscribe = live.subscribe("stream.alerts", { domain: "market" }, this.feed);
    const flush = this.feed.onFlush((feed, reset) => {
      const rows = reset ? feed.events() : feed.arrived;
      const incoming = rows.map(alertFromEvent).filter((a): a is MarketAlert => a !== null);
      if (incoming.length) this.alerts.value = mergeAlerts(this.alerts.peek(), incoming);
    });
    const epoch = live.epoch.subscribe(() => void this.refresh());
    const timer = setInterval(() => void this.refresh(), 30_000);
    this.cleanups = [unsubscribe, flush, epoch, () => clearInterval(timer)];
  }

  async refresh(): Promise<void> {
    const result = await getJson<{ alerts: MarketAlert[] }>(withQuery("/api/v1/market/alerts", { limit: 200 }));
    if (!result.ok) {
      if (result.status !== 0 && this.alerts.peek().length === 0) this.status.value = "unavailable";
      return;
    }
    this.alerts.value = mergeAlerts(this.alerts.peek(), result.data.alerts);
    this.status.value = "ok";
  }
}

export const alerts = new AlertsLive();
