#!/bin/sh
# Makes a local PostgreSQL reachable on its Unix socket for the test suite.
#
# Does nothing when one already answers. Otherwise, as root on Debian/Ubuntu: installs the
# distribution's server if absent, starts its default cluster with pg_ctlcluster (pg_ctl
# refuses to run as root, so pytest-postgresql cannot start it itself), and creates a
# superuser role for the current user. Tests then create a throwaway database each.
set -eu
SOCKET_DIR=${EXPOUND_PG_SOCKET_DIR:-/var/run/postgresql}
if pg_isready -q -h "$SOCKET_DIR" 2>/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "ensure_postgres: no PostgreSQL on $SOCKET_DIR and not root; start one yourself" >&2
    exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
fi
VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$VERSION main"; then
    pg_createcluster "$VERSION" main >/dev/null
fi
pg_ctlcluster --skip-systemctl-redirect "$VERSION" main start
for _ in 1 2 3 4 5 6 7 8 9 10; do
    pg_isready -q -h "$SOCKET_DIR" && break
    sleep 1
done
USER_NAME=$(id -un)
runuser -u postgres -- psql -q -h "$SOCKET_DIR" -tAc \
    "SELECT 1 FROM pg_roles WHERE rolname = '$USER_NAME'" | grep -q 1 ||
    runuser -u postgres -- psql -q -h "$SOCKET_DIR" -c "CREATE ROLE \"$USER_NAME\" SUPERUSER LOGIN"
