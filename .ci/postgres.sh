#!/usr/bin/env bash
# Install Debian's PostgreSQL if needed, start it on 127.0.0.1 and make a gridscout
# database; print the SQLAlchemy URL the store tests use. Exit non-zero if it cannot.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $2}' | grep -qx main; then
    pg_createcluster "$version" main >/dev/null
fi
pg_ctlcluster "$version" main start >/dev/null 2>&1 || pg_ctlcluster "$version" main status >/dev/null
for _ in $(seq 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
run_psql() { su postgres -c "psql -v ON_ERROR_STOP=1 -qtAc \"$1\""; }
[ "$(run_psql "SELECT 1 FROM pg_roles WHERE rolname='gridscout'")" = 1 ] ||
    run_psql "CREATE ROLE gridscout LOGIN PASSWORD 'gridscout'"
# A fresh test database each run: tables left by an older schema would fail the tests.
run_psql "DROP DATABASE IF EXISTS gridscout_test"
run_psql "CREATE DATABASE gridscout_test OWNER gridscout"
echo "postgresql+psycopg://gridscout:gridscout@127.0.0.1:5432/gridscout_test"
