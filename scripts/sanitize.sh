#!/usr/bin/env bash
# The unit-test suites built with ASan + UBSan (issue 24 point 2) in build-asan/, then run.
#   scripts/sanitize.sh [ctest arguments]
# Suites: common, io, solvers (the parsers, writers and numerical kernels; their tests do not
# start the shardquant binary except the tokenize command test (TokenizeCommand), excluded here). Leak
# checking is on; LibTorch's own one-time allocations are suppressed (tests/sanitize/lsan.supp).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD_DIR:-$ROOT/build-asan}
JOBS=${JOBS:-$(nproc)}
run() { echo "+ $*"; "$@"; }
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
export LANG=C.UTF-8
unset LC_ALL LC_CTYPE LC_MESSAGES
run cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQ_BUILD_TESTS=ON \
  -DSQ_SANITIZE=ON -DSQ_WITH_CUDA=OFF
run ninja -C "$BUILD" -j"$JOBS" test_common test_io test_solvers
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_odr_violation=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/sanitize/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" --timeout 600 \
  -L '^(common|io|solvers)$' -E 'TokenizeCommand' "$@"
