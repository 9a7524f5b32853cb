// Vite builds the dashboard into ui/dist, which the tidewatch binary embeds (see
// crates/tidewatch-server/src/ui.rs). In development (`npm run dev`) the dev server
// proxies the API and the WebSocket to a running `tidewatch serve` on 127.0.0.1:8080.
import { defineConfig } from "vitest/config";

// DEV_API_URL points the proxy elsewhere (not TIDEWATCH_*: the server reads those as configuration).
const backend = process.env.DEV_API_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  server: {
    port: 5173,
    proxy: {
      "/api/v1/ws": { target: backend, ws: true },
      "/api": backend,
      "/metrics": backend,
      "/healthz": backend,
      "/readyz": backend,
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The size budget (scripts/size-budget.mjs) follows the manifest's static imports.
    manifest: true,
    target: "es2022",
    assetsInlineLimit: 0,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
