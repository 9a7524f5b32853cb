#!/usr/bin/env bash
# Runs every test of Tidewatch: unit, property and integration tests (the integration
# tests start the real binary on ephemeral ports). The README's test command; .ci/run runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
