#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests (user postgres, trust).
# Starts the machine's cluster when it is installed but stopped; installs and starts a throwaway
# cluster when PostgreSQL is missing entirely (needs root and apt).
set -euo pipefail
port=${PGPORT_TEST:-5432}
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
answers && exit 0
if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    version=$(ls /etc/postgresql | sort -V | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do answers && exit 0; sleep 1; done
fi
export DEBIAN_FRONTEND=noninteractive
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
data=$(mktemp -d /tmp/jp-pg.XXXXXX)
chown postgres "$data"
runuser -u postgres -- "$pgbin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1" start >/dev/null
answers || { echo "PostgreSQL did not start; see $data/server.log" >&2; exit 1; }
