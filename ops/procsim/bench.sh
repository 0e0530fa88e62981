#!/usr/bin/env bash
# Benchmark of the payment processor simulator: POST /payments with delay 0,
# simulator pinned to CPU 0, wrk pinned to CPU 1. Prints wrk's summary and the
# simulator's CPU time per request (utime+stime from /proc, in microseconds).
# usage: ops/procsim/bench.sh PROCSIM_BIN [seconds=5] [connections=50] [port=18350]
set -euo pipefail
bin=${1:?path to the procsim binary}
secs=${2:-5}
conns=${3:-50}
port=${4:-18350}
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
taskset -c 0 "$bin" --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then break; fi
    sleep 0.05
done
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$here/bench_post.lua" \
    "http://127.0.0.1:$port")
t1=$(ticks)
echo "$out"
reqs=$(echo "$out" | awk '/requests in/ {print $1}')
stored=$(curl -s -H 'X-Rinha-Token: 123' "http://127.0.0.1:$port/admin/stats")
echo "procsim stats: $stored"
awk -v a="$t0" -v b="$t1" -v hz="$hz" -v n="$reqs" -v s="$secs" 'BEGIN {
    cpu = (b - a) / hz;
    printf "procsim CPU: %.2f s for %d requests = %.2f us/request (%.0f%% of one core)\n",
        cpu, n, cpu * 1e6 / n, 100 * cpu / s }'
