#!/usr/bin/env bash
# The main job, from a fresh machine: set up (idempotent), configure, build, run.
#   scripts/run.sh [MODEL_DIR] [more shardquant flags]
# MODEL_DIR defaults to ../shared/models/house-llama-13m. For now the job is a --dry-run (a later
# issue makes it a real quantization). The output goes under build-run/out/ so that the model
# directory (often read-only shared material) is never written.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODEL=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$MODEL" ]; then
  MODEL=$ROOT/../shared/models/house-llama-13m
  if [ ! -f "$MODEL/config.json" ]; then
    echo "run.sh: no model given and $MODEL is absent; usage: scripts/run.sh MODEL_DIR" >&2
    exit 2
  fi
fi

BUILD=${BUILD_DIR:-$ROOT/build-run}
run() { echo "+ $*"; "$@"; }

run scripts/setup.sh
run cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQ_BUILD_TESTS=OFF
run ninja -C "$BUILD" -j"$(nproc)" shardquant
OUT=${OUTPUT_DIR:-$BUILD/out/$(basename "$(realpath "$MODEL")")-AWQ-4bit}
run "$BUILD/shardquant" --dry-run --model_path "$MODEL" --output_dir "$OUT" "$@"
