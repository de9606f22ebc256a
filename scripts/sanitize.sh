#!/usr/bin/env bash
# The unit tests of common, io and solvers built with AddressSanitizer + UndefinedBehaviorSanitizer
# (gcc, -DSQ_SANITIZE=ON) in their own tree, build-asan/, and run there (issue 24 point 2). CI
# (.ci/run) runs it after scripts/test.sh; ccache is shared with the other trees (its objects
# differ: other flags).
#   scripts/sanitize.sh [ctest arguments, e.g. -R Safetensors]
# Left out: rank, coordinator, cli and dist (their tests run the whole quantizer: minutes each
# under ASan, and the sanitized stack costs another cold build of every library), and the
# io tests that start the shardquant binary (TokenizeCommand.*: that binary is not built here).
# A sanitizer report fails the test that triggered it; leaks inside LibTorch's load-time
# registries are suppressed (tests/sanitize/lsan.supp).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/test_env.sh  # ROOT, JOBS, run(); setup.sh; ccache and locale (as scripts/test.sh)
BUILD=${SANITIZE_BUILD_DIR:-$ROOT/build-asan}
# Set before the build too: gtest_discover_tests runs each test binary when it is linked.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/sanitize/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQ_BUILD_TESTS=ON \
  -DSQ_SANITIZE=ON -DSQ_WITH_CUDA=OFF -DSQ_WITH_NCCL=OFF -DSQ_WITH_MPI=OFF
run ninja -C "$BUILD" -j"$JOBS" test_common test_io test_solvers
run ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" --timeout 300 \
  -L '^(common|io|solvers)$' -E '^TokenizeCommand\.' "$@"
