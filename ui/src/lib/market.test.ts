import { describe, expect, it } from "vitest";
import { parsePrometheus, sumMetric, withQuery } from "./api";
import { emaSeries, equalWeightedIndex } from "./indicators";
import { alertFromEvent, applyQuoteRow, candleFromRow, fillEmas, mergeAlerts, quoteFromInfo, refreshQuote, upsertCandle, type Candle, type SymbolInfo } from "./market";
import { ratePerSecond } from "./streams";
import { DAY, effectiveSpan, HOUR, MINUTE, resolveRange, windowForSpan } from "./time-range";

const info: SymbolInfo = {
  symbol: "AAPL",
  name: "Apple Inc.",
  venue: "NASDAQ",
  asset_class: "equity",
  price: 110,
  change_24h_pct: 10,
  bid: 109.9,
  ask: 110.1,
  spread: 0.2,
  spread_bps: 18.18,
  volume_24h: 1000,
  ts: "2026-11-23T10:00:00.000Z",
  sparkline: [100, 105, 110],
};

describe("quotes", () => {
  it("derive the 24 h open from the REST change and follow live prices", () => {
    const quote = quoteFromInfo(info);
    expect(quote.open_24h).toBeCloseTo(100);
    const live = applyQuoteRow(quote, { symbol: "AAPL", price: 120, bid: 119.9, ask: 120.1, window_end: "2026-11-23T10:00:01.000Z" }, 5, 1);
    expect(live.price).toBe(120);
    expect(live.change_24h_pct).toBeCloseTo(20);
    expect(live.spread).toBeCloseTo(0.2);
    expect(live.spread_bps).toBeCloseTo((0.2 / 120) * 10_000);
    expect(live.volume_24h).toBe(1005);
    expect(live.tick).toBe(1);
    expect(applyQuoteRow(live, { price: 119 }, 0, 2).tick).toBe(-1);
  });

  it("prefer the server's 24 h open and widen the 24 h range with live prices", () => {
    const quote = quoteFromInfo({ ...info, open_24h: 104, high_24h: 111, low_24h: 99 });
    expect(quote.open_24h).toBe(104);
    const live = applyQuoteRow(quote, { price: 112 }, 0, 1);
    expect(live.high_24h).toBe(112);
    expect(live.low_24h).toBe(99);
    expect(live.change_24h_pct).toBeCloseTo((112 / 104 - 1) * 100);
  });

  it("take a candle's close as the price when the quotes rollup is missing", () => {
    const quote = applyQuoteRow(quoteFromInfo(info), { close: 111 }, 0, 1);
    expect(quote.price).toBe(111);
    expect(quote.bid).toBe(109.9);
  });

  it("keep a live price newer than a REST refresh", () => {
    const live = applyQuoteRow(quoteFromInfo(info), { price: 130 }, 0, Date.parse("2026-11-23T10:00:05Z"));
    const refreshed = refreshQuote(live, { ...info, volume_24h: 2000 });
    expect(refreshed.price).toBe(130);
    expect(refreshed.volume_24h).toBe(2000);
    expect(refreshed.change_24h_pct).toBeCloseTo(30);
    const newer = refreshQuote(live, { ...info, price: 111, ts: "2026-11-23T10:00:09Z" });
    expect(newer.price).toBe(111);
  });
});

const candle = (minute: number, close: number): Candle => ({ time: minute * MINUTE, open: close, high: close, low: close, close, volume: 1, ema20: null, ema50: null, closed: true });

describe("candles", () => {
  it("convert market and raw rollup rows alike", () => {
    const row = { window_start: "2026-11-23T10:00:00Z", open: 1, high: 3, low: 0.5, close: 2, volume: 7, closed: true, ema20: 1.5 };
    expect(candleFromRow(row)).toMatchObject({ time: Date.UTC(2026, 10, 23, 10), open: 1, high: 3, low: 0.5, close: 2, volume: 7, ema20: 1.5, ema50: null, closed: true });
    expect(candleFromRow({ window_start: "2026-11-23T10:00:00Z", close: null })).toBeNull();
  });

  it("fill missing EMAs and update the open candle's EMA from its predecessor", () => {
    const candles = [candle(0, 10), candle(1, 20)];
    fillEmas(candles);
    expect(candles[0]!.ema20).toBe(10);
    expect(candles[1]!.ema20).toBeCloseTo(10 + (2 / 21) * 10);
    expect(upsertCandle(candles, candle(2, 30))).toBe(true);
    const expected = (2 / 21) * 30 + (1 - 2 / 21) * candles[1]!.ema20!;
    expect(candles[2]!.ema20).toBeCloseTo(expected);
    // The open candle changes: replaced in place, EMA recomputed from the same predecessor.
    expect(upsertCandle(candles, candle(2, 40))).toBe(true);
    expect(candles.length).toBe(3);
    expect(candles[2]!.ema20).toBeCloseTo((2 / 21) * 40 + (1 - 2 / 21) * candles[1]!.ema20!);
    // Older than the loaded range: ignored.
    expect(upsertCandle(candles, candle(-5, 1))).toBe(false);
  });

  it("EMA keeps server values and seeds with the first value", () => {
    expect(emaSeries([1, 2, 3], 1)).toEqual([1, 2, 3]);
    expect(emaSeries([10, 10], 20, [5, null])).toEqual([5, 5 + (2 / 21) * 5]);
  });

  it("equal-weighted index averages each series' change since its first point", () => {
    const [times, values] = equalWeightedIndex([
      [[1, 2, 3], [100, 110, 120]],
      [[2, 3], [50, 45]],
    ]);
    expect(times).toEqual([1, 2, 3]);
    expect(values[0]).toBeCloseTo(0);
    expect(values[1]).toBeCloseTo((10 + 0) / 2);
    expect(values[2]).toBeCloseTo((20 - 10) / 2);
  });
});

describe("alerts", () => {
  it("read live alert events and merge them by id, newest first", () => {
    const live = alertFromEvent({ id: "b", ts: "2026-11-23T10:00:02Z", domain: "market", kind: "price_spike", subject: "AAPL", severity: "critical", message: "spike", evidence: '{"z": 9}' });
    expect(live).toMatchObject({ id: "b", symbol: "AAPL", severity: "critical", evidence: { z: 9 } });
    const merged = mergeAlerts([{ id: "a", ts: "2026-11-23T10:00:01Z", symbol: "MSFT", kind: "volume_surge", severity: "warning", message: "" }], [live!, { ...live!, message: "again" }]);
    expect(merged.map((a) => a.id)).toEqual(["b", "a"]);
    expect(alertFromEvent({ ts: 1 })).toBeNull();
  });
});

describe("time range", () => {
  it("maps spans to the finest window that retains them", () => {
    expect(windowForSpan(HOUR)).toBe("1m");
    expect(windowForSpan(DAY)).toBe("5m");
    expect(windowForSpan(7 * DAY)).toBe("15m");
    expect(windowForSpan(30 * DAY)).toBe("1h");
    expect(windowForSpan(91 * DAY)).toBe("1d");
    expect(windowForSpan(365 * DAY)).toBe("1d");
  });

  it("shortens a live span to the data that exists", () => {
    const now = 10 * DAY;
    expect(effectiveSpan({ mode: "live", spanMs: DAY }, now, now - 10 * MINUTE)).toBe(10 * MINUTE);
    expect(effectiveSpan({ mode: "live", spanMs: HOUR }, now, null)).toBe(HOUR);
    expect(resolveRange({ mode: "fixed", from: 1, to: 2 }, now)).toEqual({ from: 1, to: 2 });
    expect(resolveRange({ mode: "live", spanMs: 5 }, now)).toEqual({ from: now - 5, to: now });
  });
});

describe("api helpers", () => {
  it("parse Prometheus text and sum series by label", () => {
    const samples = parsePrometheus(`# HELP x
# TYPE tidewatch_ingest_rows_total counter
tidewatch_ingest_rows_total{stream="market.ticks"} 1200
tidewatch_ingest_rows_total{stream="other"} 30
tidewatch_ws_clients 2
tidewatch_wal_fsync_seconds_sum 0.5
`);
    expect(sumMetric(samples, "tidewatch_ingest_rows_total")).toBe(1230);
    expect(sumMetric(samples, "tidewatch_ingest_rows_total", { stream: "other" })).toBe(30);
    expect(sumMetric(samples, "nothing")).toBeNull();
    expect(sumMetric(samples, "tidewatch_ws_clients")).toBe(2);
  });

  it("build queries without empty parameters", () => {
    expect(withQuery("/x", { a: "1", b: null, c: undefined, d: "", e: 5 })).toBe("/x?a=1&e=5");
    expect(withQuery("/x", {})).toBe("/x");
  });

  it("tell an ingest rate from two row counts", () => {
    expect(ratePerSecond(null, { rows: 10, at: 1000 })).toBeNull();
    expect(ratePerSecond({ rows: 0, at: 0 }, { rows: 400, at: 2000 })).toBe(200);
    expect(ratePerSecond({ rows: 500, at: 0 }, { rows: 10, at: 2000 })).toBeNull(); // restarted
  });
});
