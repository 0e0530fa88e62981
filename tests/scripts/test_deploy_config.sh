#!/usr/bin/env bash
# ctest-label: unit
# Offline checks of the deployment files (no docker engine needed): nginx.conf,
# docker-compose.yml, Dockerfile, .dockerignore, .gitignore. Every check is run once on the
# repo's files (all must pass) and then on deliberately broken copies (each must be
# rejected by the check it targets), so that this test cannot pass by checking
# nothing. Prints one line per check.
#
# Needs: nginx, docker-compose (v1 is enough: `config` works without an engine),
# /usr/bin/python3 with PyYAML (a dependency of Debian's docker-compose). Optional:
# unshare (nginx -t on the unmodified file in a private mount namespace, as root),
# dockerfile-utils (npm) for the Dockerfile lint, shellcheck.
# Env: SOURCE_DIR (repo root; default: from this file's path), BUILD_DIR (optional:
# when it holds paynode, its shared libraries are checked against the runtime image).
# shellcheck disable=SC2016 # single-quoted code and patterns are meant literally
set -euo pipefail

SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$SOURCE_DIR/build}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
RUN_SH=$SOURCE_DIR/ops/run.sh

TMP=$(mktemp -d /tmp/test_deploy_config.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

for tool in "$NGINX" docker-compose "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "FAIL - required tool missing: $tool (scripts/deps.sh installs it)"
        exit 1
    }
done
"$PY" -c 'import yaml' 2>/dev/null || {
    echo "FAIL - $PY has no PyYAML (apt-get install python3-yaml)"
    exit 1
}

# The Python checks (normalised compose file, nginx.conf, Dockerfile, .dockerignore,
# scripts/deps.sh of one tree) and the mutation helper live next to this file.
HERE=$SOURCE_DIR/tests/scripts

# ---------------------------------------------------------------- check_tree DIR
# Runs every check on the deploy files in DIR; prints one line per check; returns
# non-zero when any failed. For a broken copy (REPO_TREE set), the slow checks
# whose input did not change are not repeated (they passed on the repo's files).
REPO_TREE=""
differs()
{
    [ -z "$REPO_TREE" ] || ! cmp -s "$1/$2" "$REPO_TREE/$2"
}

check_tree()
{
    local d=$1 failed=0 out rd
    out=$TMP/out.$$
    say() { echo "$1 - $2"; }

    # nginx -t on the unmodified file: in a private mount namespace, with empty
    # /run, /var/cache, /var/log (nginx -t creates the temp dirs), as in the image.
    if ! differs "$d" nginx.conf; then
        :
    elif [ "$(id -u)" = 0 ] && unshare -m --propagation private true 2>/dev/null; then
        if unshare -m --propagation private bash -c '
            mount -t tmpfs deploycheck /run && mount -t tmpfs deploycheck /var/cache &&
            mount -t tmpfs deploycheck /var/log && mkdir -p /var/cache/nginx /var/log/nginx &&
            "$1" -t -q -c "$2"' _ "$NGINX" "$d/nginx.conf" >"$out" 2>&1; then
            say "ok  " "nginx -t on the deployed nginx.conf as is (private mount namespace)"
        else
            say FAIL "nginx -t on the deployed nginx.conf as is: $(tr '\n' ' ' <"$out")"
            failed=1
        fi
    else
        say skip "nginx -t on the unmodified file needs root and unshare -m"
    fi

    # nginx -t on the local rendering (ops/run.sh render-nginx: same rewrite as the
    # local topology) into a scratch prefix.
    rd=$d/run
    rm -rf "$rd"
    mkdir -p "$rd/nginx/cache" "$rd/nginx/log" "$rd/sock"
    if NGINX_CONF=$d/nginx.conf RUN_DIR=$rd NGINX_PORT=19099 "$RUN_SH" render-nginx >"$d/rendered.conf" 2>"$out" &&
        "$NGINX" -t -q -p "$rd/nginx/" -e "$rd/nginx/log/error.log" -c "$d/rendered.conf" >>"$out" 2>&1; then
        say "ok  " "nginx -t on the local rendering (ops/run.sh render-nginx)"
    else
        say FAIL "nginx -t on the local rendering: $(tr '\n' ' ' <"$out")"
        failed=1
    fi
    # The rendering must cover every path: no absolute path outside RUN_DIR left in
    # a directive, and nothing but paths and the listen address changed.
    local stray changed
    stray=$(sed -e 's/#.*//' "$d/rendered.conf" |
        grep -vE '^[[:space:]]*(location|proxy_pass|proxy_redirect|return|rewrite|try_files)[[:space:]]' |
        grep -oE '(^|[[:space:]]|unix:)/[^[:space:];]*' | sed -E 's/^([[:space:]]|unix:)//' |
        grep -vF "$rd/" || true)
    changed=$(diff "$d/nginx.conf" "$d/rendered.conf" | grep '^>' | grep -vF "$rd/" |
        grep -vE '^>[[:space:]]*listen[[:space:]]+127\.0\.0\.1:19099[[:space:];]' || true)
    if [ -z "$stray" ] && [ -z "$changed" ]; then
        say "ok  " "local rendering rewrites every path and only paths + listen"
    else
        say FAIL "local rendering rewrites every path and only paths + listen: left outside RUN_DIR: [${stray//$'\n'/ }] other changes: [${changed//$'\n'/ }]"
        failed=1
    fi

    # docker-compose config (the schema check) and the normalised file.
    if ! differs "$d" docker-compose.yml; then
        cp "$REPO_TREE/normalised.yml" "$d/normalised.yml"
    elif (cd "$d" && docker-compose -f docker-compose.yml config) >"$d/normalised.yml" 2>"$out"; then
        say "ok  " "docker-compose config"
    else
        say FAIL "docker-compose config: $(tr '\n' ' ' <"$out")"
        failed=1
        return 1
    fi
    if grep -n '\${' "$d/docker-compose.yml" >"$out"; then
        say FAIL "docker-compose.yml uses \${...} interpolation (unset means blank): $(cat "$out")"
        failed=1
    else
        say "ok  " "docker-compose.yml needs no environment variables"
    fi
    "$PY" -B "$HERE/deploy_check.py" "$d" "$d/normalised.yml" "$d/runtime_pkgs" "$d/limits" ||
        failed=1

    [ -z "$REPO_TREE" ] || differs "$d" Dockerfile || return "$failed"

    # ops/run.sh --limits reads the same numbers as the checks above (both through
    # ops/compose_limits.py: this checks that ops/run.sh reads the right file).
    local want got
    want=$(cat "$d/limits" 2>/dev/null || echo unparsable)
    got=$(COMPOSE_FILE=$d/docker-compose.yml "$RUN_SH" limits 2>&1 || true)
    if [ -n "$REPO_TREE" ]; then
        :
    elif [ "$want" = "$got" ]; then
        say "ok  " "ops/run.sh limits matches the compose file (${got//$'\n'/; })"
    else
        say FAIL "ops/run.sh limits [${got//$'\n'/; }] differs from compose [${want//$'\n'/; }]"
        failed=1
    fi

    # The built binary's direct shared libraries are installed in the runtime stage.
    if [ -x "$BUILD_DIR/paynode" ] && [ -f "$d/runtime_pkgs" ]; then
        local lib path pkg miss=""
        for lib in $(objdump -p "$BUILD_DIR/paynode" 2>/dev/null | awk '$1 == "NEEDED" { print $2 }'); do
            path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
            # dpkg knows a file by one of its names (usrmerge: /lib vs /usr/lib).
            pkg=$( (dpkg -S "$path" || dpkg -S "$(readlink -f "$path")" ||
                dpkg -S "${path#/usr}" || dpkg -S "/usr$path") 2>/dev/null | head -n1 | cut -d: -f1)
            case $pkg in
            # libc is in every image; the sanitizer runtimes only in a -DSANITIZE
            # build, which is never what the Dockerfile builds.
            libc6 | libgcc-s1 | libasan* | libubsan* | liblsan* | libtsan*) ;;
            *) grep -qxF "$pkg" "$d/runtime_pkgs" || miss="$miss $lib(${pkg:-?})" ;;
            esac
        done
        if [ -z "$miss" ]; then
            say "ok  " "runtime stage installs every library paynode needs"
        else
            say FAIL "runtime stage lacks:$miss"
            failed=1
        fi
    else
        say skip "paynode libraries vs runtime stage: no $BUILD_DIR/paynode"
    fi

    # Lint (optional tools).
    local dfu
    dfu=$(command -v dockerfile-utils || true)
    if [ -n "$dfu" ]; then
        if "$dfu" lint "$d/Dockerfile" >"$out" 2>&1 && ! grep -qE 'Error|Warning' "$out"; then
            say "ok  " "dockerfile-utils lint"
        else
            say FAIL "dockerfile-utils lint: $(tr '\n' ' ' <"$out")"
            failed=1
        fi
    else
        say skip "Dockerfile lint: dockerfile-utils not installed (npm install -g dockerfile-utils@0.16.3)"
    fi
    return "$failed"
}

# ------------------------------------------------------------------------ main
copy_tree()
{
    local d=$TMP/$1
    mkdir -p "$d/scripts"
    cp "$SOURCE_DIR/nginx.conf" "$SOURCE_DIR/docker-compose.yml" "$SOURCE_DIR/Dockerfile" \
        "$SOURCE_DIR/.dockerignore" "$SOURCE_DIR/.gitignore" "$d/"
    cp "$SOURCE_DIR/scripts/deps.sh" "$d/scripts/"
    printf '%s\n' "$d"
}

total_fail=0
echo "# deploy files of $SOURCE_DIR"
if check_tree "$(copy_tree repo)" | tee "$TMP/repo.log"; then :; fi
REPO_TREE=$TMP/repo
repo_failed=$(grep -c '^FAIL' "$TMP/repo.log" || true)
repo_ok=$(grep -c '^ok' "$TMP/repo.log" || true)
[ "$repo_failed" = 0 ] || total_fail=$((total_fail + repo_failed))

if [ -x "$(command -v shellcheck || true)" ]; then
    if shellcheck -S warning "$RUN_SH" "$SOURCE_DIR"/tests/scripts/test_*.sh >"$TMP/sc" 2>&1; then
        echo "ok   - shellcheck ops/run.sh tests/scripts/test_*.sh"
        repo_ok=$((repo_ok + 1))
    else
        echo "FAIL - shellcheck:"
        cat "$TMP/sc"
        total_fail=$((total_fail + 1))
    fi
else
    echo "skip - shellcheck not installed"
fi

# Broken copies: name, file, the check that must fail, then a python edit applied to
# the file (text in, text out) so that a no-op edit is detected.
mutants=0
mutant()
{
    local name=$1 file=$2 expect=$3 edit=$4 d
    d=$(copy_tree "mutant$mutants")
    mutants=$((mutants + 1))
    if ! "$PY" -B "$HERE/deploy_mutate.py" "$d/$file" "$edit"; then
        echo "FAIL - broken copy \"$name\": the edit did not apply to $file"
        total_fail=$((total_fail + 1))
        return
    fi
    check_tree "$d" >"$d/log" 2>&1 || true
    if grep -qE "^FAIL - $expect" "$d/log"; then
        echo "ok   - broken copy rejected: $name"
    else
        echo "FAIL - broken copy accepted: $name (expected a failure of \"$expect\"); its checks:"
        sed 's/^/    /' "$d/log"
        total_fail=$((total_fail + 1))
    fi
}

echo "# broken copies: each must be rejected by the named check"
mutant "node cpus 0.625 -> 2.0" docker-compose.yml "compose: cpu sum" \
    's.replace("cpus: \"0.625\"", "cpus: \"2.0\"", 1)'
mutant "node memory 160M -> 200M" docker-compose.yml "compose: memory sum" \
    's.replace("memory: 160M", "memory: 200M")'
mutant "limits removed from nginx" docker-compose.yml "compose: every service has deploy" \
    're.sub(r"(\n  nginx:\n(?:.*\n)*?)    deploy:\n      resources:\n        limits:\n          cpus: [^\n]*\n          memory: [^\n]*\n", r"\1", s)'
mutant "second published port" docker-compose.yml "compose: exactly one published port" \
    's.replace("      - \"9999:9999\"\n", "      - \"9999:9999\"\n      - \"8080:8080\"\n")'
mutant "replicas: 2 on node1" docker-compose.yml "compose: no replicas" \
    's.replace("  node1:\n", "  node1:\n    deploy:\n      replicas: 2\n      resources:\n        limits:\n          cpus: \"0.625\"\n          memory: 160M\n", 1)'
mutant "privileged node2" docker-compose.yml "compose: no privileged" \
    's.replace("  node2:\n", "  node2:\n    privileged: true\n", 1)'
mutant "network_mode host on nginx" docker-compose.yml "(compose: no network_mode host|docker-compose config)" \
    's.replace("  nginx:\n", "  nginx:\n    network_mode: host\n", 1)'
mutant "node2 off the payment-processor network" docker-compose.yml "compose: nodes on the external network" \
    're.sub(r"(\n  node2:\n(?:.*\n)*?)      payment-processor: \{\}\n", r"\1", s)'
mutant "payment-processor not external" docker-compose.yml "compose: network payment-processor is external" \
    's.replace("    external: true\n    name: payment-processor\n", "    driver: bridge\n")'
mutant "node1 peer points at itself" docker-compose.yml "compose: node1 reaches node2" \
    's.replace("PEER_NNG_URL: tcp://10.99.0.12:7000", "PEER_NNG_URL: tcp://10.99.0.11:7000")'
mutant "node1 peer by name (may resolve on payment-processor)" docker-compose.yml "compose: node1 reaches node2" \
    's.replace("PEER_GOSSIP: 10.99.0.12:7100", "PEER_GOSSIP: node2:7100")'
mutant "node1 nng listening on 0.0.0.0" docker-compose.yml "compose: node1 peer listeners on its backend address" \
    's.replace("NNG_LISTEN: tcp://10.99.0.11:7000", "NNG_LISTEN: tcp://0.0.0.0:7000")'
mutant "node2 gossip listening on 0.0.0.0" docker-compose.yml "compose: node2 peer listeners on its backend address" \
    's.replace("GOSSIP_LISTEN: 10.99.0.12:7100", "GOSSIP_LISTEN: 0.0.0.0:7100")'
mutant "node2 without a fixed address" docker-compose.yml "compose: node addresses fixed" \
    's.replace("      backend:\n        ipv4_address: 10.99.0.12\n", "      backend: {}\n")'
mutant "node1 address in docker's dynamic range" docker-compose.yml "compose: node addresses fixed" \
    's.replace("ipv4_address: 10.99.0.11", "ipv4_address: 10.99.0.200").replace("10.99.0.11:", "10.99.0.200:")'
mutant "backend without a fixed subnet" docker-compose.yml "compose: backend has a fixed ipam subnet" \
    're.sub(r"\n    ipam:\n      config:\n(        [^\n]*\n)+", "\n", s)'
mutant "node HTTP listener on all addresses" docker-compose.yml "compose: nodes' TCP HTTP listener on loopback only" \
    's.replace("  SERVER_HOST: 127.0.0.1\n", "")'
mutant "peer port exposed" docker-compose.yml "compose: no service exposes ports" \
    's.replace("  node2:\n", "  node2:\n    expose:\n      - \"7000\"\n", 1)'
mutant "missing key: no secret mounted" docker-compose.yml "compose: node1 gets the pair's key" \
    's.replace("  secrets:\n    - peer_key\n", "", 1)'
mutant "missing key: no PEER_KEY_FILE" docker-compose.yml "compose: node2 gets the pair's key" \
    's.replace("  PEER_KEY_FILE: /run/secrets/peer_key\n", "", 1)'
mutant "key from another file" docker-compose.yml "compose: a secret read from the file ./peer.key" \
    's.replace("file: ./peer.key", "file: ./README.md")'
mutant "key inline in the environment" docker-compose.yml "compose: node1 has no inline PEER_KEY" \
    's.replace("      NODE_ID: \"1\"\n", "      NODE_ID: \"1\"\n      PEER_KEY: 0123456789abcdef0123456789abcdef\n", 1)'
mutant "PEER_INSECURE=1" docker-compose.yml "compose: node2 has no inline PEER_KEY and no PEER_INSECURE" \
    's.replace("      NODE_ID: \"2\"\n", "      NODE_ID: \"2\"\n      PEER_INSECURE: \"1\"\n", 1)'
mutant "peer.key not docker-ignored" .dockerignore ".dockerignore: excludes peer.key" \
    're.sub(r"(?m)^peer\.key\n", "", s)'
mutant "peer.key not git-ignored" .gitignore ".gitignore: ignores peer.key" \
    're.sub(r"(?m)^/peer\.key\n", "", s)'
mutant "socket path differs from nginx.conf" docker-compose.yml "nginx: upstreams are the nodes" \
    's.replace("SERVER_SOCKET: /run/sock/node2.sock", "SERVER_SOCKET: /run/sock/n2.sock")'
mutant "unset variable in compose" docker-compose.yml "docker-compose.yml uses" \
    's.replace("LOG_LEVEL: info", "LOG_LEVEL: \${LOG_LEVEL}")'
mutant "ip_hash" nginx.conf "nginx: round-robin" \
    's.replace("    upstream paynodes {\n", "    upstream paynodes {\n        ip_hash;\n")'
mutant "access log on" nginx.conf "nginx: access_log off" \
    's.replace("access_log off;", "access_log /var/log/nginx/access.log;")'
mutant "no upstream keepalive" nginx.conf "nginx: upstream keepalive" \
    're.sub(r"\n\s*keepalive \d+;", "", s)'
mutant "no Connection header reset" nginx.conf "nginx: proxy_set_header Connection" \
    're.sub(r"\n\s*proxy_set_header Connection \"\";", "", s)'
mutant "no non_idempotent retry" nginx.conf "nginx: proxy_next_upstream" \
    's.replace(" non_idempotent;", ";")'
mutant "read timeout 60s" nginx.conf "nginx: proxy_read_timeout" \
    're.sub(r"proxy_read_timeout [^;]*;", "proxy_read_timeout 60s;", s)'
mutant "/metrics exposed" nginx.conf "nginx: /metrics is not exposed" \
    're.sub(r"\n\s*location = /metrics \{\n\s*return 404;\n\s*\}\n", "\n", s)'
mutant "typo in a directive" nginx.conf "nginx -t on the local rendering" \
    's.replace("proxy_pass http://paynodes;", "proxy_passs http://paynodes;")'
mutant "new absolute path the rendering misses" nginx.conf "local rendering rewrites" \
    's.replace("    access_log off;\n", "    access_log off;\n    proxy_cache_path /tmp/cache keys_zone=c:1m;\n")'
mutant "Dockerfile without scripts/build.sh" Dockerfile "Dockerfile: the build stage runs scripts/build.sh" \
    're.sub(r"scripts/build\.sh[^\n]*", "cmake -S . -B build \\\\", s)'
mutant "Dockerfile missing a build package" Dockerfile "Dockerfile: build stage installs the build packages" \
    's.replace(" libnng-dev", "")'
mutant "Dockerfile runs as root" Dockerfile "Dockerfile: runtime runs as a non-root USER" \
    's.replace("USER paynode", "USER root")'
mutant "Dockerfile runtime on full debian" Dockerfile "Dockerfile: runtime stage FROM debian:12-slim" \
    's.replace("FROM debian:12-slim", "FROM debian:12")'
if [ -x "$(command -v dockerfile-utils || true)" ]; then
    mutant "Dockerfile with two CMDs" Dockerfile "dockerfile-utils lint" \
        's.replace("CMD [", "CMD [\"/bin/true\"]\nCMD [", 1)'
fi
if [ -x "$BUILD_DIR/paynode" ]; then
    mutant "runtime stage without libnng1" Dockerfile "runtime stage lacks" \
        's.replace(" libnng1", "")'
fi

echo "# $repo_ok checks on the repo's files, $mutants broken copies"
if [ "$total_fail" -eq 0 ]; then
    echo "$((repo_ok + mutants)) passed, 0 failed"
    exit 0
fi
echo "$((repo_ok + mutants - total_fail)) passed, $total_fail failed"
exit 1
