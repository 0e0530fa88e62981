#!/usr/bin/env bash
# The pair's closed-loop ceiling under the compose limits, and what each part
# spends per request there: wrk (one thread, C keep-alive connections, each
# sending its next POST /payments as soon as the last one is answered) through
# nginx against `ops/run.sh --limits`, a fresh topology per run. For each run it
# prints requests/s, wrk's latency percentiles, the CPU each limited part used
# per request (from /proc, nginx's workers and each node's whole process) and
# how often the CFS quota paused each part. With several compose files the runs
# alternate between them, so that the machine's drift hits each split alike,
# and the medians per file close the report. This is the figure the split of the
# 1.5 CPU between nginx and the nodes rests on (docs/DEPLOY.md, "Limits");
# bench/decompose.sh's saturation search is the open-loop, p99-bounded figure.
#
# Usage: bench/ceiling.sh [options]
#   --compose LIST   comma-separated compose files to compare [docker-compose.yml]
#   --rounds N       runs of each file [3]
#   --duration S     seconds per wrk run [8]
#   --conns C        wrk connections [16]
#   --port-base P    ports P..P+10 on 127.0.0.1 [44100]
# Environment: BUILD_DIR [build]. Needs a build, nginx, wrk (apt-get install
# wrk), root with cgroup v1 (ops/run.sh --limits).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BUILD_DIR=${BUILD_DIR:-build}
COMPOSE=docker-compose.yml ROUNDS=3 DURATION=8 CONNS=16 PORT_BASE=44100

die()
{
    echo "ceiling: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --compose) COMPOSE=$2 && shift ;;
    --rounds) ROUNDS=$2 && shift ;;
    --duration) DURATION=$2 && shift ;;
    --conns) CONNS=$2 && shift ;;
    --port-base) PORT_BASE=$2 && shift ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
for v in ROUNDS DURATION CONNS PORT_BASE; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number (got ${!v})"
done
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
IFS=, read -r -a FILES <<<"$COMPOSE"
for f in "${FILES[@]}"; do
    [ -r "$f" ] || die "cannot read compose file $f"
done

B=$PORT_BASE
export NGINX_PORT=$B NODE1_PORT=$((B + 1)) NODE2_PORT=$((B + 2))
export NODE1_NNG_PORT=$((B + 3)) NODE2_NNG_PORT=$((B + 5))
export NODE1_GOSSIP_PORT=$((B + 7)) NODE2_GOSSIP_PORT=$((B + 8))
export PROCSIM_DEFAULT_PORT=$((B + 9)) PROCSIM_FALLBACK_PORT=$((B + 10))
export LOG_LEVEL=${LOG_LEVEL:-warn}
WORK=$(mktemp -d /tmp/ceiling.XXXXXX)
RUN=""
cleanup()
{
    [ -z "$RUN" ] || RUN_DIR=$RUN "$ROOT/ops/run.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU ticks (utime + stime) of a process and of all its threads.
ticks()
{
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# nginx's workers: the master's children.
nginx_workers()
{
    local master=$1 p
    for p in /proc/[0-9]*; do
        [ "$(awk '{ print $4 }' "$p/stat" 2>/dev/null)" = "$master" ] && echo "${p#/proc/}"
    done
    return 0
}

TICK_US=$((1000000 / $(getconf CLK_TCK)))
RESULTS=$WORK/results.tsv
echo "ceiling: wrk -t1 -c$CONNS -d${DURATION}s, $ROUNDS round(s), raw files in $WORK"
printf '| compose file | run | req/s | p50 | p90 | p99 | max | nginx us/req | node1 us/req | node2 us/req | throttled (times, ms): nginx; node1; node2 |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
for round in $(seq 1 "$ROUNDS"); do
    for f in "${FILES[@]}"; do
        RUN=$WORK/run-$round-$(basename "$f" .yml)
        COMPOSE_FILE=$f RUN_DIR=$RUN "$ROOT/ops/run.sh" --limits start >"$RUN.log" 2>&1 ||
            die "ops/run.sh --limits start failed with $f (see $RUN.log)"
        ngx=$(nginx_workers "$(cat "$RUN/pids/nginx.pid")")
        n1=$(cat "$RUN/pids/node1.pid") n2=$(cat "$RUN/pids/node2.pid")
        t0_ngx=0
        for w in $ngx; do t0_ngx=$((t0_ngx + $(ticks "$w"))); done
        t0_n1=$(ticks "$n1") t0_n2=$(ticks "$n2")
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$ROOT/ops/procsim/bench_post.lua" \
            "http://127.0.0.1:$NGINX_PORT/payments" >"$RUN.wrk" 2>&1 || die "wrk failed (see $RUN.wrk)"
        t1_ngx=0
        for w in $ngx; do t1_ngx=$((t1_ngx + $(ticks "$w"))); done
        t1_n1=$(ticks "$n1") t1_n2=$(ticks "$n2")
        status=$(COMPOSE_FILE=$f RUN_DIR=$RUN "$ROOT/ops/run.sh" --limits status 2>&1 || true)
        RUN_DIR=$RUN "$ROOT/ops/run.sh" stop >/dev/null 2>&1 || true
        RUN=""
        ! grep -q 'Non-2xx' "$WORK/run-$round-$(basename "$f" .yml).wrk" ||
            die "wrk saw non-2xx answers with $f (see $WORK)"
        awk -v f="$f" -v round="$round" -v dn="$((t1_ngx - t0_ngx))" -v d1="$((t1_n1 - t0_n1))" \
            -v d2="$((t1_n2 - t0_n2))" -v tick="$TICK_US" -v st="$status" '
            function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; return v * 1000 }
            $1 == "Requests/sec:" { rps = $2 }
            $1 == "Latency" && !lat { lat = 1; mx = ms($4) }
            $1 == "50%" { p50 = ms($2) } $1 == "90%" { p90 = ms($2) } $1 == "99%" { p99 = ms($2) }
            $0 ~ /requests in/ { n = $1 }
            END {
                split(st, lines, "\n"); thr = ""
                for (i in lines) if (lines[i] ~ /^(nginx|node1|node2) /) {
                    split(lines[i], w, " "); m = lines[i]
                    sub(/.*throttled /, "", m); sub(/ ms\).*/, "", m); sub(/ times \(/, ",", m)
                    t[w[1]] = m
                }
                printf "%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%.0f\t%.0f\t%s; %s; %s\n", f, round, rps,
                    p50, p90, p99, mx, dn * tick / n, d1 * tick / n, d2 * tick / n,
                    t["nginx"], t["node1"], t["node2"]
            }' "$WORK/run-$round-$(basename "$f" .yml).wrk" | tee -a "$RESULTS" |
            awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }'
    done
done

echo
echo "Medians per compose file (limits: service cpus memory-bytes):"
for f in "${FILES[@]}"; do
    lim=$(COMPOSE_FILE=$f "$ROOT/ops/run.sh" limits | tr '\n' ' ')
    awk -F'\t' -v f="$f" -v lim="$lim" '
        function med(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
            return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
        }
        $1 == f { n++; r[n] = $3; p[n] = $6; g[n] = $8; a[n] = $9; b[n] = $10 }
        END { printf "  %s [%s]: %.0f req/s, p99 %.2f ms, CPU per request: nginx %.0f us, node1 %.0f us, node2 %.0f us\n",
              f, lim, med(r, n), med(p, n), med(g, n), med(a, n), med(b, n) }' "$RESULTS"
done
