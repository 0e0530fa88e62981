#!/usr/bin/env bash
# ctest-label: integration
# The local topology end to end: ops/run.sh starts two simulators, two nodes and
# nginx (with the compose file's cgroup limits when cgroup v1 is writable) on ports
# TOPOLOGY_PORT_BASE..+49 (default 19000, so that it never collides with a dev
# topology on the defaults); then GET /healthz and POST /payments go through nginx
# to the nodes; `restart` brings back a killed node, a running one and nginx with the
# command line, environment and cgroups they had; and after `stop` no process it
# started may be left (checked by pid, nginx workers included).
# Exit 77 (skipped) when paynode or procsim is not built in BUILD_DIR.
# Env: SOURCE_DIR (repo root), BUILD_DIR (where paynode and procsim are),
# TOPOLOGY_PORT_BASE.
set -euo pipefail

SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$SOURCE_DIR/build}
RUN_SH=$SOURCE_DIR/ops/run.sh
# shellcheck source=ops/proc.sh
. "$SOURCE_DIR/ops/proc.sh"
TMP=$(mktemp -d /tmp/test_topology.XXXXXX)
passed=0
failed=0

ok()
{
    echo "ok   - $*"
    passed=$((passed + 1))
}

not_ok()
{
    echo "FAIL - $*"
    failed=$((failed + 1))
}

finish()
{
    echo "$passed passed, $failed failed"
    if [ "$failed" -eq 0 ]; then
        exit 0
    fi
    exit 1
}

# One request to 127.0.0.1:port through bash's /dev/tcp (no client binary needed).
# Prints the status code, a space, and the body. Bounded by `timeout`.
http()
{
    local port=$1 method=$2 path=$3 body=${4:-}
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 10 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" \
            "$2" "$3" "${#4}" "$4" >&3
        resp=$(cat <&3)
        code=${resp#* }
        printf "%s %s\n" "${code%% *}" "${resp#*$'"'"'\r\n\r\n'"'"'}"
    ' _ "$port" "$method" "$path" "$body" 2>/dev/null || echo "none"
}

# ---- a missing binary is reported clearly (needs nothing built)
out=$(BUILD_DIR=$TMP/nothing RUN_DIR=$TMP/r0 "$RUN_SH" start 2>&1) && rc=0 || rc=$?
if [ "$rc" -ne 0 ] && grep -q "paynode not found at $TMP/nothing/paynode" <<<"$out" &&
    [ -z "$(ls -A "$TMP/r0/pids" 2>/dev/null)" ]; then
    ok "start without a built paynode fails clearly (rc $rc: $out)"
else
    not_ok "start without paynode: rc $rc, output: $out"
fi

for bin in paynode procsim; do
    if [ ! -x "$BUILD_DIR/$bin" ]; then
        echo "skip - $BUILD_DIR/$bin is not built: topology not tested"
        rm -rf "$TMP"
        exit 77
    fi
done

export BUILD_DIR
export RUN_DIR=$TMP/run
b=${TOPOLOGY_PORT_BASE:-19000}
export NGINX_PORT=$b NODE1_PORT=$((b + 1)) NODE2_PORT=$((b + 2))
export NODE1_NNG_PORT=$((b + 11)) NODE2_NNG_PORT=$((b + 13))
export NODE1_GOSSIP_PORT=$((b + 21)) NODE2_GOSSIP_PORT=$((b + 22))
export PROCSIM_DEFAULT_PORT=$((b + 31)) PROCSIM_FALLBACK_PORT=$((b + 32))
unset DEFAULT_PROCESSOR_URL FALLBACK_PROCESSOR_URL LIMITS

limits=()
cpu=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ { print $3 }' /proc/self/cgroup)
mem=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' /proc/self/cgroup)
if [ "$(id -u)" = 0 ] && [ -n "$cpu" ] && [ -n "$mem" ] &&
    [ -w "/sys/fs/cgroup/cpu${cpu%/}" ] && [ -w "/sys/fs/cgroup/memory${mem%/}" ]; then
    limits=(--limits)
    echo "# with --limits (cgroup v1 cpu and memory are writable)"
else
    echo "# without --limits (no writable cgroup v1 cpu and memory hierarchy)"
fi

trap '"$RUN_SH" stop >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT

if "$RUN_SH" "${limits[@]}" start >"$TMP/start.log" 2>&1; then
    ok "ops/run.sh ${limits[*]} start"
    sed 's/^/    /' "$TMP/start.log"
else
    not_ok "ops/run.sh ${limits[*]} start failed:"
    sed 's/^/    /' "$TMP/start.log"
    "$RUN_SH" logs || true
    finish
fi

if "$RUN_SH" status >"$TMP/status.log" 2>&1; then
    ok "status: every part up"
else
    not_ok "status: not every part up"
fi
sed 's/^/    /' "$TMP/status.log"
if [ ${#limits[@]} -gt 0 ]; then
    if [ "$(grep -c 'peak .* MiB of' "$TMP/status.log")" = 3 ]; then
        ok "status shows peak memory for nginx, node1, node2"
    else
        not_ok "status shows no peak memory for the limited parts"
    fi
    cgroups=$(cat "$RUN_DIR/cgroups")
    quota=$(cat "$(grep '/cpu/.*-node1$' <<<"$cgroups")/cpu.cfs_quota_us")
    cpus=$("$RUN_SH" limits | awk '$1 == "node1" { print $2 }')
    want=$(awk -v c="$cpus" 'BEGIN { printf "%d", c * 100000 + 0.5 }')
    if [ -n "$cpus" ] && [ "$quota" = "$want" ]; then
        ok "node1 runs under a CPU quota of $quota us per 100 ms (cpus $cpus in docker-compose.yml)"
    else
        not_ok "node1 CPU quota is $quota, want $want (cpus '$cpus' in docker-compose.yml)"
    fi
    pid1=$(cat "$RUN_DIR/pids/node1.pid")
    if grep -qxF "$pid1" "$(grep '/memory/.*-node1$' <<<"$cgroups")/cgroup.procs"; then
        ok "node1 (pid $pid1) is inside its memory cgroup"
    else
        not_ok "node1 (pid $pid1) is not in its memory cgroup"
    fi
fi

# Every process started: the parts and their process groups (nginx's workers).
pids=()
for f in "$RUN_DIR"/pids/*.pid; do
    pgid=$(cat "$f")
    for st in /proc/[0-9]*/stat; do
        rest=$(cat "$st" 2>/dev/null) || continue
        rest=${rest##*) }
        read -r _ _ grp _ <<<"$rest"
        if [ "$grp" = "$pgid" ]; then
            p=${st#/proc/}
            pids+=("${p%/stat}")
        fi
    done
done
if [ ${#pids[@]} -ge 6 ]; then
    ok "started processes: ${pids[*]} (5 parts + nginx worker)"
else
    not_ok "expected at least 6 processes, found: ${pids[*]}"
fi

r=$(http "$NGINX_PORT" GET /healthz)
if [[ $r == "200 "* ]]; then
    ok "GET /healthz through nginx -> $r"
else
    not_ok "GET /healthz through nginx -> $r"
fi
seen=""
for _ in 1 2 3 4; do
    r=$(http "$NGINX_PORT" GET /healthz)
    id=$(sed -n 's/.*"nodeId":\([0-9]*\).*/\1/p' <<<"$r")
    seen="$seen$id "
done
if [[ $seen == *1* ]] && [[ $seen == *2* ]]; then
    ok "round-robin over the unix sockets reaches both nodes (nodeId: $seen)"
else
    not_ok "round-robin: nodeIds seen through nginx: $seen"
fi

id=$(cat /proc/sys/kernel/random/uuid)
body="{\"correlationId\":\"$id\",\"amount\":19.90}"
r=$(http "$NGINX_PORT" POST /payments "$body")
if [[ $r == 2* ]]; then
    ok "POST /payments through nginx -> $r"
else
    not_ok "POST /payments through nginx -> $r"
fi
r=$(http "$NGINX_PORT" POST /payments "$body")
if [[ $r == 2* ]]; then
    ok "the same POST /payments again (other node, round-robin) -> $r"
else
    not_ok "the same POST /payments again -> $r"
fi
r=$(http "$NGINX_PORT" GET /payments-summary)
if [[ $r == "200 "* ]]; then
    ok "GET /payments-summary through nginx -> $r"
else
    not_ok "GET /payments-summary through nginx -> $r"
fi

# ---- restart: a killed part is started again, a running one stopped first; both
# as start made them (same command line, environment and cgroups).
# proc_file PID FILE: /proc/PID/FILE with NULs as newlines, sorted.
proc_file()
{
    tr '\0' '\n' <"/proc/$1/$2" | sort
}

# part_cgroups PID: its cpu and memory cgroups (cgroup v1).
part_cgroups()
{
    awk -F: '$2 ~ /(^|,)(cpu|memory)(,|$)/ { print $2 ":" $3 }' "/proc/$1/cgroup"
}

restart_check()
{
    local part=$1 how=$2 old new
    old=$(cat "$RUN_DIR/pids/$part.pid")
    proc_file "$old" cmdline >"$TMP/$part.cmdline.old"
    proc_file "$old" environ >"$TMP/$part.environ.old"
    part_cgroups "$old" >"$TMP/$part.cgroups.old"
    if [ "$how" = kill ]; then
        kill -KILL "$old"
        for _ in $(seq 1 50); do
            pid_alive "$old" || break
            sleep 0.1
        done
    fi
    # A variable the caller has and start did not: the restarted part must not
    # see it (its environment is the recorded one).
    if ! RESTART_CALLER_ONLY=1 "$RUN_SH" restart "$part" >"$TMP/restart.log" 2>&1; then
        not_ok "ops/run.sh restart $part (after $how) failed:"
        sed 's/^/    /' "$TMP/restart.log"
        return
    fi
    new=$(cat "$RUN_DIR/pids/$part.pid")
    if [ "$new" = "$old" ] || ! [ -r "/proc/$new/environ" ]; then
        not_ok "restart $part (after $how): pid $old -> $new"
        return
    fi
    ok "ops/run.sh restart $part (after $how): pid $old -> $new, $(tail -n1 "$TMP/restart.log")"
    if pid_alive "$old"; then
        not_ok "restart $part: the old process $old still runs"
    fi
    if proc_file "$new" cmdline | cmp -s - "$TMP/$part.cmdline.old" &&
        proc_file "$new" environ | cmp -s - "$TMP/$part.environ.old" &&
        part_cgroups "$new" | cmp -s - "$TMP/$part.cgroups.old"; then
        ok "restart $part: same command line, environment and cgroups ($(tr '\n' ' ' <"$TMP/$part.cgroups.old"))"
    else
        not_ok "restart $part: the restarted process differs from the one start made:"
        diff "$TMP/$part.cmdline.old" <(proc_file "$new" cmdline) | sed 's/^/    cmdline /'
        diff "$TMP/$part.environ.old" <(proc_file "$new" environ) | sed 's/^/    environ /'
        diff "$TMP/$part.cgroups.old" <(part_cgroups "$new") | sed 's/^/    cgroups /'
    fi
}

restart_check node1 kill
restart_check node2 running
restart_check nginx running
out=$("$RUN_SH" restart nosuchpart 2>&1) && rc=0 || rc=$?
if [ "$rc" = 1 ] && grep -q "restart wants a part" <<<"$out"; then
    ok "restart of an unknown part is refused (rc 1)"
else
    not_ok "restart nosuchpart: rc $rc, $out"
fi
id=$(cat /proc/sys/kernel/random/uuid)
r=$(http "$NGINX_PORT" POST /payments "{\"correlationId\":\"$id\",\"amount\":19.90}")
if [[ $r == 2* ]]; then
    ok "POST /payments through nginx after the restarts -> $r"
else
    not_ok "POST /payments through nginx after the restarts -> $r"
fi
# The restarted parts' processes (nginx's new worker too) count among those that
# must be gone after stop.
for f in "$RUN_DIR"/pids/*.pid; do
    mapfile -t -O "${#pids[@]}" pids < <(group_members "$(cat "$f")")
done

cgroups=$(cat "$RUN_DIR/cgroups" 2>/dev/null || true)
if "$RUN_SH" stop >"$TMP/stop.log" 2>&1; then
    ok "ops/run.sh stop"
else
    not_ok "ops/run.sh stop failed"
fi
sed 's/^/    /' "$TMP/stop.log"
left=()
for p in "${pids[@]}"; do
    if [ -r "/proc/$p/stat" ]; then
        rest=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        rest=${rest##*) }
        [ "${rest%% *}" = Z ] || left+=("$p")
    fi
done
if [ ${#left[@]} -eq 0 ]; then
    ok "no started process left after stop (${#pids[@]} pids checked)"
else
    not_ok "processes left after stop: ${left[*]}"
fi
if [ -z "$(ls -A "$RUN_DIR/pids")" ]; then
    ok "pid files removed"
else
    not_ok "pid files left: $(ls "$RUN_DIR/pids")"
fi
stale=""
for d in $cgroups; do
    [ ! -d "$d" ] || stale="$stale $d"
done
if [ -z "$stale" ]; then
    ok "cgroups removed${cgroups:+ ($(wc -l <<<"$cgroups"))}"
else
    not_ok "cgroups left:$stale"
fi
if "$RUN_SH" status >/dev/null 2>&1; then
    not_ok "status after stop says up"
else
    ok "status after stop: down (rc 3)"
fi

finish
