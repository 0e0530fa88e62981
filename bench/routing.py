#!/usr/bin/env python3
"""Figures of bench/routing.sh (docs/BENCHMARKS.md §7).

  routing.py snap OUT NAME=PID[,PID...]...  CPU time (all threads) and memory of
                                            the processes, to OUT (JSON)
  routing.py report WORK                    one row per schedule and figure: each
                                            policy's net, gross - fees, lag, p99,
                                            inconsistencies, payments on the
                                            fallback, overflow episodes
  routing.py conns WORK                     the cost of attempts in flight: node CPU
                                            and memory, POST p99 per default delay
Reads loadgen's JSON reports; computes, never starts anything."""
import json
import os
import sys
import time


def _read(path):
    with open(path) as f:
        return f.read()


def _status_kb(pid, key):
    for line in _read("/proc/%d/status" % pid).splitlines():
        k, _, v = line.partition(":")
        if k == key:
            return int(v.split()[0])
    return 0


def snap_pids(pids):
    """runNs: CPU time of every thread (schedstat); rssKb, hwmKb: summed."""
    out = {"runNs": 0, "rssKb": 0, "hwmKb": 0}
    for pid in pids:
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                out["runNs"] += int(_read("/proc/%d/task/%s/schedstat" % (pid, tid)).split()[0])
            out["rssKb"] += _status_kb(pid, "VmRSS")
            out["hwmKb"] += _status_kb(pid, "VmHWM")
        except (OSError, ValueError, IndexError):
            continue
    return out


def cmd_snap(out, specs):
    data = {"t": time.monotonic(), "procs": {}}
    for spec in specs:
        name, _, pids = spec.partition("=")
        data["procs"][name] = snap_pids([int(p) for p in pids.split(",") if p])
    with open(out, "w") as f:
        json.dump(data, f)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run_figures(d):
    """The figures of one run directory, or None when it has no report."""
    r = load(os.path.join(d, "report.json"))
    if r is None:
        return None
    s = r.get("score") or {}
    procs = r.get("processors") or {}
    dflt = (procs.get("default") or {}).get("totalRequests", 0)
    fb = (procs.get("fallback") or {}).get("totalRequests", 0)
    overflow = 0
    try:
        overflow = _read(os.path.join(d, "routing.log")).count("overflow to the fallback started")
    except OSError:
        pass
    return {
        "net": float(s["net"]) if "net" in s else None,
        "revenue": (float(s["grossAmount"]) - float(s["fees"])) if "fees" in s else None,
        "lag": s.get("lag"),
        "p99": r["requests"]["payments"]["latencyMs"]["p99"],
        "inc": r.get("inconsistencies"),
        "ok": r["requests"]["payments"]["ok"],
        "fallback": fb,
        "default": dflt,
        "overflowEpisodes": overflow,
        "completed": r.get("completed", False),
    }


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "%.*f" % (digits, v)
    return str(v)


def cmd_report(work):
    meta = load(os.path.join(work, "meta.json")) or {}
    print("Routing runs, started %s, %s s compressed each (pair, compose limits)."
          % (meta.get("started", "?"), meta.get("duration", "?")))
    print()
    rows = []
    policies = []
    for sched in sorted(os.listdir(work)):
        sd = os.path.join(work, sched)
        if not os.path.isdir(sd) or sched == "conns":
            continue
        cells = {}
        for run in sorted(os.listdir(sd)):
            pol, _, rep = run.rpartition("-")
            f = run_figures(os.path.join(sd, run))
            if f is None:
                continue
            if pol not in policies:
                policies.append(pol)
            cells.setdefault(pol, []).append(f)
        rows.append((sched, cells))
    head = ["schedule", "figure"] + policies
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    figures = [("net", "net score", 2), ("revenue", "gross - fees (net before the p99 bonus)", 2),
               ("lag", "lag", 0), ("p99", "POST p99 ms", 2),
               ("inc", "inconsistencies", 0), ("fallback", "payments on the fallback", 0),
               ("ok", "payments accepted", 0), ("overflowEpisodes", "overflow episodes", 0)]
    for sched, cells in rows:
        for key, label, digits in figures:
            vals = []
            for pol in policies:
                runs = cells.get(pol, [])
                vals.append(" / ".join(fmt(f[key], digits) for f in runs) or "n/a")
            print("| %s | %s | %s |" % (sched, label, " | ".join(vals)))
    return 0


def cmd_conns(work):
    base = os.path.join(work, "conns")
    print("| policy | default delay ms | rate /s | attempts in flight per node (rate x delay / 2) "
          "| node CPU ms/s (both) | CPU us per payment | RSS MiB (both, after) "
          "| peak RSS MiB (both) | POST p99 ms | lag |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in sorted(os.listdir(base), key=lambda n: (n.rsplit("-", 2)[0],
                                                       int(n.rsplit("-", 2)[1]))):
        d = os.path.join(base, run)
        m, b, a, r = (load(os.path.join(d, n)) for n in
                      ("meta.json", "before.json", "after.json", "report.json"))
        if not (m and b and a and r):
            continue
        pol = run.rsplit("-", 2)[0]
        dt = a["t"] - b["t"]
        cpu_ns = a["procs"]["nodes"]["runNs"] - b["procs"]["nodes"]["runNs"]
        ok = r["requests"]["payments"]["ok"]
        s = r.get("score") or {}
        print("| %s | %d | %d | %d | %.0f | %.0f | %.1f | %.1f | %.2f | %s |" % (
            pol, m["delay"], m["rate"], m["rate"] * m["delay"] // 2000,
            cpu_ns / 1e6 / dt, cpu_ns / 1e3 / ok if ok else 0,
            a["procs"]["nodes"]["rssKb"] / 1024, a["procs"]["nodes"]["hwmKb"] / 1024,
            r["requests"]["payments"]["latencyMs"]["p99"], s.get("lag", "n/a")))
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "snap":
        cmd_snap(argv[2], argv[3:])
        return 0
    if len(argv) == 3 and argv[1] == "report":
        return cmd_report(argv[2])
    if len(argv) == 3 and argv[1] == "conns":
        return cmd_conns(argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
