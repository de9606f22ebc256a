#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set up (idempotent), configure, build, run ctest.
#   scripts/test.sh [ctest arguments, e.g. -L cli or -R Plan]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD_DIR:-$ROOT/build-test}
JOBS=${JOBS:-$(nproc)}
run() { echo "+ $*"; "$@"; }

run scripts/setup.sh
# ccache keyed on paths relative to the checkout, so that the container image build (its sources
# at /src, tests/docker) reuses these objects instead of compiling everything again.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
# ccache also hashes the locale: the same fixed one as scripts/build.sh (the image build).
export LANG=C.UTF-8
unset LC_ALL LC_CTYPE LC_MESSAGES
run cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQ_BUILD_TESTS=ON
run ninja -C "$BUILD" -j"$JOBS"
# Each test gets 300 s; a hung test fails instead of stalling CI.
run ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" --timeout 300 "$@"
