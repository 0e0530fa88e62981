#!/usr/bin/env bash
# The load generator's user interface, end to end: a short run against one
# node and two simulated processors (free ports) on a pseudo-terminal must
# draw the progress line; a run with stderr not a terminal must not; the
# --html page must be self-contained and render in headless Chromium: five
# charts laid out, their data lines drawn, no console message. Leaves the
# screenshot and the page in the build directory (loadgen_report.png/.html).
# Skips (77) only when chromium or the binaries are missing.
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$SOURCE_DIR/build}
. "$SOURCE_DIR/tests/scripts/final_lib.sh"
need_bins paynode procsim loadgen
if ! command -v chromium > /dev/null; then
    echo "skip: chromium not installed (scripts/deps.sh installs it)"
    exit 77
fi
for tool in script python3; do
    command -v $tool > /dev/null || { echo "FAIL: $tool missing (scripts/deps.sh)"; exit 1; }
done

work=$(mktemp -d /tmp/test_loadgen_html.XXXXXX)
pids=()
cleanup()
{
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
fail()
{
    echo "FAIL: $*"
    echo "logs in $work"
    exit 1
}

free_port()
{
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
D=$(free_port) F=$(free_port) N=$(free_port)
"$BUILD_DIR/procsim" --host 127.0.0.1 --port "$D" --name default --fee 0.05 > "$work/default.log" 2>&1 & pids+=($!)
"$BUILD_DIR/procsim" --host 127.0.0.1 --port "$F" --name fallback --fee 0.15 > "$work/fallback.log" 2>&1 & pids+=($!)
SERVER_HOST=127.0.0.1 SERVER_PORT=$N DEFAULT_PROCESSOR_URL=http://127.0.0.1:$D \
    FALLBACK_PROCESSOR_URL=http://127.0.0.1:$F "$BUILD_DIR/paynode" > "$work/node.log" 2>&1 & pids+=($!)
for port in $D $F $N; do
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
        sleep 0.1
    done
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null || fail "nothing listens on $port"
done
urls=(--target "http://127.0.0.1:$N" --default-url "http://127.0.0.1:$D"
      --fallback-url "http://127.0.0.1:$F")

# 1. a 6 s run (stages at 1, 3 and 5 s, audits every 2 s) with stderr on a
# pseudo-terminal: the progress line is redrawn in place
html=$work/report.html
cmd=$(printf '%q ' "$BUILD_DIR/loadgen" "${urls[@]}" --duration 6 --users 40 \
    --stages '10:0/n,0/n;30:100/n,0/n;50:0/y,20/n' --audit-interval-s 2 --drain-s 1 \
    --html "$html")
script -qefc "$cmd > $(printf '%q' "$work/report.json")" "$work/tty.log" > /dev/null \
    || fail "loadgen run failed: $(tail -c 600 "$work/tty.log")"
python3 - "$work/tty.log" <<'PY' || fail "no progress line on the terminal"
import re, sys
t = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
lines = re.findall(r"\r([0-9]+\.[0-9]/6s  VUs [0-9]+  [0-9]+ pay/s  p99 [^\r\n]*?stage [0-9]/3[^\r\n]*?)\x1b\[K", t)
print("progress lines: %d, last: %s" % (len(lines), lines[-1] if lines else "-"))
sys.exit(0 if len(lines) >= 5 else 1)
PY
python3 - "$work/report.json" <<'PY' || fail "bad JSON report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["completed"] and r["requests"]["payments"]["ok"] > 0 and len(r["audits"]) >= 2, r
PY

# 2. stderr not a terminal: silent
"$BUILD_DIR/loadgen" "${urls[@]}" --rate 20 --duration 1 --no-purge > /dev/null 2> "$work/quiet.err" \
    || fail "rate run failed"
if grep -q 'pay/s' "$work/quiet.err"; then fail "progress line written to a non-terminal"; fi

# 3. the page: self-contained, renders in a real browser
for ref in 'src=' 'href=' 'url(' '@import' '<link' '<img' '<iframe'; do
    if grep -qF -- "$ref" "$html"; then fail "external reference '$ref' in the page"; fi
done
cp "$html" "$BUILD_DIR/loadgen_report.html"
chrome=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
        --disable-background-networking --disable-component-update --disable-sync
        --disable-dev-shm-usage)
export HOME=$work # chromium writes under $HOME; keep it in the scratch directory
timeout 120 "${chrome[@]}" --user-data-dir="$(mktemp -d "$work/profile.XXXXXX")" \
    --enable-logging=stderr --v=0 --dump-dom "file://$html" > "$work/dom.html" 2> "$work/chromium.log" \
    || fail "chromium --dump-dom failed: $(tail -5 "$work/chromium.log")"
python3 - "$work/dom.html" <<'PY' || fail "the charts did not render"
import re, sys
dom = open(sys.argv[1]).read()
charts = re.search(r'data-charts="([0-9]+)/([0-9]+)"', dom)
lines = re.search(r'data-lines="([0-9]+)"', dom)
print("charts laid out: %s, data lines with a length: %s"
      % (charts.group(0) if charts else "none", lines.group(1) if lines else "none"))
ok = charts is not None and charts.group(1) == charts.group(2) == "5"
ok = ok and len(re.findall(r'<svg class="chart"', dom)) == 5
# p50, p99, 2xx/s and VUs: each a path with at least two points
ok = ok and lines is not None and int(lines.group(1)) >= 4
for cls in ("line p50", "line p99", "line ok", "line vus"):
    m = re.search(r'<path class="%s"[^>]* d="([^"]*)"' % cls, dom)
    if m is None or "L" not in m.group(1):
        print("no data in path", cls)
        ok = False
for cls in ('class="band"', '<g class="share"', 'class="audit good"', 'class="score"'):
    if cls not in dom:
        print("missing", cls)
        ok = False
sys.exit(0 if ok else 1)
PY
if grep -E ':CONSOLE|Uncaught' "$work/chromium.log"; then
    fail "console messages while loading the page"
fi
shot=$BUILD_DIR/loadgen_report.png
rm -f "$shot"
timeout 120 "${chrome[@]}" --user-data-dir="$(mktemp -d "$work/profile.XXXXXX")" \
    --screenshot="$shot" --window-size=1200,2000 "file://$html" > /dev/null 2>> "$work/chromium.log" \
    || fail "chromium --screenshot failed"
python3 - "$shot" <<'PY' || fail "no usable screenshot"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", b[16:24])
print("screenshot %dx%d, %d bytes" % (w, h, len(b)))
assert w == 1200 and h == 2000 and len(b) > 20000
PY
echo "screenshot: $shot"
cleanup
rm -rf "$work"
