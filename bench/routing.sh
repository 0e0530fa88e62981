#!/usr/bin/env bash
# Routing under overload (issue 12, docs/BENCHMARKS.md §7): each schedule of
# bench/schedules/*.txt (loadgen --stages over the final's 300 s timeline) and
# the built-in preview and final, run compressed against the pair under the
# compose limits (ops/run.sh --limits), once per policy. A policy is a set of
# node settings; the defaults compare the previous policy with the current one:
#   old  OVERFLOW_DRAIN_MS=0 (hold at the default's cap) PROCESSOR_MAX_CONNS=250
#   new  the defaults (overflow past 1000 ms of drain, 400 in flight per processor)
# With --conns it instead measures what an attempt in flight costs a node (CPU,
# memory, POST p99): the pair at a fixed rate, the default's delay 0 and then
# slower, so that more attempts are held open at the same rate.
# This script only starts, runs and stops; bench/routing.py computes the tables.
#
# Usage: bench/routing.sh [options]
#   --schedules LIST   comma-separated names: files of bench/schedules (without
#                      .txt), preview, final [all files, then preview,final]
#   --policy NAME=ENV  a policy: NAME and comma-separated VAR=VALUE node settings
#                      (repeatable; replaces the default old/new pair)
#   --duration S       compressed run length [60]
#   --repeat N         runs of each (schedule, policy) [1]
#   --conns            measure the cost of attempts in flight instead (see above)
#   --conns-rate R     payments/s for --conns [600]
#   --conns-delays L   the default's delays for --conns, ms [0,500,1000]
#   --port-base P      17 consecutive ports of P..P+199 on 127.0.0.1, free ones
#                      chosen at each start (the range may be ephemeral) [33000]
#   --work DIR         keep raw files there [a new /tmp/routing.XXXXXX]
# Environment: BUILD_DIR [build]. Needs a build, nginx, python3 with PyYAML, root
# with cgroup v1 (the limits).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TOOL=$ROOT/bench/routing.py
SCHED_DIR=$ROOT/bench/schedules

SCHEDULES=""
POLICIES=()
DURATION=60
REPEAT=1
CONNS=0
CONNS_RATE=600
CONNS_DELAYS=0,500,1000
PORT_BASE=33000
WORK=""

die()
{
    echo "routing: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --schedules) SCHEDULES=$2 && shift ;;
    --policy) POLICIES+=("$2") && shift ;;
    --duration) DURATION=$2 && shift ;;
    --repeat) REPEAT=$2 && shift ;;
    --conns) CONNS=1 ;;
    --conns-rate) CONNS_RATE=$2 && shift ;;
    --conns-delays) CONNS_DELAYS=$2 && shift ;;
    --port-base) PORT_BASE=$2 && shift ;;
    --work) WORK=$2 && shift ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
for v in DURATION REPEAT CONNS_RATE PORT_BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got ${!v})"
done
[[ $CONNS_DELAYS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--conns-delays wants e.g. 0,500,1000"
for b in paynode procsim loadgen; do
    [ -x "$BUILD_DIR/$b" ] || die "$BUILD_DIR/$b missing: build first (bash scripts/build.sh)"
done
if [ ${#POLICIES[@]} = 0 ]; then
    POLICIES=("old=OVERFLOW_DRAIN_MS=0,PROCESSOR_MAX_CONNS=250" "new=")
fi
if [ -z "$SCHEDULES" ]; then
    for f in "$SCHED_DIR"/*.txt; do
        SCHEDULES+="$(basename "$f" .txt),"
    done
    SCHEDULES+="preview,final"
fi

[ -n "$WORK" ] || WORK=$(mktemp -d /tmp/routing.XXXXXX)
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LOG=$WORK/routing.log
echo "routing: raw files and logs in $WORK"

# set_ports <base>: the topology's ports, base..base+16. TCP listeners get odd
# ports: Linux picks even ports first for connect(), so in the ephemeral range
# an odd port is far less likely to be held by someone's client socket (the
# nng rep socket takes its pub port + 1, which is even; gossip is UDP).
set_ports()
{
    export NGINX_PORT=$1 NODE1_PORT=$(($1 + 2)) NODE2_PORT=$(($1 + 4))
    export PROCSIM_DEFAULT_PORT=$(($1 + 6)) PROCSIM_FALLBACK_PORT=$(($1 + 8))
    export NODE1_NNG_PORT=$(($1 + 10)) NODE2_NNG_PORT=$(($1 + 12))
    export NODE1_GOSSIP_PORT=$(($1 + 14)) NODE2_GOSSIP_PORT=$(($1 + 16))
    DEF_URL=http://127.0.0.1:$PROCSIM_DEFAULT_PORT
    FB_URL=http://127.0.0.1:$PROCSIM_FALLBACK_PORT
}
set_ports $((PORT_BASE | 1))
export BUILD_DIR LOG_LEVEL=${LOG_LEVEL:-info}

TOPO_RUN_DIR=""
topo_stop()
{
    [ -n "$TOPO_RUN_DIR" ] || return 0
    RUN_DIR=$TOPO_RUN_DIR "$ROOT/ops/run.sh" stop >>"$LOG" 2>&1 || true
    TOPO_RUN_DIR=""
}
trap topo_stop EXIT
trap 'exit 130' INT TERM

# free_base: an odd base B in [PORT_BASE, PORT_BASE+183] whose ports B..B+16 no
# socket holds now other than in TIME-WAIT (bind with SO_REUSEADDR ignores
# those), and, as a precaution, whose nng rep ports have no socket at all (we
# did not check whether nng's listener sets SO_REUSEADDR), from a random start;
# fails when there is none.
free_base()
{
    local used tw off b p ok i
    used=" $(ss -Htan exclude time-wait 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | sort -u | tr '\n' ' ') "
    tw=" $(ss -Htan state time-wait 2>/dev/null | awk '{n = split($3, a, ":"); print a[n]}' | sort -u | tr '\n' ' ') "
    off=$((RANDOM % 92))
    for i in $(seq 0 91); do
        b=$(((PORT_BASE | 1) + 2 * ((off + i) % 92)))
        ok=1
        for p in $(seq "$b" $((b + 16))); do
            [[ $used == *" $p "* ]] && ok=0 && break
        done
        # the nng rep sockets (pub port + 1, even): no TIME-WAIT either
        for p in $((b + 11)) $((b + 13)); do
            [[ $tw == *" $p "* ]] && ok=0 && break
        done
        [ "$ok" = 0 ] || {
            echo "$b"
            return 0
        }
    done
    return 1
}

# topo_start <dir> <policy env, comma-separated VAR=VALUE>: the pair under the limits.
topo_start()
{
    local dir=$1 envs=()
    [ -z "$2" ] || IFS=, read -r -a envs <<<"$2"
    TOPO_RUN_DIR=$dir
    # Our ports lie in the kernel's ephemeral range: a client socket of anyone's
    # may hold one for a while, so a failed start is tried again 40 ports on
    # (--port-base P uses P..P+199 at most).
    local try base
    for try in 1 2 3 4 5 6 7 8; do
        base=$(free_base) || {
            sleep 2
            continue
        }
        set_ports "$base"
        env ${envs[@]+"${envs[@]}"} RUN_DIR="$dir" "$ROOT/ops/run.sh" --limits start >>"$LOG" 2>&1 &&
            return 0
        rm -rf "$dir/pids"
        echo "routing: start failed on ports $base..$((base + 16)) (try $try), trying others" >>"$LOG"
    done
    die "ops/run.sh start failed (see $LOG and $dir/logs)"
}

# stage_list <name>: the --stages text of bench/schedules/<name>.txt.
stage_list()
{
    sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$SCHED_DIR/$1.txt" | paste -sd ';'
}

"$PY" -c 'import json,sys,time; json.dump({"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "duration": int(sys.argv[1])}, open(sys.argv[2], "w"))' \
    "$DURATION" "$WORK/meta.json"

if [ "$CONNS" = 1 ]; then
    # The same fixed rate with the default ever slower: the attempts held open
    # grow (rate x delay / 2 per node) while the work per payment stays.
    IFS=, read -r -a DELAYS <<<"$CONNS_DELAYS"
    for pol in "${POLICIES[@]}"; do
        name=${pol%%=*} envs=${pol#*=}
        for rep in $(seq 1 "$REPEAT"); do
            for delay in "${DELAYS[@]}"; do
                d=$WORK/conns/$name-$delay-$rep
                mkdir -p "$d"
                echo "routing: in flight, $name, default delay $delay ms, run $rep"
                topo_start "$d/run" "$envs"
                curl -sS -o /dev/null -X PUT -H 'X-Rinha-Token: 123' -H 'Content-Type: application/json' \
                    -d "{\"delay\": $delay}" "$DEF_URL/admin/configurations/delay" ||
                    die "could not set the default's delay"
                pids="$(cat "$d/run/pids/node1.pid"),$(cat "$d/run/pids/node2.pid")"
                "$PY" "$TOOL" snap "$d/before.json" "nodes=$pids"
                "$BUILD_DIR/loadgen" --target "http://127.0.0.1:$NGINX_PORT" --default-url "$DEF_URL" \
                    --fallback-url "$FB_URL" --rate "$CONNS_RATE" --duration "$DURATION" \
                    --no-schedule --score --report "$d/report.json" >/dev/null 2>>"$LOG" ||
                    echo "routing: loadgen exit $? ($d)" >>"$LOG"
                "$PY" "$TOOL" snap "$d/after.json" "nodes=$pids"
                RUN_DIR=$d/run "$ROOT/ops/run.sh" --limits status >"$d/status.txt" 2>&1 || true
                cp "$d/run/logs/node1.log" "$d/run/logs/node2.log" "$d/" 2>/dev/null || true
                echo "{\"delay\": $delay, \"rate\": $CONNS_RATE}" >"$d/meta.json"
                topo_stop
            done
        done
    done
    "$PY" "$TOOL" conns "$WORK" | tee "$WORK/report.md"
    exit 0
fi

IFS=, read -r -a SCHED_LIST <<<"$SCHEDULES"
for rep in $(seq 1 "$REPEAT"); do
    for sched in "${SCHED_LIST[@]}"; do
        args=()
        case $sched in
        preview | final) args=(--schedule "$sched") ;;
        *)
            [ -f "$SCHED_DIR/$sched.txt" ] || die "no schedule $SCHED_DIR/$sched.txt"
            args=(--schedule final --stages "$(stage_list "$sched")")
            ;;
        esac
        for pol in "${POLICIES[@]}"; do
            name=${pol%%=*} envs=${pol#*=}
            d=$WORK/$sched/$name-$rep
            mkdir -p "$d"
            echo "routing: $sched, policy $name, run $rep"
            topo_start "$d/run" "$envs"
            printf '%s\n' "$envs" >"$d/policy.txt"
            printf '%q ' loadgen "${args[@]}" --duration "$DURATION" >"$d/command.txt"
            "$BUILD_DIR/loadgen" --target "http://127.0.0.1:$NGINX_PORT" --default-url "$DEF_URL" \
                --fallback-url "$FB_URL" "${args[@]}" --duration "$DURATION" \
                --report "$d/report.json" >/dev/null 2>>"$LOG" ||
                echo "routing: loadgen exit $? ($d)" >>"$LOG"
            RUN_DIR=$d/run "$ROOT/ops/run.sh" --limits status >"$d/status.txt" 2>&1 || true
            grep -h '"overflow to the fallback\|"routing changed' "$d/run/logs/node1.log" \
                "$d/run/logs/node2.log" >"$d/routing.log" 2>/dev/null || true
            topo_stop
        done
    done
done
"$PY" "$TOOL" report "$WORK" | tee "$WORK/report.md"
