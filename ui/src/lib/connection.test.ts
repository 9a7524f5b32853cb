import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, LiveConnection, type SocketLike } from "./connection";
import { flushFeeds, RollupFeed, setFlushScheduler } from "./store";

setFlushScheduler(() => {});

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  closed = false;
  send(data: string) {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close() {
    this.closed = true;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(message: object) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({});
  }
  last() {
    return this.sent[this.sent.length - 1];
  }
}

const row = (symbol: string, close: number) => ({ window_start: "2026-11-23T10:00:00Z", symbol, close });

describe("LiveConnection", () => {
  let sockets: FakeSocket[];
  let live: LiveConnection;

  beforeEach(() => {
    vi.useFakeTimers();
    sockets = [];
    live = new LiveConnection({
      url: "ws://test/api/v1/ws",
      createSocket: () => {
        const socket = new FakeSocket();
        sockets.push(socket);
        return socket;
      },
      baseDelayMs: 100,
      maxDelayMs: 1000,
      random: () => 0.5,
    });
    live.start();
  });

  afterEach(() => {
    live.stop();
    vi.useRealTimers();
  });

  it("subscribes once open, one op at a time, and routes snapshots and deltas by subscription", () => {
    const quotes = new RollupFeed(["symbol"]);
    const candles = new RollupFeed(["symbol"]);
    live.subscribe("rollup.t.quotes.1s", {}, quotes);
    live.subscribe("rollup.t.ohlc.1m", { symbol: "AAPL" }, candles);
    expect(live.state.value).toBe("connecting");
    const socket = sockets[0]!;
    socket.open();
    expect(live.state.value).toBe("open");
    expect(socket.sent).toEqual([{ op: "subscribe", topic: "rollup.t.quotes.1s", filter: {} }]);
    socket.receive({ type: "snapshot", topic: "rollup.t.quotes.1s", subscription: 7, seq: 1, data: [row("AAPL", 1)] });
    expect(socket.sent.length).toBe(2);
    expect(socket.last()).toEqual({ op: "subscribe", topic: "rollup.t.ohlc.1m", filter: { symbol: "AAPL" } });
    socket.receive({ type: "snapshot", topic: "rollup.t.ohlc.1m", subscription: 8, seq: 1, data: [] });
    socket.receive({ type: "delta", topic: "rollup.t.ohlc.1m", subscription: 8, seq: 2, data: row("AAPL", 5) });
    socket.receive({ type: "delta", topic: "rollup.t.quotes.1s", subscription: 7, seq: 2, data: row("AAPL", 2) });
    expect(quotes.rowsOf("AAPL")[0]!.close).toBe(2);
    expect(candles.rowsOf("AAPL")[0]!.close).toBe(5);
  });

  it("marks feeds stale when the socket drops, reconnects with backoff and resubscribes", () => {
    const feed = new RollupFeed(["symbol"]);
    live.subscribe("rollup.t.quotes.1s", {}, feed);
    sockets[0]!.open();
    sockets[0]!.receive({ type: "snapshot", topic: "rollup.t.quotes.1s", subscription: 1, seq: 1, data: [row("AAPL", 1)] });
    expect(feed.stale.value).toBe(false);

    sockets[0]!.drop();
    expect(live.state.value).toBe("offline");
    expect(feed.stale.value).toBe(true);
    expect(feed.rowsOf("AAPL").length).toBe(1); // the data stays, marked stale
    vi.advanceTimersByTime(99);
    expect(sockets.length).toBe(1);
    vi.advanceTimersByTime(1);
    expect(sockets.length).toBe(2);
    // The second attempt fails too: the delay doubles.
    sockets[1]!.drop();
    vi.advanceTimersByTime(199);
    expect(sockets.length).toBe(2);
    vi.advanceTimersByTime(1);
    expect(sockets.length).toBe(3);

    const epoch = live.epoch.value;
    sockets[2]!.open();
    expect(live.epoch.value).toBe(epoch + 1);
    expect(sockets[2]!.sent).toEqual([{ op: "subscribe", topic: "rollup.t.quotes.1s", filter: {} }]);
    sockets[2]!.receive({ type: "snapshot", topic: "rollup.t.quotes.1s", subscription: 1, seq: 1, data: [row("AAPL", 3)] });
    expect(feed.stale.value).toBe(false);
    expect(feed.rowsOf("AAPL")[0]!.close).toBe(3);
  });

  it("resubscribes a feed whose deltas skip a sequence number", () => {
    const feed = new RollupFeed(["symbol"]);
    live.subscribe("rollup.t.quotes.1s", {}, feed);
    const socket = sockets[0]!;
    socket.open();
    socket.receive({ type: "snapshot", topic: "rollup.t.quotes.1s", subscription: 4, seq: 10, data: [] });
    socket.receive({ type: "delta", topic: "rollup.t.quotes.1s", subscription: 4, seq: 12, data: row("AAPL", 1) });
    expect(feed.stale.value).toBe(true);
    expect(live.stats.gaps).toBe(1);
    expect(socket.last()).toEqual({ op: "unsubscribe", subscription: 4 });
    socket.receive({ type: "unsubscribed", subscription: 4 });
    expect(socket.last()).toEqual({ op: "subscribe", topic: "rollup.t.quotes.1s", filter: {} });
    socket.receive({ type: "snapshot", topic: "rollup.t.quotes.1s", subscription: 5, seq: 1, data: [row("AAPL", 2)] });
    socket.receive({ type: "delta", topic: "rollup.t.quotes.1s", subscription: 5, seq: 2, data: row("AAPL", 3) });
    expect(feed.stale.value).toBe(false);
    expect(feed.rowsOf("AAPL")[0]!.close).toBe(3);
  });

  it("applies the fresh snapshots that follow a server resync", () => {
    const feed = new RollupFeed(["symbol"]);
    live.subscribe("rollup.t.quotes.1s", {}, feed);
    const socket = sockets[0]!;
    socket.open();
    socket.receive({ type: "snapshot", topic: "rollup.t.quotes.1s", subscription: 2, seq: 1, data: [] });
    socket.receive({ type: "resync", reason: "the client fell behind" });
    expect(feed.stale.value).toBe(true);
    socket.receive({ type: "delta", topic: "rollup.t.quotes.1s", subscription: 2, seq: 3, data: row("AAPL", 9) });
    expect(feed.rowsOf("AAPL")).toEqual([]); // dropped: it predates the snapshot
    socket.receive({ type: "snapshot", topic: "rollup.t.quotes.1s", subscription: 2, seq: 40, data: [row("AAPL", 4)] });
    socket.receive({ type: "delta", topic: "rollup.t.quotes.1s", subscription: 2, seq: 41, data: row("AAPL", 5) });
    expect(feed.stale.value).toBe(false);
    expect(feed.rowsOf("AAPL")[0]!.close).toBe(5);
    expect(socket.sent.length).toBe(1); // no resubscribe needed
  });

  it("records a refused topic on the feed and retries it later", () => {
    const feed = new RollupFeed(["symbol"]);
    live.subscribe("stream.alerts", { domain: "market" }, feed);
    const socket = sockets[0]!;
    socket.open();
    socket.receive({ type: "error", code: "not_found", message: "no stream alerts" });
    expect(feed.error.value).toContain("not_found");
    expect(socket.sent.length).toBe(1);
    vi.advanceTimersByTime(15_000);
    expect(socket.sent.length).toBe(2);
    expect(socket.last()).toEqual({ op: "subscribe", topic: "stream.alerts", filter: { domain: "market" } });
  });

  it("unsubscribes when a page drops its feed, even while the subscribe is in flight", () => {
    const a = new RollupFeed(["symbol"]);
    const b = new RollupFeed(["symbol"]);
    const dropA = live.subscribe("rollup.t.a.1m", {}, a);
    const dropB = live.subscribe("rollup.t.b.1m", {}, b);
    const socket = sockets[0]!;
    socket.open();
    dropA(); // in flight
    socket.receive({ type: "snapshot", topic: "rollup.t.a.1m", subscription: 1, seq: 1, data: [] });
    expect(socket.last()).toEqual({ op: "unsubscribe", subscription: 1 });
    socket.receive({ type: "unsubscribed", subscription: 1 });
    expect(socket.last()).toEqual({ op: "subscribe", topic: "rollup.t.b.1m", filter: {} });
    socket.receive({ type: "snapshot", topic: "rollup.t.b.1m", subscription: 2, seq: 1, data: [] });
    dropB();
    expect(socket.last()).toEqual({ op: "unsubscribe", subscription: 2 });
    // Deltas for a dropped subscription are ignored.
    socket.receive({ type: "delta", topic: "rollup.t.b.1m", subscription: 2, seq: 2, data: row("X", 1) });
    flushFeeds();
    expect(b.rowsOf("X")).toEqual([]);
  });

  it("reconnects when an op stays unanswered", () => {
    live.subscribe("rollup.t.a.1m", {}, new RollupFeed(["symbol"]));
    sockets[0]!.open();
    vi.advanceTimersByTime(10_000);
    expect(sockets[0]!.closed).toBe(true);
    expect(live.state.value).toBe("offline");
    vi.advanceTimersByTime(200);
    expect(sockets.length).toBe(2);
  });
});

describe("backoffDelay", () => {
  it("doubles from the base up to the cap, with ±20 % jitter", () => {
    const mid = () => 0.5;
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, 500, 5000, mid))).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
    expect(backoffDelay(0, 500, 5000, () => 0)).toBe(400);
    expect(backoffDelay(0, 500, 5000, () => 1)).toBe(600);
    expect(backoffDelay(100, 500, 5000, mid)).toBe(5000);
  });
});
