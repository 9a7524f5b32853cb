import { useSignal } from "@preact/signals";
import { formatDateTime } from "../lib/format";
import { resolveRange, setFixed, setLive, SPANS, spanLabel, timeRange } from "../lib/time-range";

function toLocalInput(ms: number): string {
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return date.toISOString().slice(0, 16);
}

/** Live mode follows now over a span; a fixed range stops following. */
export function TimeRangePicker() {
  const range = timeRange.value;
  const editing = useSignal(false);
  const from = useSignal("");
  const to = useSignal("");

  const openFixed = () => {
    const resolved = resolveRange(range, Date.now());
    from.value = toLocalInput(Math.max(resolved.from, Date.now() - 30 * 86_400_000));
    // The inputs have minute precision: round the end up so that the range includes now.
    to.value = toLocalInput(Math.ceil(resolved.to / 60_000) * 60_000);
    editing.value = true;
  };
  const apply = (event: Event) => {
    event.preventDefault();
    const start = Date.parse(from.value);
    const end = Date.parse(to.value);
    if (start < end) {
      setFixed(start, end);
      editing.value = false;
    }
  };

  return (
    <div class="time-range" data-testid="time-range" data-mode={range.mode}>
      {range.mode === "live" ? (
        <label class="range-span">
          <span class="muted small">Last</span>
          <select
            aria-label="Span"
            data-testid="range-span"
            value={spanLabel(range.spanMs) ?? ""}
            onChange={(event) => {
              const span = SPANS.find((s) => s.label === (event.currentTarget as HTMLSelectElement).value);
              if (span) setLive(span.ms);
            }}
          >
            {SPANS.map((span) => (
              <option value={span.label}>{span.label}</option>
            ))}
          </select>
        </label>
      ) : (
        <>
          <span class="range-fixed-text small" data-testid="range-fixed-text">
            {formatDateTime(range.from)} → {formatDateTime(range.to)}
          </span>
          <button type="button" class="chip" data-testid="range-live" onClick={() => setLive(Math.max(60_000, range.to - range.from))} title="Follow now again">
            Follow now
          </button>
        </>
      )}
      <button type="button" class={range.mode === "fixed" ? "chip active" : "chip"} data-testid="range-fixed" onClick={openFixed} title="Choose a fixed range: the charts stop following now">
        Fixed…
      </button>
      {editing.value && (
        <form class="range-form" onSubmit={apply}>
          <input type="datetime-local" aria-label="From" value={from.value} onInput={(e) => (from.value = (e.currentTarget as HTMLInputElement).value)} />
          <span>→</span>
          <input type="datetime-local" aria-label="To" value={to.value} onInput={(e) => (to.value = (e.currentTarget as HTMLInputElement).value)} />
          <button type="submit" class="chip active">
            Apply
          </button>
          <button type="button" class="chip" onClick={() => (editing.value = false)}>
            Cancel
          </button>
        </form>
      )}
    </div>
  );
}
