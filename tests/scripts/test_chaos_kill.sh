#!/usr/bin/env bash
# ctest-label: chaos
# Kill and restart of each node during a compressed final run (35 s, 300 users):
# SIGKILL node1 (the health-checker) at 25 % of the run, restart it 3 s later; the
# same for node2 at 60 %. Must end with lost = double = phantom = 0, zero audit
# mismatches, and both nodes' summaries equal to the simulators'.
# Runs through chaos/ci.sh (one chaos case at a time on the machine; exit 77 when
# not root or curl, jq, nft or ss is missing). Env: SOURCE_DIR, BUILD_DIR.
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export SOURCE_DIR
exec bash "$SOURCE_DIR/chaos/ci.sh" kill 19150 \
    '[.timeline[] | select(.kind == "ready" and .afterMs >= 0) | .node] | sort == ["node1", "node2"]' \
    -- kill --duration 35 --users 300
