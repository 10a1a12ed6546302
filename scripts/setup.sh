#!/usr/bin/env bash
# setup.sh - install, idempotently, every Debian package the build, the tests
# and the benchmarks need. Run as root (or with sudo) on Debian 12.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config git clang-format cppcheck
  libcurl4-openssl-dev libnghttp2-dev libuv1-dev libjansson-dev libarchive-dev
  libisal-dev libzstd-dev libssl-dev libpcre2-dev libcmocka-dev
  # serve: h2o (HTTP/1.1 and HTTP/2 on libuv) and libxcrypt (bcrypt)
  libh2o-dev libcrypt-dev
  # test lab and oracles
  docker-registry skopeo umoci openssl curl ca-certificates python3 python3-cryptography
  apache2-utils zstd isal procps iproute2 time util-linux jq
  # serve's tests: real clients, and strace to see what serve opens
  podman containerd strace
  # fuzzing, memcheck and benchmarks
  clang libclang-rt-14-dev valgrind gnuplot-nox hyperfine nghttp2-client
)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
