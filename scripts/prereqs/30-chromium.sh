#!/usr/bin/env bash
# Chromium from Debian for the browser tests (test/web), driven by playwright-core. Playwright's
# own browser download is never used: it cannot be fetched here, and Debian's build is enough.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version >/dev/null
