#!/usr/bin/env python3
"""What tracing costs a lone node: CPU per payment and POST latency with
tracing off, at a 1 % and at a 100 % sample rate (docs/BENCHMARKS.md,
"Cost of tracing").

Starts two procsims and, for every run, a fresh lone paynode (traced runs
export to an OTLP/HTTP sink in this process that answers 200 and counts the
spans), then runs `loadgen --rate R --duration D --no-schedule` straight at
the node. The modes are interleaved (off, 1 %, 100 %, off, ...) for --rounds
rounds, because the machine is shared, and the medians are printed.

CPU per payment: the run time of every thread of the node
(/proc/PID/task/TID/schedstat, ns) from just before to just after the loadgen
run, divided by the payments sent. The node's idle use over 10 s is a few ms,
below the spread between runs, so it is not subtracted.

Ports: free ones taken from --port-base .. +99 on 127.0.0.1.

usage: bench/tracing_cost.py [--build build] [--port-base 35100] [--rounds 5]
                             [--rate 1000] [--duration 10] [--rt-priority 50]
"""
import argparse
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

MODES = [
    ("off", {}),
    ("1 %", {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}),
    ("100 %", {"OTEL_TRACES_SAMPLER": "always_on"}),
]


class Sink(http.server.BaseHTTPRequestHandler):
    spans = 0
    posts = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Sink.posts += 1
        Sink.spans += body.count(b'"spanId"')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def free_ports(base, n, used=()):
    """n ports of [base, base + 100) that bind now. Ports of this range also serve
    as other programs' ephemeral source ports (and their TIME_WAIT blocks a
    bind), so each run takes ports that are free at its start."""
    out = []
    for p in range(base, base + 100):
        if p in used:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        out.append(p)
        if len(out) == n:
            return out
    raise SystemExit("no %d free ports in %d..%d" % (n, base, base + 99))


def wait_port(port, proc, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit("process on port %d exited: %s" % (port, proc.returncode))
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise SystemExit("nothing listens on %d" % port)


def cpu_ns(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that ended meanwhile
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--port-base", type=int, default=35100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rt-priority", type=int, default=50 if os.geteuid() == 0 else 0)
    a = ap.parse_args()
    b = a.build
    def_port, fb_port, sink_port = free_ports(a.port_base, 3)
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", sink_port), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sims = [subprocess.Popen([b + "/procsim", "--port", str(p), "--name", n, "--fee", f],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for p, n, f in ((def_port, "default", "0.05"), (fb_port, "fallback", "0.15"))]
    results = {m: [] for m, _ in MODES}
    try:
        for p, s in zip((def_port, fb_port), sims):
            wait_port(p, s)
        for r in range(a.rounds):
            for mode, extra in MODES:
                node_port = free_ports(a.port_base, 1, (def_port, fb_port, sink_port))[0]
                env = dict(os.environ, SERVER_HOST="127.0.0.1", SERVER_PORT=str(node_port),
                           LOG_LEVEL="warn",
                           DEFAULT_PROCESSOR_URL="http://127.0.0.1:%d" % def_port,
                           FALLBACK_PROCESSOR_URL="http://127.0.0.1:%d" % fb_port)
                if extra:
                    env.update(extra)
                    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:%d" % sink_port
                    env["OTEL_BSP_SCHEDULE_DELAY"] = "1000"
                node = subprocess.Popen([b + "/paynode"], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                try:
                    wait_port(node_port, node)
                    spans0 = Sink.spans
                    report = "/tmp/tracing_cost.%d.json" % os.getpid()
                    cmd = [b + "/loadgen", "--target", "http://127.0.0.1:%d" % node_port,
                           "--default-url", "http://127.0.0.1:%d" % def_port,
                           "--fallback-url", "http://127.0.0.1:%d" % fb_port,
                           "--rate", str(a.rate), "--duration", str(a.duration),
                           "--no-schedule", "--report", report]
                    if a.rt_priority:
                        cmd += ["--rt-priority", str(a.rt_priority)]
                    c0 = cpu_ns(node.pid)
                    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    c1 = cpu_ns(node.pid)
                    with open(report) as f:
                        rep = json.load(f)
                    os.unlink(report)
                    pay = rep["requests"]["payments"]
                    time.sleep(1.2)  # one export interval: the last batch
                    row = {"cpu_us": (c1 - c0) / 1000.0 / max(pay["sent"], 1),
                           "p50": pay["latencyMs"]["p50"], "p99": pay["latencyMs"]["p99"],
                           "sent": pay["sent"], "failed": pay["failed"],
                           "spans": Sink.spans - spans0,
                           "load": open("/proc/loadavg").read().split()[0]}
                    results[mode].append(row)
                    print("round %d %-6s cpu %.1f us/payment, p50 %.2f ms, p99 %.2f ms, "
                          "sent %d, failed %d, spans %d, load %s" %
                          (r + 1, mode, row["cpu_us"], row["p50"], row["p99"], row["sent"],
                           row["failed"], row["spans"], row["load"]), flush=True)
                finally:
                    node.terminate()
                    node.wait(timeout=10)
    finally:
        for s in sims:
            s.terminate()
            s.wait(timeout=10)
        sink.shutdown()
    print()
    print("| tracing | CPU us/payment (median) | range | POST p50 / p99 ms (medians) "
          "| spans exported per run (median) |")
    print("|---|---|---|---|---|")
    for mode, _ in MODES:
        rows = results[mode]
        med = lambda k: statistics.median(x[k] for x in rows)
        print("| %s | %.1f | %.1f-%.1f | %.2f / %.2f | %d |" %
              (mode, med("cpu_us"), min(x["cpu_us"] for x in rows),
               max(x["cpu_us"] for x in rows), med("p50"), med("p99"), med("spans")))


if __name__ == "__main__":
    sys.exit(main())
