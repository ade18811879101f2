#!/usr/bin/env bash
# Docker engine for the provider suites: installs docker.io and debootstrap when missing,
# starts dockerd when no daemon answers (no systemd assumed), and builds the Berth base image
# offline when it is missing. Idempotent; quick when everything is there.
# BERTH_SKIP_DOCKER=1 skips all of it.
set -euo pipefail
[ "${BERTH_SKIP_DOCKER:-}" = "1" ] && exit 0
here="$(cd "$(dirname "$0")/../.." && pwd)"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  # A lock keeps parallel callers (test files, bench) from starting two daemons.
  exec 9>/tmp/berth-dockerd.lock
  flock 9
  if ! docker info >/dev/null 2>&1; then
    echo "20-docker: starting dockerd (log: /var/log/berth-dockerd.log)" >&2
    $SUDO sh -c 'nohup dockerd > /var/log/berth-dockerd.log 2>&1 &'
    for _ in $(seq 1 120); do
      docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
    docker info >/dev/null 2>&1 || { echo "20-docker: dockerd did not answer; see /var/log/berth-dockerd.log" >&2; tail -20 /var/log/berth-dockerd.log >&2 || true; exit 1; }
  fi
  flock -u 9
fi

bash "$here/docker/base/build-offline.sh"
