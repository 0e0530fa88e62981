#!/usr/bin/env bash
# ctest-label: chaos
# A frozen node that comes back: SIGSTOP node1 for 3 s at 30 % of a compressed final
# run (35 s, 300 users), then node2 at 65 %. Must end with lost = double = phantom = 0
# and both summaries equal to the simulators'; audit mismatches are reported, not
# failed on (see chaos/README.md: a frozen owner whose processor fails meanwhile).
# Runs through chaos/ci.sh (one chaos case at a time on the machine; exit 77 when
# not root or curl, jq, nft or ss is missing). Env: SOURCE_DIR, BUILD_DIR.
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export SOURCE_DIR
exec bash "$SOURCE_DIR/chaos/ci.sh" freeze 19200 \
    '[.timeline[] | select(.kind == "thaw") | .node] | sort == ["node1", "node2"]' \
    -- freeze --duration 35 --users 300 --lenient-audits
