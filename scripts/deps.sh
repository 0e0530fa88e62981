#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian 12 machine (root).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
# Build: compiler, CMake, the libraries. Tests: nginx (the local topology),
# docker-compose + python3-yaml (offline compose checks, cgroup limits), curl and
# jq (script tests, chaos verdicts), nftables (chaos partitions), iproute2 (ss),
# chromium + a font (the load generator's HTML report rendered headless),
# prometheus for its promtool (`promtool check metrics` on /metrics in tests;
# the package's daemon is not started by the tests), wrk (bench/ceiling.sh).
PKGS=(build-essential cmake pkg-config libuv1-dev libhttp-parser-dev libjsmn-dev
      libcurl4-openssl-dev libnng-dev libcmocka-dev libsodium-dev nginx docker-compose python3
      python3-yaml curl jq nftables iproute2 procps util-linux chromium fonts-dejavu-core
      prometheus wrk)
# Fuzzing only (tests/fuzz; the image does not build it): clang, and
# libclang-rt-14-dev, which holds clang 14's libclang_rt.fuzzer and sanitizer
# runtimes (only recommended by clang-14: --no-install-recommends leaves it out).
FUZZ_PKGS=(clang libclang-rt-14-dev)
missing=()
for p in "${PKGS[@]}" "${FUZZ_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
