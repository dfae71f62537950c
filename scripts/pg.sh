#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and the demo, owned by this checkout.
#   scripts/pg.sh start   initialise (once) and start it; prints nothing else on success
#   scripts/pg.sh stop
# It listens on 127.0.0.1:$WAC_PGPORT (default 55432) with a trusted superuser role "odoo".
# Set WAC_PG_EXTERNAL=1 to use an already configured server instead (PGHOST/PGPORT/PGUSER).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
port=${WAC_PGPORT:-55432}
dir=${WAC_PGDATA:-$here/.pg/data}
[ "${WAC_PG_EXTERNAL:-0}" = 1 ] && exit 0

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ]; then
    echo "PostgreSQL server binaries not found: apt-get install postgresql" >&2
    exit 1
fi
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-start}" in
start)
    if [ ! -s "$dir/PG_VERSION" ]; then
        mkdir -p "$dir"
        # Only the data directory: WAC_PGDATA may point anywhere (its parent may be /tmp).
        [ "$(id -u)" = 0 ] && chown postgres: "$dir"
        as_pg "$bindir/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if ! as_pg "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; then
            echo "Port $port is taken by another PostgreSQL: stop it, or set WAC_PGPORT." >&2
            exit 1
        fi
        as_pg "$bindir/pg_ctl" -D "$dir" -w -l "$dir/postgres.log" \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    fi
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_roles WHERE rolname = 'odoo'" | grep -q 1 ||
        psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE ROLE odoo SUPERUSER LOGIN"
    ;;
stop)
    as_pg "$bindir/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
