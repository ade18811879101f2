#!/usr/bin/env bash
# Debian packages the tests use. `apt-get update` only when something is missing.
set -euo pipefail
want=(procps)
missing=()
for p in "${want[@]}" ${BERTH_APT_PACKAGES:-}; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
for extra in "$@"; do dpkg -s "$extra" >/dev/null 2>&1 || missing+=("$extra"); done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
