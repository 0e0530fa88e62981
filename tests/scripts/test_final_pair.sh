#!/usr/bin/env bash
# ctest-label: integration
# A compressed `final` run through nginx to the pair (ops/run.sh topology):
# zero audit inconsistencies, lag 0 after the drain, and both nodes' books
# equal to the processors'.
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$SOURCE_DIR/build}
. "$SOURCE_DIR/tests/scripts/final_lib.sh"
need_bins paynode procsim loadgen

work=$(mktemp -d /tmp/test_final_pair.XXXXXX)
export BUILD_DIR RUN_DIR=$work/run
export NGINX_PORT=19850 NODE1_PORT=19851 NODE2_PORT=19852 NODE1_NNG_PORT=19853 \
    NODE2_NNG_PORT=19855 NODE1_GOSSIP_PORT=19857 NODE2_GOSSIP_PORT=19858 \
    PROCSIM_DEFAULT_PORT=19859 PROCSIM_FALLBACK_PORT=19860
keep=0
cleanup()
{
    "$SOURCE_DIR/ops/run.sh" stop > /dev/null 2>&1 || true
    if [ "$keep" = 0 ]; then rm -rf "$work"; else echo "logs in $work"; fi
}
trap cleanup EXIT
keep=1 # until the end: a failure keeps the logs
"$SOURCE_DIR/ops/run.sh" start > "$work/start.log" 2>&1 || { cat "$work/start.log"; exit 1; }

"$BUILD_DIR/loadgen" --target http://127.0.0.1:$NGINX_PORT \
    --default-url http://127.0.0.1:$PROCSIM_DEFAULT_PORT \
    --fallback-url http://127.0.0.1:$PROCSIM_FALLBACK_PORT --schedule final --duration 30 \
    --users 200 --report "$work/report.json" > "$work/loadgen.out" 2>&1 || {
    echo "loadgen failed:"; tail -20 "$work/loadgen.out"; exit 1; }
check_report "$work/report.json"

# Both nodes answer the processors' books for the whole run.
want=$(for p in $PROCSIM_DEFAULT_PORT $PROCSIM_FALLBACK_PORT; do
    curl -s -H 'X-Rinha-Token: 123' "http://127.0.0.1:$p/admin/payments-summary" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["totalRequests"], d["totalAmount"])'
done)
for port in $NODE1_PORT $NODE2_PORT; do
    got=$(curl -s "http://127.0.0.1:$port/payments-summary" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for k in ("default", "fallback"): print(d[k]["totalRequests"], d[k]["totalAmount"])')
    if [ "$got" != "$want" ]; then
        echo "FAIL: node on $port answers"; echo "$got"; echo "processors:"; echo "$want"
        exit 1
    fi
done
echo "both nodes match the processors"
keep=0
