#!/usr/bin/env bash
# Builds the control-plane image with no registry: FROM the offline base image
# (docker/base/build-offline.sh: debootstrap + docker import), plus this host's node binary
# (process.execPath; it links only glibc and libstdc++, both in the base) and the repo's
# node_modules pruned to the production closure of `berth` (prune.mjs).
# The tag is a hash of every input (base image id, node binary, lockfile, sources, web build,
# these files), so an unchanged tree finds its image and builds nothing.
# Prints the image tag on stdout; progress goes to stderr.
# `--dockerfile` prints the Dockerfile it would build (with @BASE@) and exits.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
name="${BERTH_CONTROL_PLANE_IMAGE:-berth-control-plane}"

# Dockerfile.offline, then every line of ./Dockerfile after its last FROM (the shipped final
# stage), the app taken from the context instead of the build stage.
offline_dockerfile() {
  local copy='COPY --from=build /out /opt/berth/app'
  grep -qxF "$copy" "$here/Dockerfile" || { echo "build-offline: no '$copy' line in Dockerfile" >&2; return 1; }
  cat "$here/Dockerfile.offline"
  awk '/^FROM /{n=NR} {line[NR]=$0} END{for (i=n+1; i<=NR; i++) print line[i]}' "$here/Dockerfile" \
    | sed "s#^${copy}\$#COPY app /opt/berth/app#"
}
if [ "${1:-}" = "--dockerfile" ]; then
  offline_dockerfile
  exit 0
fi

base="${BERTH_BASE_IMAGE:-$(bash "$root/docker/base/build-offline.sh")}"
base_id="$(docker image inspect -f '{{.Id}}' "$base")"
node_bin="$(node -p process.execPath)"

hash="$(
  cd "$root"
  {
    echo "$base_id"
    sha256sum "$node_bin" | cut -d' ' -f1
    find package.json package-lock.json tsconfig.json tsconfig.base.json docker/control-plane \
      apps/cli apps/control-plane apps/gateway packages apps/web/out docker/base \
      -type f -not -path '*/node_modules/*' -not -name '*.test.ts' 2>/dev/null | LC_ALL=C sort | xargs -d '\n' sha256sum
  } | sha256sum | cut -c1-12
)"
image="$name:$hash"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
exec 9>/tmp/berth-control-plane-image.lock
flock 9
if docker image inspect "$image" >/dev/null 2>&1; then echo "$image"; exit 0; fi

ctx="$(mktemp -d /tmp/berth-cp-image-XXXXXX)"
trap 'rm -rf "$ctx"' EXIT
cp "$node_bin" "$ctx/node"
node "$here/prune.mjs" --root "$root" --out "$ctx/app" >&2
offline_dockerfile | sed "s#@BASE@#$base#" > "$ctx/Dockerfile"
echo "build-offline: building $image from $base" >&2
# Legacy builder: no BuildKit or buildx needed, and no network (no RUN fetches anything).
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >&2
docker tag "$image" "$name:latest"
# Earlier builds of this name are superseded; drop them so the test suite does not fill the disk.
docker images "$name" --format '{{.Repository}}:{{.Tag}}' | grep -vxF -e "$image" -e "$name:latest" | xargs -r docker rmi >/dev/null 2>&1 || true
echo "$image"
