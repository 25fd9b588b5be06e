#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the service's integration tests, in a temporary directory on
# a free port: `source .ci/postgres.sh; start_test_postgres` exports TEST_DATABASE_URL and stops
# the cluster (and removes its files) when the calling shell exits. Installs Debian's postgresql
# package first when initdb is missing and we are root. Never touches a machine's own cluster.

_pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
    d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
    if [ -x "$d/initdb" ]; then echo "$d"; fi
}

# Run a PostgreSQL program as the `postgres` user when root (initdb refuses root), else as ourselves.
_pg_as() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_test_postgres() {
    if [ -n "${_PG_DIR:-}" ] && [ -d "$_PG_DIR/data" ]; then
        _pg_as "$_PG_BIN/pg_ctl" -D "$_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$_PG_DIR"
    fi
}

start_test_postgres() {
    _PG_BIN=$(_pg_bindir)
    if [ -z "$_PG_BIN" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing PostgreSQL for the tests" >&2
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
            _PG_BIN=$(_pg_bindir)
        fi
        if [ -z "$_PG_BIN" ]; then
            echo "error: no initdb (install postgresql, or set TEST_DATABASE_URL)" >&2
            return 2
        fi
    fi
    _PG_DIR=$(mktemp -d /tmp/courier-ci-pg.XXXXXX)
    if [ "$(id -u)" = 0 ]; then chown postgres: "$_PG_DIR"; fi
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    trap stop_test_postgres EXIT
    _pg_as "$_PG_BIN/initdb" -D "$_PG_DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$_PG_DIR/initdb.log"
    _pg_as "$_PG_BIN/pg_ctl" -D "$_PG_DIR/data" -l "$_PG_DIR/server.log" -w -t 60 \
        -o "-p $port -k $_PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" \
        start >/dev/null
    _pg_as "$_PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres test
    export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/test"
    echo "throwaway PostgreSQL for the tests at $TEST_DATABASE_URL (files in $_PG_DIR)" >&2
}
