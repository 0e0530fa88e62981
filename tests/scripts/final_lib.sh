# Shared by the compressed-final tests: run loadgen, then check its report.
# Sourced, not run (the CMake glue registers test_*.sh only).

need_bins()
{
    for b in "$@"; do
        if [ ! -x "$BUILD_DIR/$b" ]; then
            echo "skip: $BUILD_DIR/$b not built"
            exit 77
        fi
    done
}

# check_report REPORT: zero inconsistencies, lag 0, no payment lost, and the
# run really happened (enough payments, several audits).
check_report()
{
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
pay = r["requests"]["payments"]
s = r["score"]
audits = [a for a in r["audits"] if a.get("ok")]
print("payments ok=%d failed=%d p99=%.2f ms; audits %d (ok %d); inconsistencies %d; lag %d; net %.2f"
      % (pay["ok"], pay["failed"], pay["latencyMs"]["p99"], len(r["audits"]), len(audits),
         r["inconsistencies"], s["lag"], s["net"]))
bad = []
if not r.get("completed", True): bad.append("run did not complete")
if pay["ok"] < 500: bad.append("too few payments for a meaningful run: %d" % pay["ok"])
if len(audits) < 2: bad.append("fewer than 2 successful audits")
if r["inconsistencies"] != 0: bad.append("inconsistencies: %d" % r["inconsistencies"])
if s["lag"] != 0: bad.append("lag (2xx minus recorded): %d" % s["lag"])
for b in bad: print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
}
