#!/usr/bin/env bash
# The test command of the README: build (scripts/build.sh) then run every ctest
# suite (unit, integration, script checks); then, in a clang build of its own
# ($FUZZ_BUILD_DIR, default build-fuzz), build the libFuzzer harnesses and run
# each briefly (ctest -L fuzz, about half a minute in all). Extra arguments go
# to the first ctest only and skip the fuzz stage, e.g. scripts/test.sh -L unit;
# FUZZ=0 skips it too, FUZZ=1 runs it even with arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}" BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" bash scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure --timeout 600 "$@")
fuzz="${FUZZ:-}"
if [ -z "$fuzz" ]; then
  if [ $# -eq 0 ]; then fuzz=1; else fuzz=0; fi
fi
if [ "$fuzz" = 1 ]; then
  dir="${FUZZ_BUILD_DIR:-build-fuzz}"
  CC=clang cmake -S . -B "$dir" -DFUZZ=ON -DWERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build "$dir" -j"$(nproc)" --target fuzz
  (cd "$dir" && ctest --output-on-failure -L fuzz -j"$(nproc)")
fi
