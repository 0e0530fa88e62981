#!/usr/bin/env bash
# The one build recipe, shared by CI (.ci/run) and the Dockerfile: configure with
# warnings as errors and build everything (node, ops tools, tests, benchmarks).
# Usage: scripts/build.sh [extra cmake -D options]; BUILD_DIR and BUILD_TYPE override.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B "${BUILD_DIR:-build}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" -DWERROR=ON "$@"
cmake --build "${BUILD_DIR:-build}" -j"$(nproc)"
