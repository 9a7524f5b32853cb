import { connection } from "../lib/connection";

const LABELS = { open: "Live", connecting: "Connecting", offline: "Offline" } as const;

/** The WebSocket's state: Live (connected), Connecting, or Offline (retrying with backoff). */
export function LiveBadge() {
  const state = connection().state.value;
  return (
    <span class={`live-badge ${state}`} data-testid="live-badge" data-state={state} role="status" title={state === "open" ? "Connected: values update live" : "Not connected: values shown may be stale"}>
      <span class="dot" />
      {LABELS[state]}
    </span>
  );
}

/** Marks a section whose data is stale (disconnected, or waiting for a fresh snapshot). */
export function StaleTag({ stale }: { stale: boolean }) {
  return stale ? <span class="stale-tag" data-testid="stale">stale</span> : null;
}
