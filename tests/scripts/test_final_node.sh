#!/usr/bin/env bash
# ctest-label: integration
# A compressed `final` run of the load generator straight against one node with
# two simulated processors: zero audit inconsistencies, and lag 0 once the
# queue has drained (every 2xx recorded, nothing else).
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$SOURCE_DIR/build}
. "$SOURCE_DIR/tests/scripts/final_lib.sh"
need_bins paynode procsim loadgen

work=$(mktemp -d /tmp/test_final_node.XXXXXX)
pids=()
cleanup()
{
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

base=$((19700 + RANDOM % 80))
D=$base F=$((base + 1)) N=$((base + 2))
"$BUILD_DIR/procsim" --port $D --name default --fee 0.05 > "$work/default.log" 2>&1 & pids+=($!)
"$BUILD_DIR/procsim" --port $F --name fallback --fee 0.15 > "$work/fallback.log" 2>&1 & pids+=($!)
SERVER_HOST=127.0.0.1 SERVER_PORT=$N DEFAULT_PROCESSOR_URL=http://127.0.0.1:$D \
    FALLBACK_PROCESSOR_URL=http://127.0.0.1:$F "$BUILD_DIR/paynode" > "$work/node.log" 2>&1 & pids+=($!)
for port in $D $F $N; do
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
        sleep 0.1
    done
done

"$BUILD_DIR/loadgen" --target http://127.0.0.1:$N --default-url http://127.0.0.1:$D \
    --fallback-url http://127.0.0.1:$F --schedule final --duration 30 --users 200 \
    --report "$work/report.json" > "$work/loadgen.out" 2>&1 || {
    echo "loadgen failed:"; tail -20 "$work/loadgen.out"; exit 1; }
check_report "$work/report.json" || { echo "logs in $work"; exit 1; }
cleanup
rm -rf "$work"
