#!/usr/bin/env python3
"""The figures of bench/decompose.sh: process samples from /proc, the saturation
search's next step, and the tables. The shell starts and stops the parts; every
number it prints comes from here (or from loadgen's and bench_udp_pingpong's own
JSON reports, read here).

  decompose.py snap OUT NAME=PID[,PID...]...  sample processes (and their threads
                                              and descendants) into OUT (JSON)
  decompose.py sat-next DIR START MAX STEPS   next rate of the saturation search
                                              over DIR/<rate>.json, or nothing
  decompose.py report WORK                    print every table from WORK

CPU is the run time the scheduler counted (/proc/PID/schedstat, ns; the same total
as utime + stime in /proc/PID/stat, which the kernel scales to it, but not rounded
to 10 ms ticks); context switches are voluntary_ctxt_switches and
nonvoluntary_ctxt_switches from /proc/PID/status. A topology's idle use (sampled
before its first run) is subtracted, pro rata of each run's wall time.
"""
import json
import os
import statistics
import sys
import time

SAT_P99_MS = 10.0


# ------------------------------------------------------------------ sampling

def _read(path):
    with open(path) as f:
        return f.read()


def _task_sample(base):
    """base: /proc/PID or /proc/PID/task/TID."""
    run_ns = int(_read(base + "/schedstat").split()[0])
    stat = _read(base + "/stat")
    rest = stat[stat.rindex(")") + 2:].split()
    ticks = int(rest[11]) + int(rest[12])  # utime, stime (fields 14, 15)
    vol = invol = 0
    comm = ""
    for line in _read(base + "/status").splitlines():
        k, _, v = line.partition(":")
        if k == "voluntary_ctxt_switches":
            vol = int(v)
        elif k == "nonvoluntary_ctxt_switches":
            invol = int(v)
        elif k == "Name":
            comm = v.strip()
    return {"runNs": run_ns, "ticks": ticks, "vol": vol, "invol": invol, "comm": comm}


def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir("/proc/%d/task" % p):
                kids = _read("/proc/%d/task/%s/children" % (p, tid)).split()
                todo.extend(int(k) for k in kids)
        except OSError:
            pass
    return out


def snap_process(pids):
    """Totals over the processes, their descendants and all their threads; the
    threads of the first pid listed one by one."""
    total = {"runNs": 0, "ticks": 0, "vol": 0, "invol": 0, "pids": []}
    threads = {}
    for root in pids:
        for pid in _descendants(root):
            try:
                tids = os.listdir("/proc/%d/task" % pid)
                total["pids"].append(pid)
                for tid in tids:
                    s = _task_sample("/proc/%d/task/%s" % (pid, tid))
                    for k in ("runNs", "vol", "invol"):
                        total[k] += s[k]
                    if pid == pids[0]:
                        threads[tid] = s
                total["ticks"] += _task_sample("/proc/%d" % pid)["ticks"]
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
    total["threads"] = threads
    return total


def cmd_snap(out, specs):
    data = {"t": time.monotonic(), "ticksPerS": os.sysconf("SC_CLK_TCK"), "procs": {}}
    for spec in specs:
        name, _, pids = spec.partition("=")
        data["procs"][name] = snap_process([int(p) for p in pids.split(",") if p])
    with open(out, "w") as f:
        json.dump(data, f)


# ------------------------------------------------------- saturation search

def sat_pass(rep):
    p = rep["requests"]["payments"]
    return (rep.get("completed") and p["failed"] == 0 and p["sent"] > 0
            and p["latencyMs"]["p99"] < SAT_P99_MS)


def sat_steps(d):
    """{rate: report} of the steps run so far."""
    out = {}
    for name in os.listdir(d) if os.path.isdir(d) else []:
        if name.endswith(".json") and name[:-5].isdigit():
            with open(os.path.join(d, name)) as f:
                out[int(name[:-5])] = json.load(f)
    return out


def sat_next(steps, start, maximum, max_steps):
    """Doubles from start until a step fails (or maximum), then bisects between
    the highest pass and the lowest failure, to a 5 % gap or max_steps steps."""
    if len(steps) >= max_steps:
        return None
    if not steps:
        return start
    passed = [r for r, rep in steps.items() if sat_pass(rep)]
    failed = [r for r, rep in steps.items() if not sat_pass(rep)]
    lo = max(passed) if passed else 0
    hi = min([r for r in failed if r > lo], default=None)
    if hi is None:
        nxt = min(lo * 2, maximum)
        return nxt if nxt > lo else None
    if hi - lo <= max(50, hi // 20):
        return None
    nxt = (lo + hi) // 2
    nxt -= nxt % 50
    return nxt if lo < nxt < hi else None


# ------------------------------------------------------------------ tables

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def delta(before, after, idle, name):
    """CPU ns, voluntary, involuntary switches and per-thread deltas of one
    process over a run, minus its idle use over the same wall time."""
    a, b = before["procs"].get(name), after["procs"].get(name)
    if a is None or b is None:
        return None
    wall = after["t"] - before["t"]
    rate = {"runNs": 0.0, "vol": 0.0, "invol": 0.0}
    if idle is not None and name in idle[0]["procs"] and name in idle[1]["procs"]:
        iw = idle[1]["t"] - idle[0]["t"]
        for k in rate:
            rate[k] = (idle[1]["procs"][name][k] - idle[0]["procs"][name][k]) / iw
    d = {k: max(0.0, b[k] - a[k] - rate[k] * wall) for k in rate}
    d["threads"] = []
    for tid, t1 in sorted(b["threads"].items(), key=lambda kv: int(kv[0])):
        t0 = a["threads"].get(tid)
        if t0 is None:
            continue
        it = {"runNs": 0.0, "vol": 0.0, "invol": 0.0}
        if idle is not None:
            i0 = idle[0]["procs"].get(name, {}).get("threads", {}).get(tid)
            i1 = idle[1]["procs"].get(name, {}).get("threads", {}).get(tid)
            if i0 and i1:
                iw = idle[1]["t"] - idle[0]["t"]
                it = {k: (i1[k] - i0[k]) / iw for k in it}
        d["threads"].append({"comm": t1["comm"], **{k: max(0.0, t1[k] - t0[k] - it[k] * wall)
                                                    for k in it}})
    return d


ROWS = [
    ("procsim", "procsim alone", "procsim", ["procsim"]),
    ("nginxc", "nginx constant 202", "nginxc", ["nginx"]),
    ("lone-direct", "lone node, direct", "lone", ["node1", "procsims"]),
    ("lone-nginx", "lone node via nginx", "lone", ["nginx", "node1", "procsims"]),
    ("pair-direct", "pair node, direct", "pair", ["node1", "node2", "procsims"]),
    ("pair-nginx", "pair via nginx", "pair", ["nginx", "node1", "node2", "procsims"]),
]


def row_figures(work, topo, row, rate):
    """Medians over the repeats of one row at one rate, or None if never run."""
    tdir = os.path.join(work, topo)
    idle = (load(os.path.join(tdir, "idle0.json")), load(os.path.join(tdir, "idle1.json")))
    if idle[0] is None or idle[1] is None:
        idle = None
    reps = []
    rep = 1
    while True:
        rdir = os.path.join(tdir, "%s-%d-%d" % (row, rate, rep))
        if not os.path.isdir(rdir):
            break
        rep += 1
        r = load(os.path.join(rdir, "report.json"))
        b, a = load(os.path.join(rdir, "before.json")), load(os.path.join(rdir, "after.json"))
        if r is None or b is None or a is None:
            continue
        reps.append((r, b, a))
    if not reps:
        return None
    f = {"reps": len(reps)}
    lat = [r["requests"]["payments"]["latencyMs"] for r, _, _ in reps]
    for q in ("p50", "p90", "p99", "p999"):
        f[q] = med([x[q] for x in lat])
    f["sent"] = med([r["requests"]["payments"]["sent"] for r, _, _ in reps])
    f["failed"] = med([r["requests"]["payments"]["failed"] for r, _, _ in reps])
    f["genLagP99"] = med([r["loopLagMs"]["p99"] for r, _, _ in reps])
    f["genCpu"] = med([(r["cpu"]["userS"] + r["cpu"]["sysS"]) * 1e6
                       / max(1, r["requests"]["payments"]["sent"]) for r, _, _ in reps])
    f["procs"] = {}
    for name in sorted(reps[0][2]["procs"]):
        per = []
        for r, b, a in reps:
            d = delta(b, a, idle, name)
            n = max(1, r["requests"]["payments"]["sent"])
            if d is not None:
                per.append((d, n))
        if not per:
            continue
        p = {"cpuUs": med([d["runNs"] / 1e3 / n for d, n in per]),
             "vol": med([d["vol"] / n for d, n in per]),
             "invol": med([d["invol"] / n for d, n in per]),
             "threads": []}
        # threads matched by position (same process across repeats)
        for i, t in enumerate(per[0][0]["threads"]):
            vals = [(d["threads"][i], n) for d, n in per if i < len(d["threads"])]
            p["threads"].append({"comm": t["comm"],
                                 "cpuUs": med([x["runNs"] / 1e3 / n for x, n in vals]),
                                 "vol": med([x["vol"] / n for x, n in vals]),
                                 "invol": med([x["invol"] / n for x, n in vals])})
        f["procs"][name] = p
    return f


def pingpong_figures(work, rate):
    reps = []
    rep = 1
    while True:
        r = load(os.path.join(work, "pingpong", "pingpong-%d-%d.json" % (rate, rep)))
        if r is None:
            break
        reps.append(r)
        rep += 1
    if not reps:
        return None
    f = {"reps": len(reps)}
    for q in ("p50", "p90", "p99", "p999"):
        f[q] = med([r["rttMs"][q] for r in reps])
    f["sent"] = med([r["sent"] for r in reps])
    f["failed"] = med([r["sent"] - r["received"] for r in reps])
    f["genLagP99"] = med([r["sendLateMs"]["p99"] for r in reps])
    f["genCpu"] = None
    f["procs"] = {}
    for name in ("pinger", "echoer"):
        per = [(r["processes"][name], max(1, r["sent"])) for r in reps]
        f["procs"][name] = {
            "cpuUs": med([p["cpuTicks"] / p["ticksPerS"] * 1e6 / n for p, n in per]),
            "vol": med([p["voluntary"] / n for p, n in per]),
            "invol": med([p["involuntary"] / n for p, n in per]),
            "threads": []}
    return f


def busy(p):
    """Whether a process (or thread) did anything measurable during the runs."""
    return (p["cpuUs"] or 0) >= 0.5 or (p["vol"] or 0) + (p["invol"] or 0) >= 0.05


def fmt(v, digits=2):
    return "-" if v is None else "%.*f" % (digits, v)


def print_rate_table(work, rate, meta):
    rows = []
    for row, label, topo, _ in ROWS:
        f = row_figures(work, topo, row, rate)
        if f is not None:
            rows.append((label, f))
    f = pingpong_figures(work, rate)
    if f is not None:
        rows.append(("udp ping-pong (RTT)", f))
    if not rows:
        return
    print("\n## %d payments/s, %s s per run, median of %s run(s)\n"
          % (rate, meta.get("duration", "?"), max(f["reps"] for _, f in rows)))
    print("| row | p50 | p90 | p99 | p99.9 | failed/sent | gen lag p99 | gen CPU "
          "| CPU us/payment | ctx switches/payment (vol+invol) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, f in rows:
        procs = [(n, p) for n, p in f["procs"].items() if busy(p)]
        cpu = ", ".join("%s %s" % (n, fmt(p["cpuUs"], 0)) for n, p in procs)
        cs = ", ".join("%s %s+%s" % (n, fmt(p["vol"], 1), fmt(p["invol"], 1)) for n, p in procs)
        print("| %s | %s | %s | %s | %s | %s/%s | %s | %s | %s | %s |" % (
            label, fmt(f["p50"]), fmt(f["p90"]), fmt(f["p99"]), fmt(f["p999"]),
            fmt(f["failed"], 0), fmt(f["sent"], 0), fmt(f["genLagP99"]),
            fmt(f["genCpu"], 0), cpu, cs))
    threads = []
    for row, label, topo, _ in ROWS:
        f = row_figures(work, topo, row, rate)
        if f is None:
            continue
        for name in ("node1", "node2"):
            p = f["procs"].get(name)
            if p is None or not p["threads"]:
                continue
            groups = {}
            for t in filter(busy, p["threads"]):
                groups.setdefault(t["comm"], []).append(t)
            parts = []
            for comm, ts in groups.items():
                each = "/".join("%s+%s" % (fmt(t["vol"], 1), fmt(t["invol"], 1)) for t in ts)
                cpu = sum(t["cpuUs"] for t in ts if t["cpuUs"] is not None)
                parts.append("%s%s: %s (%s us)" % (comm, " x%d" % len(ts) if len(ts) > 1 else "",
                                                   each, fmt(cpu, 0)))
            threads.append("| %s | %s | %s |" % (label, name, "; ".join(parts)))
    if threads:
        print("\nPer thread of the nodes at %d/s: context switches per payment (vol+invol), "
              "each thread of a group, then the group's CPU per payment:\n" % rate)
        print("| row | node | threads |")
        print("|---|---|---|")
        print("\n".join(threads))


def print_saturation(work):
    d = os.path.join(work, "saturation")
    steps = sat_steps(d)
    if not steps:
        return
    meta = load(os.path.join(d, "meta.json")) or {}
    print("\n## Saturation: pair via nginx, compose limits; fixed-rate steps of %s s; "
          "pass = p99 < %g ms and no failed request\n" % (meta.get("duration", "?"), SAT_P99_MS))
    print("| rate/s | p50 | p99 | failed/sent | gen lag p99 | gen CPU % of a core | verdict |")
    print("|---|---|---|---|---|---|---|")
    for rate in sorted(steps):
        r = steps[rate]
        p = r["requests"]["payments"]
        print("| %d | %s | %s | %d/%d | %s | %s | %s |" % (
            rate, fmt(p["latencyMs"]["p50"]), fmt(p["latencyMs"]["p99"]), p["failed"], p["sent"],
            fmt(r["loopLagMs"]["p99"]), fmt(r["cpu"]["percentOfRun"], 0),
            ("pass" if sat_pass(r) else "fail")
            + (" (generator delayed)" if r["loopLagMs"]["p99"] > 1 else "")))
    passed = [r for r in steps if sat_pass(steps[r])]
    failed = [r for r in steps if not sat_pass(steps[r]) and (not passed or r > max(passed))]
    best = max(passed) if passed else None
    print("\nHighest passing rate: %s%s." % (
        "%d/s" % best if best is not None else "none",
        ", lowest failing rate above it: %d/s" % min(failed) if failed else
        " (no step failed: the search stopped at its maximum)"))
    late = [r for r in steps if steps[r]["loopLagMs"]["p99"] > 1]
    if late:
        print("The generator's own loop lag p99 exceeded 1 ms at %s/s: the machine delayed "
              "the generator itself, so those steps say more about the machine than the pair."
              % ", ".join(str(r) for r in sorted(late)))
    gen = [r for r in steps if steps[r]["cpu"]["percentOfRun"] > 80]
    if gen:
        print("The generator used more than 80 %% of a core at %s/s: there the limit may be "
              "the generator's, not the pair's." % ", ".join(str(r) for r in sorted(gen)))
    print()
    print_status(os.path.join(d, "status.txt"), "after the search")


def print_status(path, what):
    """The limited parts' cgroup lines that ops/run.sh --limits status printed."""
    try:
        lines = [ln.split(None, 3) for ln in _read(path).splitlines() if "throttled" in ln]
    except OSError:
        return
    for f in lines:
        if len(f) == 4:
            print("- %s, %s: %s" % (what, f[0], f[3]))


def final_figures(work, which):
    reps = []
    rep = 1
    while True:
        r = load(os.path.join(work, "final", "%s-%d" % (which, rep), "report.json"))
        if r is None:
            break
        reps.append(r)
        rep += 1
    if not reps:
        return None

    def sc(k):
        return med([r["score"][k] if r.get("score") else None for r in reps])
    p = [r["requests"]["payments"] for r in reps]
    return {"reps": len(reps), "net": sc("net"), "p99": sc("p99Ms"), "bonus": sc("bonus"),
            "lag": sc("lag"), "inc": med([r["inconsistencies"] for r in reps]),
            "postp50": med([x["latencyMs"]["p50"] for x in p]),
            "postp99": med([x["latencyMs"]["p99"] for x in p]),
            "ok": med([x["ok"] for x in p]), "sent": med([x["sent"] for x in p]),
            "genLagP99": med([r["loopLagMs"]["p99"] for r in reps])}


def print_final(work):
    pair, lone = final_figures(work, "pair"), final_figures(work, "lone")
    if pair is None and lone is None:
        return
    meta = load(os.path.join(work, "final", "meta.json")) or {}
    print("\n## Compressed final under the compose limits (loadgen --schedule final "
          "--duration %s), same nginx\n" % meta.get("duration", "?"))
    print("| figure | pair | lone node |")
    print("|---|---|---|")
    rows = [("runs (median of)", "reps", 0), ("net score", "net", 2), ("p99 (score), ms", "p99", 2),
            ("bonus", "bonus", 2), ("inconsistencies", "inc", 0), ("lag", "lag", 0),
            ("POST p50, ms", "postp50", 2), ("POST p99, ms", "postp99", 2),
            ("payments ok", "ok", 0), ("payments sent", "sent", 0),
            ("generator lag p99, ms", "genLagP99", 2)]
    for label, k, dig in rows:
        print("| %s | %s | %s |" % (label, fmt(pair and pair[k], dig), fmt(lone and lone[k], dig)))
    print()
    for which in ("pair", "lone"):
        print_status(os.path.join(work, "final", which + "-1", "status.txt"), which)


def cmd_report(work):
    meta = load(os.path.join(work, "meta.json")) or {}
    print("# bench/decompose.sh, %s" % meta.get("started", "?"))
    print("\nLatencies in ms (POST /payments, loadgen open loop, from each request's due "
          "time); CPU in us per payment sent, idle use subtracted; gen = the generator.")
    for rate in meta.get("rates", []):
        print_rate_table(work, rate, meta)
    print_saturation(work)
    print_final(work)


def main(argv):
    if len(argv) >= 3 and argv[1] == "snap":
        cmd_snap(argv[2], argv[3:])
    elif len(argv) == 6 and argv[1] == "sat-next":
        n = sat_next(sat_steps(argv[2]), int(argv[3]), int(argv[4]), int(argv[5]))
        if n is not None:
            print(n)
    elif len(argv) == 3 and argv[1] == "report":
        cmd_report(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
