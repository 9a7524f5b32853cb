#!/usr/bin/env bash
# Runs every test of Tidewatch: unit, property and integration tests (the integration
# tests start the real binary on ephemeral ports), then the web dashboard's: type check,
# unit tests (Vitest), the first-load size budget (which builds ui/dist) and end-to-end
# tests in headless Chromium against the real `tidewatch serve --demo`.
# The README's test command; .ci/run runs it too. SKIP_UI_TESTS=1 runs the Rust tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"

if [ "${SKIP_UI_TESTS:-0}" = 1 ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: the dashboard's tests need Node.js 20+ (.ci/run installs it)" >&2
    exit 1
fi
# Debian's Chromium drives the end-to-end tests (playwright's own browser download cannot work offline).
if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq && apt-get install -y -qq chromium
fi

echo "== dashboard: install, type check, unit tests, size budget"
(
    cd ui
    if [ ! node_modules/.package-lock.json -nt package-lock.json ]; then
        npm ci --no-audit --no-fund
    fi
    npm run --silent typecheck
    npm test --silent
    npm run --silent size
)
echo "== dashboard: end-to-end tests in headless Chromium"
# The binary the workspace's tests were built with (nothing to do when they all ran above).
# Not `cargo build -p tidewatch`: without the dev-dependencies' features (getrandom's, via
# proptest) it would compile most of the dependency tree a second time.
cargo test --workspace --locked --no-run --quiet
E2E_TIDEWATCH="${CARGO_TARGET_DIR:-$PWD/target}/debug/tidewatch" node ui/e2e/run.mjs
