// One WebSocket per tab, shared by every page: it (re)connects with exponential backoff,
// (re)subscribes every wanted topic after each connect, routes snapshots and deltas to
// their feeds, and resubscribes a feed whose sequence numbers show a gap.
//
// Ops are sent one at a time: the server answers a subscribe with a snapshot (or an
// error that names no topic), so with one op in flight every answer is unambiguous.

import { signal, type Signal } from "@preact/signals";
import { setFlushScheduler, type Feed, type Row } from "./store";

export type LinkState = "connecting" | "open" | "offline";

/** What the connection needs of a socket: the browser's WebSocket, or a fake in tests. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface ConnectionOptions {
  url: string;
  createSocket?: (url: string) => SocketLike;
  /** First reconnect delay; doubles per failed attempt up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** An op unanswered this long means the link is dead: reconnect. */
  opTimeoutMs?: number;
  /** Silence after which the client pings, and twice that after which it reconnects. */
  idleMs?: number;
  /** Delay before retrying a topic the server refused (it may be declared later). */
  retryRefusedMs?: number;
  random?: () => number;
}

interface Subscription {
  readonly topic: string;
  readonly filter: Record<string, string>;
  readonly feed: Feed;
  /** The server's id while subscribed on the current socket. */
  serverId: number | null;
  /** False once the page dropped it; a late snapshot is then unsubscribed. */
  wanted: boolean;
  /** Queued or in flight: not to be queued twice. */
  pending: boolean;
  retryTimer: ReturnType<typeof setTimeout> | null;
}

type Op = { op: "subscribe"; sub: Subscription } | { op: "unsubscribe"; serverId: number };

type ServerMessage =
  | { type: "snapshot"; topic: string; subscription: number; seq: number; data: Row[] }
  | { type: "delta"; topic: string; subscription: number; seq: number; data: Row }
  | { type: "resync"; reason?: string }
  | { type: "unsubscribed"; subscription: number }
  | { type: "pong" }
  | { type: "error"; code: string; message: string };

const OPEN = 1;

/** Delay before reconnect attempt `attempt` (0-based): exponential with ±20 % jitter. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 16));
  return Math.round(exponential * (0.8 + 0.4 * random()));
}

export class LiveConnection {
  /** The link as the Live badge shows it. */
  readonly state: Signal<LinkState> = signal("connecting");
  /** Incremented at every successful connect: REST loaders refetch on a change. */
  readonly epoch: Signal<number> = signal(0);
  /** Counters for the System page. */
  readonly stats = { messages: 0, deltas: 0, snapshots: 0, resyncs: 0, gaps: 0, reconnects: 0 };

  private socket: SocketLike | null = null;
  private subs = new Set<Subscription>();
  private byServerId = new Map<number, Subscription>();
  private queue: Op[] = [];
  private inFlight: Op | null = null;
  private inFlightTimer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private idleTimer: ReturnType<typeof setInterval> | null = null;
  private lastHeard = 0;
  private stopped = false;
  private readonly options: Required<ConnectionOptions>;

  constructor(options: ConnectionOptions) {
    this.options = {
      createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
      baseDelayMs: 500,
      maxDelayMs: 5000,
      opTimeoutMs: 10_000,
      idleMs: 20_000,
      retryRefusedMs: 15_000,
      random: Math.random,
      ...options,
    };
  }

  /** Opens the socket; call once. */
  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Closes the socket for good (tests, page unload). */
  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.teardown();
    this.state.value = "offline";
  }

  /** Reconnects now instead of waiting for the backoff (the browser came back online). */
  reconnectNow(): void {
    if (this.stopped || this.state.peek() === "open" || !this.reconnectTimer) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.connect();
  }

  /**
   * Keeps `feed` subscribed to `topic` (with a tag `filter`) across reconnects until the
   * returned function is called.
   */
  subscribe(topic: string, filter: Record<string, string>, feed: Feed): () => void {
    const sub: Subscription = { topic, filter, feed, serverId: null, wanted: true, pending: false, retryTimer: null };
    this.subs.add(sub);
    if (this.state.peek() === "open") this.enqueueSubscribe(sub);
    return () => this.drop(sub);
  }

  private drop(sub: Subscription): void {
    sub.wanted = false;
    this.subs.delete(sub);
    if (sub.retryTimer) clearTimeout(sub.retryTimer);
    if (sub.serverId !== null) {
      this.byServerId.delete(sub.serverId);
      this.enqueue({ op: "unsubscribe", serverId: sub.serverId });
      sub.serverId = null;
    }
    // A queued subscribe that has not been sent yet is simply skipped by `pump`.
  }

  private connect(): void {
    this.reconnectTimer = null;
    this.state.value = "connecting";
    let socket: SocketLike;
    try {
      socket = this.options.createSocket(this.options.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.attempt = 0;
      this.lastHeard = Date.now();
      this.state.value = "open";
      this.epoch.value++;
      for (const sub of this.subs) this.enqueueSubscribe(sub);
      this.idleTimer = setInterval(() => this.checkIdle(), Math.max(1000, this.options.idleMs / 2));
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.lastHeard = Date.now();
      if (typeof event.data === "string") this.handle(event.data);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.teardown();
      this.scheduleReconnect();
    };
    socket.onerror = () => {
      // A close event follows; reconnecting is its job.
    };
  }

  /** Forgets everything tied to the current socket; feeds keep their data, marked stale. */
  private teardown(): void {
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try {
        socket.close(1000, "client closing");
      } catch {
        // already closed
      }
    }
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = null;
    if (this.inFlightTimer) clearTimeout(this.inFlightTimer);
    this.inFlightTimer = null;
    this.inFlight = null;
    this.queue = [];
    this.byServerId.clear();
    for (const sub of this.subs) {
      sub.serverId = null;
      sub.pending = false;
      if (sub.retryTimer) clearTimeout(sub.retryTimer);
      sub.retryTimer = null;
      sub.feed.markStale();
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.state.value = "offline";
    const delay = backoffDelay(this.attempt, this.options.baseDelayMs, this.options.maxDelayMs, this.options.random);
    this.attempt++;
    this.stats.reconnects++;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private checkIdle(): void {
    const silentFor = Date.now() - this.lastHeard;
    if (silentFor > 2 * this.options.idleMs) {
      // A half-open link: no close event will come by itself.
      this.teardown();
      this.scheduleReconnect();
    } else if (silentFor > this.options.idleMs) {
      this.sendRaw({ op: "ping" });
    }
  }

  private enqueueSubscribe(sub: Subscription): void {
    if (sub.pending || sub.serverId !== null || !sub.wanted) return;
    sub.pending = true;
    this.enqueue({ op: "subscribe", sub });
  }

  private enqueue(op: Op): void {
    this.queue.push(op);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight === null && this.queue.length > 0 && this.socket?.readyState === OPEN) {
      const op = this.queue.shift()!;
      if (op.op === "subscribe") {
        if (!op.sub.wanted) {
          op.sub.pending = false;
          continue;
        }
        this.sendRaw({ op: "subscribe", topic: op.sub.topic, filter: op.sub.filter });
      } else {
        this.sendRaw({ op: "unsubscribe", subscription: op.serverId });
      }
      this.inFlight = op;
      this.inFlightTimer = setTimeout(() => {
        this.teardown();
        this.scheduleReconnect();
      }, this.options.opTimeoutMs);
    }
  }

  private answered(): void {
    this.inFlight = null;
    if (this.inFlightTimer) clearTimeout(this.inFlightTimer);
    this.inFlightTimer = null;
    this.pump();
  }

  private sendRaw(message: object): void {
    try {
      this.socket?.send(JSON.stringify(message));
    } catch {
      // the close event handles it
    }
  }

  private handle(text: string): void {
    let message: ServerMessage;
    try {
      message = JSON.parse(text) as ServerMessage;
    } catch {
      return;
    }
    this.stats.messages++;
    switch (message.type) {
      case "delta": {
        this.stats.deltas++;
        const sub = this.byServerId.get(message.subscription);
        if (!sub) return;
        if (sub.feed.applyDelta(message.seq, message.data) === "gap") {
          this.stats.gaps++;
          this.resubscribe(sub);
        }
        return;
      }
      case "snapshot": {
        this.stats.snapshots++;
        const known = this.byServerId.get(message.subscription);
        if (known) {
          // A resync's fresh snapshot.
          known.feed.applySnapshot(message.seq, message.data);
          return;
        }
        const op = this.inFlight;
        if (op?.op !== "subscribe") return;
        const sub = op.sub;
        sub.pending = false;
        if (sub.wanted) {
          sub.serverId = message.subscription;
          this.byServerId.set(message.subscription, sub);
          sub.feed.applySnapshot(message.seq, message.data);
        } else {
          this.queue.unshift({ op: "unsubscribe", serverId: message.subscription });
        }
        this.answered();
        return;
      }
      case "resync":
        this.stats.resyncs++;
        for (const sub of this.byServerId.values()) sub.feed.markStale();
        return;
      case "unsubscribed":
        if (this.inFlight?.op === "unsubscribe") this.answered();
        return;
      case "error": {
        const op = this.inFlight;
        if (op?.op === "subscribe") {
          const sub = op.sub;
          sub.pending = false;
          sub.feed.error.value = `${message.code}: ${message.message}`;
          // The topic may appear later (a domain declared after start): try again.
          if (sub.wanted) {
            sub.retryTimer = setTimeout(() => {
              sub.retryTimer = null;
              if (this.subs.has(sub)) this.enqueueSubscribe(sub);
            }, this.options.retryRefusedMs);
          }
          this.answered();
        } else if (op?.op === "unsubscribe") {
          this.answered();
        }
        return;
      }
      default:
        return;
    }
  }

  /** After a gap: drop the server subscription and take a fresh snapshot. */
  private resubscribe(sub: Subscription): void {
    if (sub.serverId !== null) {
      this.byServerId.delete(sub.serverId);
      this.enqueue({ op: "unsubscribe", serverId: sub.serverId });
      sub.serverId = null;
    }
    this.enqueueSubscribe(sub);
  }
}

/** The WebSocket URL of the API on the page's own origin. */
export function defaultUrl(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/ws`;
}

let shared: LiveConnection | null = null;

/** The tab's one connection, created and started on first use. */
export function connection(): LiveConnection {
  if (!shared) {
    setFlushScheduler((flush) => {
      if (typeof document !== "undefined" && document.hidden) setTimeout(flush, 250);
      else requestAnimationFrame(() => flush());
    });
    shared = new LiveConnection({ url: defaultUrl() });
    shared.start();
    addEventListener("online", () => shared?.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) shared?.reconnectNow();
    });
  }
  return shared;
}

