"""The offline checks of the deploy files of one tree (tests/scripts/test_deploy_config.sh).

Usage: deploy_check.py TREE NORMALISED RUNTIME_PKGS_OUT LIMITS_OUT
TREE holds nginx.conf, Dockerfile, .dockerignore, .gitignore and scripts/deps.sh; NORMALISED
is its docker-compose.yml as `docker-compose config` printed it. Prints one
"ok   - ..." or "FAIL - ..." line per check; exit 1 when any failed. Writes the
runtime stage's packages to RUNTIME_PKGS_OUT and the services' limits, as
ops/compose_limits.py prints them, to LIMITS_OUT. Needs PyYAML.
"""
import ipaddress
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ops"))
from compose_limits import mem_bytes, service_limits  # noqa: E402

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
with open(sys.argv[4], "w") as f:
    f.writelines("%s %s %s\n" % lim for lim in service_limits(doc) if lim[2] is not None)


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

# The peer links: reachable on the backend network only. Each node has a fixed
# address in backend's subnet (outside the range docker hands out by itself) and
# binds its nng and gossip listeners to it, never to 0.0.0.0 or a name (a name
# could resolve to the address on payment-processor, which the nodes share too).
backend = nets.get("backend") or {}
subnets = []
for c in ((backend.get("ipam") or {}).get("config") or []):
    try:
        subnets.append((ipaddress.ip_network(c.get("subnet", "")),
                        ipaddress.ip_network(c["ip_range"]) if c.get("ip_range") else None))
    except ValueError:
        pass
check("compose: backend has a fixed ipam subnet", len(subnets) == 1,
      "got %s" % (backend.get("ipam")))
addr = {}
for n in nodes:
    bn = (svcs.get(n, {}).get("networks") or {}).get("backend") or {}
    try:
        addr[n] = ipaddress.ip_address(bn.get("ipv4_address", ""))
    except ValueError:
        addr[n] = None
bad = [n for n in nodes if addr[n] is None or not subnets or addr[n] not in subnets[0][0]
       or (subnets[0][1] is not None and addr[n] in subnets[0][1])
       or addr[n] in (subnets[0][0].network_address, subnets[0][0].broadcast_address)]
check("compose: node addresses fixed in backend's subnet, outside its dynamic ip_range", not bad,
      "%s" % {n: str(a) for n, a in addr.items()})
check("compose: the two node addresses differ", addr["node1"] != addr["node2"])
for n in nodes:
    e = env[n]
    nng = re.fullmatch(r"tcp://([^:/]+):(\d+)", e.get("NNG_LISTEN", ""))
    gos = re.fullmatch(r"([^:/]+):(\d+)", e.get("GOSSIP_LISTEN", ""))
    check("compose: %s peer listeners on its backend address (NNG_LISTEN, GOSSIP_LISTEN)" % n,
          addr[n] is not None and nng is not None and gos is not None
          and nng.group(1) == str(addr[n]) and gos.group(1) == str(addr[n]),
          "NNG_LISTEN=%s GOSSIP_LISTEN=%s address %s" % (e.get("NNG_LISTEN"),
                                                         e.get("GOSSIP_LISTEN"), addr[n]))
for me, peer in (("node1", "node2"), ("node2", "node1")):
    check("compose: %s reaches %s (PEER_NNG_URL, PEER_GOSSIP are its listeners)" % (me, peer),
          env[peer].get("NNG_LISTEN") and env[peer].get("GOSSIP_LISTEN")
          and env[me].get("PEER_NNG_URL") == env[peer].get("NNG_LISTEN")
          and env[me].get("PEER_GOSSIP") == env[peer].get("GOSSIP_LISTEN"),
          "PEER_NNG_URL=%s PEER_GOSSIP=%s" % (env[me].get("PEER_NNG_URL"),
                                              env[me].get("PEER_GOSSIP")))
# The HTTP port: nginx uses the unix sockets and the healthcheck 127.0.0.1, so the
# TCP listener stays on loopback (/metrics and /purge-payments off both networks).
bad = [n for n in nodes if env[n].get("SERVER_HOST") != "127.0.0.1"]
check("compose: nodes' TCP HTTP listener on loopback only (SERVER_HOST 127.0.0.1)", not bad,
      "%s" % {n: env[n].get("SERVER_HOST", "(default 0.0.0.0)") for n in nodes})
hc = [" ".join(map(str, (svcs.get(n, {}).get("healthcheck") or {}).get("test") or []))
      for n in nodes]
check("compose: the healthcheck reaches the node on 127.0.0.1",
      all("/dev/tcp/127.0.0.1/" in h for h in hc), "got %s" % hc)
bad = [(n, str(p)) for n, sv in svcs.items() for p in (sv.get("expose") or [])]
check("compose: no service exposes ports (expose:)", not bad, "got %s" % bad)

# The pair's key: a compose secret from ./peer.key, mounted into both nodes and
# read through PEER_KEY_FILE; never inline, never PEER_INSECURE.
top_secrets = doc.get("secrets") or {}


def secret_names(sv):
    out = []
    for x in sv.get("secrets") or []:
        out.append(x.get("source") if isinstance(x, dict) else str(x))
    return out


def secret_target(sv, name):
    for x in sv.get("secrets") or []:
        if isinstance(x, dict) and x.get("source") == name:
            t = x.get("target") or name
            return t if t.startswith("/") else "/run/secrets/" + t
        if x == name:
            return "/run/secrets/" + name
    return None


key_secrets = [k for k, v in top_secrets.items()
               if str((v or {}).get("file", "")).endswith("/peer.key")]
check("compose: a secret read from the file ./peer.key", len(key_secrets) == 1,
      "got %s" % top_secrets)
for n in nodes:
    e, sv = env[n], svcs.get(n, {})
    name = key_secrets[0] if len(key_secrets) == 1 else None
    check("compose: %s gets the pair's key (the secret, PEER_KEY_FILE=/run/secrets/<it>)" % n,
          name is not None and name in secret_names(sv)
          and e.get("PEER_KEY_FILE") == secret_target(sv, name),
          "secrets %s PEER_KEY_FILE=%s" % (secret_names(sv), e.get("PEER_KEY_FILE")))
    check("compose: %s has no inline PEER_KEY and no PEER_INSECURE" % n,
          "PEER_KEY" not in e and e.get("PEER_INSECURE", "0") == "0")

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
# /metrics is for the operator on each node's own port, not for port 9999.
check("nginx: /metrics is not exposed (location = /metrics { return 404; })",
      re.search(r"location\s*=\s*/metrics\s*\{\s*return\s+404\s*;\s*\}", ngx) is not None)

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
# The pair's key never enters the image (COPY . . in the build stage) nor git.
check(".dockerignore: excludes peer.key", "peer.key" in ign or "/peer.key" in ign, "got %s" % ign)
gi = [l.strip() for l in read(tree + "/.gitignore").splitlines()
      if l.strip() and not l.startswith("#")]
check(".gitignore: ignores peer.key", "peer.key" in gi or "/peer.key" in gi, "got %s" % gi)
sys.exit(1 if failed else 0)
