#!/usr/bin/env node
// End-to-end tests of the dashboard in a real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) against the real `tidewatch serve --demo`, started from the
// built binary on a free port with a temporary data directory. Screenshots of every page
// go to ui/e2e/artifacts/ (git-ignored).
//
//   node e2e/run.mjs            # the binary defaults to $CARGO_TARGET_DIR/debug/tidewatch
//   E2E_CHROMIUM=/path/to/chrome E2E_TIDEWATCH=/path/to/tidewatch node e2e/run.mjs
//
// (Not TIDEWATCH_*: the server reads those variables as configuration.)

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, createWriteStream } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const uiDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repo = resolve(uiDir, "..");
const artifacts = join(uiDir, "e2e", "artifacts");
const binary = process.env.E2E_TIDEWATCH ?? join(resolve(repo, process.env.CARGO_TARGET_DIR ?? "target"), "debug", "tidewatch");
const chromiumPath = process.env.E2E_CHROMIUM ?? "/usr/bin/chromium";

const PAGES = [
  { path: "/", name: "overview", ready: '[data-testid="metric-eps-value"]' },
  { path: "/market", name: "market", ready: '[data-testid="chart-status"][data-status="ready"]' },
  { path: "/sales", name: "sales", ready: '[data-testid="not-built"]' },
  { path: "/inventory", name: "inventory", ready: '[data-testid="not-built"]' },
  { path: "/behaviour", name: "behaviour", ready: '[data-testid="not-built"]' },
  { path: "/financial", name: "financial", ready: '[data-testid="not-built"]' },
  { path: "/supervision", name: "supervision", ready: '[data-testid="not-built"]' },
  { path: "/alerts", name: "alerts", ready: '[data-testid="alerts"]' },
  { path: "/system", name: "system", ready: '[data-testid="streams"] table' },
];

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check, { timeoutMs = 20_000, intervalMs = 200, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
}

/** The real server: `tidewatch serve --demo` on a fixed port and data directory. */
class Server {
  constructor(port, dataDir, log) {
    this.port = port;
    this.dataDir = dataDir;
    this.log = log;
    this.url = `http://127.0.0.1:${port}`;
    this.process = null;
  }

  async start() {
    // The server's own configuration only: no TIDEWATCH_* from the caller's environment.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("TIDEWATCH_")));
    const args = ["serve", "--demo", "--demo-rate", "400", "--listen", `127.0.0.1:${this.port}`, "--data-dir", this.dataDir, "--fsync", "interval"];
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], env });
    child.stdout.pipe(this.log, { end: false });
    child.stderr.pipe(this.log, { end: false });
    this.process = child;
    this.exited = new Promise((r) => child.on("exit", r));
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`tidewatch exited with ${child.exitCode}; see ${this.log.path}`);
        const response = await fetch(`${this.url}/readyz`);
        return response.ok;
      },
      { what: "the server to be ready" },
    );
  }

  async stop() {
    if (!this.process || this.process.exitCode !== null) return;
    this.process.kill("SIGTERM");
    const stopped = await Promise.race([this.exited.then(() => true), sleep(10_000).then(() => false)]);
    if (!stopped) {
      this.process.kill("SIGKILL");
      await this.exited;
    }
  }
}

const results = [];
async function test(name, body) {
  const started = Date.now();
  try {
    await body();
    results.push({ name, ok: true });
    console.log(`  ✓ ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    results.push({ name, ok: false, error });
    console.log(`  ✗ ${name}\n      ${String(error?.stack ?? error).split("\n").join("\n      ")}`);
  }
}

async function main() {
  if (!existsSync(binary)) throw new Error(`no tidewatch binary at ${binary}: run cargo build -p tidewatch (or set E2E_TIDEWATCH)`);
  if (!existsSync(chromiumPath)) throw new Error(`no Chromium at ${chromiumPath}: apt-get install -y chromium (or set E2E_CHROMIUM)`);
  if (!existsSync(join(uiDir, "dist", "index.html"))) throw new Error("the UI is not built: npm run build");
  mkdirSync(artifacts, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), "tidewatch-e2e-"));
  const log = createWriteStream(join(artifacts, "server.log"));
  const server = new Server(await freePort(), dataDir, log);
  await server.start();
  console.log(`e2e: tidewatch at ${server.url} (data ${dataDir}), Chromium ${chromiumPath}`);

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  try {
    // Before the market endpoints exist, their 404s are expected; the checks that need them are skipped.
    const marketApi = (await fetch(`${server.url}/api/v1/market/symbols`)).ok;
    if (!marketApi) console.log("e2e: /api/v1/market/* is not served by this binary: 404s from it are tolerated");

    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, colorScheme: "dark" });
    const page = await context.newPage();
    const problems = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      const url = message.location()?.url ?? "";
      if (!marketApi && url.includes("/api/v1/market/")) return;
      problems.push(`console error: ${message.text()} ${url}`);
    });

    await test("every page loads without console errors", async () => {
      for (const target of PAGES) {
        await page.goto(server.url + target.path);
        await page.waitForSelector(target.ready, { timeout: 20_000 });
        await page.waitForSelector('[data-testid="live-badge"][data-state="open"]', { timeout: 10_000 });
        await sleep(target.name === "overview" || target.name === "market" ? 2500 : 800); // let live data draw
        await page.screenshot({ path: join(artifacts, `${target.name}.png`), fullPage: true });
        if (problems.length) throw new Error(`${target.path}: ${problems.join("; ")}`);
      }
    });

    await test("the sidebar navigates between pages without a reload", async () => {
      await page.goto(server.url + "/");
      await page.evaluate(() => (window.__marker = 1));
      await page.click('[data-testid="nav-system"]');
      await page.waitForSelector('[data-testid="streams"] table');
      await page.click('[data-testid="nav-market"]');
      await page.waitForSelector('[data-testid="chart-status"][data-status="ready"]');
      if ((await page.evaluate(() => window.__marker)) !== 1) throw new Error("the page reloaded");
      if (!page.url().endsWith("/market")) throw new Error(`unexpected url ${page.url()}`);
    });

    await test("live values change on their own", async () => {
      await page.goto(server.url + "/market/BTCUSDT");
      const cell = page.locator('[data-testid="price-BTCUSDT"]');
      const first = await waitFor(async () => {
        const text = (await cell.textContent())?.trim();
        return text && text !== "—" ? text : null;
      }, { what: "a BTCUSDT price" });
      await waitFor(async () => (await cell.textContent())?.trim() !== first, { what: "the BTCUSDT price to change" });
      await page.goto(server.url + "/");
      const eps = page.locator('[data-testid="metric-eps-value"]');
      await waitFor(async () => /\d/.test((await eps.textContent()) ?? ""), { what: "an ingest rate on the overview" });
    });

    await test("the overview keeps up with more than 100 live updates per second", async () => {
      // Raw trades (400/s from the demo feed), 1s quotes and candles, all drawn in place.
      await page.goto(server.url + "/");
      await page.waitForSelector('[data-testid="activity-feed"] .activity');
      await sleep(1000);
      const measured = await page.evaluate(async () => {
        const stats = window.tidewatch.stats;
        let frames = 0;
        let longest = 0;
        const observer = new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) longest = Math.max(longest, entry.duration);
        });
        observer.observe({ type: "longtask", buffered: false });
        const countFrame = () => {
          frames++;
          if (running) requestAnimationFrame(countFrame);
        };
        let running = true;
        requestAnimationFrame(countFrame);
        const deltasBefore = stats.deltas;
        const started = performance.now();
        await new Promise((r) => setTimeout(r, 5000));
        running = false;
        observer.disconnect();
        const seconds = (performance.now() - started) / 1000;
        return { deltasPerSecond: (stats.deltas - deltasBefore) / seconds, fps: frames / seconds, longestTaskMs: longest };
      });
      console.log(`      ${measured.deltasPerSecond.toFixed(0)} deltas/s, ${measured.fps.toFixed(0)} frames/s, longest task ${measured.longestTaskMs.toFixed(0)} ms`);
      if (measured.deltasPerSecond < 100) throw new Error(`only ${measured.deltasPerSecond.toFixed(0)} deltas/s arrived`);
      // Lenient bounds: the machine is shared; a page that re-rendered per delta would fail them.
      if (measured.fps < 15) throw new Error(`${measured.fps.toFixed(1)} frames/s`);
      if (measured.longestTaskMs > 500) throw new Error(`a ${measured.longestTaskMs.toFixed(0)} ms task blocked the page`);
    });

    await test("clicking a watchlist row switches the chart", async () => {
      await page.goto(server.url + "/market/AAPL");
      await page.waitForSelector('[data-testid="chart-status"][data-symbol="AAPL"][data-status="ready"]');
      await page.click('[data-testid="watchlist"] tr[data-symbol="ETHUSDT"]');
      await page.waitForSelector('[data-testid="chart-status"][data-symbol="ETHUSDT"][data-status="ready"]');
      const selected = await page.textContent('[data-testid="selected-symbol"]');
      if (selected?.trim() !== "ETHUSDT") throw new Error(`header shows ${selected}`);
      if (!page.url().endsWith("/market/ETHUSDT")) throw new Error(`unexpected url ${page.url()}`);
      const active = await page.getAttribute('[data-testid="symbol-tabs"] .tab.active', "data-symbol");
      if (active !== "ETHUSDT") throw new Error(`active tab ${active}`);
      await page.click('[data-testid="chart-type"] button:has-text("Line")');
      await page.screenshot({ path: join(artifacts, "market-line.png") });
    });

    await test("a fixed time range stops following, live follows again", async () => {
      await page.goto(server.url + "/market/AAPL");
      await page.waitForSelector('[data-testid="chart-status"][data-status="ready"]');
      await page.click('[data-testid="range-fixed"]');
      await page.click('.range-form button[type="submit"]');
      await page.waitForSelector('[data-testid="time-range"][data-mode="fixed"]');
      await page.waitForSelector('[data-testid="chart-status"][data-mode="fixed"][data-status="ready"]:has-text("fixed range")');
      await page.click('[data-testid="range-live"]');
      await page.waitForSelector('[data-testid="time-range"][data-mode="live"]');
      await page.waitForSelector('[data-testid="chart-status"][data-mode="live"][data-status="ready"]');
      await page.click('[data-testid="horizons"] button:has-text("1W")');
      await page.waitForSelector('[data-testid="horizons"] button.active:has-text("1W")');
      await page.waitForSelector('[data-testid="chart-status"][data-mode="live"][data-status="ready"]');
    });

    await test("the light theme applies and is remembered", async () => {
      await page.goto(server.url + "/");
      await page.click('[data-testid="theme-toggle"]');
      if ((await page.getAttribute("html", "data-theme")) !== "light") throw new Error("no light theme");
      await page.reload();
      await page.waitForSelector('[data-testid="metric-eps-value"]');
      if ((await page.getAttribute("html", "data-theme")) !== "light") throw new Error("theme not remembered");
      await sleep(1500);
      await page.screenshot({ path: join(artifacts, "overview-light.png"), fullPage: true });
      await page.click('[data-testid="theme-toggle"]');
    });

    await test("stopping the server turns the Live badge off; restarting brings it back with data", async () => {
      await page.goto(server.url + "/market/BTCUSDT");
      await page.waitForSelector('[data-testid="live-badge"][data-state="open"]');
      await page.waitForSelector('[data-testid="chart-status"][data-status="ready"]');
      await server.stop();
      await page.waitForSelector('[data-testid="live-badge"]:not([data-state="open"])', { timeout: 10_000 });
      await page.waitForSelector('[data-testid="watchlist"] [data-testid="stale"]', { timeout: 10_000 });
      await page.screenshot({ path: join(artifacts, "offline.png") });
      await server.start();
      await page.waitForSelector('[data-testid="live-badge"][data-state="open"]', { timeout: 20_000 });
      await page.waitForSelector('[data-testid="watchlist"] [data-testid="stale"]', { state: "detached", timeout: 20_000 });
      const cell = page.locator('[data-testid="price-BTCUSDT"]');
      const before = (await cell.textContent())?.trim();
      await waitFor(async () => (await cell.textContent())?.trim() !== before, { what: "live prices after the restart" });
      await page.waitForSelector('[data-testid="chart-status"][data-status="ready"]');
    });

    await context.close();
  } finally {
    await browser.close();
    await server.stop();
    log.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(`screenshots: ${artifacts}`);
  console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((error) => {
  console.error(error);
  console.log("e2e: 0 passed, 1 failed");
  process.exit(1);
});
