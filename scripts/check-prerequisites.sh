#!/bin/sh
# Fail early, with the fix, when the machine lacks what `make` needs to build the virtualenv.
python=${1:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
    echo "jp_primary needs Python 3.11 or newer: apt-get install python3 python3-venv" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "jp_primary needs Python 3.11 or newer; $python is $("$python" --version 2>&1)" >&2
    exit 1
fi
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing python3-venv (the venv module is missing)" >&2
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    else
        echo "the venv module is missing: sudo apt-get install python3-venv" >&2
        exit 1
    fi
fi
