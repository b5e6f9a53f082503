#!/bin/sh
# Makes the system libraries WeasyPrint needs for PDF notices present: Pango (with its
# FreeType backend) and one font family the shipped templates name (DejaVu).
#
# Does nothing when they are there. Otherwise, as root on Debian/Ubuntu, installs them from
# the distribution; not root, it says what to install.
set -eu
if ldconfig -p | grep -q 'libpangoft2-1.0.so.0' && fc-list 2>/dev/null | grep -q 'DejaVu'; then
    exit 0
fi
PACKAGES="libpango-1.0-0 libpangoft2-1.0-0 fontconfig fonts-dejavu-core"
if [ "$(id -u)" != 0 ]; then
    echo "ensure_pango: PDF notices need: apt-get install $PACKAGES" >&2
    exit 0
fi
apt-get update -q >/dev/null
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -q $PACKAGES >/dev/null
