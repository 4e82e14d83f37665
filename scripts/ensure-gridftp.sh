#!/bin/sh
# Make sure globus-gridftp-server (Debian: globus-gridftp-server-progs) is installed: the FTP
# backend's contract suite runs against it (tests/backends). Installs it with apt when running as
# root; otherwise says how, and those tests skip (or fail with JP_REQUIRE_GRID_TOOLS=1).
set -eu
PATH="$PATH:/usr/sbin:/usr/local/sbin"
command -v globus-gridftp-server >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing globus-gridftp-server-progs (for the FTP backend tests)" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq globus-gridftp-server-progs >/dev/null 2>&1; } ||
        { apt-get update -qq && apt-get install -y -qq globus-gridftp-server-progs >/dev/null; }
    command -v globus-gridftp-server >/dev/null 2>&1 && exit 0
fi
echo "globus-gridftp-server is missing (sudo apt-get install globus-gridftp-server-progs);" \
     "its FTP backend tests will skip (fail with JP_REQUIRE_GRID_TOOLS=1)" >&2
