#!/usr/bin/env bash
# One command: install dependencies, build, and run every test (unit + integration) with ctest.
# Integration tests need ../shared (the hostile-input corpus) beside this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
ulimit -n 65536 2>/dev/null || true
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j2 --timeout 600
