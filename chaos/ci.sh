#!/usr/bin/env bash
# One case of the ctest chaos suite (called by tests/scripts/test_chaos_*.sh):
#   chaos/ci.sh NAME PORT_BASE CHECK -- RUN_SH_ARGS...
# Runs chaos/run.sh RUN_SH_ARGS on ports PORT_BASE.. (CHAOS_PORT_BASE, when set,
# takes its place: to run a case beside another topology) with a work directory of its
# own, one chaos case at a time on this machine (flock on /tmp/paynode-chaos.lock,
# so that parallel ctest jobs do not starve each other's nodes of CPU), then checks
# that the run's verdict passed and that the jq expression CHECK holds on its
# report (that the faults really happened: a case whose fault silently did
# nothing must not pass). Exit 0 pass, 1 fail, 77 skipped (not root, a tool or a
# binary missing). The work directory is kept when the case fails.
# Env: SOURCE_DIR, BUILD_DIR (from ctest), CHAOS_PORT_BASE.
set -euo pipefail

NAME=$1
PORT_BASE=${CHAOS_PORT_BASE:-$2}
CHECK=$3
shift 3
[ "${1:-}" = -- ] && shift

SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$SOURCE_DIR/build}
export BUILD_DIR

if [ "$(id -u)" != 0 ]; then
    echo "skip - $NAME: needs root (nftables, cgroups)"
    exit 77
fi
for t in curl jq nft ss; do
    if ! command -v "$t" >/dev/null 2>&1; then
        echo "skip - $NAME: $t is not installed"
        exit 77
    fi
done

WORK=$(mktemp -d "/tmp/chaos-$NAME.XXXXXX")
if command -v flock >/dev/null 2>&1; then
    exec 9>/tmp/paynode-chaos.lock
    t0=$SECONDS
    if ! flock -w 500 9; then
        echo "FAIL - $NAME: another chaos run held the lock for 500 s"
        exit 1
    fi
    [ $((SECONDS - t0)) -lt 2 ] || echo "# waited $((SECONDS - t0)) s for another chaos run"
fi

rc=0
"$SOURCE_DIR/chaos/run.sh" "$@" --port-base "$PORT_BASE" --work "$WORK" || rc=$?
if [ "$rc" = 77 ]; then
    echo "skip - $NAME: chaos/run.sh could not run here (rc 77)"
    rm -rf "$WORK"
    exit 77
fi
fail=0
if [ "$rc" != 0 ]; then
    echo "FAIL - $NAME: chaos/run.sh exited $rc"
    fail=1
fi
if [ ! -s "$WORK/report.json" ]; then
    echo "FAIL - $NAME: no report"
    fail=1
elif ! jq -e "$CHECK" "$WORK/report.json" >/dev/null; then
    echo "FAIL - $NAME: the report does not show the faults ($CHECK); timeline:"
    jq -c '.timeline[]' "$WORK/report.json" | sed 's/^/    /'
    fail=1
fi
if [ "$fail" = 0 ]; then
    echo "ok   - $NAME"
    rm -rf "$WORK"
    exit 0
fi
echo "# work directory kept: $WORK"
for f in "$WORK"/run/logs/node1.log "$WORK"/run/logs/node2.log; do
    [ -f "$f" ] || continue
    echo "==> $f (info and above, last 40) <=="
    grep -v '"level":"debug"' "$f" | tail -n 40
done
exit 1
