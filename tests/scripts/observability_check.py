#!/usr/bin/env python3
"""Offline checks of the observability profile (docker-compose.observability.yml
and ops/observability/), run by tests/scripts/test_observability_config.sh.

usage: observability_check.py BASE_CONFIG FULL_CONFIG TREE METRICS

BASE_CONFIG: `docker-compose -f docker-compose.yml config` (normalised YAML);
FULL_CONFIG: the same with -f docker-compose.observability.yml --profile
observability; TREE: the directory holding ops/observability/; METRICS: the
text of GET /metrics from a running node. Prints one line per check ("ok  - ..."
or "FAIL - ..."), exits 1 if any failed. Standard library and PyYAML only.
"""
import json
import re
import sys

import yaml

STACK = ("jaeger", "prometheus", "grafana")
NODES = ("node1", "node2")
failed = False


def check(name, ok, detail=""):
    global failed
    print("%s - %s%s" % ("ok  " if ok else "FAIL", name, "" if ok or not detail else ": " + detail))
    if not ok:
        failed = True


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def env(svc):
    e = svc.get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) for x in e)
    return {k: str(v) for k, v in e.items()}


def metric_names(text):
    """Sample names (name_bucket, name_sum... included) and family names."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE ") or line.startswith("# HELP "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def balanced(expr):
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    in_str = False
    for ch in expr:
        if ch == '"':
            in_str = not in_str
        elif in_str:
            continue
        elif ch in "([{":
            stack.append(ch)
        elif ch in ")]}":
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack and not in_str


def main():
    base_cfg, full_cfg, tree, metrics_path = sys.argv[1:5]
    base = load_yaml(base_cfg)["services"]
    full = load_yaml(full_cfg)["services"]

    # The challenge's file alone: untouched by the profile.
    check("docker-compose.yml alone: no observability service",
          not [s for s in STACK if s in base], "got %s" % sorted(base))
    check("docker-compose.yml alone: tracing off in the nodes",
          all(not any(k.startswith("OTEL_") for k in env(base[n])) for n in NODES))
    for s in STACK:
        check("%s: in the profile `observability` only" % s,
              s in full and full[s].get("profiles") == ["observability"],
              "profiles %s" % (full.get(s, {}).get("profiles")))
        check("%s: on the backend network" % s,
              s in full and "backend" in (full[s].get("networks") or {}))
    for s in set(base) & set(full):
        check("%s: no profile (runs in the challenge's run)" % s, not full[s].get("profiles"))
        lim = lambda svc: ((svc.get("deploy") or {}).get("resources") or {}).get("limits")
        check("%s: limits as in docker-compose.yml" % s, lim(full[s]) == lim(base[s]),
              "%s vs %s" % (lim(full[s]), lim(base[s])))
    for n in NODES:
        e, b = env(full[n]), env(base[n])
        check("%s: keeps its own environment" % n,
              all(e.get(k) == v for k, v in b.items()), "lost %s" % [k for k in b if e.get(k) != b[k]])
        check("%s: exports traces to Jaeger's OTLP/HTTP port" % n,
              e.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "http://jaeger:4318")
        check("%s: OTEL_TRACES_SAMPLER set with its argument" % n,
              e.get("OTEL_TRACES_SAMPLER") in ("always_on", "traceidratio",
                                               "parentbased_always_on",
                                               "parentbased_traceidratio")
              and (not e["OTEL_TRACES_SAMPLER"].endswith("ratio")
                   or 0 <= float(e.get("OTEL_TRACES_SAMPLER_ARG", "1")) <= 1))
    check("jaeger: OTLP collector enabled",
          env(full.get("jaeger", {})).get("COLLECTOR_OTLP_ENABLED") == "true")

    # Prometheus scrapes both nodes on the port they listen on.
    prom = load_yaml(tree + "/ops/observability/prometheus.yml")
    targets = [t for sc in prom.get("scrape_configs", []) for st in sc.get("static_configs", [])
               for t in st.get("targets", [])]
    ports = {env(full[n]).get("SERVER_PORT") for n in NODES}
    check("prometheus.yml: scrapes node1 and node2 on SERVER_PORT",
          sorted(targets) == sorted("%s:%s" % (n, p) for n in NODES for p in ports) and
          len(ports) == 1, "targets %s, SERVER_PORT %s" % (targets, ports))
    mounts = {}  # path under ops/ -> target in the container
    for s in STACK:
        for v in full.get(s, {}).get("volumes") or []:
            src, dst = (v.get("source", ""), v.get("target")) if isinstance(v, dict) else \
                v.split(":")[:2]
            mounts[src.split("/ops/", 1)[-1]] = dst
    check("prometheus: its config is mounted",
          mounts.get("observability/prometheus.yml") == "/etc/prometheus/prometheus.yml",
          "mounts %s" % mounts)

    # Grafana: provisioning and dashboards where the provider looks.
    ds = load_yaml(tree + "/ops/observability/grafana/provisioning/datasources/datasources.yml")
    uids = {d["uid"]: d for d in ds.get("datasources", [])}
    check("grafana: a Prometheus data source at the prometheus service",
          uids.get("prometheus", {}).get("type") == "prometheus"
          and uids["prometheus"].get("url") == "http://prometheus:9090")
    check("grafana: a Jaeger data source at the jaeger service",
          uids.get("jaeger", {}).get("url") == "http://jaeger:16686")
    prov = load_yaml(tree + "/ops/observability/grafana/provisioning/dashboards/dashboards.yml")
    paths = [p.get("options", {}).get("path") for p in prov.get("providers", [])]
    check("grafana: provisioning mounted",
          mounts.get("observability/grafana/provisioning") == "/etc/grafana/provisioning")
    check("grafana: the dashboards directory mounted where the provider reads",
          paths and mounts.get("observability/grafana/dashboards") == paths[0],
          "provider %s, mounts %s" % (paths, mounts))

    home = env(full.get("grafana", {})).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
    check("grafana: the home dashboard is the provisioned paynode.json",
          paths and home == paths[0] + "/paynode.json", "got %s" % home)
    with open(tree + "/ops/observability/grafana/dashboards/paynode.json") as f:
        dash = json.load(f)
    with open(metrics_path) as f:
        exported = metric_names(f.read())
    exprs = []
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            uid = (t.get("datasource") or p.get("datasource") or {}).get("uid")
            check("dashboard: panel '%s' %s uses a provisioned data source" % (p["title"], t["refId"]),
                  uid in uids, "uid %s" % uid)
            exprs.append((p["title"], t.get("expr", "")))
    check("dashboard: has panels with queries", len(exprs) >= 4, "%d queries" % len(exprs))
    ids = [p.get("id") for p in dash.get("panels", [])]
    check("dashboard: panel ids unique", len(ids) == len(set(ids)))
    for title, e in exprs:
        check("dashboard: '%s' query is balanced" % title, balanced(e), e)
        used = set(re.findall(r"\bpaynode_[a-zA-Z0-9_:]*", e))
        missing = sorted(used - exported)
        check("dashboard: '%s' names only metrics the node exports" % title,
              used and not missing, "not exported: %s" % missing)
    all_exprs = " ".join(e for _, e in exprs)
    check("dashboard: latency histograms shown as quantiles",
          re.search(r"histogram_quantile\([^,]+, *sum by \(le[^)]*\) *\(rate\(paynode_\w+_bucket",
                    all_exprs) is not None)
    check("dashboard: processor mix shown",
          "paynode_dispatch_recorded_total" in all_exprs and "processor" in all_exprs)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
