#!/usr/bin/env bash
# Builds Tidewatch in release mode and runs the server on ./data (embedded storage) with
# the simulator feeding demo market data; the web dashboard is at http://127.0.0.1:8080/.
# Extra arguments go to `tidewatch serve`, e.g.
# scripts/run.sh --listen 127.0.0.1:9000 --demo-rate 1000
set -euo pipefail
cd "$(dirname "$0")/.."

# The binary embeds ui/dist, so the dashboard is built first. Without Node.js the server
# still runs, and / says how to build the dashboard.
if command -v npm >/dev/null 2>&1; then
    (
        cd ui
        # npm ci only when package-lock.json changed since the last install.
        if [ ! node_modules/.package-lock.json -nt package-lock.json ]; then
            npm ci --no-audit --no-fund
        fi
        npm run build
    )
else
    echo "npm not found: building the server without the web dashboard (install Node.js 20+)" >&2
fi
exec cargo run --release --locked -p tidewatch -- serve --demo "$@"
