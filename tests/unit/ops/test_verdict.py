"""Unit tests of chaos/verdict.py: hand-made work directories, one per verdict,
checked for the verdict, the report's figures and the exit code."""

import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

CHAOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "chaos")
sys.path.insert(0, CHAOS)
import verdict  # noqa: E402

DEFAULT_PORT, FALLBACK_PORT = 25031, 25032
AMOUNT = 19.9  # every payment of these runs, 1990 cents


def ident(n):
    return "00000000-0000-4000-8000-%012d" % n


class Run:
    """A work directory as chaos/run.sh leaves it before the verdict. By default a
    clean run: ACCEPTED ids, each recorded by default (even ids) or fallback (odd),
    both nodes and both simulators agreeing, loadgen audits all consistent."""

    ACCEPTED = 6

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.work = self._tmp.name
        ids = [ident(i) for i in range(self.ACCEPTED)]
        self.accepted = ids + ids[:2]  # loadgen may write an id twice
        self.codes = {x: ("200", "404") if i % 2 == 0 else ("404", "200")
                      for i, x in enumerate(ids)}
        self.extra = {"default": 0, "fallback": 0}  # records without a 2xx
        self.node_override = {}
        self.events = [{"t": 0.01, "kind": "start", "scenario": "test"}]
        self.audits = [{"atS": 2, "ok": True, "inconsistencies": 0},
                       {"atS": 4, "ok": True, "inconsistencies": 0}]
        self.loadgen = True
        self.args = []

    def close(self):
        self._tmp.cleanup()

    def sims(self):
        d = sum(1 for c in self.codes.values() if c[0] == "200") + self.extra["default"]
        f = sum(1 for c in self.codes.values() if c[1] == "200") + self.extra["fallback"]
        return d, f

    def write(self):
        w = self.work
        with open(os.path.join(w, "accepted.txt"), "w") as f:
            f.writelines(x + "\n" for x in self.accepted)
        with open(os.path.join(w, "lookup.raw"), "w") as f:
            for x, (d, fb) in self.codes.items():
                for port, code in ((DEFAULT_PORT, d), (FALLBACK_PORT, fb)):
                    if code is not None:
                        f.write("%s http://127.0.0.1:%d/payments/%s\n" % (code, port, x))
        with open(os.path.join(w, "events.jsonl"), "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in self.events)
        lg = os.path.join(w, "loadgen.json")
        if self.loadgen:
            with open(lg, "w") as f:
                json.dump({"accepted": len(self.codes), "audits": self.audits,
                           "auditErrors": 0,
                           "requests": {"payments": {"sent": 6, "ok": 6, "failed": 0,
                                                     "errors": {"timeout": 0},
                                                     "latencyMs": {"p99": 3.5}}}}, f)
        elif os.path.exists(lg):
            os.unlink(lg)
        write_summaries(os.path.join(w, "summaries"), *self.sims(),
                        node_override=self.node_override)

    def verdict(self):
        """(exit code, report, printed text)"""
        self.write()
        out = io.StringIO()
        rc = verdict.main(["report", "--work", self.work, "--scenario", "test",
                           "--seed", "7", "--duration", "35", "--users", "300",
                           "--drain-ms", "120", "--default-port", str(DEFAULT_PORT)]
                          + self.args, out)
        report = None
        path = os.path.join(self.work, "report.json")
        if os.path.exists(path):
            with open(path) as f:
                report = json.load(f)
        return rc, report, out.getvalue()


def write_summaries(d, n_default, n_fallback, node_override=None):
    """The four summary bodies of a run whose simulators hold n_default and
    n_fallback payments of AMOUNT; node_override: {"node2": body} replaces one."""
    os.makedirs(d, exist_ok=True)

    def part(n):
        return {"totalRequests": n, "totalAmount": round(n * AMOUNT, 2)}
    bodies = {"default": json.dumps(part(n_default)),
              "fallback": json.dumps(part(n_fallback))}
    node = json.dumps({"default": part(n_default), "fallback": part(n_fallback)})
    bodies["node1"] = bodies["node2"] = node
    bodies.update(node_override or {})
    for name, body in bodies.items():
        with open(os.path.join(d, name + ".json"), "w") as f:
            f.write(body)


class VerdictTest(unittest.TestCase):
    def setUp(self):
        self.run = Run()

    def tearDown(self):
        self.run.close()

    def assert_violation(self, rc, report, text, violation):
        self.assertEqual(rc, 1)
        self.assertFalse(report["ok"])
        self.assertIn(violation, report["violations"])
        self.assertIn("chaos: VIOLATION: " + violation, text)
        self.assertIn("chaos: FAIL (", text)

    def test_clean_run_passes(self):
        rc, report, text = self.run.verdict()
        self.assertEqual(rc, 0, text)
        self.assertTrue(report["ok"])
        self.assertEqual(report["violations"], [])
        v = report["verdict"]
        self.assertEqual((v["accepted"], v["lost"], v["double"], v["phantom"]), (6, 0, 0, 0))
        self.assertEqual((v["recordedDefault"], v["recordedFallback"]), (3, 3))
        self.assertEqual(v["audits"]["count"], 2)
        self.assertEqual(v["audits"]["mismatches"], 0)
        self.assertEqual(v["summaries"]["processors"],
                         {"default": {"totalRequests": 3, "cents": 5970},
                          "fallback": {"totalRequests": 3, "cents": 5970}})
        self.assertTrue(v["summaries"]["node1MatchesProcessors"])
        self.assertTrue(v["summaries"]["node2MatchesProcessors"])
        self.assertEqual(report["timeline"], self.run.events)
        self.assertIn("chaos: test: accepted 6, lost 0, double 0, phantom 0, audit mismatches 0"
                      " (+0 allowed in partition windows, 0 audit errors)", text)
        self.assertIn("node1 equal, node2 equal; drained in 120 ms", text)
        self.assertIn("chaos: client: 6 payments sent, 6 got a 2xx, 0 failed (), p99 3.5 ms",
                      text)
        self.assertTrue(text.rstrip().endswith("chaos: PASS (%s/report.json)" % self.run.work))

    def test_one_lost_payment(self):
        lost = ident(3)
        self.run.codes[lost] = ("404", "404")
        rc, report, text = self.run.verdict()
        self.assert_violation(rc, report, text,
                              "lost: 1 accepted payments recorded by no processor")
        self.assertEqual(report["verdict"]["lost"], 1)
        self.assertEqual(report["verdict"]["lostIds"], [lost])
        self.assertEqual(report["verdict"]["phantom"], 0)
        with open(os.path.join(self.run.work, "lost.txt")) as f:
            self.assertEqual(f.read(), lost + "\n")

    def test_one_double_payment(self):
        twice = ident(4)
        self.run.codes[twice] = ("200", "200")
        rc, report, text = self.run.verdict()
        self.assert_violation(rc, report, text,
                              "double: 1 payments recorded by both processors")
        self.assertEqual(report["verdict"]["doubleIds"], [twice])
        self.assertEqual(report["verdict"]["lost"], 0)
        self.assertEqual(report["verdict"]["phantom"], 0)

    def test_one_phantom_record(self):
        # The fallback holds a payment whose id never got a 2xx.
        self.run.extra["fallback"] = 1
        rc, report, text = self.run.verdict()
        self.assert_violation(rc, report, text, "phantom: 1 records without a 2xx")
        self.assertEqual(report["verdict"]["phantom"], 1)
        self.assertEqual(report["verdict"]["lost"] + report["verdict"]["double"], 0)

    def test_audit_mismatch(self):
        self.run.audits.append({"atS": 6, "ok": True, "inconsistencies": 2})
        rc, report, text = self.run.verdict()
        self.assert_violation(rc, report, text, "audit mismatches: 2")
        self.assertEqual(report["verdict"]["audits"]["mismatches"], 2)
        self.assertIn("audit mismatches 2 (+0 allowed", text)

    def test_audit_mismatch_lenient(self):
        self.run.audits.append({"atS": 6, "ok": True, "inconsistencies": 2})
        self.run.args = ["--lenient-audits"]
        rc, report, _ = self.run.verdict()
        self.assertEqual(rc, 0)
        self.assertEqual(report["verdict"]["audits"]["mismatches"], 2)
        self.assertTrue(report["verdict"]["audits"]["lenient"])

    def test_failed_audit_is_not_counted(self):
        self.run.audits.append({"atS": 6, "ok": False, "inconsistencies": 5})
        rc, report, _ = self.run.verdict()
        self.assertEqual(rc, 0)
        self.assertEqual(report["verdict"]["audits"]["count"], 3)

    def test_audit_mismatch_inside_partition_window_is_allowed(self):
        # Cut at 10 s for 5 s, converged 500 ms after the heal: the window is
        # [9, 16.5] s.
        self.run.events += [{"t": 10.0, "kind": "partition", "secs": 5},
                            {"t": 15.0, "kind": "heal"},
                            {"t": 15.5, "kind": "converged", "afterMs": 500}]
        self.run.audits += [{"atS": 16, "ok": True, "inconsistencies": 3},
                            {"atS": 17, "ok": True, "inconsistencies": 1}]
        rc, report, text = self.run.verdict()
        au = report["verdict"]["audits"]
        self.assertEqual(au["partitionWindowsS"], [{"from": 9.0, "heal": 15.0, "to": 16.5}])
        self.assertEqual((au["mismatches"], au["allowedInPartitionWindows"]), (1, 3))
        self.assert_violation(rc, report, text, "audit mismatches: 1")
        self.assertIn("chaos: partition healed, converged after 500 ms", text)

    def test_slow_convergence(self):
        self.run.events += [{"t": 10.0, "kind": "partition", "secs": 5},
                            {"t": 20.0, "kind": "converged", "afterMs": -1}]
        rc, report, text = self.run.verdict()
        self.assert_violation(rc, report, text,
                              "partition: summaries did not converge within 2000 ms of the heal")
        # Never converged: the window stays open 30 s after the heal.
        self.assertEqual(report["verdict"]["audits"]["partitionWindowsS"][0]["to"], 46.0)

    def test_node_differs_from_processors(self):
        body = json.dumps({"default": {"totalRequests": 3, "totalAmount": 59.7},
                           "fallback": {"totalRequests": 2, "totalAmount": 39.8}})
        self.run.node_override = {"node2": body}
        rc, report, text = self.run.verdict()
        self.assert_violation(rc, report, text,
                              "node2 summary differs from the processors' at the end")
        s = report["verdict"]["summaries"]
        self.assertTrue(s["node1MatchesProcessors"])
        self.assertFalse(s["node2MatchesProcessors"])
        self.assertEqual(s["node2"]["fallback"], {"totalRequests": 2, "cents": 3980})
        self.assertIn("node1 equal, node2 d=3/5970 f=2/3980 DIFFERENT", text)
        self.assertEqual(len(report["violations"]), 1)

    def test_node_that_did_not_answer_differs(self):
        self.run.node_override = {"node1": ""}
        rc, report, text = self.run.verdict()
        self.assert_violation(rc, report, text,
                              "node1 summary differs from the processors' at the end")
        self.assertIsNone(report["verdict"]["summaries"]["node1"])
        self.assertIn("node1 d=x/x f=x/x DIFFERENT", text)

    def test_unknown_processor_summary(self):
        self.run.node_override = {"fallback": "<html>502</html>"}
        rc, report, text = self.run.verdict()
        self.assertEqual(rc, 1)
        self.assertEqual(report["verdict"]["phantom"], -1)
        self.assertIsNone(report["verdict"]["summaries"]["processors"])
        self.assertIn("processors d=3/5970 f=x/x; node1 d=3/5970 f=3/5970 DIFFERENT", text)
        self.assertIn("phantom: -1 records without a 2xx", report["violations"])
        self.assertIn("node1 summary differs from the processors' at the end",
                      report["violations"])

    def test_lookup_errors_and_missing_lookups(self):
        self.run.codes[ident(1)] = ("500", "200")
        self.run.codes[ident(2)] = (None, None)  # curl wrote nothing for it
        rc, report, text = self.run.verdict()
        self.assert_violation(rc, report, text, "lookups that got neither 200 nor 404: 1")
        self.assertIn("looked up 5 of 6 accepted ids", report["violations"])
        with open(os.path.join(self.run.work, "lookup_errors.txt")) as f:
            self.assertEqual(f.read(), "500 200 %s\n" % ident(1))

    def test_one_side_missing_is_000(self):
        self.run.codes[ident(0)] = ("200", None)
        rc, report, _ = self.run.verdict()
        self.assertEqual(report["verdict"]["lookupErrors"], 1)
        self.assertEqual(report["verdict"]["lost"], 0)

    def test_no_loadgen_report(self):
        self.run.loadgen = False
        rc, report, text = self.run.verdict()
        self.assert_violation(rc, report, text, "audit mismatches: -1")
        self.assertIsNone(report["loadgen"])
        self.assertNotIn("chaos: client:", text)

    def test_loadgen_failed_and_not_drained(self):
        self.run.args = ["--loadgen-rc", "124", "--drain-ms", "-1", "--drain-timeout-s", "60"]
        rc, report, text = self.run.verdict()
        self.assert_violation(rc, report, text, "loadgen exited with 124")
        self.assertIn("queue not drained within 60 s", report["violations"])

    def test_violations_in_order(self):
        self.run.codes[ident(3)] = ("404", "404")
        self.run.codes[ident(4)] = ("200", "200")
        self.run.extra["default"] = 2
        _, report, _ = self.run.verdict()
        self.assertEqual([v.split(":")[0] for v in report["violations"]],
                         ["lost", "double", "phantom"])

    def test_exit_codes_of_the_program(self):
        self.run.write()
        prog = os.path.join(CHAOS, "verdict.py")
        base = [sys.executable, prog, "report", "--work", self.run.work,
                "--default-port", str(DEFAULT_PORT)]
        self.assertEqual(subprocess.run(base, capture_output=True).returncode, 0)
        self.run.codes[ident(5)] = ("404", "404")
        self.run.write()
        r = subprocess.run(base, capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("chaos: VIOLATION: lost: 1", r.stdout)
        self.assertEqual(subprocess.run([sys.executable, prog, "report"],
                                        capture_output=True).returncode, 2)
        with open(os.path.join(self.run.work, "loadgen.json"), "w") as f:
            f.write("{truncated")
        self.assertEqual(subprocess.run(base, capture_output=True).returncode, 2)


class SummariesTest(unittest.TestCase):
    def summaries(self, d, *args):
        out = io.StringIO()
        rc = verdict.main(["summaries", d], out)
        return rc, out.getvalue().strip()

    def test_agree(self):
        with tempfile.TemporaryDirectory() as d:
            write_summaries(d, 3, 2)
            self.assertEqual(self.summaries(d), (0, "3 5970 2 3980 | 3 5970 2 3980 | 3 5970 2 3980"))

    def test_one_node_behind(self):
        with tempfile.TemporaryDirectory() as d:
            write_summaries(d, 3, 2, node_override={
                "node1": json.dumps({"default": {"totalRequests": 2, "totalAmount": 39.8},
                                     "fallback": {"totalRequests": 2, "totalAmount": 39.8}})})
            self.assertEqual(self.summaries(d), (1, "2 3980 2 3980 | 3 5970 2 3980 | 3 5970 2 3980"))

    def test_nothing_answered_never_agrees(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(self.summaries(d), (1, "x x x x | x x x x | x x x x"))

    def test_cents_round_half_away_from_zero(self):
        self.assertEqual(verdict.cents(19.9), 1990)
        self.assertEqual(verdict.cents(0.125), 13)  # 12.5: Python's round() gives 12
        self.assertEqual(verdict.cents(-0.125), -13)
        self.assertEqual(verdict.cents(76410.55), 7641055)


if __name__ == "__main__":
    unittest.main()
