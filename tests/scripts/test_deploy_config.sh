#!/usr/bin/env bash
# ctest-label: unit
# Offline checks of the deployment files (no docker engine needed): nginx.conf,
# docker-compose.yml, Dockerfile, .dockerignore. Every check is run once on the
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

# ------------------------------------------------------------ the Python checks
# Reads the normalised compose file, nginx.conf, Dockerfile, .dockerignore and
# scripts/deps.sh of one tree; prints "ok - ..." / "FAIL - ..." lines.
cat >"$TMP/check.py" <<'PYEOF'
import re, sys, yaml

tree, normalised = sys.argv[1], sys.argv[2]
failed = 0


def check(name, cond, detail=""):
    global failed
    if cond:
        print("ok   - %s" % name)
    else:
        failed += 1
        print("FAIL - %s%s" % (name, ": " + detail if detail else ""))


def read(path):
    with open(path) as f:
        return f.read()


# ---- docker-compose.yml (as `docker-compose config` normalised it)
doc = yaml.safe_load(read(normalised))
svcs = doc.get("services") or {}
nodes = ["node1", "node2"]
check("compose: services are exactly nginx, node1, node2",
      sorted(svcs) == ["nginx", "node1", "node2"], "got %s" % sorted(svcs))

UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def mem_bytes(v):
    m = re.fullmatch(r"\s*([0-9]+)\s*([bkmg]?)b?\s*", str(v).lower())
    return int(m.group(1)) * UNITS[m.group(2)] if m else None


cpu_milli, mem_total, missing = 0, 0, []
for name, s in svcs.items():
    lim = ((s.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    if "cpus" not in lim or "memory" not in lim or mem_bytes(lim["memory"]) is None:
        missing.append(name)
        continue
    cpu_milli += round(float(lim["cpus"]) * 1000)
    mem_total += mem_bytes(lim["memory"])
check("compose: every service has deploy.resources.limits cpus and memory", not missing,
      "missing for %s" % missing)
check("compose: cpu sum <= 1.5", cpu_milli <= 1500, "sum is %.3f" % (cpu_milli / 1000))
check("compose: memory sum <= 350 MB (MiB, as docker counts 350M)", mem_total <= 350 << 20,
      "sum is %.1f MiB" % (mem_total / (1 << 20)))
print("# limits: cpus %.3f, memory %.1f MiB" % (cpu_milli / 1000, mem_total / (1 << 20)))


def ports(s):
    out = []
    for p in s.get("ports") or []:
        if isinstance(p, dict):
            out.append("%s:%s" % (p.get("published"), p.get("target")))
        else:
            out.append(re.sub(r"/tcp$", "", str(p)))
    return out


published = {n: ports(s) for n, s in svcs.items() if ports(s)}
check("compose: exactly one published port, nginx 9999:9999",
      published == {"nginx": ["9999:9999"]}, "got %s" % published)
bad = [n for n, s in svcs.items()
       if "replicas" in (s.get("deploy") or {}) or "scale" in s]
check("compose: no replicas / scale", not bad, "in %s" % bad)
bad = [n for n, s in svcs.items() if "host" in str(s.get("network_mode", ""))]
check("compose: no network_mode host", not bad, "in %s" % bad)
bad = [n for n, s in svcs.items() if s.get("privileged")]
check("compose: no privileged", not bad, "in %s" % bad)
bad = [n for n, s in svcs.items() if s.get("platform") != "linux/amd64"]
check("compose: platform linux/amd64 everywhere", not bad, "not on %s" % bad)

nets = doc.get("networks") or {}
pp = nets.get("payment-processor") or {}
check("compose: network payment-processor is external, named payment-processor",
      pp.get("external") in (True, {"name": "payment-processor"})
      and pp.get("name", "payment-processor") == "payment-processor", "got %s" % pp)
bad = [n for n in nodes if "payment-processor" not in (svcs.get(n, {}).get("networks") or {})]
check("compose: nodes on the external network payment-processor", not bad, "not %s" % bad)
check("compose: nginx not on payment-processor (it only talks to the nodes)",
      "payment-processor" not in (svcs.get("nginx", {}).get("networks") or {}))
bad = [n for n in svcs if "backend" not in (svcs[n].get("networks") or {})]
check("compose: every service on the private network backend", not bad, "not %s" % bad)
check("compose: backend is a bridge", (nets.get("backend") or {}).get("driver", "bridge") == "bridge")


def volumes(s):
    out = []
    for v in s.get("volumes") or []:
        if isinstance(v, dict):
            out.append((str(v.get("source")), str(v.get("target")), bool(v.get("read_only"))))
        else:
            parts = str(v).split(":")
            out.append((parts[0], parts[1] if len(parts) > 1 else "",
                        len(parts) > 2 and "ro" in parts[2].split(",")))
    return out


sock_src = {n: [src for src, dst, _ in volumes(s) if dst == "/run/sock"] for n, s in svcs.items()}
srcs = {tuple(v) for v in sock_src.values()}
check("compose: one named volume at /run/sock shared by all services",
      len(srcs) == 1 and len(next(iter(srcs))) == 1
      and next(iter(srcs))[0] in (doc.get("volumes") or {}), "got %s" % sock_src)
conf = [(src, ro) for src, dst, ro in volumes(svcs.get("nginx", {}))
        if dst == "/etc/nginx/nginx.conf"]
check("compose: nginx mounts the repo's nginx.conf read-only",
      len(conf) == 1 and conf[0][0].endswith("/nginx.conf") and conf[0][1], "got %s" % conf)
bad = [n for n in nodes if "build" not in svcs.get(n, {})]
check("compose: nodes are built from the repo (build: .)", not bad, "no build on %s" % bad)

env = {n: {k: str(v) for k, v in (svcs.get(n, {}).get("environment") or {}).items()}
       for n in nodes}
check("compose: NODE_ID 1 and 2", [env[n].get("NODE_ID") for n in nodes] == ["1", "2"])
for n in nodes:
    e = env[n]
    check("compose: %s processors are payment-processor-default/-fallback:8080" % n,
          e.get("DEFAULT_PROCESSOR_URL") == "http://payment-processor-default:8080"
          and e.get("FALLBACK_PROCESSOR_URL") == "http://payment-processor-fallback:8080")
for me, peer in (("node1", "node2"), ("node2", "node1")):
    nng = re.fullmatch(r"tcp://[^:]+:(\d+)", env[peer].get("NNG_LISTEN", ""))
    gos = re.fullmatch(r"[^:]+:(\d+)", env[peer].get("GOSSIP_LISTEN", ""))
    check("compose: %s reaches %s (PEER_NNG_URL, PEER_GOSSIP match its listeners)" % (me, peer),
          nng is not None and gos is not None
          and env[me].get("PEER_NNG_URL") == "tcp://%s:%s" % (peer, nng.group(1))
          and env[me].get("PEER_GOSSIP") == "%s:%s" % (peer, gos.group(1)),
          "PEER_NNG_URL=%s PEER_GOSSIP=%s" % (env[me].get("PEER_NNG_URL"),
                                              env[me].get("PEER_GOSSIP")))

# ---- nginx.conf
ngx_full = read(tree + "/nginx.conf")
ngx = "\n".join(re.sub(r"#.*", "", l) for l in ngx_full.splitlines())


def directive(name):
    return re.findall(r"(?:^|[;{}\s])%s\s+([^;]*);" % re.escape(name), ngx)


check("nginx: round-robin (no ip_hash, hash, least_conn, random, sticky)",
      not re.search(r"(?:^|[;{}\s])(ip_hash|hash|least_conn|random|sticky)\b", ngx))
check("nginx: worker_processes 1", directive("worker_processes") == ["1"])
check("nginx: access_log off (and only off)",
      directive("access_log") != [] and set(directive("access_log")) == {"off"},
      "got %s" % directive("access_log"))
check("nginx: listen 9999", any(re.match(r"9999\b", v) for v in directive("listen")),
      "got %s" % directive("listen"))
keep = [v for v in directive("keepalive") if re.fullmatch(r"\d+", v.strip())]
check("nginx: upstream keepalive N", keep and int(keep[0]) > 0, "got %s" % directive("keepalive"))
check("nginx: proxy_http_version 1.1", directive("proxy_http_version") == ["1.1"])
check("nginx: proxy_set_header Connection \"\"",
      any(re.fullmatch(r'Connection\s+""', v.strip()) for v in directive("proxy_set_header")))
nu = " ".join(directive("proxy_next_upstream")).split()
check("nginx: proxy_next_upstream error timeout non_idempotent",
      {"error", "timeout", "non_idempotent"} <= set(nu), "got %s" % nu)


def ms(v):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", v.strip())
    return None if not m else int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60000, None: 1000}[m.group(2)]


for d, bound in (("proxy_connect_timeout", 1000), ("proxy_read_timeout", 5000),
                 ("proxy_send_timeout", 5000)):
    vals = [ms(v) for v in directive(d)]
    check("nginx: %s set and <= %d ms" % (d, bound),
          vals and all(v is not None and 0 < v <= bound for v in vals), "got %s" % directive(d))
ups = re.findall(r"server\s+unix:([^\s;]+)", ngx)
socks = sorted(env[n].get("SERVER_SOCKET", "") for n in nodes)
check("nginx: upstreams are the nodes' unix sockets on /run/sock (SERVER_SOCKET)",
      sorted(ups) == socks and all(s.startswith("/run/sock/") for s in ups),
      "nginx %s, compose %s" % (sorted(ups), socks))
check("nginx: no include (self-contained, mounted alone)", not directive("include"))

# ---- Dockerfile
lines = read(tree + "/Dockerfile").splitlines()
insns, cur = [], ""
for l in lines:
    if not cur and (not l.strip() or l.lstrip().startswith("#")):
        continue
    if l.lstrip().startswith("#"):
        continue
    cur += l.rstrip()[:-1] + " " if l.rstrip().endswith("\\") else l
    if not l.rstrip().endswith("\\"):
        insns.append(cur.strip())
        cur = ""
stages, stage = [], None
for i in insns:
    word, _, rest = i.partition(" ")
    if word.upper() == "FROM":
        stage = {"from": rest.split(), "insns": []}
        stages.append(stage)
    elif stage is not None:
        stage["insns"].append((word.upper(), rest))
check("Dockerfile: two stages", len(stages) == 2, "got %d" % len(stages))
if len(stages) == 2:
    b, r = stages
    check("Dockerfile: build stage FROM debian:12 (bookworm)",
          b["from"][0] in ("debian:12", "debian:bookworm"), "got %s" % b["from"])
    check("Dockerfile: runtime stage FROM debian:12-slim",
          r["from"][0] in ("debian:12-slim", "debian:bookworm-slim"), "got %s" % r["from"])
    check("Dockerfile: the build stage runs scripts/build.sh",
          any(w == "RUN" and re.search(r"(^|[\s;&|])(\./)?scripts/build\.sh\b", a)
              for w, a in b["insns"]))
    installs = [a for st in stages for w, a in st["insns"] if w == "RUN" and "apt-get install" in a]
    check("Dockerfile: every apt-get install uses --no-install-recommends",
          installs and all("--no-install-recommends" in a for a in installs))
    words = lambda st: set(" ".join(a for w, a in st["insns"] if w == "RUN").split())
    deps = read(tree + "/scripts/deps.sh")
    pk = re.search(r"PKGS=\(([^)]*)\)", deps, re.S)
    build_pkgs = [p for p in (pk.group(1).split() if pk else [])
                  if p.endswith("-dev") or p in ("build-essential", "cmake", "pkg-config")]
    missing = [p for p in build_pkgs if p not in words(b)]
    check("Dockerfile: build stage installs the build packages of scripts/deps.sh",
          build_pkgs and not missing, "missing %s" % missing)
    rt = words(r)
    check("Dockerfile: runtime stage installs no -dev package or compiler",
          not [p for p in rt if p.endswith("-dev") or p in ("build-essential", "gcc", "cmake")])
    users = [a.split()[0] for w, a in r["insns"] if w == "USER"]
    check("Dockerfile: runtime runs as a non-root USER",
          users and users[-1] not in ("root", "0", "0:0"), "got %s" % users)
    copies = [a for w, a in r["insns"] if w == "COPY"]
    check("Dockerfile: runtime copies only the paynode binary from the build stage",
          len(copies) == 1 and copies[0].startswith("--from=") and copies[0].split()[1].endswith("/paynode"),
          "got %s" % copies)
    check("Dockerfile: CMD present", any(w == "CMD" for w, a in r["insns"]))
    print("# runtime packages: %s" % " ".join(sorted(p for p in rt if re.match(r"lib|ca-", p))))
    with open(sys.argv[3], "w") as f:
        f.write("\n".join(sorted(rt)) + "\n")

ign = [l.strip() for l in read(tree + "/.dockerignore").splitlines()
       if l.strip() and not l.startswith("#")]
check(".dockerignore: excludes .git and build directories",
      ".git" in ign and "build" in ign and any(i.startswith("build-") or i == "build*" for i in ign),
      "got %s" % ign)
sys.exit(1 if failed else 0)
PYEOF

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
    "$PY" "$TMP/check.py" "$d" "$d/normalised.yml" "$d/runtime_pkgs" || failed=1

    [ -z "$REPO_TREE" ] || differs "$d" Dockerfile || return "$failed"

    # ops/run.sh --limits reads the same numbers.
    local want got
    want=$("$PY" -c '
import re, sys, yaml
u = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
for n, s in sorted(yaml.safe_load(open(sys.argv[1]))["services"].items()):
    l = s["deploy"]["resources"]["limits"]
    m = re.fullmatch(r"([0-9]+)([bkmg]?)b?", str(l["memory"]).lower())
    print(n, float(l["cpus"]), int(m.group(1)) * u[m.group(2)])
' "$d/normalised.yml" 2>/dev/null || echo unparsable)
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
        "$SOURCE_DIR/.dockerignore" "$d/"
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
    if ! "$PY" -c '
import sys
path, edit = sys.argv[1], sys.argv[2]
src = open(path).read()
new = eval(edit, {"re": __import__("re")}, {"s": src})
if new == src:
    sys.exit("edit changed nothing")
open(path, "w").write(new)
' "$d/$file" "$edit"; then
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
    're.sub(r"(\n  node2:\n    <<: \*node\n)", r"\1    networks:\n      - backend\n", s)'
mutant "payment-processor not external" docker-compose.yml "compose: network payment-processor is external" \
    's.replace("    external: true\n    name: payment-processor\n", "    driver: bridge\n")'
mutant "node1 peer points at itself" docker-compose.yml "compose: node1 reaches node2" \
    's.replace("PEER_NNG_URL: tcp://node2:7000", "PEER_NNG_URL: tcp://node1:7000")'
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
