#!/usr/bin/env bash
# Builds the Berth base environment image with no image registry: debootstrap (minbase,
# bookworm) from the Debian mirror apt already uses, `docker import`, then the Berth layer
# (user `berth` uid 1000, /workspace owned by it, git, ca-certificates, bash, procps).
# The tag is keyed by a hash of this script, so a second run finds the image and does nothing.
# Prints the image tag on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
hash="$(sha256sum "$here/build-offline.sh" | cut -c1-12)"
image="${BERTH_BASE_IMAGE:-berth-base:$hash}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

exec 9>/tmp/berth-base-image.lock
flock 9
if docker image inspect "$image" >/dev/null 2>&1; then echo "$image"; exit 0; fi

# The mirror apt uses here (deb822 .sources or one-line sources.list); deb.debian.org otherwise.
mirror="$(
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'; } |
    grep -E '/debian/?$' | head -1
)" || true
mirror="${BERTH_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}"

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
rootfs="$(mktemp -d /tmp/berth-rootfs-XXXXXX)"
trap '$SUDO rm -rf "$rootfs"' EXIT
echo "build-offline: debootstrap bookworm from $mirror into $rootfs" >&2
$SUDO debootstrap --variant=minbase --include=git,ca-certificates,bash,procps,less,libstdc++6 \
  bookworm "$rootfs" "$mirror" >&2

# The Berth layer, applied in the rootfs (no registry, no builder needed).
$SUDO chroot "$rootfs" /bin/sh -e -c '
  groupadd -g 1000 berth
  useradd -u 1000 -g 1000 -m -s /bin/bash berth
  mkdir -p /workspace /opt/berth
  chown 1000:1000 /workspace
  apt-get clean
  rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/* /var/cache/debconf/*-old
'
echo "build-offline: importing as $image" >&2
$SUDO tar -C "$rootfs" -c . | docker import \
  --change 'USER berth' \
  --change 'WORKDIR /workspace' \
  --change 'ENV HOME=/home/berth LANG=C.UTF-8 PATH=/opt/berth/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'LABEL dev.berth.base=1' \
  --change 'CMD ["bash"]' \
  - "$image" >&2
docker tag "$image" berth-base:latest
echo "$image"
