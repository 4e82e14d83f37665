#!/usr/bin/env bash
# Make sure voms-proxy-fake (Debian voms-clients) is installed: the VOMS tests make real VOMS
# proxies with it (tests/auth/vomsfake.py). Needs root and apt when missing; without them the
# tests skip, or fail when JP_REQUIRE_GRID_TOOLS=1 (CI).
set -euo pipefail
command -v voms-proxy-fake >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "voms-proxy-fake is missing; install the Debian package voms-clients" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq voms-clients >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq voms-clients >/dev/null
}
command -v voms-proxy-fake >/dev/null 2>&1 || { echo "voms-clients did not install" >&2; exit 1; }
