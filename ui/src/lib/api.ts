// REST helpers. Every call resolves; failures come back as values, so a page whose
// endpoint does not exist yet shows "no data" instead of throwing.

export type Result<T> = { ok: true; data: T } | { ok: false; status: number; message: string };

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<Result<T>> {
  try {
    const response = await fetch(path, { signal, headers: { accept: "application/json" } });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const body = (await response.json()) as { error?: { message?: string } };
        if (body.error?.message) message = body.error.message;
      } catch {
        // not a JSON error body
      }
      return { ok: false, status: response.status, message };
    }
    return { ok: true, data: (await response.json()) as T };
  } catch (error) {
    const aborted = error instanceof DOMException && error.name === "AbortError";
    return { ok: false, status: 0, message: aborted ? "aborted" : "the server cannot be reached" };
  }
}

export async function getText(path: string, signal?: AbortSignal): Promise<Result<string>> {
  try {
    const response = await fetch(path, { signal });
    if (!response.ok) return { ok: false, status: response.status, message: response.statusText };
    return { ok: true, data: await response.text() };
  } catch {
    return { ok: false, status: 0, message: "the server cannot be reached" };
  }
}

/** Builds `path?k=v&...`, leaving out empty values. */
export function withQuery(path: string, params: Record<string, string | number | null | undefined>): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export interface StreamInfo {
  name: string;
  tags: string[];
  fields: Record<string, string> | { name: string; type: string }[];
  rollups: unknown[];
  rows: number;
  first_ts: string | null;
  last_ts: string | null;
}

export function listStreams(signal?: AbortSignal) {
  return getJson<{ streams: StreamInfo[] }>("/api/v1/streams", signal);
}

/** One sample of a Prometheus text exposition. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text format (comments skipped; histograms come out as their series). */
export function parsePrometheus(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const rawLine of text.split("\n")) {
    const line = rawLine.trim();
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    if (match[3]) {
      for (const pair of match[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[pair[1]!] = pair[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
      }
    }
    const value = Number(match[4]);
    if (!Number.isNaN(value)) samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `match`. */
export function sumMetric(samples: MetricSample[], name: string, match: Record<string, string> = {}): number | null {
  let total: number | null = null;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    if (Object.entries(match).some(([key, value]) => sample.labels[key] !== value)) continue;
    total = (total ?? 0) + sample.value;
  }
  return total;
}
