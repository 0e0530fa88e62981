#!/usr/bin/env python3
"""The verdict of a chaos run, computed from the raw data chaos/run.sh collected.

chaos/run.sh and chaos/lib.sh start and stop the topology, inject the faults
and fetch the data; this program decides. It does no I/O beyond the files
named below (no network) and needs only Python's standard library.

Usage:
  verdict.py summaries DIR
      Compares the four summaries fetched into DIR (node1.json, node2.json:
      GET /payments-summary of each node; default.json, fallback.json: GET
      /admin/payments-summary of each simulator; an empty or unreadable file
      is a failed request). Prints one line "n1 | n2 | processors" of counts
      and cents ("x" for what is unknown). Exit 0 when both nodes' figures are
      known and equal to the simulators', 1 otherwise.
  verdict.py report --work DIR [options]
      The verdict of a run from its work directory DIR:
        accepted.txt   every correlationId that got a 2xx (loadgen
                       --accepted-file), one per line, repeats allowed
        lookup.raw     curl -w '%{http_code} %{url_effective}' lines of
                       GET /payments/{id} at both simulators for each id
        events.jsonl   the run's timeline (chaos_event)
        loadgen.json   loadgen's report (missing or empty: no audits)
        summaries/     the final summaries, as for `summaries`
      Writes lost.txt, double.txt and lookup_errors.txt into DIR, the JSON
      report to --report (default DIR/report.json), and prints the verdict.
      Options: --scenario S --seed N --duration S --users N --limits
      --lenient-audits --loadgen-rc N --drain-ms N --drain-timeout-s N
      --converge-limit-ms N --default-port P --run-dir DIR --report PATH.
Exit (report): 0 when nothing was violated, 1 on a violation, 2 on a usage
error or unreadable input.
"""

import argparse
import json
import math
import os
import sys

PHANTOM_FORMULA = (
    "phantom = (default totalRequests - accepted ids recorded by default) + "
    "(fallback totalRequests - accepted ids recorded by fallback); each simulator "
    "holds an id at most once (a repeat is 422), so this counts every record whose "
    "id never got a 2xx")

# A partition whose convergence was never measured keeps its window open this
# long after the heal.
UNCONVERGED_WINDOW_MS = 30000
# Slack on both sides of a partition window: loadgen's clock starts a little
# after the run's t0.
WINDOW_SLACK_S = 1
# Ids listed in the report (all of them are in lost.txt / double.txt).
REPORT_IDS = 50


# ------------------------------------------------------------------ summaries

def cents(amount):
    """An amount in units as whole cents, halves away from zero."""
    x = amount * 100
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_json(text):
    """The JSON value of text, or None when it is empty or not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def _counts(doc):
    """(totalRequests, cents) of one summary object, or None."""
    if not isinstance(doc, dict):
        return None
    n, amount = doc.get("totalRequests"), doc.get("totalAmount")
    if not _number(n) or not _number(amount):
        return None
    return (int(n), cents(amount))


def sim_counts(text):
    """(totalRequests, cents) of a simulator's summary body, or None."""
    return _counts(parse_json(text))


def node_counts(text):
    """(default count, cents, fallback count, cents) of a node's summary body,
    or None."""
    doc = parse_json(text)
    if not isinstance(doc, dict):
        return None
    d, f = _counts(doc.get("default")), _counts(doc.get("fallback"))
    return None if d is None or f is None else d + f


class Summaries:
    """Both nodes' summaries and the simulators' (None where unknown)."""

    def __init__(self, node1, node2, sim_default, sim_fallback):
        self.node = [node1, node2]
        self.sims = None
        if sim_default is not None and sim_fallback is not None:
            self.sims = sim_default + sim_fallback
        self.sim_default, self.sim_fallback = sim_default, sim_fallback

    @classmethod
    def from_texts(cls, node1, node2, default, fallback):
        return cls(node_counts(node1), node_counts(node2), sim_counts(default),
                   sim_counts(fallback))

    @classmethod
    def from_dir(cls, d):
        texts = [read_text(os.path.join(d, f + ".json"))
                 for f in ("node1", "node2", "default", "fallback")]
        return cls.from_texts(*texts)

    def node_matches(self, i):
        return self.sims is not None and self.node[i] == self.sims

    def agree(self):
        return self.node_matches(0) and self.node_matches(1)

    def line(self):
        def show(t, width):
            return " ".join(str(v) for v in t) if t is not None else " ".join(["x"] * width)
        sims = show(self.sim_default, 2) + " " + show(self.sim_fallback, 2)
        return "%s | %s | %s" % (show(self.node[0], 4), show(self.node[1], 4), sims)


def counts_json(t):
    if t is None:
        return None
    return {"default": {"totalRequests": t[0], "cents": t[1]},
            "fallback": {"totalRequests": t[2], "cents": t[3]}}


# ------------------------------------------------------------------- lookups

def parse_lookups(lines, default_port):
    """{id: (default code, fallback code)} from curl's "<code> <url>" lines; a
    side that has no line for the id is "000"."""
    marker = ":%s/" % default_port
    d, f = {}, {}
    for line in lines:
        parts = line.split()
        if len(parts) < 2:
            continue
        code, url = parts[0], parts[1]
        ident = url.rsplit("/", 1)[-1]
        (d if marker in url else f)[ident] = code
    return {i: (d.get(i, "000"), f.get(i, "000")) for i in set(d) | set(f)}


def is_code(code, want):
    return code.isdigit() and int(code) == want


class Lookups:
    def __init__(self, looked):
        self.looked = looked
        ids = sorted(looked)
        self.lost = [i for i in ids
                     if not is_code(looked[i][0], 200) and not is_code(looked[i][1], 200)]
        self.double = [i for i in ids
                       if is_code(looked[i][0], 200) and is_code(looked[i][1], 200)]
        self.errors = [i for i in ids
                       if any(not is_code(c, 200) and not is_code(c, 404) for c in looked[i])]
        self.recorded_default = sum(1 for c in looked.values() if is_code(c[0], 200))
        self.recorded_fallback = sum(1 for c in looked.values() if is_code(c[1], 200))


# ---------------------------------------------------------- partitions, audits

def partition_windows(events):
    """[{from, heal, to}] in seconds of the run, one per partition: from 1 s
    before the cut to 1 s after the measured convergence (30 s after the heal
    when it never converged). The n-th "converged" event belongs to the n-th
    partition."""
    conv = [e.get("afterMs") for e in events if e.get("kind") == "converged"]
    out = []
    for k, p in enumerate(e for e in events if e.get("kind") == "partition"):
        ms = conv[k] if k < len(conv) and conv[k] is not None else -1
        if ms < 0:
            ms = UNCONVERGED_WINDOW_MS
        out.append({"from": p["t"] - WINDOW_SLACK_S, "heal": p["t"] + p["secs"],
                    "to": p["t"] + p["secs"] + ms / 1000 + WINDOW_SLACK_S})
    return out


def slow_convergences(events, limit_ms):
    return sum(1 for e in events if e.get("kind") == "converged"
               and (e.get("afterMs", -1) < 0 or e.get("afterMs", -1) > limit_ms))


def audit_figures(loadgen, windows):
    """(audits, mismatches outside the windows, mismatches inside, audit errors)
    from loadgen's report; mismatches is -1 without a report."""
    if loadgen is None:
        return 0, -1, 0, 0
    audits = loadgen.get("audits") or []
    ok = [a for a in audits if a.get("ok")]
    inside = [a for a in ok if any(w["from"] <= a.get("atS", -1) <= w["to"] for w in windows)]
    total_ok = sum(a.get("inconsistencies", 0) for a in ok)
    allowed = sum(a.get("inconsistencies", 0) for a in inside)
    return len(audits), total_ok - allowed, allowed, loadgen.get("auditErrors")


# -------------------------------------------------------------------- verdict

def jq_text(v):
    """v as jq's string interpolation shows it."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e17:
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def read_events(path):
    events = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        e = parse_json(line)
        if not isinstance(e, dict):
            raise ValueError("%s:%d: not a JSON object" % (path, n))
        events.append(e)
    return events


def decide(opts, accepted, lookups, summ, events, loadgen):
    """The report (a dict) of one run; report["ok"] is the verdict."""
    windows = partition_windows(events)
    audits, mismatch, allowed, audit_errors = audit_figures(loadgen, windows)
    slow = slow_convergences(events, opts.converge_limit_ms)
    lost, double = len(lookups.lost), len(lookups.double)
    phantom = -1
    if summ.sims is not None:
        phantom = ((summ.sim_default[0] - lookups.recorded_default) +
                   (summ.sim_fallback[0] - lookups.recorded_fallback))

    v = []
    if opts.loadgen_rc != 0:
        v.append("loadgen exited with %d" % opts.loadgen_rc)
    if lost != 0:
        v.append("lost: %d accepted payments recorded by no processor" % lost)
    if double != 0:
        v.append("double: %d payments recorded by both processors" % double)
    if phantom != 0:
        v.append("phantom: %d records without a 2xx" % phantom)
    if mismatch != 0 and not opts.lenient_audits:
        v.append("audit mismatches: %d" % mismatch)
    if lookups.errors:
        v.append("lookups that got neither 200 nor 404: %d" % len(lookups.errors))
    if len(lookups.looked) != accepted:
        v.append("looked up %d of %d accepted ids" % (len(lookups.looked), accepted))
    for i in (0, 1):
        if not summ.node_matches(i):
            v.append("node%d summary differs from the processors' at the end" % (i + 1))
    if slow != 0:
        v.append("partition: summaries did not converge within %d ms of the heal"
                 % opts.converge_limit_ms)
    if opts.drain_ms == -1:
        v.append("queue not drained within %s s" % opts.drain_timeout_s)

    lg = None
    if loadgen is not None:
        lg = {k: loadgen.get(k) for k in
              ("accepted", "requests", "auditErrors", "inconsistencies", "stages", "score")}
    return {
        "scenario": opts.scenario, "seed": opts.seed, "durationS": opts.duration,
        "users": opts.users, "limits": opts.limits, "work": opts.work, "ok": not v,
        "violations": v,
        "verdict": {
            "accepted": accepted, "recordedDefault": lookups.recorded_default,
            "recordedFallback": lookups.recorded_fallback,
            "lost": lost, "double": double, "phantom": phantom,
            "phantomFormula": PHANTOM_FORMULA,
            "lookupErrors": len(lookups.errors),
            "audits": {"count": audits, "mismatches": mismatch,
                       "allowedInPartitionWindows": allowed, "errors": audit_errors,
                       "partitionWindowsS": windows, "lenient": opts.lenient_audits},
            "partitionConvergeLimitMs": opts.converge_limit_ms,
            "summaries": {"processors": counts_json(summ.sims),
                          "node1": counts_json(summ.node[0]),
                          "node2": counts_json(summ.node[1]),
                          "node1MatchesProcessors": summ.node_matches(0),
                          "node2MatchesProcessors": summ.node_matches(1)},
            "drainMs": opts.drain_ms,
            "lostIds": lookups.lost[:REPORT_IDS],
            "doubleIds": lookups.double[:REPORT_IDS],
        },
        "timeline": events, "loadgen": lg,
    }


def summary_text(report, summ, loadgen, events, opts):
    """The lines chaos/run.sh prints after a run."""
    vd, au = report["verdict"], report["verdict"]["audits"]
    out = ["chaos: %s: accepted %d, lost %d, double %d, phantom %d, audit mismatches %d "
           "(+%d allowed in partition windows, %s audit errors)"
           % (opts.scenario, vd["accepted"], vd["lost"], vd["double"], vd["phantom"],
              au["mismatches"], au["allowedInPartitionWindows"], jq_text(au["errors"]))]

    def pair(t, a):
        return "x/x" if t is None else "%d/%d" % (t[a], t[a + 1])

    def node(i):
        t = summ.node[i]
        if summ.node_matches(i):
            return "equal"
        return "d=%s f=%s DIFFERENT" % (pair(t, 0), pair(t, 2))
    out.append("chaos: summaries at the end: processors d=%s f=%s; node1 %s, node2 %s; "
               "drained in %d ms" % (pair(summ.sim_default, 0), pair(summ.sim_fallback, 0),
                                      node(0), node(1), opts.drain_ms))
    pay = ((loadgen or {}).get("requests") or {}).get("payments")
    if isinstance(pay, dict):
        errs = ", ".join("%s %s" % (k, jq_text(n))
                         for k, n in (pay.get("errors") or {}).items()
                         if _number(n) and n > 0)
        out.append("chaos: client: %s payments sent, %s got a 2xx, %s failed (%s), p99 %s ms"
                   % (jq_text(pay.get("sent")), jq_text(pay.get("ok")),
                      jq_text(pay.get("failed")), errs,
                      jq_text((pay.get("latencyMs") or {}).get("p99"))))
    for e in events:
        if e.get("kind") == "converged":
            out.append("chaos: partition healed, converged after %s ms"
                       % jq_text(e.get("afterMs")))
    if report["ok"]:
        out.append("chaos: PASS (%s)" % opts.report)
    else:
        out.extend("chaos: VIOLATION: %s" % x for x in report["violations"])
        out.append("chaos: FAIL (%s; logs in %s)" % (opts.report,
                                                    os.path.join(opts.run_dir, "logs")))
    return out


def write_lines(path, lines):
    with open(path, "w") as f:
        f.writelines(x + "\n" for x in lines)


def cmd_report(opts, out):
    w = opts.work
    opts.report = opts.report or os.path.join(w, "report.json")
    opts.run_dir = opts.run_dir or os.path.join(w, "run")
    accepted = len(set(read_text(os.path.join(w, "accepted.txt")).splitlines()))
    lookups = Lookups(parse_lookups(read_text(os.path.join(w, "lookup.raw")).splitlines(),
                                    opts.default_port))
    summ = Summaries.from_dir(os.path.join(w, "summaries"))
    events = read_events(os.path.join(w, "events.jsonl"))
    lg_text = read_text(os.path.join(w, "loadgen.json"))
    loadgen = None
    if lg_text:
        loadgen = parse_json(lg_text)
        if not isinstance(loadgen, dict):
            raise ValueError("%s/loadgen.json: not a JSON object" % w)

    write_lines(os.path.join(w, "lost.txt"), lookups.lost)
    write_lines(os.path.join(w, "double.txt"), lookups.double)
    write_lines(os.path.join(w, "lookup_errors.txt"),
                ["%s %s %s" % (lookups.looked[i] + (i,)) for i in lookups.errors])
    report = decide(opts, accepted, lookups, summ, events, loadgen)
    with open(opts.report, "w") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
        f.write("\n")
    for line in summary_text(report, summ, loadgen, events, opts):
        print(line, file=out)
    return 0 if report["ok"] else 1


def json_arg(text):
    """A command-line value read as JSON (a number, true, ...), as jq --argjson."""
    v = parse_json(text)
    if v is None and text != "null":
        raise argparse.ArgumentTypeError("not a JSON value: %r" % text)
    return v


def parser():
    p = argparse.ArgumentParser(prog="chaos/verdict.py",
                                description="The verdict of a chaos run (see the file's top).")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summaries")
    s.add_argument("dir")
    r = sub.add_parser("report")
    r.add_argument("--work", required=True)
    r.add_argument("--report")
    r.add_argument("--run-dir")
    r.add_argument("--scenario", default="custom")
    r.add_argument("--seed", type=json_arg, default=0)
    r.add_argument("--duration", type=json_arg, default=0)
    r.add_argument("--users", type=json_arg, default=0)
    r.add_argument("--limits", action="store_true")
    r.add_argument("--lenient-audits", action="store_true")
    r.add_argument("--loadgen-rc", type=int, default=0)
    r.add_argument("--drain-ms", type=int, default=0)
    r.add_argument("--drain-timeout-s", default="60")
    r.add_argument("--converge-limit-ms", type=int, default=2000)
    r.add_argument("--default-port", required=True)
    return p


def main(argv, out=sys.stdout):
    try:
        opts = parser().parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    try:
        if opts.cmd == "summaries":
            s = Summaries.from_dir(opts.dir)
            print(s.line(), file=out)
            return 0 if s.agree() else 1
        return cmd_report(opts, out)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("chaos/verdict.py: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
