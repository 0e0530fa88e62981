#!/usr/bin/env bash
# ctest-label: chaos
# nginx restarted (SIGQUIT, as docker restart does, then started again) twice
# during a compressed final run (35 s, 300 users). Must end with lost = double =
# phantom = 0, zero audit mismatches, and both summaries equal to the simulators'.
# Runs through chaos/ci.sh (one chaos case at a time on the machine; exit 77 when
# not root or curl, jq, nft or ss is missing). Env: SOURCE_DIR, BUILD_DIR.
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export SOURCE_DIR
exec bash "$SOURCE_DIR/chaos/ci.sh" nginx 19300 \
    '[.timeline[] | select(.kind == "nginx-ready" and .afterMs >= 0)] | length == 2' \
    -- nginx --duration 35 --users 300
