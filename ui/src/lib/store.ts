// The client side of the WebSocket protocol (docs/api.md): a feed per subscription holds
// what its snapshot and deltas say, applies deltas strictly in sequence order, and reports
// a gap so the connection can resubscribe. Feeds are plain objects with signals for the
// UI; they know nothing of sockets, so the protocol logic is unit-tested without one.
//
// Notifications are coalesced: applying a message only marks the feed dirty, and
// `flushFeeds()` (called once per animation frame by the connection) bumps each dirty
// feed's `version` and runs its flush listeners once. A chart fed at 200 deltas per second
// therefore redraws at most once per frame.

import { batch, signal, type Signal } from "@preact/signals";

export type Row = Record<string, unknown>;

/** What applying one delta did. */
export type DeltaOutcome =
  /** in sequence: applied */
  | "applied"
  /** an old or repeated sequence number (e.g. after a resync snapshot): ignored */
  | "duplicate"
  /** a sequence number was skipped: the feed is stale until a fresh snapshot */
  | "gap"
  /** no snapshot yet: the delta cannot be placed */
  | "unsynced";

const dirtyFeeds = new Set<Feed>();
let flushScheduled = false;
let scheduleFlush: (flush: () => void) => void = (flush) => queueMicrotask(flush);

/** Sets how flushes are scheduled: the browser uses requestAnimationFrame. */
export function setFlushScheduler(scheduler: (flush: () => void) => void): void {
  scheduleFlush = scheduler;
}

/** Publishes every pending change now: one `version` bump and one listener call per feed. */
export function flushFeeds(): void {
  flushScheduled = false;
  if (dirtyFeeds.size === 0) return;
  const feeds = [...dirtyFeeds];
  dirtyFeeds.clear();
  batch(() => {
    for (const feed of feeds) feed.publish();
  });
}

function markDirty(feed: Feed): void {
  dirtyFeeds.add(feed);
  if (!flushScheduled) {
    flushScheduled = true;
    scheduleFlush(flushFeeds);
  }
}

export abstract class Feed {
  /** Sequence number of the last applied message; null before the first snapshot. */
  seq: number | null = null;
  /** Bumped once per flush in which the data changed. */
  readonly version: Signal<number> = signal(0);
  /** True until a snapshot arrives, and again while disconnected or after a gap. */
  readonly stale: Signal<boolean> = signal(true);
  /** The server refused the subscription (e.g. unknown topic); null when fine. */
  readonly error: Signal<string | null> = signal(null);
  /** Local time of the last applied message, in epoch milliseconds. */
  lastMessageAt: number | null = null;
  private listeners = new Set<(feed: Feed, reset: boolean) => void>();
  private pendingReset = false;

  /** Replaces the contents; the sequence continues from `seq`. */
  applySnapshot(seq: number, rows: Row[]): void {
    this.reset(rows);
    this.seq = seq;
    this.lastMessageAt = Date.now();
    this.pendingReset = true;
    this.error.value = null;
    if (this.stale.peek()) this.stale.value = false;
    markDirty(this);
  }

  applyDelta(seq: number, row: Row): DeltaOutcome {
    if (this.seq === null) return "unsynced";
    if (seq <= this.seq) return "duplicate";
    if (seq !== this.seq + 1) {
      this.seq = null;
      this.stale.value = true;
      return "gap";
    }
    this.seq = seq;
    this.lastMessageAt = Date.now();
    this.upsert(row);
    markDirty(this);
    return "applied";
  }

  /** The connection dropped or a resync is under way: keep the data, mark it stale. */
  markStale(): void {
    this.seq = null;
    if (!this.stale.peek()) this.stale.value = true;
  }

  /** Calls `listener` after every flush that changed this feed; `reset` after a snapshot. */
  onFlush(listener: (feed: this, reset: boolean) => void): () => void {
    const untyped = listener as (feed: Feed, reset: boolean) => void;
    this.listeners.add(untyped);
    return () => {
      this.listeners.delete(untyped);
    };
  }

  /** @internal called by `flushFeeds` */
  publish(): void {
    const reset = this.pendingReset;
    this.pendingReset = false;
    this.version.value++;
    for (const listener of this.listeners) listener(this, reset);
  }

  protected abstract reset(rows: Row[]): void;
  protected abstract upsert(row: Row): void;
}

/** Parses an API time (RFC 3339 or epoch milliseconds) to epoch milliseconds. */
export function timeOf(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "string") return Date.parse(value);
  return Number.NaN;
}

/**
 * Rows of a rollup topic, one per (group, window). A delta carries a window's full state,
 * so applying it replaces the row; each group keeps its newest `maxWindows` windows, in
 * window order.
 */
export class RollupFeed extends Feed {
  private groups = new Map<string, Row[]>();
  /** Groups changed since the last flush. */
  private dirtyGroups = new Set<string>();
  /** Groups changed in the flush now being published. */
  changedGroups: ReadonlySet<string> = new Set();

  constructor(
    /** The rollup's group-by tags, e.g. ["symbol"]. */
    readonly groupBy: string[],
    readonly maxWindows = 1500,
  ) {
    super();
  }

  groupKey(row: Row): string {
    return this.groupBy.map((tag) => String(row[tag] ?? "")).join("\u0000");
  }

  /** Rows of one group (by its key, e.g. the symbol), oldest window first. Do not mutate. */
  rowsOf(key: string): readonly Row[] {
    return this.groups.get(key) ?? [];
  }

  /** The newest window of each group. */
  latest(): Map<string, Row> {
    const result = new Map<string, Row>();
    for (const [key, rows] of this.groups) {
      const last = rows[rows.length - 1];
      if (last) result.set(key, last);
    }
    return result;
  }

  groupKeys(): string[] {
    return [...this.groups.keys()];
  }

  protected reset(rows: Row[]): void {
    this.groups.clear();
    for (const row of rows) this.upsert(row);
  }

  protected upsert(row: Row): void {
    const key = this.groupKey(row);
    const start = timeOf(row.window_start);
    let rows = this.groups.get(key);
    if (!rows) {
      rows = [];
      this.groups.set(key, rows);
    }
    this.dirtyGroups.add(key);
    // Almost always the newest window or the one after it: check the end first.
    let index = rows.length;
    while (index > 0 && timeOf(rows[index - 1]!.window_start) > start) index--;
    if (index > 0 && timeOf(rows[index - 1]!.window_start) === start) {
      rows[index - 1] = row;
      return;
    }
    rows.splice(index, 0, row);
    if (rows.length > this.maxWindows) rows.splice(0, rows.length - this.maxWindows);
  }

  override publish(): void {
    this.changedGroups = this.dirtyGroups;
    this.dirtyGroups = new Set();
    super.publish();
  }
}

/** Raw events of a stream topic, newest first, at most `capacity` of them. */
export class EventFeed extends Feed {
  private items: Row[] = [];
  /** Events applied since the last flush, newest first. */
  private fresh: Row[] = [];
  /** The events that arrived in the flush now being published, newest first. */
  arrived: readonly Row[] = [];

  constructor(readonly capacity = 200) {
    super();
  }

  /** Newest first. Do not mutate. */
  events(): readonly Row[] {
    return this.items;
  }

  protected reset(rows: Row[]): void {
    this.items = [...rows].sort((a, b) => timeOf(b.ts) - timeOf(a.ts)).slice(0, this.capacity);
    this.fresh = [];
  }

  protected upsert(row: Row): void {
    this.fresh.unshift(row);
  }

  override publish(): void {
    this.arrived = this.fresh.slice(0, this.capacity);
    if (this.fresh.length > 0) {
      this.items = this.fresh.concat(this.items).slice(0, this.capacity);
      this.fresh = [];
    }
    super.publish();
  }
}
