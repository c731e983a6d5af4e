#!/usr/bin/env bash
# Installs every Debian package fusionserve needs to build, test and serve.
# Idempotent: when everything is present it prints nothing and exits 0.
set -euo pipefail

PACKAGES=(
  # build toolchain; clang-format for `make format-check` (part of make test);
  # ccache so fresh clones and extra build directories reuse objects
  build-essential cmake pkg-config git clang-format ccache
  # fuzzing (make test-fuzz): clang 14 with libFuzzer and its sanitizer
  # runtimes (docs/memory-safety.md)
  clang-14 libfuzzer-14-dev libclang-rt-14-dev
  # C++ dependencies
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libtorch-dev prometheus-cpp-dev libcpp-httplib-dev
  libopenblas0-pthread libgtest-dev libgmock-dev libbenchmark-dev
  libutf8proc-dev nlohmann-json3-dev
  # TLS: the server checks certificates and serves HTTPS with OpenSSL (the
  # library Debian's gRPC also uses); the openssl CLI makes test certificates
  libssl-dev openssl
  # Python side (model training/export, tests, example client)
  python3 python3-torch python3-numpy python3-protobuf python3-grpcio
  python3-pytest
  # integration tests: a real Prometheus scrapes the server; ss (iproute2)
  # watches client connections
  prometheus curl iproute2
  # deployment tests (tests/deploy): `docker-compose config` validates
  # docker-compose.yml offline (no Docker engine needed); YAML for manifests
  docker-compose python3-yaml
  # UI tests (tests/ui): the attention explorer in a headless browser,
  # driven over WebDriver
  chromium chromium-driver
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
