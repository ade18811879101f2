#!/usr/bin/env bash
# ---- terminal gateway (apps/gateway, test/terminal) ----------------------------------------
# The reconnect tests run vim and less in the alternate screen; the gateway spawns shells with
# node-pty (prebuilt, nothing to compile). wetty for bench:terminal is installed by the bench
# itself into bench/.peers, never here.
set -euo pipefail
bash "$(dirname "$0")/00-apt.sh" vim less
