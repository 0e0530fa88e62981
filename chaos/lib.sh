#!/usr/bin/env bash
# Shared helpers of the chaos runs (sourced by chaos/run.sh). The topology is
# ops/run.sh's, started on a private port block and RUN_DIR (a killed part comes
# back through ops/run.sh restart); the load is build/loadgen's; this file adds
# the faults (kill/restart, freeze, partition, nginx restart, processor outage),
# the drain and the collection of the raw data that chaos/verdict.py judges.
#
# Faults that need the kernel (partition, processor outage) use nftables rules in a
# table of their own (chaos_<pid>), matching only the given ports on 127.0.0.1, and
# deleted on heal and on exit. Everything started here is ended by pid or process
# group, never by name.
#
# Needs: bash, curl (>= 7.75, for --parallel and %{url_effective}), jq, nft, ss,
# python3 (standard library only: chaos/verdict.py).

CHAOS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Debian's python3 first, as ops/run.sh does.
CHAOS_PY=${PYTHON:-/usr/bin/python3}
[ -x "$CHAOS_PY" ] || CHAOS_PY=python3
# pid_alive, group_members
# shellcheck source=ops/proc.sh
. "$CHAOS_ROOT/ops/proc.sh"

# ------------------------------------------------------------------- settings

# chaos_ports BASE: the topology's ports, all in BASE..BASE+49.
chaos_ports()
{
    local b=$1
    export NGINX_PORT=$b NODE1_PORT=$((b + 1)) NODE2_PORT=$((b + 2))
    export NODE1_NNG_PORT=$((b + 11)) NODE2_NNG_PORT=$((b + 13))
    export NODE1_GOSSIP_PORT=$((b + 21)) NODE2_GOSSIP_PORT=$((b + 22))
    export PROCSIM_DEFAULT_PORT=$((b + 31)) PROCSIM_FALLBACK_PORT=$((b + 32))
    unset DEFAULT_PROCESSOR_URL FALLBACK_PROCESSOR_URL
}

chaos_need_tools()
{
    local t missing=()
    for t in curl jq nft ss setsid timeout "$CHAOS_PY"; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "chaos: missing tools: ${missing[*]}" >&2
        return 1
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "chaos: needs root (nftables rules for partitions and processor outages)" >&2
        return 1
    fi
    return 0
}

now_ms()
{
    local n
    n=$(date +%s%N)
    echo $((n / 1000000))
}

# ms since the run's t0 (CHAOS_T0_MS), as seconds with 3 decimals.
chaos_t()
{
    local d=$(($(now_ms) - CHAOS_T0_MS))
    printf '%d.%03d' $((d / 1000)) $((d % 1000))
}

# chaos_event KIND JSON-FIELDS...: one line of the timeline (also to stdout).
# Fields are "key=value" pairs; values that look like numbers stay numbers.
chaos_event()
{
    local kind=$1 t
    shift
    t=$(chaos_t)
    echo "[chaos t=${t}s] $kind $*"
    local args=(--arg kind "$kind" --argjson t "$t") kv k v filter='{t: $t, kind: $kind}'
    local i=0
    for kv in "$@"; do
        k=${kv%%=*}
        v=${kv#*=}
        if [[ $v =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then
            args+=(--argjson "v$i" "$v")
        else
            args+=(--arg "v$i" "$v")
        fi
        filter="$filter + {\"$k\": \$v$i}"
        i=$((i + 1))
    done
    jq -cn "${args[@]}" "$filter" >>"$CHAOS_WORK/events.jsonl"
}

# ISO-8601 UTC with ms of an epoch-ms value.
iso_ms()
{
    local ms=$1
    printf '%s.%03dZ' "$(date -u -d "@$((ms / 1000))" +%Y-%m-%dT%H:%M:%S)" $((ms % 1000))
}

# ---------------------------------------------------------------- the topology

topo()
{
    "$CHAOS_ROOT/ops/run.sh" "$@"
}

part_pid()
{
    cat "$RUN_DIR/pids/$1.pid" 2>/dev/null
}

# part_running PART: its pid file names a live process.
part_running()
{
    local pid
    pid=$(part_pid "$1") && [ -n "$pid" ] && pid_alive "$pid"
}

# part_restart PART: starts PART again with ops/run.sh restart (its recorded
# command line, environment and cgroups), without waiting for it to answer: the
# fault measures that itself.
part_restart()
{
    topo restart --no-wait "$1" >>"$CHAOS_WORK/restart.log" 2>&1 || true
}

# Waits (bounded, $2 s) until no live process is in process group $1.
wait_group_gone()
{
    local pgid=$1 deadline=$(($(now_ms) + ${2:-10} * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        [ -n "$(group_members "$pgid")" ] || return 0
        sleep 0.05
    done
    return 1
}

node_port()
{
    if [ "$1" = 1 ]; then echo "$NODE1_PORT"; else echo "$NODE2_PORT"; fi
}

# GET on a node's own TCP port; prints the body (empty on failure).
node_get()
{
    curl -s --max-time "${3:-2}" "http://127.0.0.1:$(node_port "$1")$2" 2>/dev/null || true
}

# Which node (1 or 2) holds the health-checker role now (from /metrics); 1 when
# neither answers.
current_checker()
{
    local n
    for n in 1 2; do
        if node_get "$n" /metrics 1 | grep -qx 'paynode_health_checker 1'; then
            echo "$n"
            return 0
        fi
    done
    echo 1
}

# node1|node2|1|2|checker|other -> 1 or 2.
resolve_node()
{
    local c
    case $1 in
    1 | node1) echo 1 ;;
    2 | node2) echo 2 ;;
    checker) current_checker ;;
    other)
        c=$(current_checker)
        echo $((3 - c))
        ;;
    *) return 1 ;;
    esac
}

# Waits (bounded, $2 s) until node $1 answers /healthz 200; prints the ms it took.
wait_node_ready()
{
    local n=$1 t0 deadline code
    t0=$(now_ms)
    deadline=$((t0 + ${2:-20} * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
            "http://127.0.0.1:$(node_port "$n")/healthz" 2>/dev/null || true)
        if [ "$code" = 200 ]; then
            echo $(($(now_ms) - t0))
            return 0
        fi
        sleep 0.05
    done
    echo -1
    return 1
}

# ----------------------------------------------------------------------- faults

# fault_kill NODE PAUSE_S: SIGKILL the node, restart it after PAUSE_S seconds.
fault_kill()
{
    local n pid pause=${2:-3} ready
    n=$(resolve_node "$1")
    if ! part_running "node$n"; then
        chaos_event fault-error what="kill node$n: not running"
        return 0
    fi
    pid=$(part_pid "node$n")
    kill -KILL "$pid" 2>/dev/null || true
    chaos_event kill node="node$n" pid="$pid" spec="$1"
    wait_group_gone "$pid" 5 || true
    sleep "$pause"
    part_restart "node$n"
    chaos_event restart node="node$n" pid="$(part_pid "node$n")"
    ready=$(wait_node_ready "$n" 30) || true
    chaos_event ready node="node$n" afterMs="$ready"
}

# fault_freeze NODE SECS: SIGSTOP, then SIGCONT after SECS.
fault_freeze()
{
    local n pid secs=${2:-3}
    n=$(resolve_node "$1")
    pid=$(part_pid "node$n") || true
    if [ -z "$pid" ] || ! pid_alive "$pid"; then
        chaos_event fault-error what="freeze node$n: not running"
        return 0
    fi
    echo "$pid" >>"$CHAOS_WORK/frozen"
    kill -STOP "$pid"
    chaos_event freeze node="node$n" pid="$pid" spec="$1"
    sleep "$secs"
    kill -CONT "$pid"
    chaos_event thaw node="node$n" pid="$pid"
}

nft_table()
{
    echo "chaos_${CHAOS_ID}_$1"
}

# Removes every nftables table this run made.
nft_cleanup()
{
    local t
    for t in $(nft list tables 2>/dev/null | awk -v p="chaos_${CHAOS_ID}_" 'index($3, p) == 1 { print $2 " " $3 }' | tr ' ' ':'); do
        nft delete table "${t%%:*}" "${t#*:}" 2>/dev/null || true
    done
}

# The nodes' peer ports (nng pub and rep of each node, TCP; gossip, UDP).
peer_tcp_ports()
{
    echo "$NODE1_NNG_PORT, $((NODE1_NNG_PORT + 1)), $NODE2_NNG_PORT, $((NODE2_NNG_PORT + 1))"
}

# Drops (silently) every packet between the two nodes: TCP to or from their nng
# ports and UDP to their gossip ports, on 127.0.0.1 only. Nothing else is matched.
partition_cut()
{
    local t
    t=$(nft_table partition)
    nft -f - <<EOF
table inet $t {
    chain out {
        type filter hook output priority 0; policy accept;
        ip saddr 127.0.0.1 ip daddr 127.0.0.1 tcp dport { $(peer_tcp_ports) } drop
        ip saddr 127.0.0.1 ip daddr 127.0.0.1 tcp sport { $(peer_tcp_ports) } drop
        ip saddr 127.0.0.1 ip daddr 127.0.0.1 udp dport { $NODE1_GOSSIP_PORT, $NODE2_GOSSIP_PORT } drop
    }
}
EOF
}

partition_heal()
{
    nft delete table inet "$(nft_table partition)" 2>/dev/null || true
}

# summaries_fetch DIR [TO_ISO]: both nodes' summaries and both simulators' for the
# window [-, TO_ISO] (all time without it), as they answered, into
# DIR/{node1,node2,default,fallback}.json (empty on a failed request).
summaries_fetch()
{
    local dir=$1 to=${2:-} q="" n s p
    mkdir -p "$dir"
    [ -z "$to" ] || q="?from=2000-01-01T00:00:00.000Z&to=$to"
    for n in 1 2; do
        node_get "$n" "/payments-summary$q" >"$dir/node$n.json"
    done
    for s in default fallback; do
        if [ "$s" = default ]; then p=$PROCSIM_DEFAULT_PORT; else p=$PROCSIM_FALLBACK_PORT; fi
        curl -s --max-time 2 -H "X-Rinha-Token: ${PROCSIM_TOKEN:-123}" \
            "http://127.0.0.1:$p/admin/payments-summary$q" >"$dir/$s.json" 2>/dev/null || true
    done
}

# summaries_line [TO_ISO]: fetches the four summaries and prints verdict.py's
# line of counts and cents ("node1 | node2 | processors", x where unknown);
# status 0 when both nodes' equal the simulators'.
summaries_line()
{
    local dir=$CHAOS_WORK/summaries.$$
    summaries_fetch "$dir" "${1:-}"
    "$CHAOS_PY" "$CHAOS_ROOT/chaos/verdict.py" summaries "$dir"
}

# After a heal at HEAL_MS: ms until both nodes and both simulators agree on the
# window up to the heal instant, twice in a row ~50 ms apart (-1 if not within
# CONVERGE_WAIT_S).
measure_convergence()
{
    local heal_ms=$1 to line prev="" first=-1 deadline
    to=$(iso_ms "$heal_ms")
    deadline=$((heal_ms + ${CONVERGE_WAIT_S:-30} * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if line=$(summaries_line "$to"); then
            if [ "$line" = "$prev" ] && [ "$first" -ge 0 ]; then
                echo "$first"
                return 0
            fi
            [ "$first" -ge 0 ] || first=$(($(now_ms) - heal_ms))
        else
            first=-1
        fi
        prev=$line
        sleep 0.05
    done
    echo "-1 $line"
    return 1
}

# fault_partition SECS: cut the nodes off from each other, heal after SECS, then
# measure how long the summaries take to converge.
fault_partition()
{
    local secs=${1:-5} heal conv
    partition_cut
    chaos_event partition secs="$secs"
    sleep "$secs"
    partition_heal
    heal=$(now_ms)
    chaos_event heal
    if conv=$(measure_convergence "$heal"); then
        chaos_event converged afterMs="$conv"
    else
        chaos_event converged afterMs=-1 last="${conv#* }"
    fi
}

# fault_nginx [hard]: restart nginx: SIGQUIT (graceful, as `docker restart`
# does with the nginx image's STOPSIGNAL) or with "hard" SIGKILL to its group.
fault_nginx()
{
    local pid mode=${1:-graceful}
    if ! part_running nginx; then
        chaos_event fault-error what="nginx: not running"
        return 0
    fi
    pid=$(part_pid nginx)
    if [ "$mode" = hard ]; then
        kill -KILL -- "-$pid" 2>/dev/null || true
    else
        kill -QUIT "$pid" 2>/dev/null || true
    fi
    chaos_event nginx-stop mode="$mode" pid="$pid"
    if ! wait_group_gone "$pid" 10; then
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait_group_gone "$pid" 5 || true
    fi
    part_restart nginx
    chaos_event nginx-start pid="$(part_pid nginx)"
    local t0 code="" deadline
    t0=$(now_ms)
    deadline=$((t0 + 10000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
            "http://127.0.0.1:$NGINX_PORT/healthz" 2>/dev/null || true)
        [ "$code" != 200 ] || break
        sleep 0.05
    done
    if [ "$code" = 200 ]; then
        chaos_event nginx-ready afterMs=$(($(now_ms) - t0))
    else
        chaos_event nginx-ready afterMs=-1
    fi
}

# fault_procsim default|fallback|both SECS: what the nodes see when a processor
# restarts (its records are kept, as the real one's are in its database): every
# open connection to it is reset (requests in flight get no answer, though the
# simulator may still record them after its delay), and connections are refused
# for SECS.
fault_procsim()
{
    local which=${1:-default} secs=${2:-3} ports=() t p
    case $which in
    default) ports=("$PROCSIM_DEFAULT_PORT") ;;
    fallback) ports=("$PROCSIM_FALLBACK_PORT") ;;
    both) ports=("$PROCSIM_DEFAULT_PORT" "$PROCSIM_FALLBACK_PORT") ;;
    esac
    t=$(nft_table "procsim_$which")
    local set
    set=$(
        IFS=,
        echo "${ports[*]}"
    )
    nft -f - <<EOF
table inet $t {
    chain out {
        type filter hook output priority 0; policy accept;
        ip daddr 127.0.0.1 tcp dport { $set } reject with tcp reset
        ip saddr 127.0.0.1 tcp sport { $set } reject with tcp reset
    }
}
EOF
    for p in "${ports[@]}"; do
        ss -K -tn "( dport = :$p or sport = :$p )" >/dev/null 2>&1 || true
    done
    chaos_event procsim-down which="$which" secs="$secs"
    sleep "$secs"
    nft delete table inet "$t" 2>/dev/null || true
    chaos_event procsim-up which="$which"
}

# run_fault "AT:ACTION[:ARG[:ARG]]" (AT in s from t0): waits until AT, then runs it.
run_fault()
{
    local spec=$1 at action a1 a2 due wait_ms
    IFS=: read -r at action a1 a2 <<<"$spec"
    due=$((CHAOS_T0_MS + $(awk -v a="$at" 'BEGIN { printf "%d", a * 1000 }')))
    wait_ms=$((due - $(now_ms)))
    [ "$wait_ms" -le 0 ] || sleep "$(awk -v w="$wait_ms" 'BEGIN { printf "%.3f", w / 1000 }')"
    case $action in
    kill) fault_kill "${a1:-node1}" "${a2:-3}" ;;
    freeze) fault_freeze "${a1:-node1}" "${a2:-3}" ;;
    partition) fault_partition "${a1:-5}" ;;
    nginx) fault_nginx "${a1:-graceful}" ;;
    procsim) fault_procsim "${a1:-default}" "${a2:-3}" ;;
    *) echo "chaos: unknown fault '$spec'" >&2 ;;
    esac
}

valid_fault()
{
    local at action a1 a2
    IFS=: read -r at action a1 a2 <<<"$1"
    [[ $at =~ ^[0-9]+(\.[0-9]+)?$ ]] || return 1
    case $action in
    kill | freeze)
        [[ ${a1:-node1} =~ ^(node1|node2|1|2|checker|other)$ ]] || return 1
        [[ ${a2:-3} =~ ^[0-9]+(\.[0-9]+)?$ ]]
        ;;
    partition) [[ ${a1:-5} =~ ^[0-9]+(\.[0-9]+)?$ ]] ;;
    nginx) [[ ${a1:-graceful} =~ ^(graceful|hard)$ ]] ;;
    procsim)
        [[ ${a1:-default} =~ ^(default|fallback|both)$ ]] || return 1
        [[ ${a2:-3} =~ ^[0-9]+(\.[0-9]+)?$ ]]
        ;;
    *) return 1 ;;
    esac
}

# The faults in order, one after the other (each waits for its own AT).
run_faults()
{
    local f
    for f in "$@"; do
        run_fault "$f"
    done
}

# -------------------------------------------------------------- processors

procsim_admin()
{
    local port=$1 what=$2 body=$3
    curl -s -o /dev/null --max-time 2 -X PUT -H "X-Rinha-Token: ${PROCSIM_TOKEN:-123}" \
        -H 'Content-Type: application/json' -d "$body" \
        "http://127.0.0.1:$port/admin/configurations/$what" 2>/dev/null || true
}

# Both simulators healthy again (no delay, not failing), so the queue can drain.
processors_heal()
{
    local p
    for p in "$PROCSIM_DEFAULT_PORT" "$PROCSIM_FALLBACK_PORT"; do
        procsim_admin "$p" delay '{"delay":0}'
        procsim_admin "$p" failure '{"failure":false}'
    done
}

# Waits until both nodes' whole-run summaries equal the simulators' and stay so
# for two polls 0.5 s apart, at most DRAIN_TIMEOUT s; prints the ms taken (-1 on
# timeout) and leaves the last line in $CHAOS_WORK/summaries.final.
drain()
{
    local t0 deadline line prev="" agree
    t0=$(now_ms)
    deadline=$((t0 + ${DRAIN_TIMEOUT:-60} * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        agree=0
        if line=$(summaries_line); then
            agree=1
        fi
        echo "$line" >"$CHAOS_WORK/summaries.final"
        if [ "$agree" = 1 ] && [ "$line" = "$prev" ]; then
            echo $(($(now_ms) - t0))
            return 0
        fi
        prev=$line
        sleep 0.5
    done
    echo -1
    return 1
}

# ------------------------------------------------------- raw data for the verdict

# Looks every accepted correlationId up at both simulators (GET /payments/{id},
# 200 = recorded, 404 = not), in parallel over keep-alive; writes curl's
# "<code> <url>" per request to $CHAOS_WORK/lookup.raw (chaos/verdict.py reads it).
lookup_ids()
{
    local acc=$1 p
    for p in "$PROCSIM_DEFAULT_PORT" "$PROCSIM_FALLBACK_PORT"; do
        awk -v p="$p" '{ printf "url = \"http://127.0.0.1:%s/payments/%s\"\noutput = \"/dev/null\"\n", p, $1 }' "$acc"
    done >"$CHAOS_WORK/lookup.cfg"
    curl -s --no-progress-meter -Z --parallel-max 32 --max-time 10 -K "$CHAOS_WORK/lookup.cfg" \
        -w '%{http_code} %{url_effective}\n' >"$CHAOS_WORK/lookup.raw" 2>/dev/null || true
}
