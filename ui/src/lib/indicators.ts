// Indicators computed client-side for the candles that arrive live (the server sends
// EMAs with historical candles; the open candle's EMA follows from the previous one).

/** The EMA smoothing factor for a period: 2 / (period + 1). */
export function emaAlpha(period: number): number {
  return 2 / (period + 1);
}

/**
 * EMA of `values`, keeping any value already known in `known` (from the server) and
 * computing the others from their predecessor; seeded with the first value.
 */
export function emaSeries(values: readonly number[], period: number, known?: readonly (number | null | undefined)[]): number[] {
  const alpha = emaAlpha(period);
  const result: number[] = new Array(values.length);
  let previous: number | null = null;
  for (let i = 0; i < values.length; i++) {
    const given = known?.[i];
    const value = values[i]!;
    const ema: number =
      typeof given === "number" && Number.isFinite(given)
        ? given
        : previous === null
          ? value
          : alpha * value + (1 - alpha) * previous;
    result[i] = ema;
    previous = ema;
  }
  return result;
}

/**
 * Equal-weighted index in percent: for each time, the mean over series of
 * (close / first close in range - 1) × 100, each series carried forward between its points.
 * `series` maps a name to [times ascending, closes].
 */
export function equalWeightedIndex(series: Iterable<[readonly number[], readonly number[]]>): [number[], number[]] {
  const all: { times: readonly number[]; closes: readonly number[]; base: number }[] = [];
  const timeSet = new Set<number>();
  for (const [times, closes] of series) {
    const base = closes.find((close) => Number.isFinite(close) && close !== 0);
    if (base === undefined || times.length === 0) continue;
    all.push({ times, closes, base });
    for (const time of times) timeSet.add(time);
  }
  const times = [...timeSet].sort((a, b) => a - b);
  const values: number[] = new Array(times.length).fill(0);
  const counts: number[] = new Array(times.length).fill(0);
  for (const { times: own, closes, base } of all) {
    let j = 0;
    let last: number | null = null;
    for (let i = 0; i < times.length; i++) {
      while (j < own.length && own[j]! <= times[i]!) {
        if (Number.isFinite(closes[j]!)) last = closes[j]!;
        j++;
      }
      if (last === null) continue;
      values[i]! += (last / base - 1) * 100;
      counts[i]!++;
    }
  }
  return [times, values.map((sum, i) => (counts[i] ? sum / counts[i]! : Number.NaN))];
}
