#!/bin/sh
# Make sure `wrk` (the HTTP load generator the benchmarks drive) is installed: the Debian package
# `wrk` (4.1.0 on Debian 12). Needs root and apt when it is missing.
set -eu
command -v wrk >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "wrk is missing: install the package \`wrk\` (e.g. apt-get install -y wrk)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq wrk >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
}
command -v wrk >/dev/null 2>&1 || { echo "installing wrk failed" >&2; exit 1; }
