#!/usr/bin/env bash
# The long soak: one run of the final schedule stretched over DURATION seconds
# (default 600) with random faults one after the other (kills and restarts of
# either node or of the current health-checker, frozen nodes, partitions, nginx
# restarts, processor restarts), then the same verdict as every chaos run.
#
# Usage: chaos/soak.sh [--duration S] [--users N] [--seed N] [--report PATH] [run.sh options]
# Defaults: 600 s, 300 users, seed from the clock, report in the work directory.
# Prints the verdict and a Markdown line for docs/BENCHMARKS.md ("Soak").
# Partitions make audit mismatches inside their windows allowed (README.md, "Chaos");
# a frozen node may cost an audit mismatch too, hence --lenient-audits: the audit
# figures are printed and kept in the report, and the run still fails on any loss,
# double charge, phantom, summary difference or slow convergence.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DURATION=600
USERS=300
SEED=$(date +%s)
REPORT=""
rest=()
while [ $# -gt 0 ]; do
    case $1 in
    --duration) DURATION=$2 && shift ;;
    --users) USERS=$2 && shift ;;
    --seed) SEED=$2 && shift ;;
    --report) REPORT=$2 && shift ;;
    *) rest+=("$1") ;;
    esac
    shift
done
WORK=$(mktemp -d /tmp/chaos-soak.XXXXXX)
[ -n "$REPORT" ] || REPORT=$WORK/report.json
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$SECONDS
rc=0
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-120} "$HERE/run.sh" random --duration "$DURATION" --users "$USERS" --seed "$SEED" \
    --port-base "${SOAK_PORT_BASE:-19350}" --work "$WORK" --report "$REPORT" --lenient-audits \
    ${rest[@]+"${rest[@]}"} || rc=$?
[ -s "$REPORT" ] || exit "$rc"
jq -r --arg started "$started" --argjson wall $((SECONDS - t0)) --arg commit "$(git -C "$HERE/.." rev-parse --short HEAD 2>/dev/null || echo '?')" '
    def n(k): [.timeline[] | select(.kind == k)] | length;
    "| \($started) | \($commit) | \(.durationS) s, \(.users) users, seed \(.seed) | " +
    "kill \(n("kill")), freeze \(n("freeze")), partition \(n("partition")), nginx \(n("nginx-stop")), processor restart \(n("procsim-down")) | " +
    "\(.verdict.accepted) | \(.verdict.lost) / \(.verdict.double) / \(.verdict.phantom) | " +
    "\(.verdict.audits.mismatches) (+\(.verdict.audits.allowedInPartitionWindows) in partitions) of \(.verdict.audits.count) audits | " +
    "\(if .verdict.summaries.node1MatchesProcessors and .verdict.summaries.node2MatchesProcessors then "equal" else "DIFFERENT" end) | " +
    "\([.timeline[] | select(.kind == "converged") | .afterMs] | map(tostring) | join(", ")) | " +
    "\(if .ok then "pass" else "FAIL" end) | \($wall) s |"' "$REPORT" | tee "$WORK/benchmarks-line.md"
echo "soak: report $REPORT"
exit "$rc"
