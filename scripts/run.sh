#!/usr/bin/env bash
# Builds Tidewatch in release mode and runs the server on ./data (embedded storage) with
# the simulator feeding demo market data. Extra arguments go to `tidewatch serve`, e.g.
# scripts/run.sh --listen 127.0.0.1:9000 --demo-rate 1000
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --locked -p tidewatch -- serve --demo "$@"
