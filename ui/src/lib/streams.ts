// The server's streams, polled while a page shows them: row counts, the ingest rate
// (rows per second between two polls) and when each stream's first event arrived.

import { signal, type Signal } from "@preact/signals";
import { listStreams, type StreamInfo } from "./api";
import { connection } from "./connection";
import { timeOf } from "./store";

const POLL_MS = 2000;
const MIN_RATE_INTERVAL_MS = 1000;

/** Rows per second from two samples of a row counter; null when it cannot be told. */
export function ratePerSecond(previous: { rows: number; at: number } | null, current: { rows: number; at: number }): number | null {
  if (!previous || current.at <= previous.at || current.rows < previous.rows) return null;
  return ((current.rows - previous.rows) * 1000) / (current.at - previous.at);
}

class StreamsPoll {
  readonly streams: Signal<StreamInfo[] | null> = signal(null);
  readonly rate: Signal<number | null> = signal(null);
  readonly totalRows: Signal<number | null> = signal(null);
  private previous: { rows: number; at: number } | null = null;
  private users = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private epochWatch: (() => void) | null = null;

  use(): () => void {
    if (++this.users === 1) {
      void this.poll();
      this.timer = setInterval(() => void this.poll(), POLL_MS);
      this.epochWatch = connection().epoch.subscribe(() => void this.poll());
    }
    return () => {
      if (--this.users === 0) {
        if (this.timer) clearInterval(this.timer);
        this.epochWatch?.();
        this.timer = null;
        this.epochWatch = null;
        this.previous = null;
      }
    };
  }

  /** When the first event of `name` was stored, or null if unknown. */
  firstEventAt(name: string): number | null {
    const stream = this.streams.value?.find((s) => s.name === name);
    const first = stream?.first_ts ? timeOf(stream.first_ts) : Number.NaN;
    return Number.isFinite(first) ? first : null;
  }

  private async poll(): Promise<void> {
    const result = await listStreams();
    if (!result.ok) {
      this.rate.value = null;
      this.previous = null;
      return;
    }
    const rows = result.data.streams.reduce((sum, stream) => sum + (stream.rows ?? 0), 0);
    const sample = { rows, at: Date.now() };
    // Two polls close together (a reconnect's and the timer's) would tell nothing.
    const tooClose = this.previous !== null && sample.at - this.previous.at < MIN_RATE_INTERVAL_MS;
    const rate = tooClose ? null : ratePerSecond(this.previous, sample);
    if (!tooClose) this.previous = sample;
    this.streams.value = result.data.streams;
    this.totalRows.value = rows;
    if (rate !== null) this.rate.value = rate;
  }
}

export const streams = new StreamsPoll();
