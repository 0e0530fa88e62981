#!/usr/bin/env bash
# The test command of the README: build (scripts/build.sh) then run every ctest
# suite (unit, integration, script checks). Extra arguments go to ctest, e.g.
# scripts/test.sh -L unit.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}" BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 "$@"
