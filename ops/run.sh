#!/usr/bin/env bash
# The compose topology as local processes, for machines without a docker engine:
# two processor simulators (procsim), two payment nodes (paynode) and nginx, on
# loopback. nginx runs the repo's nginx.conf, rendered by rewriting only its paths
# and listen address (render_nginx below), so the proxy logic is the deployed one.
#
# Usage: ops/run.sh [--limits] start|stop|status|logs [part]|render-nginx|limits
#        ops/run.sh restart [--no-wait] PART
#   start         start every part, wait (bounded) until each answers; on failure
#                 stop what was started and exit 1. How each part was started (its
#                 command line, environment, working directory and cgroups) is
#                 recorded in RUN_DIR/parts/
#   stop          SIGTERM each part's process group, SIGKILL after STOP_TIMEOUT s;
#                 remove pid files and the cgroups made by --limits
#   restart PART  PART is procsim-default, procsim-fallback, node1, node2 or nginx:
#                 stop it as stop does if it runs (a part that was killed is just
#                 started), then start it again with exactly the command line,
#                 environment, working directory and cgroups (the limits) that
#                 start gave it, from RUN_DIR/parts/; wait (bounded) until it
#                 answers, as start does, unless --no-wait; exit 1 when it does not
#                 come up. A simulator restarted this way starts with no payments
#   status        one line per part: up/down, pid; with --limits also peak memory
#                 and CFS throttling; exit 0 when every part is up, 3 otherwise
#   logs [part]   last LOG_LINES lines of each part's log (or of one part)
#   render-nginx  print nginx.conf as the local topology runs it
#   limits        print "<service> <cpus> <memory bytes>" from the compose file
#   --limits      (or LIMITS=1) run nginx and the nodes under cgroup v1 CPU and
#                 memory limits read from docker-compose.yml (cpus -> cfs quota per
#                 100 ms period; memory -> memory.limit_in_bytes). The cgroups are
#                 made under this shell's own cgroup of each controller. The
#                 simulators are never limited: they stand in for external services.
#
# Environment (defaults in brackets; relative paths are from the repo root):
#   BUILD_DIR [build] (paynode, procsim)   RUN_DIR [run] (pids/, logs/, sock/, nginx/)
#   NGINX_PORT [9999]  NODE1_PORT [9001]  NODE2_PORT [9002]
#   NODE1_NNG_PORT [7001]  NODE2_NNG_PORT [7003] (a node uses this port for its nng
#     pub socket and the next one for its rep socket: keep the two 2 apart)
#   NODE1_GOSSIP_PORT [7101]
#   NODE2_GOSSIP_PORT [7102]  PROCSIM_DEFAULT_PORT [8001]  PROCSIM_FALLBACK_PORT [8002]
#   DEFAULT_PROCESSOR_URL / FALLBACK_PROCESSOR_URL: when set, that simulator is not
#     started and the nodes use the URL
#   PROCSIM_DEFAULT_FEE [0.05]  PROCSIM_FALLBACK_FEE [0.15]  PROCSIM_TOKEN [123]
#   READY_TIMEOUT [20] s per part  STOP_TIMEOUT [5] s  LOG_LINES [40]
#   COMPOSE_FILE [docker-compose.yml]  NGINX_CONF [nginx.conf]  NGINX_BIN [nginx]
#   NODES [2]: 1 starts node1 alone (no peer settings) and renders nginx.conf with
#     node1 as its only upstream: the same proxy in front of a lone node, for
#     benchmarks (bench/decompose.sh); node2's ports are then not used
#   PEER_KEY_FILE / PEER_KEY: the pair's shared key (at least 32 bytes); when neither
#     is set, a random one is made once in RUN_DIR/peer.key (mode 0600) and both nodes
#     read it (PEER_KEY would show in the recorded command lines: prefer the file)
#   Other node settings (LOG_LEVEL, HEALTH_CHECK_INTERVAL, REQUEST_TIMEOUT, ...) are
#   passed through from the environment.
# Needs bash, python3 with PyYAML (/usr/bin/python3: docker-compose depends on it)
# for --limits and `limits`, and nginx.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG="ops/run.sh"
# shellcheck source=ops/proc.sh
. "$ROOT/ops/proc.sh"

abspath()
{
    case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$ROOT/$1" ;;
    esac
}

die()
{
    echo "$PROG: $*" >&2
    exit 1
}

BUILD_DIR=$(abspath "${BUILD_DIR:-build}")
RUN_DIR=$(abspath "${RUN_DIR:-run}")
COMPOSE_FILE=$(abspath "${COMPOSE_FILE:-docker-compose.yml}")
NGINX_CONF=$(abspath "${NGINX_CONF:-nginx.conf}")
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
PAYNODE_BIN=$BUILD_DIR/paynode
PROCSIM_BIN=$BUILD_DIR/procsim
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3

NGINX_PORT=${NGINX_PORT:-9999}
NODE1_PORT=${NODE1_PORT:-9001}
NODE2_PORT=${NODE2_PORT:-9002}
NODE1_NNG_PORT=${NODE1_NNG_PORT:-7001}
NODE2_NNG_PORT=${NODE2_NNG_PORT:-7003}
NODE1_GOSSIP_PORT=${NODE1_GOSSIP_PORT:-7101}
NODE2_GOSSIP_PORT=${NODE2_GOSSIP_PORT:-7102}
PROCSIM_DEFAULT_PORT=${PROCSIM_DEFAULT_PORT:-8001}
PROCSIM_FALLBACK_PORT=${PROCSIM_FALLBACK_PORT:-8002}
PROCSIM_DEFAULT_FEE=${PROCSIM_DEFAULT_FEE:-0.05}
PROCSIM_FALLBACK_FEE=${PROCSIM_FALLBACK_FEE:-0.15}
PROCSIM_TOKEN=${PROCSIM_TOKEN:-123}
EXT_DEFAULT_URL=${DEFAULT_PROCESSOR_URL:-}
EXT_FALLBACK_URL=${FALLBACK_PROCESSOR_URL:-}
READY_TIMEOUT=${READY_TIMEOUT:-20}
STOP_TIMEOUT=${STOP_TIMEOUT:-5}
LOG_LINES=${LOG_LINES:-40}
LIMITS=${LIMITS:-0}
RESTART_WAIT=1
NODES=${NODES:-2}
case $NODES in 1 | 2) ;; *) die "NODES must be 1 or 2 (got $NODES)" ;; esac

PARTS=(procsim-default procsim-fallback node1 node2 nginx)
STATE=$RUN_DIR/topology.env

# ---------------------------------------------------------------- small helpers

# Prints the HTTP status code of one request to 127.0.0.1:port, or nothing. Uses
# bash's /dev/tcp so that no client binary is needed; bounded by `timeout`.
http_status()
{
    local port=$1 path=$2 method=${3:-GET} body=${4:-}
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" \
            "$2" "$3" "${#4}" "$4" >&3
        IFS=" " read -r -t 4 _ code _ <&3 && printf "%s\n" "$code"
    ' _ "$port" "$method" "$path" "$body" 2>/dev/null || true
}

port_busy()
{
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

part_bin()
{
    case $1 in
    procsim-*) printf '%s\n' "$PROCSIM_BIN" ;;
    node*) printf '%s\n' "$PAYNODE_BIN" ;;
    nginx) printf '%s\n' "$NGINX_BIN" ;;
    esac
}

# The pid from the part's pid file if that process is still the part's program
# (its executable, or its command line names it: a recycled pid is left alone).
part_pid()
{
    local f=$RUN_DIR/pids/$1.pid pid exe bin
    [ -f "$f" ] || return 1
    pid=$(cat "$f")
    pid_alive "$pid" || return 1
    bin=$(part_bin "$1")
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    if [ "$exe" != "$(readlink -f "$bin")" ] &&
        ! tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$bin"; then
        return 1
    fi
    printf '%s\n' "$pid"
}

# --------------------------------------------------------------- compose limits

# "<service> <cpus> <memory bytes>" per service with deploy.resources.limits, from
# the compose file as `docker-compose config` normalises it (plain YAML when
# docker-compose is not installed), read by ops/compose_limits.py.
compose_limits()
{
    local src
    if command -v docker-compose >/dev/null 2>&1; then
        src=$(docker-compose -f "$COMPOSE_FILE" config 2>/dev/null) ||
            die "docker-compose config failed on $COMPOSE_FILE"
    else
        src=$(cat "$COMPOSE_FILE")
    fi
    "$PYTHON" -B "$ROOT/ops/compose_limits.py" <<<"$src"
}

# ---------------------------------------------------------------------- cgroups

# Directory of this shell's own cgroup for controller $1 (cgroup v1).
cgroup_base()
{
    local ctl=$1 path
    path=$(awk -F: -v c="$ctl" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup)
    [ -n "$path" ] || return 1
    printf '/sys/fs/cgroup/%s%s\n' "$ctl" "${path%/}"
}

cgroup_name()
{
    printf 'rinha-%s-%s\n' "$(printf '%s' "$RUN_DIR" | cksum | cut -d' ' -f1)" "$1"
}

# Creates the cpu and memory cgroups of part $1 with cpus $2 and memory bytes $3;
# records them in RUN_DIR/cgroups.
cgroup_make()
{
    local part=$1 cpus=$2 mem=$3 name cpu_dir mem_dir quota
    name=$(cgroup_name "$part")
    cpu_dir=$(cgroup_base cpu)/$name
    mem_dir=$(cgroup_base memory)/$name
    mkdir -p "$cpu_dir" "$mem_dir" || die "cannot create cgroups $cpu_dir, $mem_dir"
    printf '%s\n%s\n' "$cpu_dir" "$mem_dir" >>"$RUN_DIR/cgroups"
    quota=$(awk -v c="$cpus" 'BEGIN { printf "%d", c * 100000 + 0.5 }')
    echo 100000 >"$cpu_dir/cpu.cfs_period_us"
    echo "$quota" >"$cpu_dir/cpu.cfs_quota_us"
    echo "$mem" >"$mem_dir/memory.limit_in_bytes"
}

cgroups_remove()
{
    local f=$RUN_DIR/cgroups dir pid i
    [ -f "$f" ] || return 0
    while read -r dir; do
        [ -d "$dir" ] || continue
        # Whatever is still inside descends from a part we started (e.g. an nginx
        # worker whose master was SIGKILLed).
        while read -r pid; do
            kill -KILL "$pid" 2>/dev/null || true
        done <"$dir/cgroup.procs" 2>/dev/null || true
        for i in $(seq 1 50); do
            rmdir "$dir" 2>/dev/null && break
            sleep 0.1
        done
        [ ! -d "$dir" ] || echo "$PROG: could not remove cgroup $dir" >&2
    done <"$f"
    rm -f "$f"
}

# ------------------------------------------------------------------------ nginx

sed_escape()
{
    printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

# The deployed nginx.conf with only what must differ on this machine rewritten:
# the socket directory, the pid file, the temp and log directories (all under
# RUN_DIR), and the listen address (loopback, NGINX_PORT).
render_nginx()
{
    local r
    r=$(sed_escape "$RUN_DIR")
    local lone=""
    # NODES=1: node1 is the only upstream.
    [ "$NODES" != 1 ] || lone='/^[[:space:]]*server[[:space:]]\+unix:\/run\/sock\/node2\.sock/d'
    # Comment lines are left as they are.
    sed -e "/^[[:space:]]*#/b" ${lone:+-e "$lone"} \
        -e "s|/run/sock/|$r/sock/|g" \
        -e "s|/run/nginx\\.pid|$r/nginx/nginx.pid|g" \
        -e "s|/var/cache/nginx/|$r/nginx/cache/|g" \
        -e "s|/var/log/nginx/|$r/nginx/log/|g" \
        -e "s|^\\([[:space:]]*listen[[:space:]]\\+\\)9999\\b|\\1127.0.0.1:$NGINX_PORT|" \
        "$NGINX_CONF"
}

# ---------------------------------------------------------------------- parts

# spawn <part> <command...>: records how the part is started (its command line,
# this shell's environment and working directory, and the cgroups made for it
# under --limits) in RUN_DIR/parts/, then starts it from that record (launch).
spawn()
{
    local part=$1 name rec=$RUN_DIR/parts/$1
    shift
    local cgroups=()
    if [ "$LIMITS" = 1 ] && [ -n "${PART_LIMIT[$part]:-}" ]; then
        # shellcheck disable=SC2086
        cgroup_make "$part" ${PART_LIMIT[$part]}
        name=$(cgroup_name "$part")
        cgroups=("$(cgroup_base cpu)/$name" "$(cgroup_base memory)/$name")
    fi
    printf '%s\0' "$@" >"$rec.cmdline"
    # Without "_", which bash sets for each command it runs (here: env).
    env -0 | grep -zv '^_=' >"$rec.environ" || true
    printf '%s\n' "$PWD" >"$rec.cwd"
    printf '%s\n' ${cgroups[@]+"${cgroups[@]}"} >"$rec.cgroups"
    launch "$part"
}

# launch <part>: starts the part as its record says, in a new session (so that
# its process group is exactly it and its children), inside its cgroups if any,
# with output appended to RUN_DIR/logs/<part>.log; writes RUN_DIR/pids/<part>.pid.
launch()
{
    local part=$1 rec=$RUN_DIR/parts/$1 cmdv=() envv=() cgroups=() cwd setsid_bin
    mapfile -d '' cmdv <"$rec.cmdline"
    mapfile -d '' envv <"$rec.environ"
    mapfile -t cgroups <"$rec.cgroups"
    cwd=$(cat "$rec.cwd")
    setsid_bin=$(command -v setsid)
    (
        for dir in ${cgroups[@]+"${cgroups[@]}"}; do
            echo "$BASHPID" >"$dir/cgroup.procs"
        done
        cd "$cwd"
        # "_" as bash sets it when it runs setsid itself.
        exec env -i ${envv[@]+"${envv[@]}"} "_=$setsid_bin" "$setsid_bin" "${cmdv[@]}"
    ) </dev/null >>"$RUN_DIR/logs/$part.log" 2>&1 &
    echo "$!" >"$RUN_DIR/pids/$part.pid"
}

# wait_ready <part> <port> <path> <want>: until GET path answers `want` ("any" for
# any status), the process dies, or READY_TIMEOUT passes.
READY_PROBE=/payments/00000000-0000-4000-8000-000000000000

wait_ready()
{
    local part=$1 port=$2 path=$3 want=$4 pid code="" deadline
    pid=$(cat "$RUN_DIR/pids/$part.pid")
    deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if ! pid_alive "$pid"; then
            echo "$PROG: $part (pid $pid) exited during start-up; last lines of its log:" >&2
            tail -n 20 "$RUN_DIR/logs/$part.log" >&2 || true
            return 1
        fi
        code=$(http_status "$port" "$path")
        if [ -n "$code" ] && { [ "$want" = any ] || [ "$code" = "$want" ]; }; then
            echo "$PROG: $part up (pid $pid, port $port, $path -> $code)"
            return 0
        fi
        sleep 0.1
    done
    echo "$PROG: $part not ready after ${READY_TIMEOUT}s ($path -> ${code:-no answer}); last lines of its log:" >&2
    tail -n 20 "$RUN_DIR/logs/$part.log" >&2 || true
    return 1
}

# wait_part <part>: wait_ready with the part's own port and check. Simulators
# are probed by a lookup (any status), never by /payments/service-health: that
# endpoint is rate-limited (one call per 5 s window), and spending the window
# here would make the nodes' first poll wait for the next one.
wait_part()
{
    case $1 in
    procsim-default) wait_ready "$1" "$PROCSIM_DEFAULT_PORT" "$READY_PROBE" any ;;
    procsim-fallback) wait_ready "$1" "$PROCSIM_FALLBACK_PORT" "$READY_PROBE" any ;;
    node1) wait_ready "$1" "$NODE1_PORT" /healthz 200 ;;
    node2) wait_ready "$1" "$NODE2_PORT" /healthz 200 ;;
    nginx) wait_ready "$1" "$NGINX_PORT" /healthz 200 ;;
    esac
}

save_state()
{
    {
        for v in BUILD_DIR PAYNODE_BIN PROCSIM_BIN NGINX_BIN NGINX_PORT NODE1_PORT NODE2_PORT \
            PROCSIM_DEFAULT_PORT PROCSIM_FALLBACK_PORT EXT_DEFAULT_URL EXT_FALLBACK_URL DEFAULT_URL \
            FALLBACK_URL LIMITS NODES; do
            printf '%s=%q\n' "$v" "${!v}"
        done
    } >"$STATE"
}

load_state()
{
    # shellcheck disable=SC1090
    [ -f "$STATE" ] && . "$STATE"
    return 0
}

cmd_start()
{
    local p pid need=() sockdir=$RUN_DIR/sock
    [ -x "$PAYNODE_BIN" ] || die "paynode not found at $PAYNODE_BIN (build it: scripts/build.sh, or set BUILD_DIR)"
    if [ -z "$EXT_DEFAULT_URL" ] || [ -z "$EXT_FALLBACK_URL" ]; then
        [ -x "$PROCSIM_BIN" ] ||
            die "procsim not found at $PROCSIM_BIN (build it, or set DEFAULT_PROCESSOR_URL and FALLBACK_PROCESSOR_URL)"
    fi
    [ -x "$NGINX_BIN" ] || die "nginx not found ($NGINX_BIN): apt-get install nginx-light, or set NGINX_BIN"
    [ -f "$NGINX_CONF" ] || die "no nginx config at $NGINX_CONF"
    [ ${#sockdir} -le 90 ] || die "RUN_DIR too long for unix socket paths (sun_path is 108 bytes): $RUN_DIR"

    for p in "${PARTS[@]}"; do
        if pid=$(part_pid "$p"); then
            die "$p already running (pid $pid) in $RUN_DIR: ops/run.sh stop first"
        fi
    done
    rm -rf "$RUN_DIR/pids" "$RUN_DIR/sock" "$RUN_DIR/nginx" "$RUN_DIR/logs" "$RUN_DIR/parts"
    mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs" "$sockdir" "$RUN_DIR/nginx/cache" "$RUN_DIR/nginx/log" \
        "$RUN_DIR/parts"
    [ ! -f "$RUN_DIR/cgroups" ] || cgroups_remove

    declare -gA PART_LIMIT=()
    if [ "$LIMITS" = 1 ]; then
        local svc cpus mem lim
        lim=$(compose_limits) || die "cannot read limits from $COMPOSE_FILE"
        while read -r svc cpus mem; do
            PART_LIMIT[$svc]="$cpus $mem"
        done <<<"$lim"
        for p in nginx node1 node2; do
            [ -n "${PART_LIMIT[$p]:-}" ] || die "no deploy.resources.limits for $p in $COMPOSE_FILE"
        done
        if ! [ -w "$(cgroup_base cpu)" ] || ! [ -w "$(cgroup_base memory)" ]; then
            die "--limits needs writable cgroup v1 cpu and memory hierarchies under /sys/fs/cgroup"
        fi
    fi

    DEFAULT_URL=${EXT_DEFAULT_URL:-http://127.0.0.1:$PROCSIM_DEFAULT_PORT}
    FALLBACK_URL=${EXT_FALLBACK_URL:-http://127.0.0.1:$PROCSIM_FALLBACK_PORT}
    [ -n "$EXT_DEFAULT_URL" ] || need+=("$PROCSIM_DEFAULT_PORT")
    [ -n "$EXT_FALLBACK_URL" ] || need+=("$PROCSIM_FALLBACK_PORT")
    need+=("$NODE1_PORT" "$NGINX_PORT")
    [ "$NODES" = 1 ] || need+=("$NODE2_PORT" "$NODE1_NNG_PORT" "$((NODE1_NNG_PORT + 1))"
        "$NODE2_NNG_PORT" "$((NODE2_NNG_PORT + 1))")
    if [ $((NODE1_NNG_PORT - NODE2_NNG_PORT)) -ge -1 ] && [ $((NODE1_NNG_PORT - NODE2_NNG_PORT)) -le 1 ]; then
        die "NODE1_NNG_PORT and NODE2_NNG_PORT must be at least 2 apart (each node also uses port + 1)"
    fi
    for p in "${need[@]}"; do
        ! port_busy "$p" || die "port $p on 127.0.0.1 is already in use"
    done
    save_state
    render_nginx >"$RUN_DIR/nginx/nginx.conf"

    # From here on, any failure (a part that dies or is not ready in time, or an
    # unexpected error under set -e) stops whatever was started.
    STARTING=1
    trap 'on_start_exit' EXIT

    if [ -z "$EXT_DEFAULT_URL" ]; then
        spawn procsim-default "$PROCSIM_BIN" --port "$PROCSIM_DEFAULT_PORT" --name default \
            --fee "$PROCSIM_DEFAULT_FEE" --token "$PROCSIM_TOKEN"
    fi
    if [ -z "$EXT_FALLBACK_URL" ]; then
        spawn procsim-fallback "$PROCSIM_BIN" --port "$PROCSIM_FALLBACK_PORT" --name fallback \
            --fee "$PROCSIM_FALLBACK_FEE" --token "$PROCSIM_TOKEN"
    fi
    [ -n "$EXT_DEFAULT_URL" ] || wait_part procsim-default
    [ -n "$EXT_FALLBACK_URL" ] || wait_part procsim-fallback

    spawn_node 1 "$NODE1_PORT" "$NODE1_NNG_PORT" "$NODE1_GOSSIP_PORT" "$NODE2_NNG_PORT" "$NODE2_GOSSIP_PORT"
    [ "$NODES" = 1 ] ||
        spawn_node 2 "$NODE2_PORT" "$NODE2_NNG_PORT" "$NODE2_GOSSIP_PORT" "$NODE1_NNG_PORT" "$NODE1_GOSSIP_PORT"
    # Both nodes before waiting: a node is ready (/healthz 200) once it has caught up
    # with its peer, so each needs the other running.
    wait_part node1
    [ "$NODES" = 1 ] || wait_part node2

    local nginx_globals="daemon off;"
    # As root, nginx's workers would run as the package's user, which may not be
    # able to reach RUN_DIR: run them as the invoking user, like every other part.
    [ "$(id -u)" != 0 ] || nginx_globals="daemon off; user root;"
    spawn nginx "$NGINX_BIN" -p "$RUN_DIR/nginx/" -e "$RUN_DIR/nginx/log/error.log" \
        -c "$RUN_DIR/nginx/nginx.conf" -g "$nginx_globals"
    wait_part nginx

    STARTING=0
    trap - EXIT
    local how="without limits"
    [ "$LIMITS" != 1 ] || how="with the limits of $COMPOSE_FILE"
    echo "$PROG: topology up at http://127.0.0.1:$NGINX_PORT ($how; RUN_DIR $RUN_DIR)"
}

on_start_exit()
{
    if [ "${STARTING:-0}" = 1 ]; then
        echo "$PROG: start failed; stopping what was started" >&2
        cmd_stop >&2 || true
    fi
}

# The pair's shared key (docs/SECURITY.md): PEER_KEY or PEER_KEY_FILE from the
# environment if set, else a random key made once per RUN_DIR in
# RUN_DIR/peer.key (mode 0600), so restarts of a part keep the same key.
peer_key_setting()
{
    if [ -n "${PEER_KEY:-}" ]; then
        printf 'PEER_KEY=%s\n' "$PEER_KEY"
    elif [ -n "${PEER_KEY_FILE:-}" ]; then
        printf 'PEER_KEY_FILE=%s\n' "$(abspath "$PEER_KEY_FILE")"
    else
        local f=$RUN_DIR/peer.key
        if [ ! -s "$f" ]; then
            (umask 077 && head -c 48 /dev/urandom | base64 -w0 > "$f.tmp" && mv "$f.tmp" "$f")
        fi
        printf 'PEER_KEY_FILE=%s\n' "$f"
    fi
}

# spawn_node <id> <http port> <nng port> <gossip port> <peer nng port> <peer gossip port>
# (with NODES=1, no peer settings at all: a lone node)
spawn_node()
{
    local id=$1 peer=()
    [ "$NODES" = 1 ] || peer=(NNG_LISTEN="tcp://127.0.0.1:$3" PEER_NNG_URL="tcp://127.0.0.1:$5"
        GOSSIP_LISTEN="127.0.0.1:$4" PEER_GOSSIP="127.0.0.1:$6" "$(peer_key_setting)")
    spawn "node$id" env NODE_ID="$id" SERVER_HOST=127.0.0.1 SERVER_PORT="$2" \
        SERVER_SOCKET="$RUN_DIR/sock/node$id.sock" \
        DEFAULT_PROCESSOR_URL="$DEFAULT_URL" FALLBACK_PROCESSOR_URL="$FALLBACK_URL" \
        "${peer[@]}" LOG_LEVEL="${LOG_LEVEL:-info}" "$PAYNODE_BIN"
}

# Stops one part: SIGTERM to its process group, SIGKILL after STOP_TIMEOUT.
stop_part()
{
    local part=$1 f=$RUN_DIR/pids/$1.pid pid deadline
    [ -f "$f" ] || return 0
    if ! pid=$(part_pid "$part"); then
        pid=$(cat "$f")
        if pid_alive "$pid"; then
            echo "$PROG: $part: pid $pid is no longer $(part_bin "$part"); not killing it" >&2
        fi
        rm -f "$f"
        return 0
    fi
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while [ -n "$(group_members "$pid")" ] && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done
    if [ -n "$(group_members "$pid")" ]; then
        echo "$PROG: $part (pid $pid) still running after ${STOP_TIMEOUT}s: SIGKILL" >&2
        kill -KILL -- "-$pid" 2>/dev/null || true
        deadline=$((SECONDS + 5))
        while [ -n "$(group_members "$pid")" ] && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.1
        done
    fi
    rm -f "$f"
    echo "$PROG: $part stopped (pid $pid)"
}

cmd_stop()
{
    local i
    load_state
    # Front to back: nginx first so no request reaches a stopping node.
    for ((i = ${#PARTS[@]} - 1; i >= 0; i--)); do
        stop_part "${PARTS[$i]}"
    done
    cgroups_remove
    rm -f "$RUN_DIR/nginx/nginx.pid"
}

# Stops one part if it runs (as stop does) and starts it again from the record
# start made (spawn): same command line, environment, working directory and
# cgroups. Waits until it answers unless RESTART_WAIT is 0.
cmd_restart()
{
    local part=$1
    load_state
    [ -f "$RUN_DIR/parts/$part.cmdline" ] ||
        die "$part was not started by ops/run.sh start in $RUN_DIR: nothing to restart"
    stop_part "$part"
    # As stop does: the pid file of a stopped (or killed) master is stale.
    [ "$part" != nginx ] || rm -f "$RUN_DIR/nginx/nginx.pid"
    launch "$part"
    if [ "$RESTART_WAIT" = 1 ]; then
        wait_part "$part"
    else
        echo "$PROG: $part started again (pid $(cat "$RUN_DIR/pids/$part.pid")), not waiting"
    fi
}

human()
{
    awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'
}

cmd_status()
{
    local p pid all_up=0 name cpu_dir mem_dir peak limit thr thr_ns extra
    load_state
    printf '%-17s %-5s %-8s %s\n' part state pid detail
    for p in "${PARTS[@]}"; do
        extra=""
        [ "$p" != node2 ] || [ "${NODES:-2}" != 1 ] || continue
        if [ "$p" = procsim-default ] && [ -n "${EXT_DEFAULT_URL:-}" ]; then
            printf '%-17s %-5s %-8s %s\n' "$p" ext - "$EXT_DEFAULT_URL"
            continue
        fi
        if [ "$p" = procsim-fallback ] && [ -n "${EXT_FALLBACK_URL:-}" ]; then
            printf '%-17s %-5s %-8s %s\n' "$p" ext - "$EXT_FALLBACK_URL"
            continue
        fi
        name=$(cgroup_name "$p")
        cpu_dir=$(cgroup_base cpu 2>/dev/null)/$name
        mem_dir=$(cgroup_base memory 2>/dev/null)/$name
        if [ -f "$mem_dir/memory.max_usage_in_bytes" ]; then
            peak=$(cat "$mem_dir/memory.max_usage_in_bytes")
            limit=$(cat "$mem_dir/memory.limit_in_bytes")
            thr=$(awk '$1 == "nr_throttled" { print $2 }' "$cpu_dir/cpu.stat")
            thr_ns=$(awk '$1 == "throttled_time" { print $2 }' "$cpu_dir/cpu.stat")
            extra="peak $(human "$peak") of $(human "$limit"), cpu quota $(($(cat "$cpu_dir/cpu.cfs_quota_us") / 1000)) ms/100 ms, throttled $thr times ($((thr_ns / 1000000)) ms), mem failcnt $(cat "$mem_dir/memory.failcnt")"
        fi
        if pid=$(part_pid "$p"); then
            printf '%-17s %-5s %-8s %s\n' "$p" up "$pid" "$extra"
        else
            printf '%-17s %-5s %-8s %s\n' "$p" down - "$extra"
            all_up=3
        fi
    done
    return "$all_up"
}

cmd_logs()
{
    local p f files
    for p in "${PARTS[@]}"; do
        [ -z "${1:-}" ] || [ "$1" = "$p" ] || continue
        files=("$RUN_DIR/logs/$p.log")
        [ "$p" != nginx ] || files+=("$RUN_DIR/nginx/log/error.log")
        for f in "${files[@]}"; do
            [ -f "$f" ] || continue
            echo "==> $f <=="
            tail -n "$LOG_LINES" "$f"
        done
    done
}

main()
{
    local cmd="" arg=""
    while [ $# -gt 0 ]; do
        case $1 in
        --limits) LIMITS=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
            return 0
            ;;
        --no-wait) RESTART_WAIT=0 ;;
        start | stop | restart | status | logs | render-nginx | limits)
            [ -z "$cmd" ] || arg=$1
            [ -n "$cmd" ] || cmd=$1
            ;;
        *)
            if { [ "$cmd" != logs ] && [ "$cmd" != restart ]; } || [ -n "$arg" ]; then
                die "unknown argument: $1 (see --help)"
            fi
            arg=$1
            ;;
        esac
        shift
    done
    case $cmd in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart)
        [[ " ${PARTS[*]} " == *" $arg "* ]] || die "restart wants a part: ${PARTS[*]}"
        cmd_restart "$arg"
        ;;
    status) cmd_status ;;
    logs) cmd_logs "$arg" ;;
    render-nginx) render_nginx ;;
    limits) compose_limits ;;
    *) die "usage: $PROG [--limits] start|stop|restart [--no-wait] PART|status|logs [part]|render-nginx|limits" ;;
    esac
}

main "$@"
