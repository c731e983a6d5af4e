#!/usr/bin/env bash
# Builds the CPU image (deploy/docker/Dockerfile) FROM the local Debian base
# that scripts/base-image.sh makes, for machines that cannot pull from Docker
# Hub (tests/containers, CI). Elsewhere a plain `docker build` does the same
# from debian:bookworm.
#
#   deploy/docker/build-image.sh [TAG]     default TAG: fusionserve:cpu
#
# Needs a running engine (scripts/docker-engine.sh). The Dockerfile needs
# BuildKit: used through `docker buildx` when the CLI has it, else through
# DOCKER_BUILDKIT=1 with a CLI older than 23.0 (Debian's docker.io, whose
# /usr/bin/docker has BuildKit built in; newer CLIs need buildx for it).
# Extra `docker build` arguments: FUSION_BUILD_ARGS (word-split).
set -euo pipefail

cd "$(dirname "$0")/../.."
TAG="${1:-fusionserve:cpu}"
BASE="$(./scripts/base-image.sh)"

cli_major() { "$1" version --format '{{.Client.Version}}' 2> /dev/null | cut -d. -f1; }

build=()
if docker buildx version > /dev/null 2>&1; then
  build=(docker buildx build --load)
else
  for cli in docker /usr/bin/docker; do
    major="$(cli_major "$cli" || true)"
    if [[ -n "$major" && "$major" -lt 23 ]]; then
      build=(env DOCKER_BUILDKIT=1 "$cli" build)
      break
    fi
  done
fi
if [[ ${#build[@]} -eq 0 ]]; then
  echo "build-image: no BuildKit: install docker-buildx, or Debian's docker.io" \
       "(its /usr/bin/docker)" >&2
  exit 1
fi

# shellcheck disable=SC2086  # FUSION_BUILD_ARGS is a list of words
"${build[@]}" --progress=plain -f deploy/docker/Dockerfile -t "$TAG" \
  --build-arg DEBIAN_IMAGE="$BASE" --build-arg DEBIAN_SLIM_IMAGE="$BASE" \
  --build-arg VCS_REF="$(git rev-parse --short HEAD 2> /dev/null || echo unknown)" \
  ${FUSION_BUILD_ARGS:-} .
