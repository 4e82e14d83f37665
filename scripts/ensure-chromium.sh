#!/bin/sh
# Make sure Debian's chromium is installed: the web view's browser tests (tests/web) drive it
# headless with Playwright (`playwright install` downloads browsers and cannot work here; the
# tests launch /usr/bin/chromium). Installs it with apt when running as root; otherwise says
# how, and those tests skip (or fail with JP_REQUIRE_BROWSER=1, as in CI).
set -eu
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (for the web view's browser tests)" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq chromium >/dev/null 2>&1; } ||
        { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
    command -v chromium >/dev/null 2>&1 && exit 0
fi
echo "chromium is missing (sudo apt-get install chromium);" \
     "the web view's browser tests will skip (fail with JP_REQUIRE_BROWSER=1)" >&2
