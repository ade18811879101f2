#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh Debian machine (run as root, or
# with passwordless sudo). Each concern is one script in scripts/prereqs/, run in name order;
# each must be idempotent and quick when everything is already there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for s in "$here"/prereqs/*.sh; do
  [ -e "$s" ] || continue
  echo "prereqs: $(basename "$s")" >&2
  bash "$s"
done
