#!/usr/bin/env bash
# A compose CLI for test/infra/compose.test.ts, which validates infra/compose.yaml with
# `docker compose config` (the plugin) or, without it, Debian's `docker-compose` (1.29). It only
# parses the file, so it needs no daemon and runs even with BERTH_SKIP_DOCKER=1. Without
# recommends: those would pull docker.io next to a Docker installed otherwise (docker-ce).
set -euo pipefail
docker compose version >/dev/null 2>&1 && exit 0
command -v docker-compose >/dev/null 2>&1 && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
