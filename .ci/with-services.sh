#!/usr/bin/env bash
# Run a command with the real servers the tests use (Mosquitto, PostgreSQL 15 + PostGIS) started on 127.0.0.1,
# and Debian's chromium available for the browser tests; installs the Debian packages first if they are missing
# (needs root, as on CI and the project's machines). Stops the servers afterwards, whatever the command returned.
#   usage: .ci/with-services.sh COMMAND [ARGS...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
need=0
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need=1
[ -x /usr/lib/postgresql/15/bin/pg_ctl ] || need=1
[ -f /usr/share/postgresql/15/extension/postgis.control ] || need=1
[ -x /usr/bin/chromium ] || need=1
command -v pdftoppm >/dev/null 2>&1 || need=1
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need=1
[ -e /usr/lib/x86_64-linux-gnu/libpango-1.0.so.0 ] || ldconfig -p | grep -q libpango-1.0 || need=1
if [ "$need" = 1 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "== installing mosquitto, postgresql-15 + postgis-3, chromium, poppler-utils, nats-server (Debian packages)"
        bash "$here/services.sh" install
    else
        echo "error: the tests need mosquitto, postgresql-15-postgis-3 and chromium: sudo bash .ci/services.sh install" >&2
        exit 2
    fi
fi
export SKYTRACE_SERVICES_DIR="${SKYTRACE_SERVICES_DIR:-$(mktemp -d /tmp/skytrace-services.XXXXXX)}"
chmod 755 "$SKYTRACE_SERVICES_DIR"  # the postgres user must reach its data directory
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export SKYTRACE_CI_MQTT_PORT="${SKYTRACE_CI_MQTT_PORT:-$(free_port)}"
export SKYTRACE_CI_PG_PORT="${SKYTRACE_CI_PG_PORT:-$(free_port)}"
# the test command's exit status is the script's: a failure to clean up only warns (an EXIT trap that fails
# would replace a passing run's 0 with its own status)
trap 'bash "$here/services.sh" stop || echo "warning: stopping the test servers failed" >&2' EXIT
exports="$(bash "$here/services.sh" start)" || { echo "error: could not start the test servers" >&2; exit 2; }
eval "$exports"
echo "== test servers: MQTT 127.0.0.1:$SKYTRACE_TEST_MQTT_PORT, $SKYTRACE_TEST_PG_URL"
"$@"
