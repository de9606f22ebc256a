#!/usr/bin/env bash
# libFuzzer targets of tests/fuzz (issue 24): build them and run one for a bounded time.
#   fuzz.sh build [BUILD_DIR]                      configure + build the clang/ASan/UBSan tree
#   fuzz.sh run TARGET SECONDS [BUILD_DIR] [-- libFuzzer flags...]
#                      (FUZZ_CPU_SECONDS=N: stop after N seconds of the fuzzer's CPU time)
# BUILD_DIR defaults to build-fuzz/ in the checkout. Exit 77 (ctest: skipped) when clang or its
# libFuzzer runtime is missing. `run` fuzzes a scratch copy of the committed seeds
# (tests/fuzz/corpus/TARGET) plus the shared folder's real files (house model, fixtures) where
# present, prints libFuzzer's final stats (executions, exec/s, coverage) and fails on any
# finding (crash, sanitizer report, leak, timeout, an exception other than InputError), leaving
# the crashing input in BUILD_DIR/findings/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SHARED=${SQ_SHARED_DIR:-$ROOT/../shared}
cmd=${1:?usage: fuzz.sh build|run ...}
shift

have_libfuzzer() {
  command -v clang++ >/dev/null || return 1
  local t
  t=$(mktemp -d)
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
    >"$t/f.cpp"
  clang++ -fsanitize=fuzzer,address,undefined "$t/f.cpp" -o "$t/f" >/dev/null 2>&1
  local rc=$?
  rm -rf "$t"
  return $rc
}

case "$cmd" in
build)
  BUILD=$(realpath -m "${1:-$ROOT/build-fuzz}")
  if ! have_libfuzzer; then
    echo "SKIP: clang++ with libFuzzer (-fsanitize=fuzzer) not available"
    exit 77
  fi
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
  export LANG=C.UTF-8
  set -x
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DSQ_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSQ_SHARED_DIR="$SHARED" >/dev/null
  ninja -C "$BUILD" -j"${JOBS:-$(nproc)}"
  ;;
run)
  target=${1:?target}
  seconds=${2:?seconds}
  BUILD=$(realpath -m "${3:-$ROOT/build-fuzz}")
  shift 3 || shift $#
  [ "${1:-}" = "--" ] && shift
  bin=$BUILD/tests/fuzz/fuzz_$target
  if [ ! -x "$bin" ]; then
    if have_libfuzzer; then
      echo "fuzz target $bin not built (fuzz.sh build $BUILD)"
      exit 1
    fi
    echo "SKIP: clang++ with libFuzzer not available"
    exit 77
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/corpus" "$BUILD/findings"
  cp "$HERE/corpus/$target/"* "$work/corpus/"
  house=$SHARED/models/house-llama-13m
  add() { [ -f "$1" ] && cp "$1" "$work/corpus/$2" || true; }
  case "$target" in
  config)
    add "$house/config.json" house
    for d in "$SHARED"/fixtures/arch/*/; do add "$d/config.json" "arch_$(basename "$d")"; done
    ;;
  index) add "$house/model.safetensors.index.json" house ;;
  tokenizer_load) add "$house/tokenizer.json" house ;;
  calib) [ -f "$house/../../data/corpus/brown-valid.txt" ] &&
    { printf '\0'; head -c 4000 "$house/../../data/corpus/brown-valid.txt"; } >"$work/corpus/brown_txt" ;;
  esac
  # -max_len: the largest seed (the house tokenizer.json is 540 kB) may be mutated whole.
  max_len=$(find "$work/corpus" -type f -printf '%s\n' | sort -n | tail -1)
  [ "$max_len" -lt 4096 ] && max_len=4096
  # FUZZ_CPU_SECONDS=N: stop once the fuzzer has used N seconds of CPU (user + system) rather
  # than of wall time, for a fair hour on a shared machine; SECONDS then only bounds the wall
  # time. libFuzzer answers the SIGINT with its final stats and exit 72, counted as a clean end.
  cpu_limit=${FUZZ_CPU_SECONDS:-0}
  stopped_by_limit=0
  set +e
  (cd "$BUILD/findings" && exec env ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=4096 -error_exitcode=1 -timeout_exitcode=1 \
    -interrupt_exitcode=72 -max_len="$max_len" "$@" "$work/corpus") &
  pid=$!
  if [ "$cpu_limit" -gt 0 ]; then
    tck=$(getconf CLK_TCK)
    while kill -0 "$pid" 2>/dev/null; do
      # utime + stime of the fuzzer (fields 14 and 15 of /proc/PID/stat, after the "(comm)").
      used=$(awk -v t="$tck" '{sub(/^.*\) /, ""); print int(($12 + $13) / t)}' "/proc/$pid/stat" 2>/dev/null || echo 0)
      if [ "$used" -ge "$cpu_limit" ]; then
        kill -INT "$pid"
        stopped_by_limit=1
        break
      fi
      sleep 5
    done
  fi
  wait "$pid"
  rc=$?
  set -e
  # 72 after our own SIGINT is the clean end of a CPU-bounded run; without it, the run was
  # interrupted from outside before its limit (not a finding, but not a finished run either).
  if [ "$rc" -eq 72 ]; then
    if [ "$stopped_by_limit" -eq 1 ]; then
      echo "fuzz_$target: stopped after ${cpu_limit} CPU seconds"
      rc=0
    else
      echo "fuzz_$target: interrupted from outside before its limit"
    fi
  fi
  echo "fuzz_$target: libFuzzer exit $rc (wall limit ${seconds}s)"
  exit $rc
  ;;
*)
  echo "usage: fuzz.sh build [BUILD_DIR] | run TARGET SECONDS [BUILD_DIR] [-- flags]" >&2
  exit 2
  ;;
esac
