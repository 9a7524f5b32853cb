import { describe, expect, it } from "vitest";
import { changeClass, formatAge, formatBps, formatCompact, formatPercent, formatPrice, formatQuantity, formatRate, formatSpread, formatTick, priceDecimals, toMillis } from "./format";

// Intl output depends on the locale: compare against Intl itself for the grouping, and
// check the parts that are ours (decimals, signs, units, placeholders).
const en = (value: number, options: Intl.NumberFormatOptions) => new Intl.NumberFormat(undefined, options).format(value);

describe("format", () => {
  it("shows a dash for missing or non-finite values", () => {
    for (const format of [formatPrice, formatPercent, formatCompact, formatRate, formatBps, formatSpread]) {
      expect(format(null)).toBe("—");
      expect(format(undefined)).toBe("—");
      expect(format(Number.NaN)).toBe("—");
      expect(format(Number.POSITIVE_INFINITY)).toBe("—");
    }
  });

  it("gives prices two decimals above 1 and more below", () => {
    expect(priceDecimals(97_000)).toBe(2);
    expect(priceDecimals(1.1)).toBe(2);
    expect(priceDecimals(0.5)).toBe(4);
    expect(priceDecimals(0.0004)).toBe(6);
    expect(formatPrice(97_123.456)).toBe(en(97_123.46, { minimumFractionDigits: 2 }));
    expect(formatPrice(0.123456)).toBe(en(0.1235, { minimumFractionDigits: 4 }));
  });

  it("signs percentages except zero", () => {
    expect(formatPercent(1.234)).toMatch(/^\+1.23%$/);
    expect(formatPercent(-0.5)).toMatch(/^-0.50%$/);
    expect(formatPercent(0)).toBe("0.00%");
  });

  it("formats rates, compact counts, spreads and axis ticks", () => {
    expect(formatRate(208.4)).toBe("208/s");
    expect(formatRate(2.25)).toMatch(/^2.3\/s$/);
    expect(formatCompact(1234)).toBe(en(1234, { notation: "compact", maximumFractionDigits: 1 }));
    expect(formatBps(0.864)).toMatch(/^0.86 bp$/);
    expect(formatSpread(0.0002)).toBe("0.0002");
    expect(formatSpread(9.7)).toBe("9.7");
    expect(formatQuantity(0.0421)).toBe("0.0421");
    expect(formatQuantity(12.345)).toBe("12.3");
    expect(formatQuantity(14_200)).toBe(en(14_200, { notation: "compact", maximumFractionDigits: 1 }));
    expect(formatTick(230.5, 0.5)).toMatch(/^230.5$/);
    expect(formatTick(97_000, 1000)).toBe(en(97_000, { maximumFractionDigits: 0 }));
    expect(formatTick(1.1, 0.01)).toMatch(/^1.10$/);
  });

  it("parses API times and tells ages", () => {
    expect(toMillis("2026-11-23T10:00:00.123Z")).toBe(Date.UTC(2026, 10, 23, 10, 0, 0, 123));
    expect(toMillis(17)).toBe(17);
    expect(toMillis("not a time")).toBeNull();
    const now = Date.UTC(2026, 10, 23, 12);
    expect(formatAge(now - 500, now)).toBe("just now");
    expect(formatAge(now - 12_000, now)).toBe("12 s ago");
    expect(formatAge(now - 3 * 60_000, now)).toBe("3 min ago");
    expect(formatAge(now - 2 * 3_600_000, now)).toBe("2 h ago");
    expect(formatAge(now - 3 * 86_400_000, now)).toBe("3 d ago");
  });

  it("classifies changes", () => {
    expect(changeClass(1)).toBe("up");
    expect(changeClass(-1)).toBe("down");
    expect(changeClass(0)).toBe("flat");
    expect(changeClass(null)).toBe("flat");
  });
});
