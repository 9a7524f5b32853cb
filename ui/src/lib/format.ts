// Number and time formatting through Intl, with formatters built once and reused: a live
// table formats hundreds of values per second.

const LOCALE = undefined; // the browser's locale

const cache = new Map<string, Intl.NumberFormat>();
function numberFormat(key: string, options: Intl.NumberFormatOptions): Intl.NumberFormat {
  let format = cache.get(key);
  if (!format) {
    format = new Intl.NumberFormat(LOCALE, options);
    cache.set(key, format);
  }
  return format;
}

const DASH = "—";

function isNumber(value: number | null | undefined): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** Significant decimals for a price: 2 above 1, more below (XRP at 1.1, a token at 0.0004). */
export function priceDecimals(price: number): number {
  const magnitude = Math.abs(price);
  if (magnitude >= 1 || magnitude === 0) return 2;
  if (magnitude >= 0.01) return 4;
  return 6;
}

export function formatPrice(price: number | null | undefined, currency?: string): string {
  if (!isNumber(price)) return DASH;
  const decimals = priceDecimals(price);
  const key = `p${decimals}${currency ?? ""}`;
  return numberFormat(key, {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
    ...(currency ? { style: "currency", currency } : {}),
  }).format(price);
}

/** `+1.23%` / `−0.50%`: the sign is always shown, for changes. */
export function formatPercent(value: number | null | undefined, decimals = 2): string {
  if (!isNumber(value)) return DASH;
  return numberFormat(`pct${decimals}`, {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
    signDisplay: "exceptZero",
  }).format(value) + "%";
}

/** Compact counts and volumes: 1.2K, 3.4M. */
export function formatCompact(value: number | null | undefined): string {
  if (!isNumber(value)) return DASH;
  return numberFormat("compact", { notation: "compact", maximumFractionDigits: 1 }).format(value);
}

/** A traded quantity: 0.042 BTC and 14.2K XRP alike, to three significant digits. */
export function formatQuantity(value: number | null | undefined): string {
  if (!isNumber(value)) return DASH;
  if (Math.abs(value) >= 1000) return formatCompact(value);
  return numberFormat("qty", { maximumSignificantDigits: 3 }).format(value);
}

export function formatInteger(value: number | null | undefined): string {
  if (!isNumber(value)) return DASH;
  return numberFormat("int", { maximumFractionDigits: 0 }).format(value);
}

export function formatNumber(value: number | null | undefined, decimals = 2): string {
  if (!isNumber(value)) return DASH;
  return numberFormat(`n${decimals}`, {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  }).format(value);
}

/** A rate per second: `1,234/s`, `12.5/s`. */
export function formatRate(perSecond: number | null | undefined): string {
  if (!isNumber(perSecond)) return DASH;
  const decimals = perSecond < 10 ? 1 : 0;
  return formatNumber(perSecond, decimals) + "/s";
}

/** A small absolute difference (a bid/ask spread) to three significant digits: 0.04, 9.7, 0.0002. */
export function formatSpread(value: number | null | undefined): string {
  if (!isNumber(value)) return DASH;
  return numberFormat("spread", { maximumSignificantDigits: 3 }).format(value);
}

/** Axis labels: as many decimals as the tick increment needs. */
export function formatTick(value: number, increment: number): string {
  const decimals = increment > 0 ? Math.min(8, Math.max(0, Math.ceil(-Math.log10(increment) - 1e-9))) : 2;
  return formatNumber(value, decimals);
}

/** A spread in basis points: `0.86 bp`. */
export function formatBps(bps: number | null | undefined): string {
  if (!isNumber(bps)) return DASH;
  return `${formatNumber(bps, bps < 10 ? 2 : 1)} bp`;
}

const timeFormat = new Intl.DateTimeFormat(LOCALE, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hour12: false,
});
const dateTimeFormat = new Intl.DateTimeFormat(LOCALE, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});

/** Parses an API time (RFC 3339 or epoch milliseconds) to epoch milliseconds. */
export function toMillis(time: string | number | null | undefined): number | null {
  if (time === null || time === undefined) return null;
  if (typeof time === "number") return Number.isFinite(time) ? time : null;
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? null : ms;
}

export function formatTime(time: string | number | null | undefined): string {
  const ms = toMillis(time);
  return ms === null ? DASH : timeFormat.format(ms);
}

export function formatDateTime(time: string | number | null | undefined): string {
  const ms = toMillis(time);
  return ms === null ? DASH : dateTimeFormat.format(ms);
}

/** "just now", "12 s ago", "3 min ago", "2 h ago", relative to `now`. */
export function formatAge(time: string | number | null | undefined, now = Date.now()): string {
  const ms = toMillis(time);
  if (ms === null) return DASH;
  const seconds = Math.max(0, Math.round((now - ms) / 1000));
  if (seconds < 2) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}

/** A direction class for coloured changes. */
export function changeClass(value: number | null | undefined): "up" | "down" | "flat" {
  if (!isNumber(value) || value === 0) return "flat";
  return value > 0 ? "up" : "down";
}
