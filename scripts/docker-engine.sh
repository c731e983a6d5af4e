#!/usr/bin/env bash
# Makes sure a Docker engine answers `docker info`, for the container tests
# (tests/containers) and CI (.ci/run).
#
#   scripts/docker-engine.sh        exit 0 once `docker info` works
#
# Idempotent: a running engine (any: systemd's, Docker Desktop's, one this
# script started earlier) is reused as it is. Otherwise it installs Debian's
# docker.io when dockerd is missing, starts dockerd in the background with the
# overlay2 storage driver and BuildKit's cache held to 20 GB
# ($CACHE/daemon.json), records its pid in $CACHE/dockerd.pid and its log in
# $CACHE/dockerd.log, and waits until `docker info` answers. The engine is
# left running: it is shared by every later test run and build, and keeps
# their layer cache. Stop it with: kill "$(cat ~/.cache/fusionserve/dockerd.pid)"
#
# Environment: FUSION_CACHE_DIR (default ~/.cache/fusionserve),
# FUSION_DOCKERD_WAIT (seconds to wait for the engine, default 60).
# Starting dockerd needs root (or sudo).
set -euo pipefail

CACHE="${FUSION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fusionserve}"
WAIT="${FUSION_DOCKERD_WAIT:-60}"

engine_up() { docker info > /dev/null 2>&1; }

if command -v docker > /dev/null && engine_up; then
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

if ! command -v dockerd > /dev/null || ! command -v docker > /dev/null; then
  echo "docker-engine: installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends docker.io
fi
# The package may have started one through systemd.
if engine_up; then exit 0; fi

mkdir -p "$CACHE"
pidfile="$CACHE/dockerd.pid"
if [[ -s "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2> /dev/null; then
  echo "docker-engine: dockerd (pid $(cat "$pidfile")) is running but not answering yet"
else
  # overlay2, and a bound on BuildKit's cache (base layers, the ccache mount,
  # one build layer per source revision) on a machine that builds for ever.
  cat > "$CACHE/daemon.json" <<'JSON'
{
  "storage-driver": "overlay2",
  "builder": { "gc": { "enabled": true, "defaultKeepStorage": "20GB" } }
}
JSON
  # setsid: the engine outlives this script and is not in its process group,
  # so a test runner that ends its own children leaves it alone.
  $SUDO setsid dockerd --config-file "$CACHE/daemon.json" \
    > "$CACHE/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  echo "docker-engine: started dockerd, pid $(cat "$pidfile"), log $CACHE/dockerd.log"
fi

for _ in $(seq "$((WAIT * 4))"); do
  if engine_up; then exit 0; fi
  if ! kill -0 "$(cat "$pidfile")" 2> /dev/null; then
    echo "docker-engine: dockerd exited; its log:" >&2
    tail -n 20 "$CACHE/dockerd.log" >&2
    exit 1
  fi
  sleep 0.25
done
echo "docker-engine: dockerd did not answer within ${WAIT}s; log: $CACHE/dockerd.log" >&2
exit 1
