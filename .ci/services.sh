#!/usr/bin/env bash
# Install and start the real servers the service tests use, on 127.0.0.1 only, with throwaway state:
#   Mosquitto on 127.0.0.1:18830, PostgreSQL 15 + PostGIS 3 on 127.0.0.1:18832 (data dir under $STATE).
# Usage:  .ci/services.sh install   # apt packages (Debian 12): mosquitto, postgresql-15(-postgis-3), chromium
#         .ci/services.sh start     # prints the export lines for SKYTRACE_TEST_MQTT_PORT / SKYTRACE_TEST_PG_URL
#         .ci/services.sh stop
# Without these env vars the test fixtures start their own private servers (same binaries) on free ports.
set -euo pipefail
STATE="${SKYTRACE_SERVICES_DIR:-/tmp/skytrace-ci-services}"
MQTT_PORT="${SKYTRACE_CI_MQTT_PORT:-18830}"
PG_PORT="${SKYTRACE_CI_PG_PORT:-18832}"
PG_BIN=/usr/lib/postgresql/15/bin

as_pg() {  # initdb/postgres refuse to run as root
    if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

case "${1:-}" in
install)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq mosquitto postgresql-15 postgresql-15-postgis-3 chromium >/dev/null
    # forensics report: WeasyPrint's Pango, fonts; poppler-utils (pdftoppm, pdftotext) checks the PDF in tests
    apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core poppler-utils >/dev/null
    ;;
start)
    mkdir -p "$STATE/mqtt" "$STATE/pg" "$STATE/run"
    [ "$(id -u)" = 0 ] && chown mosquitto "$STATE/mqtt" && chown postgres "$STATE/pg" "$STATE/run"
    cat > "$STATE/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
max_queued_messages 200000
persistence false
pid_file $STATE/mqtt/mosquitto.pid
CONF
    mosquitto -c "$STATE/mosquitto.conf" -d
    if [ ! -f "$STATE/pg/PG_VERSION" ]; then
        as_pg "$PG_BIN/initdb -D $STATE/pg -U postgres --auth=trust -E UTF8 >/dev/null"
    fi
    as_pg "$PG_BIN/pg_ctl -D $STATE/pg -l $STATE/run/pg.log -w -o '-c listen_addresses=127.0.0.1 -p $PG_PORT \
-k $STATE/run -c max_parallel_workers_per_gather=0 -c fsync=off' start >/dev/null"
    echo "export SKYTRACE_TEST_MQTT_PORT=$MQTT_PORT"
    echo "export SKYTRACE_TEST_PG_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
    ;;
stop)
    if [ -f "$STATE/mqtt/mosquitto.pid" ]; then kill "$(cat "$STATE/mqtt/mosquitto.pid")" 2>/dev/null || true; fi
    if [ -f "$STATE/pg/postmaster.pid" ]; then as_pg "$PG_BIN/pg_ctl -D $STATE/pg -m fast stop >/dev/null" || true; fi
    rm -rf "$STATE"
    ;;
*)
    echo "usage: $0 install|start|stop" >&2; exit 2
    ;;
esac
