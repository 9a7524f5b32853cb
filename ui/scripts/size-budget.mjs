#!/usr/bin/env node
// Size budget: builds the dashboard (unless --no-build) and checks that the JavaScript a
// browser loads before showing any page - the entry chunk, its static imports and that
// page's lazy chunk with its own static imports - stays within BUDGET_BYTES gzipped.
// Reads Vite's manifest (dist/.vite/manifest.json), so it follows the real import graph.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const BUDGET_BYTES = 150 * 1000;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");

if (!process.argv.includes("--no-build")) {
  execFileSync(process.execPath, [join(root, "node_modules/vite/bin/vite.js"), "build", "--logLevel", "warn"], { cwd: root, stdio: "inherit" });
}

const manifest = JSON.parse(readFileSync(join(dist, ".vite/manifest.json"), "utf8"));
const gzipped = new Map();
function gzipSize(file) {
  if (!gzipped.has(file)) gzipped.set(file, gzipSync(readFileSync(join(dist, file)), { level: 9 }).length);
  return gzipped.get(file);
}

/** The files a chunk needs before it runs: itself and its static imports, recursively. */
function closure(key, files = { js: new Set(), css: new Set() }) {
  const chunk = manifest[key];
  if (!chunk || files.js.has(chunk.file)) return files;
  files.js.add(chunk.file);
  for (const css of chunk.css ?? []) files.css.add(css);
  for (const imported of chunk.imports ?? []) closure(imported, files);
  return files;
}

const sum = (set) => [...set].reduce((total, file) => total + gzipSize(file), 0);
const kb = (bytes) => `${(bytes / 1000).toFixed(1)} KB`;

const entryKey = Object.keys(manifest).find((key) => manifest[key].isEntry);
if (!entryKey) throw new Error("no entry chunk in the manifest");
const entry = closure(entryKey);
const pages = Object.keys(manifest).filter((key) => manifest[key].isDynamicEntry);

let passed = 0;
let failed = 0;
const rows = [];
for (const page of [null, ...pages]) {
  const files = { js: new Set(entry.js), css: new Set(entry.css) };
  if (page) closure(page, files);
  const js = sum(files.js);
  const css = sum(files.css);
  const ok = js <= BUDGET_BYTES;
  ok ? passed++ : failed++;
  rows.push({ page: page ? page.replace(/^src\//, "") : "(shell only)", js: kb(js), css: kb(css), ok: ok ? "ok" : "OVER BUDGET" });
}
console.log(`First-load JavaScript per page, gzipped (budget ${kb(BUDGET_BYTES)}):`);
console.table(rows);
console.log(`size budget: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
