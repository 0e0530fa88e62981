#!/usr/bin/env bash
# ctest-label: integration
# The queue does not outlive the run (issue 12): a short compressed run through
# nginx to the pair that ends with the default at 1 s and the fallback fast,
# with the in-flight cap small enough (PROCESSOR_MAX_CONNS=60 per node: 120/s
# on the default at 1 s) that the default alone cannot carry the ramp's end
# (~250/s). Holding at the default's cap (OVERFLOW_DRAIN_MS=0, the previous
# policy) leaves payments queued at the end; the capacity-aware policy
# overflows the excess to the fallback: lag 0 and no inconsistency.
# Ports: ROUTING_PORT_BASE..+106 [33100]: 17 from an odd base, tried 10 on when taken.
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$SOURCE_DIR/build}
. "$SOURCE_DIR/tests/scripts/final_lib.sh"
need_bins paynode procsim loadgen
command -v nginx > /dev/null || [ -x /usr/sbin/nginx ] || { echo "skip: no nginx"; exit 77; }

work=$(mktemp -d /tmp/test_routing_overload.XXXXXX)
export BUILD_DIR RUN_DIR=$work/run PROCESSOR_MAX_CONNS=60 OVERFLOW_DRAIN_MS=${OVERFLOW_DRAIN_MS:-1000}
base=${ROUTING_PORT_BASE:-33100}
keep=0
cleanup()
{
    "$SOURCE_DIR/ops/run.sh" stop > /dev/null 2>&1 || true
    if [ "$keep" = 0 ]; then rm -rf "$work"; else echo "logs in $work"; fi
}
trap cleanup EXIT
keep=1 # until the end: a failure keeps the logs

# TCP listeners on odd ports: Linux picks even ports first for connect(), so
# in the ephemeral range odd ones are rarely held by someone's client socket.
# A base with any of its ports held by a socket (other than in TIME-WAIT) now is
# skipped; a start that still fails (taken meanwhile) moves on too.
started=0
for try in 0 1 2 3 4 5 6 7 8 9; do
    b=$(((base | 1) + 10 * try))
    held=" $(ss -Htan exclude time-wait 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | sort -u | tr '\n' ' ') "
    free=1
    for p in $(seq "$b" $((b + 16))); do
        [[ $held == *" $p "* ]] && free=0 && break
    done
    [ "$free" = 1 ] || continue
    export NGINX_PORT=$b NODE1_PORT=$((b + 2)) NODE2_PORT=$((b + 4)) \
        PROCSIM_DEFAULT_PORT=$((b + 6)) PROCSIM_FALLBACK_PORT=$((b + 8)) \
        NODE1_NNG_PORT=$((b + 10)) NODE2_NNG_PORT=$((b + 12)) NODE1_GOSSIP_PORT=$((b + 14)) \
        NODE2_GOSSIP_PORT=$((b + 16))
    if "$SOURCE_DIR/ops/run.sh" start >> "$work/start.log" 2>&1; then
        started=1
        break
    fi
    rm -rf "$RUN_DIR/pids" # a port was taken (ephemeral range): the next ones
done
[ "$started" = 1 ] || {
    echo "FAIL: no free ports in $base..$((base + 106)) (or every start failed)"
    tail -20 "$work/start.log" 2> /dev/null
    exit 1
}

# 25 s of the final's ramp with 250 users; the default at 1 s for the last 40%.
"$BUILD_DIR/loadgen" --target "http://127.0.0.1:$NGINX_PORT" \
    --default-url "http://127.0.0.1:$PROCSIM_DEFAULT_PORT" \
    --fallback-url "http://127.0.0.1:$PROCSIM_FALLBACK_PORT" --schedule final \
    --stages '1:0/n,0/n;180:1000/n,5/n' --users 250 --duration 25 \
    --report "$work/report.json" > "$work/loadgen.out" 2>&1 || {
    echo "loadgen failed:"; tail -20 "$work/loadgen.out"; exit 1; }
check_report "$work/report.json"
# The schedule did what it is for: the default was full and payments overflowed.
if [ "$OVERFLOW_DRAIN_MS" != 0 ] &&
    ! grep -q '"overflow to the fallback started' "$RUN_DIR/logs/node1.log" "$RUN_DIR/logs/node2.log"; then
    echo "FAIL: no overflow episode logged: the run did not overload the default"
    exit 1
fi
# ... and /metrics counts them.
overflowed=0
for port in "$NODE1_PORT" "$NODE2_PORT"; do
    v=$(curl -s "http://127.0.0.1:$port/metrics" |
        awk '$1 == "paynode_dispatch_overflowed_total" { print $2 }')
    overflowed=$((overflowed + ${v:-0}))
done
if [ "$OVERFLOW_DRAIN_MS" != 0 ] && [ "$overflowed" -eq 0 ]; then
    echo "FAIL: paynode_dispatch_overflowed_total is 0 on both nodes"
    exit 1
fi
echo "overflowed to the fallback: $overflowed payments"
keep=0
