#!/usr/bin/env bash
# Runs the libFuzzer harnesses (tests/fuzz) longer than `ctest -L fuzz` does.
# Usage: scripts/fuzz.sh [seconds-per-harness (default 300)] [harness...]
# e.g. scripts/fuzz.sh 600 http json. Builds with clang in $FUZZ_BUILD_DIR
# (default build-fuzz) first. New inputs are kept in <build>/tests/fuzz/found/;
# a crash stops its harness, leaves <build>/tests/fuzz/crash-<name>-<hash> and
# makes the script exit 1 once every harness has run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
shift || true
dir="${FUZZ_BUILD_DIR:-build-fuzz}"
CC=clang cmake -S . -B "$dir" -DFUZZ=ON -DWERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"$(nproc)" --target fuzz >/dev/null
out="$dir/tests/fuzz"
if [ $# -eq 0 ]; then
  set -- $(cd tests/fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
fi
failed=()
for name in "$@"; do
  mkdir -p "$out/found/$name"
  echo "fuzz_$name: ${secs}s"
  if ! "$out/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$out/crash-$name-" \
      "$out/found/$name" "tests/fuzz/corpus/$name" >"$out/fuzz_$name.log" 2>&1; then
    failed+=("$name")
    grep -E "check failed|ERROR|SUMMARY|Test unit written" "$out/fuzz_$name.log" || true
  fi
  grep -E "stat::number_of_executed_units|stat::new_units_added" "$out/fuzz_$name.log" | tr '\n' ' '
  echo
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashed: ${failed[*]} (logs: $out/fuzz_<name>.log)"
  exit 1
fi
