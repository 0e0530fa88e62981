#!/usr/bin/env bash
# Where a POST's latency and CPU go, in one run: the same fixed-rate load
# (loadgen --rate R --no-schedule) against procsim alone, nginx answering a
# constant, a lone node (direct and via nginx) and the pair (direct and via
# nginx), beside a bare UDP ping-pong between two processes at the same rate;
# then the pair's saturation rate and the compressed final (pair vs lone node)
# under the compose limits. This script only starts, samples and stops parts;
# bench/decompose.py computes and prints every figure (docs/BENCHMARKS.md §5).
#
# Usage: bench/decompose.sh [options]
#   --rates LIST        comma-separated payments/s for the table [300,1000]
#   --duration S        seconds per fixed-rate run [15]
#   --repeat N          runs of everything, medians reported [1]
#   --rows LIST         subset of procsim,nginxc,lone,pair,pingpong [all]
#   --quick             --rates 300 --duration 5 --skip-saturation --skip-final
#   --skip-table        no fixed-rate table
#   --skip-saturation   no saturation search
#   --skip-final        no compressed final
#   --table-limits      run the table's topologies under the compose limits too
#   --sat-start R       first rate of the saturation search [1000]
#   --sat-max R         highest rate it tries [32000]
#   --sat-steps N       at most N steps [9]
#   --sat-duration S    seconds per step [5]
#   --final-duration S  the final's compressed length [60]
#   --port-base P       ports P..P+29 on 127.0.0.1 [27000]
#   --rt-priority N     loadgen's (and the pinger's) SCHED_FIFO priority [50 as root, else 0]
#   --work DIR          keep raw files there [a new /tmp/decompose.XXXXXX]
# Environment: BUILD_DIR [build]. Needs a build (scripts/build.sh), nginx, python3;
# root for --rt-priority, and root with cgroup v1 for the limits (saturation, final).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TOOL=$ROOT/bench/decompose.py
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}

RATES=300,1000
DURATION=15
REPEAT=1
ROWS=procsim,nginxc,lone,pair,pingpong
DO_TABLE=1 DO_SAT=1 DO_FINAL=1 TABLE_LIMITS=0
SAT_START=1000 SAT_MAX=32000 SAT_STEPS=9 SAT_DURATION=5
FINAL_DURATION=60
PORT_BASE=27000
RT=0
[ "$(id -u)" != 0 ] || RT=50
WORK=""

die()
{
    echo "decompose: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --rates) RATES=$2 && shift ;;
    --duration) DURATION=$2 && shift ;;
    --repeat) REPEAT=$2 && shift ;;
    --rows) ROWS=$2 && shift ;;
    --quick) RATES=300 DURATION=5 DO_SAT=0 DO_FINAL=0 ;;
    --skip-table) DO_TABLE=0 ;;
    --skip-saturation) DO_SAT=0 ;;
    --skip-final) DO_FINAL=0 ;;
    --table-limits) TABLE_LIMITS=1 ;;
    --sat-start) SAT_START=$2 && shift ;;
    --sat-max) SAT_MAX=$2 && shift ;;
    --sat-steps) SAT_STEPS=$2 && shift ;;
    --sat-duration) SAT_DURATION=$2 && shift ;;
    --final-duration) FINAL_DURATION=$2 && shift ;;
    --port-base) PORT_BASE=$2 && shift ;;
    --rt-priority) RT=$2 && shift ;;
    --work) WORK=$2 && shift ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
for v in DURATION REPEAT SAT_START SAT_MAX SAT_STEPS SAT_DURATION FINAL_DURATION PORT_BASE RT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got ${!v})"
done
[[ $RATES =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--rates wants e.g. 300,1000"
for b in paynode procsim loadgen bench_udp_pingpong; do
    [ -x "$BUILD_DIR/$b" ] || die "$BUILD_DIR/$b missing: build first (bash scripts/build.sh)"
done
[ -x "$NGINX_BIN" ] || die "nginx not found ($NGINX_BIN)"
has_row()
{
    [[ ,$ROWS, == *,$1,* ]]
}

[ -n "$WORK" ] || WORK=$(mktemp -d /tmp/decompose.XXXXXX)
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LOG=$WORK/decompose.log
echo "decompose: raw files and logs in $WORK"

# ------------------------------------------------------------------ ports
P_PS1=$((PORT_BASE + 1)) P_PS2=$((PORT_BASE + 2))
P_NGINXC=$((PORT_BASE + 5))
export NGINX_PORT=$((PORT_BASE + 10)) NODE1_PORT=$((PORT_BASE + 11)) NODE2_PORT=$((PORT_BASE + 12))
export NODE1_NNG_PORT=$((PORT_BASE + 13)) NODE2_NNG_PORT=$((PORT_BASE + 15))
export NODE1_GOSSIP_PORT=$((PORT_BASE + 17)) NODE2_GOSSIP_PORT=$((PORT_BASE + 18))
export PROCSIM_DEFAULT_PORT=$((PORT_BASE + 21)) PROCSIM_FALLBACK_PORT=$((PORT_BASE + 22))
export BUILD_DIR LOG_LEVEL=${LOG_LEVEL:-warn}

# ---------------------------------------------------- what we started, and stop
OWN_PIDS=()     # process groups started here (setsid)
TOPO_RUN_DIR="" # an ops/run.sh topology that is up

stop_own()
{
    local pid _
    for pid in "${OWN_PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${OWN_PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    OWN_PIDS=()
}

topo_stop()
{
    [ -n "$TOPO_RUN_DIR" ] || return 0
    RUN_DIR=$TOPO_RUN_DIR "$ROOT/ops/run.sh" stop >>"$LOG" 2>&1 || true
    TOPO_RUN_DIR=""
}

cleanup()
{
    stop_own
    topo_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# spawn <log> <command...>: in its own session; pid appended to OWN_PIDS.
spawn()
{
    local log=$1
    shift
    setsid "$@" </dev/null >>"$log" 2>&1 &
    OWN_PIDS+=("$!")
}

wait_port()
{
    local _
    for _ in $(seq 1 100); do
        # shellcheck disable=SC2016
        timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on 127.0.0.1:$1 (see $LOG)"
}

# topo_start <name> <nodes> <limits 0|1>: an ops/run.sh topology in WORK/run-<name>.
topo_start()
{
    local dir=$WORK/run-$1 lim=()
    [ "$3" = 0 ] || lim=(--limits)
    TOPO_RUN_DIR=$dir
    RUN_DIR=$dir NODES=$2 "$ROOT/ops/run.sh" "${lim[@]}" start >>"$LOG" 2>&1 ||
        die "ops/run.sh start failed (see $LOG and $dir/logs)"
}

topo_pid()
{
    cat "$TOPO_RUN_DIR/pids/$1.pid"
}

snap()
{
    "$PY" "$TOOL" snap "$@"
}

# loadgen <report> <target> [extra flags...]: processors are the topology's or ours.
loadgen()
{
    local report=$1 target=$2
    shift 2
    "$BUILD_DIR/loadgen" --target "$target" --default-url "http://127.0.0.1:$DEF_PORT" \
        --fallback-url "http://127.0.0.1:$FB_PORT" --rt-priority "$RT" --report "$report" \
        "$@" >/dev/null 2>>"$LOG" || echo "decompose: loadgen exit $? ($report)" >>"$LOG"
}

# rate_run <topo dir> <row> <rate> <rep> <target> <NAME=PID...> -- [loadgen flags]
rate_run()
{
    local tdir=$1 row=$2 rate=$3 rep=$4 target=$5 specs=()
    shift 5
    while [ "$1" != -- ]; do
        specs+=("$1")
        shift
    done
    shift
    local d=$tdir/$row-$rate-$rep
    mkdir -p "$d"
    echo "decompose: $row at $rate/s, run $rep"
    snap "$d/before.json" "${specs[@]}"
    loadgen "$d/report.json" "$target" --rate "$rate" --duration "$DURATION" --no-schedule "$@"
    snap "$d/after.json" "${specs[@]}"
}

idle_sample()
{
    snap "$1/idle0.json" "${@:2}"
    sleep "${IDLE_S:-3}"
    snap "$1/idle1.json" "${@:2}"
}

IFS=, read -r -a RATE_LIST <<<"$RATES"
"$PY" -c 'import json,sys,time; json.dump({"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "rates": [int(r) for r in sys.argv[1].split(",")] if sys.argv[2] == "1" else [], "duration": int(sys.argv[3]), "repeat": int(sys.argv[4])}, open(sys.argv[5], "w"))' \
    "$RATES" "$DO_TABLE" "$DURATION" "$REPEAT" "$WORK/meta.json"

# -------------------------------------------------------- the fixed-rate table
if [ "$DO_TABLE" = 1 ]; then
    DEF_PORT=$P_PS1 FB_PORT=$P_PS2
    if has_row procsim || has_row nginxc; then
        # Our own simulators: the target of the procsim row, and the processors
        # loadgen sets up (token, purge) in the nginx-constant row.
        spawn "$WORK/procsims.log" "$BUILD_DIR/procsim" --host 127.0.0.1 --port "$P_PS1" --name default --fee 0.05
        PS1_PID=${OWN_PIDS[-1]}
        spawn "$WORK/procsims.log" "$BUILD_DIR/procsim" --host 127.0.0.1 --port "$P_PS2" --name fallback --fee 0.15
        wait_port "$P_PS1"
        wait_port "$P_PS2"
        if has_row procsim; then
            mkdir -p "$WORK/procsim"
            idle_sample "$WORK/procsim" "procsim=$PS1_PID"
            for rep in $(seq 1 "$REPEAT"); do
                for rate in "${RATE_LIST[@]}"; do
                    rate_run "$WORK/procsim" procsim "$rate" "$rep" "http://127.0.0.1:$P_PS1" \
                        "procsim=$PS1_PID" -- --with-requested-at
                done
            done
        fi
        if has_row nginxc; then
            # nginx.conf as ops/run.sh renders it (same events, http and server/listen
            # settings), with the proxying replaced by a constant answer.
            d=$WORK/nginxc
            mkdir -p "$d/run/nginx/cache" "$d/run/nginx/log" "$d/run/sock"
            RUN_DIR=$d/run NGINX_PORT=$P_NGINXC "$ROOT/ops/run.sh" render-nginx |
                sed -e 's|^\([[:space:]]*\)proxy_pass http://paynodes;|\1return 202 "{\\"status\\":\\"accepted\\"}";|' \
                    >"$d/run/nginx/nginx.conf"
            grep -q 'return 202' "$d/run/nginx/nginx.conf" || die "nginx.conf has no 'proxy_pass http://paynodes;' to replace"
            g="daemon off;"
            [ "$(id -u)" != 0 ] || g="daemon off; user root;"
            spawn "$d/nginx.log" "$NGINX_BIN" -p "$d/run/nginx/" -e "$d/run/nginx/log/error.log" \
                -c "$d/run/nginx/nginx.conf" -g "$g"
            NGX_PID=${OWN_PIDS[-1]}
            wait_port "$P_NGINXC"
            idle_sample "$d" "nginx=$NGX_PID"
            for rep in $(seq 1 "$REPEAT"); do
                for rate in "${RATE_LIST[@]}"; do
                    rate_run "$d" nginxc "$rate" "$rep" "http://127.0.0.1:$P_NGINXC" "nginx=$NGX_PID" --
                done
            done
        fi
        stop_own
    fi

    DEF_PORT=$PROCSIM_DEFAULT_PORT FB_PORT=$PROCSIM_FALLBACK_PORT
    for topo in lone pair; do
        has_row "$topo" || continue
        nodes=1
        [ "$topo" = lone ] || nodes=2
        echo "decompose: starting the $topo topology"
        topo_start "$topo" "$nodes" "$TABLE_LIMITS"
        mkdir -p "$WORK/$topo"
        specs=("nginx=$(topo_pid nginx)" "node1=$(topo_pid node1)"
            "procsims=$(topo_pid procsim-default),$(topo_pid procsim-fallback)")
        [ "$nodes" = 1 ] || specs+=("node2=$(topo_pid node2)")
        idle_sample "$WORK/$topo" "${specs[@]}"
        for rep in $(seq 1 "$REPEAT"); do
            for rate in "${RATE_LIST[@]}"; do
                rate_run "$WORK/$topo" "$topo-direct" "$rate" "$rep" "http://127.0.0.1:$NODE1_PORT" "${specs[@]}" --
                rate_run "$WORK/$topo" "$topo-nginx" "$rate" "$rep" "http://127.0.0.1:$NGINX_PORT" "${specs[@]}" --
            done
        done
        topo_stop
    done

    if has_row pingpong; then
        mkdir -p "$WORK/pingpong"
        for rep in $(seq 1 "$REPEAT"); do
            for rate in "${RATE_LIST[@]}"; do
                echo "decompose: udp ping-pong at $rate/s, run $rep"
                "$BUILD_DIR/bench_udp_pingpong" --rate "$rate" --duration "$DURATION" \
                    --rt-priority "$RT" >"$WORK/pingpong/pingpong-$rate-$rep.json" 2>>"$LOG" ||
                    echo "decompose: bench_udp_pingpong failed at $rate/s" >>"$LOG"
            done
        done
    fi
fi

# ----------------------------------------------- saturation, under the limits
if [ "$DO_SAT" = 1 ]; then
    DEF_PORT=$PROCSIM_DEFAULT_PORT FB_PORT=$PROCSIM_FALLBACK_PORT
    d=$WORK/saturation
    mkdir -p "$d"
    echo "{\"duration\": $SAT_DURATION}" >"$d/meta.json"
    echo "decompose: saturation search (pair via nginx, compose limits)"
    topo_start sat 2 1
    while rate=$("$PY" "$TOOL" sat-next "$d" "$SAT_START" "$SAT_MAX" "$SAT_STEPS") && [ -n "$rate" ]; do
        echo "decompose: saturation step at $rate/s"
        loadgen "$d/$rate.json" "http://127.0.0.1:$NGINX_PORT" --rate "$rate" \
            --duration "$SAT_DURATION" --no-schedule
        [ -s "$d/$rate.json" ] || die "loadgen wrote no report at $rate/s (see $LOG)"
        sleep 1
    done
    RUN_DIR=$TOPO_RUN_DIR "$ROOT/ops/run.sh" --limits status >"$d/status.txt" 2>&1 || true
    topo_stop
fi

# ------------------------------------------------ compressed final, pair vs lone
if [ "$DO_FINAL" = 1 ]; then
    DEF_PORT=$PROCSIM_DEFAULT_PORT FB_PORT=$PROCSIM_FALLBACK_PORT
    mkdir -p "$WORK/final"
    echo "{\"duration\": $FINAL_DURATION}" >"$WORK/final/meta.json"
    for rep in $(seq 1 "$REPEAT"); do
        for which in pair lone; do
            nodes=2
            [ "$which" = pair ] || nodes=1
            echo "decompose: compressed final, $which, run $rep"
            topo_start "final-$which-$rep" "$nodes" 1
            mkdir -p "$WORK/final/$which-$rep"
            loadgen "$WORK/final/$which-$rep/report.json" "http://127.0.0.1:$NGINX_PORT" \
                --schedule final --duration "$FINAL_DURATION"
            RUN_DIR=$TOPO_RUN_DIR "$ROOT/ops/run.sh" --limits status \
                >"$WORK/final/$which-$rep/status.txt" 2>&1 || true
            topo_stop
        done
    done
fi

"$PY" "$TOOL" report "$WORK" | tee "$WORK/report.md"
