import { describe, expect, it } from "vitest";
import { EventFeed, flushFeeds, RollupFeed, setFlushScheduler } from "./store";

setFlushScheduler(() => {}); // tests flush by hand

const bar = (symbol: string, minute: number, close: number) => ({
  window_start: new Date(Date.UTC(2026, 10, 23, 10, minute)).toISOString(),
  window_end: new Date(Date.UTC(2026, 10, 23, 10, minute + 1)).toISOString(),
  closed: false,
  symbol,
  close,
});

describe("RollupFeed", () => {
  it("applies a snapshot, then deltas in sequence, replacing a window's row", () => {
    const feed = new RollupFeed(["symbol"]);
    feed.applySnapshot(5, [bar("AAPL", 0, 1), bar("AAPL", 1, 2), bar("BTC", 1, 9)]);
    expect(feed.stale.value).toBe(false);
    expect(feed.applyDelta(6, bar("AAPL", 1, 3))).toBe("applied");
    expect(feed.applyDelta(7, bar("AAPL", 2, 4))).toBe("applied");
    expect(feed.rowsOf("AAPL").map((r) => r.close)).toEqual([1, 3, 4]);
    expect(feed.rowsOf("BTC").map((r) => r.close)).toEqual([9]);
    expect(feed.seq).toBe(7);
  });

  it("ignores a repeated or older sequence number", () => {
    const feed = new RollupFeed(["symbol"]);
    feed.applySnapshot(10, [bar("AAPL", 0, 1)]);
    expect(feed.applyDelta(10, bar("AAPL", 0, 99))).toBe("duplicate");
    expect(feed.applyDelta(3, bar("AAPL", 0, 99))).toBe("duplicate");
    expect(feed.rowsOf("AAPL")[0]!.close).toBe(1);
  });

  it("reports a gap, turns stale and refuses deltas until the next snapshot", () => {
    const feed = new RollupFeed(["symbol"]);
    feed.applySnapshot(1, [bar("AAPL", 0, 1)]);
    expect(feed.applyDelta(3, bar("AAPL", 0, 2))).toBe("gap");
    expect(feed.stale.value).toBe(true);
    expect(feed.applyDelta(4, bar("AAPL", 0, 2))).toBe("unsynced");
    expect(feed.rowsOf("AAPL")[0]!.close).toBe(1);
    feed.applySnapshot(20, [bar("AAPL", 0, 5)]);
    expect(feed.stale.value).toBe(false);
    expect(feed.applyDelta(21, bar("AAPL", 0, 6))).toBe("applied");
    expect(feed.rowsOf("AAPL")[0]!.close).toBe(6);
  });

  it("refuses deltas before the first snapshot", () => {
    const feed = new RollupFeed(["symbol"]);
    expect(feed.applyDelta(1, bar("AAPL", 0, 1))).toBe("unsynced");
    expect(feed.rowsOf("AAPL")).toEqual([]);
  });

  it("keeps windows in order when a late window arrives, and only the newest maxWindows", () => {
    const feed = new RollupFeed(["symbol"], 3);
    feed.applySnapshot(0, [bar("AAPL", 0, 0), bar("AAPL", 2, 2)]);
    feed.applyDelta(1, bar("AAPL", 1, 1));
    feed.applyDelta(2, bar("AAPL", 3, 3));
    expect(feed.rowsOf("AAPL").map((r) => r.close)).toEqual([1, 2, 3]);
    expect(feed.latest().get("AAPL")!.close).toBe(3);
  });

  it("coalesces many deltas into one version bump and one listener call per flush", () => {
    const feed = new RollupFeed(["symbol"]);
    const calls: [boolean, string[]][] = [];
    feed.onFlush((f, reset) => calls.push([reset, [...f.changedGroups].sort()]));
    feed.applySnapshot(0, [bar("AAPL", 0, 1)]);
    for (let seq = 1; seq <= 100; seq++) feed.applyDelta(seq, bar(seq % 2 ? "AAPL" : "BTC", 0, seq));
    const before = feed.version.value;
    flushFeeds();
    expect(feed.version.value).toBe(before + 1);
    expect(calls).toEqual([[true, ["AAPL", "BTC"]]]);
    flushFeeds();
    expect(calls.length).toBe(1);
    feed.applyDelta(101, bar("BTC", 0, 7));
    flushFeeds();
    expect(calls[1]).toEqual([false, ["BTC"]]);
  });

  it("keeps its data but turns stale when the connection drops", () => {
    const feed = new RollupFeed(["symbol"]);
    feed.applySnapshot(0, [bar("AAPL", 0, 1)]);
    feed.markStale();
    expect(feed.stale.value).toBe(true);
    expect(feed.rowsOf("AAPL").length).toBe(1);
    expect(feed.applyDelta(1, bar("AAPL", 0, 2))).toBe("unsynced");
  });
});

describe("EventFeed", () => {
  it("keeps the newest events first, bounded by its capacity", () => {
    const feed = new EventFeed(3);
    feed.applySnapshot(0, [
      { ts: "2026-11-23T10:00:01Z", n: 1 },
      { ts: "2026-11-23T10:00:03Z", n: 3 },
      { ts: "2026-11-23T10:00:02Z", n: 2 },
    ]);
    flushFeeds();
    expect(feed.events().map((e) => e.n)).toEqual([3, 2, 1]);
    feed.applyDelta(1, { ts: "2026-11-23T10:00:04Z", n: 4 });
    feed.applyDelta(2, { ts: "2026-11-23T10:00:05Z", n: 5 });
    flushFeeds();
    expect(feed.events().map((e) => e.n)).toEqual([5, 4, 3]);
    expect(feed.arrived.map((e) => e.n)).toEqual([5, 4]);
  });
});
