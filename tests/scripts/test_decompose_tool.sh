#!/usr/bin/env bash
# Offline checks of bench/decompose.py (no ports, no processes started): the
# saturation search's steps, the idle subtraction, and a report from fixtures.
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" - "$SOURCE_DIR/bench/decompose.py" <<'PY'
import importlib.util, io, json, os, sys, tempfile, contextlib
spec = importlib.util.spec_from_file_location("decompose", sys.argv[1])
d = importlib.util.module_from_spec(spec)
spec.loader.exec_module(d)
fails = 0
def check(name, cond):
    global fails
    print(("ok   - " if cond else "FAIL - ") + name)
    fails += not cond

def rep(p99, failed=0, sent=1000):
    return {"completed": True, "requests": {"payments": {"sent": sent, "failed": failed, "ok": sent - failed,
            "latencyMs": {"p50": 1, "p90": 2, "p99": p99, "p999": p99}}},
            "loopLagMs": {"p99": 0.1}, "cpu": {"userS": 0.1, "sysS": 0.1, "percentOfRun": 5}}

# search: doubles while passing, then bisects, stops at a 5 % gap or max steps
check("first step is the start", d.sat_next({}, 1000, 32000, 9) == 1000)
check("doubles after a pass", d.sat_next({1000: rep(2)}, 1000, 32000, 9) == 2000)
check("capped at the maximum", d.sat_next({1000: rep(2), 2000: rep(2)}, 1000, 2000, 9) is None)
check("bisects after a failure", d.sat_next({1000: rep(2), 2000: rep(11)}, 1000, 32000, 9) == 1500)
check("an error fails a step", d.sat_next({1000: rep(2), 2000: rep(2, failed=1)}, 1000, 32000, 9) == 1500)
check("stops at a 5 % gap", d.sat_next({1000: rep(2), 1040: rep(12)}, 1000, 32000, 9) is None)
check("stops after max steps", d.sat_next({1000: rep(2), 2000: rep(11)}, 1000, 32000, 2) is None)
check("first step failing bisects down", d.sat_next({1000: rep(20)}, 1000, 32000, 9) == 500)

# idle subtraction: 1 ms/s of idle CPU over a 10 s run leaves 100 ms - 10 ms
def snap(t, run_ns, vol):
    return {"t": t, "procs": {"node1": {"runNs": run_ns, "vol": vol, "invol": 0, "ticks": 0,
            "threads": {"7": {"comm": "paynode", "runNs": run_ns, "vol": vol, "invol": 0}}}}}
idle = (snap(0, 0, 0), snap(2, 2_000_000, 4))
dd = d.delta(snap(10, 10_000_000, 10), snap(20, 110_000_000, 1030), idle, "node1")
check("idle CPU subtracted", abs(dd["runNs"] - 90_000_000) < 1)
check("idle switches subtracted", abs(dd["vol"] - 1000) < 1e-6)
check("threads too", abs(dd["threads"][0]["runNs"] - 90_000_000) < 1)

# a report from fixture files: one lone-direct row at 300/s
with tempfile.TemporaryDirectory() as w:
    json.dump({"rates": [300], "duration": 10, "started": "x"}, open(os.path.join(w, "meta.json"), "w"))
    os.makedirs(os.path.join(w, "lone", "lone-direct-300-1"))
    json.dump(idle[0], open(os.path.join(w, "lone", "idle0.json"), "w"))
    json.dump(idle[1], open(os.path.join(w, "lone", "idle1.json"), "w"))
    r = rep(3.5, sent=3000)
    json.dump(r, open(os.path.join(w, "lone", "lone-direct-300-1", "report.json"), "w"))
    json.dump(snap(10, 10_000_000, 10), open(os.path.join(w, "lone", "lone-direct-300-1", "before.json"), "w"))
    json.dump(snap(20, 310_000_000, 3010), open(os.path.join(w, "lone", "lone-direct-300-1", "after.json"), "w"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        d.cmd_report(w)
    text = out.getvalue()
    check("row printed with p99", "| lone node, direct | 1.00 | 2.00 | 3.50 |" in text)
    # (300 ms - 10 ms idle) / 3000 payments = 97 us; (3000 - 20) / 3000 = 1.0 switches
    check("CPU per payment net of idle", "node1 97" in text)
    check("switches per payment", "node1 1.0+0.0" in text)
    check("per-thread line", "paynode: 1.0+0.0 (97 us)" in text)
sys.exit(1 if fails else 0)
PY
