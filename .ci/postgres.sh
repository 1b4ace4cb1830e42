#!/usr/bin/env bash
# A local PostgreSQL server for skrel's @pytest.mark.postgres tests.
#
#   eval "$(bash .ci/postgres.sh start)"   # installs (Debian packages) if missing, starts, prints the export
#   bash .ci/postgres.sh stop              # stops the cluster if `start` started it
#
# `start` prints exactly one line on stdout, `export SKREL_TEST_POSTGRES_URL=...`; everything else
# goes to stderr. It runs non-interactively as root on Debian/Ubuntu (or as a user with passwordless
# sudo), and is idempotent: an installed, running cluster is reused. It creates a login role `skrel`
# (password `skrel`) and a database `skrel_test` owned by it, reached over TCP on localhost with
# Debian's default password authentication; the `postgres` superuser is left untouched.
set -euo pipefail

ROLE=skrel
PASSWORD=skrel
DBNAME=skrel_test
CLUSTER=main
MARKER="${TMPDIR:-/tmp}/skrel-ci-postgres.started"

log() { echo "postgres.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}

server_version() {
    # Highest installed server version (a directory holding bin/postgres), or nothing.
    ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null \
        | sed 's#^/usr/lib/postgresql/##; s#/bin/postgres$##' | sort -V | tail -n 1 || true
}

install_server() {
    if [ -n "$(server_version)" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
        return
    fi
    command -v apt-get >/dev/null 2>&1 || { log "no PostgreSQL server and no apt-get to install one"; exit 1; }
    log "installing PostgreSQL from the distribution's packages"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >&2
}

cluster_field() {
    # cluster_field VERSION COLUMN: a column of `pg_lsclusters` for our cluster (3 = port, 4 = status).
    pg_lsclusters --no-header 2>/dev/null | awk -v v="$1" -v c="$CLUSTER" -v f="$2" '$1 == v && $2 == c { print $f }'
}

cmd_start() {
    install_server
    local ver port status
    ver="$(server_version)"
    [ -n "$ver" ] || { log "PostgreSQL server binaries not found after installation"; exit 1; }
    if [ -z "$(cluster_field "$ver" 1)" ]; then
        log "creating cluster $ver/$CLUSTER on port 5432"
        as_root pg_createcluster --port 5432 "$ver" "$CLUSTER" >&2
    fi
    port="$(cluster_field "$ver" 3)"
    status="$(cluster_field "$ver" 4)"
    if [ "$status" != "online" ]; then
        log "starting cluster $ver/$CLUSTER (port $port)"
        as_root pg_ctlcluster "$ver" "$CLUSTER" start >&2
        echo "$ver" > "$MARKER"
    else
        log "cluster $ver/$CLUSTER already running on port $port"
    fi
    local i
    for i in $(seq 1 60); do
        if pg_isready -q -h localhost -p "$port"; then break; fi
        [ "$i" -eq 60 ] && { log "server not ready on localhost:$port after 30 s"; exit 1; }
        sleep 0.5
    done
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres >&2 <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
    ELSE
        ALTER ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
    END IF;
END
\$\$;
SQL
    if [ "$(as_postgres psql -X -tA -p "$port" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")" != "1" ]; then
        as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres -c "CREATE DATABASE $DBNAME OWNER $ROLE" >&2
    fi
    log "ready: database $DBNAME on localhost:$port"
    echo "export SKREL_TEST_POSTGRES_URL=postgresql+psycopg2://$ROLE:$PASSWORD@localhost:$port/$DBNAME"
}

cmd_stop() {
    if [ ! -f "$MARKER" ]; then
        log "the cluster was not started by 'postgres.sh start' (no $MARKER); leaving it as it is"
        return
    fi
    local ver
    ver="$(cat "$MARKER")"
    if [ "$(cluster_field "$ver" 4)" = "online" ]; then
        log "stopping cluster $ver/$CLUSTER"
        as_root pg_ctlcluster "$ver" "$CLUSTER" stop >&2
    fi
    rm -f "$MARKER"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    *) echo "usage: bash .ci/postgres.sh start|stop" >&2; exit 2 ;;
esac
