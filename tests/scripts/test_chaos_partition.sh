#!/usr/bin/env bash
# ctest-label: chaos
# A 5 s partition between the two nodes (their nng and gossip ports dropped with
# nftables on 127.0.0.1) while both keep serving, during a compressed final run
# (35 s, 300 users). Checks what README.md "Chaos" promises: lost = double =
# phantom = 0, the two nodes' summaries converge with the simulators' within
# CONVERGE_LIMIT_MS (2000) of the heal, no audit mismatch outside the partition
# window, and both summaries equal to the simulators' at the end.
# Runs through chaos/ci.sh (one chaos case at a time on the machine; exit 77 when
# not root or curl, jq, nft or ss is missing). Env: SOURCE_DIR, BUILD_DIR.
set -euo pipefail
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export SOURCE_DIR
exec bash "$SOURCE_DIR/chaos/ci.sh" partition 19250 \
    '[.timeline[] | select(.kind == "converged" and .afterMs >= 0)] | length == 1' \
    -- partition --duration 35 --users 300
