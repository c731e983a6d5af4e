#!/usr/bin/env bash
# Makes a local Debian 12 (bookworm) base image for building fusionserve's
# images on machines that cannot pull from Docker Hub.
#
#   scripts/base-image.sh            prints the image name when it exists
#
# Idempotent: an image already in the engine is reused; otherwise the root
# file system comes from a cached tarball, and only when that is missing from
# `debootstrap --variant=minbase` against the Debian mirror apt already uses
# (about 2-6 minutes). The tarball lives outside the checkout, so CI's fresh
# clones reuse it.
#
# The one image serves as both DEBIAN_IMAGE and DEBIAN_SLIM_IMAGE of
# deploy/docker/Dockerfile: like debian:bookworm-slim it keeps no docs, man
# pages or translations (dpkg path excludes), and like the official images it
# keeps no downloaded .debs. Its apt sources are bookworm, bookworm-updates
# and bookworm-security, as in debian:bookworm.
#
# Environment: FUSION_BASE_IMAGE (default fusionserve/debian:bookworm),
# FUSION_CACHE_DIR (default ~/.cache/fusionserve), FUSION_DEBIAN_MIRROR and
# FUSION_DEBIAN_SECURITY_MIRROR (default: read from apt's sources).
# Needs a running engine (scripts/docker-engine.sh) and root for debootstrap.
set -euo pipefail

IMAGE="${FUSION_BASE_IMAGE:-fusionserve/debian:bookworm}"
CACHE="${FUSION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fusionserve}"
TARBALL="$CACHE/debian-bookworm-minbase.tar"

if docker image inspect "$IMAGE" > /dev/null 2>&1; then
  echo "$IMAGE"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

# The first URI of apt's sources that serves SUITE (one-line and deb822).
apt_mirror_for() {
  local suite="$1"
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
           /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] && files+=("$f")
  done
  [[ ${#files[@]} -gt 0 ]] || return 0
  awk -v suite="$suite" '
    function emit() { if (found && uris != "") { print uris; done = 1; exit } }
    FNR == 1 { emit(); uris = ""; found = 0 }
    # one-line: deb [options] URI SUITE COMPONENTS...
    $1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                  if ($(i + 1) == suite) { uris = $i; found = 1; emit() } }
    # deb822 stanzas: URIs: and Suites: lines, separated by blank lines
    /^URIs:/   { uris = $2 }
    /^Suites:/ { for (j = 2; j <= NF; j++) if ($j == suite) found = 1 }
    /^[[:space:]]*$/ { emit(); uris = ""; found = 0 }
    END { if (!done) emit() }' "${files[@]}"
}

make_tarball() {
  local mirror security rootfs
  mirror="${FUSION_DEBIAN_MIRROR:-$(apt_mirror_for bookworm)}"
  mirror="${mirror:-http://deb.debian.org/debian}"
  security="${FUSION_DEBIAN_SECURITY_MIRROR:-$(apt_mirror_for bookworm-security)}"
  security="${security:-http://deb.debian.org/debian-security}"
  if ! command -v debootstrap > /dev/null; then
    echo "base-image: installing debootstrap"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends debootstrap
  fi
  mkdir -p "$CACHE"
  rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: the trap must remove this dir
  trap "$SUDO rm -rf '$rootfs'" EXIT
  echo "base-image: debootstrap bookworm from $mirror (a few minutes)"
  $SUDO debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
    > "$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$CACHE/debootstrap.log" >&2; exit 1; }

  $SUDO rm -f "$rootfs/etc/apt/sources.list"
  $SUDO tee "$rootfs/etc/apt/sources.list.d/debian.sources" > /dev/null <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # What debian:bookworm-slim leaves out, for every later apt install too.
  $SUDO tee "$rootfs/etc/dpkg/dpkg.cfg.d/fusionserve-slim" > /dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  $SUDO tee "$rootfs/etc/apt/apt.conf.d/90fusionserve-image" > /dev/null <<'EOF'
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
  $SUDO find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  $SUDO rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
  $SUDO tar -C "$rootfs" --numeric-owner -cf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
}

[[ -s "$TARBALL" ]] || make_tarball
docker import --change 'CMD ["bash"]' \
  --message "debootstrap --variant=minbase bookworm (scripts/base-image.sh)" \
  "$TARBALL" "$IMAGE" > /dev/null
echo "$IMAGE"
