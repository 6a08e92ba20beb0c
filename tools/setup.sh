#!/usr/bin/env bash
# Installs lunagate's build and test dependencies (Debian 12 packages only) and builds it.
# Used by tools/quickstart.sh and tools/test.sh; safe to run again (apt and the build are incremental).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(g++ cmake ninja-build pkg-config libboost-dev libssl-dev openssl libluajit2-5.1-dev
  libhiredis-dev libspdlog-dev libfmt-dev catch2 libyaml-cpp-dev redis-server python3 curl
  procps iproute2)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "== installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

BUILD_DIR=${BUILD_DIR:-build}
echo "== building into $BUILD_DIR (-j2)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j2
