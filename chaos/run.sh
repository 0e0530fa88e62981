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
# Exit: 0 when lost = double = phantom = 0, no audit mismatch outside the allowed
#   partition windows, both nodes' summaries equal the simulators' at the end, and
#   every partition converged within CONVERGE_LIMIT_MS; 1 otherwise; 2 on a usage
#   or set-up error; 77 when a needed tool or binary is missing.
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
for p in node1 node2 nginx; do
    part_capture "$p"
done

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
touch "$WORK/accepted.txt"
sort -u "$WORK/accepted.txt" >"$WORK/accepted.sorted"
lookup_ids "$WORK/accepted.sorted"
awk '$1 != 200 && $2 != 200 { print $3 }' "$WORK/lookup.txt" | sort >"$WORK/lost.txt"
awk '$1 == 200 && $2 == 200 { print $3 }' "$WORK/lookup.txt" | sort >"$WORK/double.txt"
awk '($1 != 200 && $1 != 404) || ($2 != 200 && $2 != 404) { print }' "$WORK/lookup.txt" >"$WORK/lookup_errors.txt"
accepted=$(wc -l <"$WORK/accepted.sorted")
looked=$(wc -l <"$WORK/lookup.txt")
rec_d=$(awk '$1 == 200' "$WORK/lookup.txt" | wc -l)
rec_f=$(awk '$2 == 200' "$WORK/lookup.txt" | wc -l)
lost=$(wc -l <"$WORK/lost.txt")
double=$(wc -l <"$WORK/double.txt")
lookup_errors=$(wc -l <"$WORK/lookup_errors.txt")

final=$(summaries_line)
for n in 1 2; do
    node_get "$n" /metrics >"$WORK/node$n.metrics"
done
echo "$final" >"$WORK/summaries.final"
read -r n1dc n1dm n1fc n1fm _ n2dc n2dm n2fc n2fm _ sdc sdm sfc sfm <<<"$final"
phantom=-1
if [[ $sdc =~ ^[0-9]+$ ]] && [[ $sfc =~ ^[0-9]+$ ]]; then
    phantom=$(((sdc - rec_d) + (sfc - rec_f)))
fi

# Audit mismatches; those inside a partition window (from the cut to the heal plus
# the measured convergence plus 1 s, loadgen's clock starting a little after ours)
# are allowed, and reported apart.
jq -s '[.[] | select(.kind == "partition" or .kind == "converged")]' "$WORK/events.jsonl" >"$WORK/partitions.json"
windows=$(jq -c '
    ([.[] | select(.kind == "converged") | .afterMs]) as $c
    | [.[] | select(.kind == "partition")] | to_entries
    | map(.value as $p | ($c[.key] // -1) as $ms
          | {from: ($p.t - 1), heal: ($p.t + $p.secs),
             to: ($p.t + $p.secs + (if $ms < 0 then 30000 else $ms end) / 1000 + 1)})' "$WORK/partitions.json")
if [ -s "$WORK/loadgen.json" ]; then
    read -r audits_total audit_mismatch audit_allowed audit_errors < <(jq -r --argjson w "$windows" '
        [ .audits[] | select(.ok) ] as $ok
        | ($ok | map(select(. as $a | any($w[]; $a.atS >= .from and $a.atS <= .to)))) as $in
        | "\(.audits | length) \(($ok | map(.inconsistencies) | add // 0) - ($in | map(.inconsistencies) | add // 0)) \($in | map(.inconsistencies) | add // 0) \(.auditErrors)"
        ' "$WORK/loadgen.json")
else
    audits_total=0 audit_mismatch=-1 audit_allowed=0 audit_errors=0
fi
node1_ok=false
node2_ok=false
[ "$n1dc $n1dm $n1fc $n1fm" != "$sdc $sdm $sfc $sfm" ] || node1_ok=true
[ "$n2dc $n2dm $n2fc $n2fm" != "$sdc $sdm $sfc $sfm" ] || node2_ok=true
slow_conv=$(jq -r --argjson lim "$CONVERGE_LIMIT_MS" '[.[] | select(.kind == "converged") | select(.afterMs < 0 or .afterMs > $lim)] | length' "$WORK/partitions.json")

violations=()
[ "$lg_rc" = 0 ] || violations+=("loadgen exited with $lg_rc")
[ "$lost" = 0 ] || violations+=("lost: $lost accepted payments recorded by no processor")
[ "$double" = 0 ] || violations+=("double: $double payments recorded by both processors")
[ "$phantom" = 0 ] || violations+=("phantom: $phantom records without a 2xx")
[ "$audit_mismatch" = 0 ] || [ "$LENIENT_AUDITS" = 1 ] || violations+=("audit mismatches: $audit_mismatch")
[ "$lookup_errors" = 0 ] || violations+=("lookups that got neither 200 nor 404: $lookup_errors")
[ "$looked" = "$accepted" ] || violations+=("looked up $looked of $accepted accepted ids")
[ "$node1_ok" = true ] || violations+=("node1 summary differs from the processors' at the end")
[ "$node2_ok" = true ] || violations+=("node2 summary differs from the processors' at the end")
[ "$slow_conv" = 0 ] || violations+=("partition: summaries did not converge within ${CONVERGE_LIMIT_MS} ms of the heal")
[ "$drain_ms" != -1 ] || violations+=("queue not drained within ${DRAIN_TIMEOUT:-60} s")

ok=true
[ ${#violations[@]} -eq 0 ] || ok=false
summ()
{
    jq -n --argjson a "$1" --argjson b "$2" --argjson c "$3" --argjson d "$4" \
        '{default: {totalRequests: $a, cents: $b}, fallback: {totalRequests: $c, cents: $d}}' 2>/dev/null || echo null
}
lg_summary=null
[ ! -s "$WORK/loadgen.json" ] || lg_summary=$(jq -c '{accepted, requests, auditErrors, inconsistencies, stages, score}' "$WORK/loadgen.json")
jq -n \
    --arg scenario "$SCENARIO" --argjson seed "$SEED" --argjson duration "$DURATION" \
    --argjson users "$USERS" --argjson limits "$([ ${#limits[@]} -gt 0 ] && echo true || echo false)" \
    --arg work "$WORK" --argjson ok "$ok" \
    --slurpfile events "$WORK/events.jsonl" \
    --argjson accepted "$accepted" --argjson lost "$lost" --argjson double "$double" \
    --argjson phantom "$phantom" --argjson recd "$rec_d" --argjson recf "$rec_f" \
    --argjson amis "$audit_mismatch" --argjson aallowed "$audit_allowed" \
    --argjson aerr "$audit_errors" --argjson atotal "$audits_total" \
    --argjson lookuperr "$lookup_errors" --argjson drain "$drain_ms" \
    --argjson windows "$windows" --argjson convlimit "$CONVERGE_LIMIT_MS" \
    --argjson lenient "$([ "$LENIENT_AUDITS" = 1 ] && echo true || echo false)" \
    --argjson sims "$(summ "$sdc" "$sdm" "$sfc" "$sfm")" \
    --argjson node1 "$(summ "$n1dc" "$n1dm" "$n1fc" "$n1fm")" \
    --argjson node2 "$(summ "$n2dc" "$n2dm" "$n2fc" "$n2fm")" \
    --argjson n1ok "$node1_ok" --argjson n2ok "$node2_ok" \
    --argjson loadgen "$lg_summary" \
    --rawfile lostids <(head -n 50 "$WORK/lost.txt") \
    --rawfile doubleids <(head -n 50 "$WORK/double.txt") \
    --arg violations "$(printf '%s\n' ${violations[@]+"${violations[@]}"})" \
    '{scenario: $scenario, seed: $seed, durationS: $duration, users: $users, limits: $limits,
      work: $work, ok: $ok,
      violations: ($violations | split("\n") | map(select(length > 0))),
      verdict: {accepted: $accepted, recordedDefault: $recd, recordedFallback: $recf,
                lost: $lost, double: $double, phantom: $phantom,
                phantomFormula: "phantom = (default totalRequests - accepted ids recorded by default) + (fallback totalRequests - accepted ids recorded by fallback); each simulator holds an id at most once (a repeat is 422), so this counts every record whose id never got a 2xx",
                lookupErrors: $lookuperr,
                audits: {count: $atotal, mismatches: $amis, allowedInPartitionWindows: $aallowed,
                         errors: $aerr, partitionWindowsS: $windows, lenient: $lenient},
                partitionConvergeLimitMs: $convlimit,
                summaries: {processors: $sims, node1: $node1, node2: $node2,
                            node1MatchesProcessors: $n1ok, node2MatchesProcessors: $n2ok},
                drainMs: $drain,
                lostIds: ($lostids | split("\n") | map(select(length > 0))),
                doubleIds: ($doubleids | split("\n") | map(select(length > 0)))},
      timeline: $events, loadgen: $loadgen}' >"$REPORT"

echo "chaos: $SCENARIO: accepted $accepted, lost $lost, double $double, phantom $phantom," \
    "audit mismatches $audit_mismatch (+$audit_allowed allowed in partition windows, $audit_errors audit errors)"
echo "chaos: summaries at the end: processors d=$sdc/$sdm f=$sfc/$sfm;" \
    "node1 $([ "$node1_ok" = true ] && echo equal || echo "d=$n1dc/$n1dm f=$n1fc/$n1fm DIFFERENT")," \
    "node2 $([ "$node2_ok" = true ] && echo equal || echo "d=$n2dc/$n2dm f=$n2fc/$n2fm DIFFERENT"); drained in ${drain_ms} ms"
[ ! -s "$WORK/loadgen.json" ] || jq -r '.requests.payments | "chaos: client: \(.sent) payments sent, \(.ok) got a 2xx, \(.failed) failed (\(.errors | to_entries | map(select(.value > 0) | "\(.key) \(.value)") | join(", "))), p99 \(.latencyMs.p99) ms"' "$WORK/loadgen.json"
jq -r '.[] | select(.kind == "converged") | "chaos: partition healed, converged after \(.afterMs) ms"' "$WORK/partitions.json"
if [ "$ok" = true ]; then
    echo "chaos: PASS ($REPORT)"
    exit 0
fi
printf 'chaos: VIOLATION: %s\n' "${violations[@]}"
echo "chaos: FAIL ($REPORT; logs in $RUN_DIR/logs)"
exit 1
