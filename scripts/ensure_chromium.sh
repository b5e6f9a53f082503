#!/bin/sh
# Makes Debian's headless-capable Chromium available at /usr/bin/chromium for the
# Playwright tests of the record browser (tests launch it with executable_path; Playwright's
# own browser download is never used).
#
# Does nothing when /usr/bin/chromium exists. Otherwise, as root on Debian/Ubuntu: installs
# the distribution's chromium and a font (pages render text, so a test can read it).
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "ensure_chromium: no /usr/bin/chromium and not root; install chromium yourself" >&2
    exit 0
fi
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null
