#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set up (idempotent), configure, build, run ctest.
#   scripts/test.sh [ctest arguments, e.g. -L cli or -R Plan]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/test_env.sh  # ROOT, JOBS, run(); setup.sh; ccache and locale
BUILD=${BUILD_DIR:-$ROOT/build-test}
run cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQ_BUILD_TESTS=ON
run ninja -C "$BUILD" -j"$JOBS"
# Each test gets 300 s; a hung test fails instead of stalling CI.
run ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" --timeout 300 "$@"
