#!/usr/bin/env bash
# One chaos run: the local topology (ops/run.sh) under the load generator's
# compressed challenge run, with faults injected at chosen or random moments, then
# a verdict from the client's own record and the simulators' records.
#
# Usage: chaos/run.sh SCENARIO [options]
# Scenarios (times are fractions of the run's duration D):
#   baseline         no fault
#   kill             SIGKILL node1 at 0.25 D, restart it 3 s later; node2 likewise at 0.6 D
#   kill-checker     SIGKILL the current health-checker at 0.25 D and again at 0.6 D
#   freeze           SIGSTOP node1 for 3 s at 0.3 D; node2 likewise at 0.65 D
#   partition        cut the nodes off from each other for 5 s at 0.3 D, both serving
#   nginx            restart nginx (graceful, SIGQUIT) at 0.3 D and at 0.65 D
#   procsim          each processor "restarts" for 3 s (default at 0.3 D, fallback at
#                    0.6 D): open connections reset, new ones refused, records kept
#   processors       both processors failing from 0.15 D to 0.4 D, both 3 s slow from
#                    0.55 D to 0.8 D, healthy otherwise (instead of the final schedule)
#   random           random faults (seeded) one after the other until 0.85 D
#   custom           only the faults given with --fault
# Options:
#   --duration S     load duration (default 40; the final schedule compressed)
#   --users N        virtual users at the end of the ramp (default 300)
#   --fault SPEC     add a fault: AT:kill:NODE[:PAUSE]  AT:freeze:NODE[:SECS]
#                    AT:partition[:SECS]  AT:nginx[:graceful|hard]
#                    AT:procsim:default|fallback|both[:SECS]
#                    (AT in seconds from the start of the load; NODE is node1, node2,
#                    checker or other)
#   --seed N         seed of the random scenario (default: time)
#   --report PATH    write the JSON report there (default WORK/report.json)
#   --work DIR       keep the run's files there (default a new /tmp/chaos.XXXXXX)
#   --port-base P    ports P..P+49 (default 19100)
#   --limits / --no-limits   the compose file's cgroup limits (default: when usable)
#   --keep           leave the topology running at the end
#   --lenient-audits audit mismatches are reported but are not a violation (a frozen
#                    node: see chaos/README.md)
# Environment: BUILD_DIR (default build), DRAIN_TIMEOUT (60 s), CONVERGE_LIMIT_MS
#   (2000: the partition guarantee), AUDIT_INTERVAL_S (2).
# Exit (chaos/verdict.py's): 0 when lost = double = phantom = 0, no audit mismatch
#   outside the allowed partition windows, both nodes' summaries equal the
#   simulators' at the end, and every partition converged within
#   CONVERGE_LIMIT_MS; 1 otherwise; 2 on a usage or set-up error; 77 when a needed
#   tool or binary is missing.
set -euo pipefail

# shellcheck source=chaos/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CHAOS_ROOT"

usage()
{
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# Re-invoked in its own process group to run the faults (so that the main script
# can stop all of it at once).
if [ "${1:-}" = --fault-runner ]; then
    shift
    run_faults "$@"
    exit 0
fi

SCENARIO=${1:-}
[ -n "$SCENARIO" ] || {
    usage >&2
    exit 2
}
[ "$SCENARIO" != -h ] && [ "$SCENARIO" != --help ] || {
    usage
    exit 0
}
shift
DURATION=40
USERS=300
FAULTS=()
SEED=$(date +%s)
REPORT=""
WORK=""
PORT_BASE=19100
LIMITS_MODE=auto
KEEP=0
LENIENT_AUDITS=0
while [ $# -gt 0 ]; do
    case $1 in
    --duration) DURATION=$2 && shift ;;
    --users) USERS=$2 && shift ;;
    --fault) FAULTS+=("$2") && shift ;;
    --seed) SEED=$2 && shift ;;
    --report) REPORT=$2 && shift ;;
    --work) WORK=$2 && shift ;;
    --port-base) PORT_BASE=$2 && shift ;;
    --limits) LIMITS_MODE=on ;;
    --no-limits) LIMITS_MODE=off ;;
    --keep) KEEP=1 ;;
    --lenient-audits) LENIENT_AUDITS=1 ;;
    *)
        echo "chaos/run.sh: unknown option $1" >&2
        exit 2
        ;;
    esac
    shift
done
[[ $DURATION =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 10 ] || {
    echo "chaos/run.sh: --duration wants whole seconds >= 10" >&2
    exit 2
}
[[ $USERS =~ ^[0-9]+$ ]] || {
    echo "chaos/run.sh: bad --users" >&2
    exit 2
}

# at FRACTION -> seconds (3 decimals) of the duration
at()
{
    awk -v f="$1" -v d="$DURATION" 'BEGIN { printf "%.3f", f * d }'
}

STAGES=""
case $SCENARIO in
baseline | custom) ;;
kill) FAULTS=("$(at 0.25):kill:node1:3" "$(at 0.6):kill:node2:3" "${FAULTS[@]}") ;;
kill-checker) FAULTS=("$(at 0.25):kill:checker:3" "$(at 0.6):kill:checker:3" "${FAULTS[@]}") ;;
freeze) FAULTS=("$(at 0.3):freeze:node1:3" "$(at 0.65):freeze:node2:3" "${FAULTS[@]}") ;;
partition) FAULTS=("$(at 0.3):partition:5" "${FAULTS[@]}") ;;
nginx) FAULTS=("$(at 0.3):nginx:graceful" "$(at 0.65):nginx:graceful" "${FAULTS[@]}") ;;
procsim) FAULTS=("$(at 0.3):procsim:default:3" "$(at 0.6):procsim:fallback:3" "${FAULTS[@]}") ;;
processors)
    # loadgen compresses the final schedule's 300 s to DURATION: give the stages
    # in the uncompressed time base (fraction x 300).
    STAGES="0:0/n,0/n;45:0/y,0/y;120:0/n,0/n;165:3000/n,3000/n;240:0/n,0/n"
    ;;
random)
    RANDOM=$SEED
    t=5
    end=$(awk -v d="$DURATION" 'BEGIN { printf "%d", d * 0.85 }')
    while [ "$t" -lt "$end" ]; do
        nodes=(node1 node2 checker other)
        node=${nodes[$((RANDOM % 4))]}
        case $((RANDOM % 6)) in
        0 | 1)
            pause=$((1 + RANDOM % 5))
            FAULTS+=("$t:kill:$node:$pause")
            t=$((t + pause + 6))
            ;;
        2)
            secs=$((1 + RANDOM % 4))
            FAULTS+=("$t:freeze:$node:$secs")
            t=$((t + secs + 4))
            ;;
        3)
            secs=$((2 + RANDOM % 7))
            FAULTS+=("$t:partition:$secs")
            t=$((t + secs + 6))
            ;;
        4)
            FAULTS+=("$t:nginx:graceful")
            t=$((t + 3))
            ;;
        5)
            procs=(default fallback both)
            secs=$((1 + RANDOM % 5))
            FAULTS+=("$t:procsim:${procs[$((RANDOM % 3))]}:$secs")
            t=$((t + secs + 3))
            ;;
        esac
        t=$((t + 4 + RANDOM % 12))
    done
    ;;
*)
    echo "chaos/run.sh: unknown scenario '$SCENARIO' (see --help)" >&2
    exit 2
    ;;
esac
for f in ${FAULTS[@]+"${FAULTS[@]}"}; do
    valid_fault "$f" || {
        echo "chaos/run.sh: bad fault '$f' (see --help)" >&2
        exit 2
    }
done

chaos_need_tools || exit 77
BUILD_DIR=$(cd "$CHAOS_ROOT" && realpath -m "${BUILD_DIR:-build}")
export BUILD_DIR
for b in paynode procsim loadgen; do
    [ -x "$BUILD_DIR/$b" ] || {
        echo "chaos/run.sh: $BUILD_DIR/$b is not built" >&2
        exit 77
    }
done

if [ -z "$WORK" ]; then
    WORK=$(mktemp -d /tmp/chaos.XXXXXX)
else
    mkdir -p "$WORK"
    WORK=$(realpath "$WORK")
fi
[ -n "$REPORT" ] || REPORT=$WORK/report.json
export CHAOS_WORK=$WORK CHAOS_ID=$$ RUN_DIR=$WORK/run
: >"$WORK/events.jsonl"
: >"$WORK/frozen"
chaos_ports "$PORT_BASE"
export PROCSIM_TOKEN=${PROCSIM_TOKEN:-123}
CONVERGE_LIMIT_MS=${CONVERGE_LIMIT_MS:-2000}
AUDIT_INTERVAL_S=${AUDIT_INTERVAL_S:-2}

limits=()
if [ "$LIMITS_MODE" = on ]; then
    limits=(--limits)
elif [ "$LIMITS_MODE" = auto ]; then
    cpu=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ { print $3 }' /proc/self/cgroup)
    mem=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' /proc/self/cgroup)
    if [ -n "$cpu" ] && [ -n "$mem" ] && [ -w "/sys/fs/cgroup/cpu${cpu%/}" ] &&
        [ -w "/sys/fs/cgroup/memory${mem%/}" ]; then
        limits=(--limits)
    fi
fi

FAULT_PID=""
cleanup()
{
    local rc=$? pid
    trap - EXIT INT TERM
    if [ -n "$FAULT_PID" ]; then
        kill -TERM -- "-$FAULT_PID" 2>/dev/null || true
        wait_group_gone "$FAULT_PID" 5 || kill -KILL -- "-$FAULT_PID" 2>/dev/null || true
    fi
    while read -r pid; do
        [ -z "$pid" ] || kill -CONT "$pid" 2>/dev/null || true
    done <"$WORK/frozen"
    nft_cleanup
    if [ "$KEEP" != 1 ]; then
        topo stop >"$WORK/stop.log" 2>&1 || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "chaos: scenario $SCENARIO, ${DURATION}s, $USERS users, ports $PORT_BASE.., work $WORK${limits:+, with limits}"
if ! topo "${limits[@]}" start >"$WORK/start.log" 2>&1; then
    cat "$WORK/start.log" >&2
    exit 2
fi

lg_args=(--target "http://127.0.0.1:$NGINX_PORT"
    --default-url "http://127.0.0.1:$PROCSIM_DEFAULT_PORT"
    --fallback-url "http://127.0.0.1:$PROCSIM_FALLBACK_PORT"
    --schedule final --duration "$DURATION" --users "$USERS"
    --accepted-file "$WORK/accepted.txt" --report "$WORK/loadgen.json"
    --audit-interval-s "$AUDIT_INTERVAL_S" --token "$PROCSIM_TOKEN")
[ -z "$STAGES" ] || lg_args+=(--stages "$STAGES")

CHAOS_T0_MS=$(now_ms)
export CHAOS_T0_MS
chaos_event start scenario="$SCENARIO" faults="${FAULTS[*]:-}" seed="$SEED"
if [ ${#FAULTS[@]} -gt 0 ]; then
    setsid "$0" --fault-runner "${FAULTS[@]}" </dev/null &
    FAULT_PID=$!
fi
lg_rc=0
timeout $((DURATION + 120)) "$BUILD_DIR/loadgen" "${lg_args[@]}" >"$WORK/loadgen.out" 2>"$WORK/loadgen.err" ||
    lg_rc=$?
chaos_event load-end rc="$lg_rc"
if [ -n "$FAULT_PID" ]; then
    # Faults scheduled inside the run finish soon after it (a restart's wait for
    # readiness, a convergence measurement): bounded.
    for _ in $(seq 1 600); do
        pid_alive "$FAULT_PID" || break
        sleep 0.1
    done
    if pid_alive "$FAULT_PID"; then
        echo "chaos: the fault runner is still going 60 s after the load: stopping it" >&2
        kill -TERM -- "-$FAULT_PID" 2>/dev/null || true
    fi
    wait "$FAULT_PID" 2>/dev/null || true
    FAULT_PID=""
fi

processors_heal
drain_ms=$(drain) || true
chaos_event drained afterMs="$drain_ms"

# ------------------------------------------------------------------ verdict
# The raw data (accepted ids, per-id lookups at both simulators, the final
# summaries, the timeline, loadgen's report) into WORK; chaos/verdict.py decides,
# writes the report, prints the verdict and gives the exit status.
touch "$WORK/accepted.txt"
sort -u "$WORK/accepted.txt" >"$WORK/accepted.sorted"
lookup_ids "$WORK/accepted.sorted"
summaries_fetch "$WORK/summaries"
for n in 1 2; do
    node_get "$n" /metrics >"$WORK/node$n.metrics"
done
"$CHAOS_PY" "$CHAOS_ROOT/chaos/verdict.py" summaries "$WORK/summaries" >"$WORK/summaries.final" || true

verdict_args=(--work "$WORK" --report "$REPORT" --run-dir "$RUN_DIR"
    --scenario "$SCENARIO" --seed "$SEED" --duration "$DURATION" --users "$USERS"
    --loadgen-rc "$lg_rc" --drain-ms "$drain_ms" --drain-timeout-s "${DRAIN_TIMEOUT:-60}"
    --converge-limit-ms "$CONVERGE_LIMIT_MS" --default-port "$PROCSIM_DEFAULT_PORT")
[ ${#limits[@]} -eq 0 ] || verdict_args+=(--limits)
[ "$LENIENT_AUDITS" != 1 ] || verdict_args+=(--lenient-audits)
rc=0
"$CHAOS_PY" "$CHAOS_ROOT/chaos/verdict.py" report "${verdict_args[@]}" || rc=$?
exit "$rc"
