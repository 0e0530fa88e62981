# shellcheck shell=bash
# Process helpers shared by ops/run.sh and chaos/lib.sh (sourced; defines
# functions only, changes no shell option). Linux /proc; a zombie counts as
# gone, since it runs nothing and holds no port.

# pid_alive PID: the process exists and is not a zombie.
pid_alive()
{
    local rest
    rest=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${rest##*) }
    [ "${rest%% *}" != Z ]
}

# group_members PGID: the live (non-zombie) members of process group PGID, one
# pid a line.
group_members()
{
    local pgid=$1 f rest state pgrp
    for f in /proc/[0-9]*/stat; do
        rest=$(cat "$f" 2>/dev/null) || continue
        rest=${rest##*) }
        read -r state _ pgrp _ <<<"$rest"
        if [ "$pgrp" = "$pgid" ] && [ "$state" != Z ]; then
            f=${f#/proc/}
            printf '%s\n' "${f%/stat}"
        fi
    done
}
