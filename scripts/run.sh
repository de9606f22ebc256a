#!/usr/bin/env bash
# The main job, from a fresh machine: set up (idempotent), configure, build, quantize, and print
# the perplexity before and after.
#   scripts/run.sh [MODEL_DIR] [more shardquant flags]
# MODEL_DIR defaults to ../shared/models/house-llama-13m. The model is quantized with AWQ w4 g128
# (the defaults) on the built-in calibration corpus (Brown). The output goes under build-run/out/
# so that the model directory (often read-only shared material) is never written.
# Environment: OUTPUT_DIR (output), CALIB_ARGS (default "--calib-size 32 --seq_len 256", sized
# for a CPU; set CALIB_ARGS= for the full 128 x 2048 default), EVAL_TEXT (a plain-text file for
# the perplexity; default ../shared/data/corpus/brown-test.txt when present), EVAL_WINDOWS (40).
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
CALIB_ARGS=${CALIB_ARGS---calib-size 32 --seq_len 256}
EVAL_TEXT=${EVAL_TEXT:-$ROOT/../shared/data/corpus/brown-test.txt}
EVAL_WINDOWS=${EVAL_WINDOWS:-40}
run() { echo "+ $*"; "$@"; }

run scripts/setup.sh
run cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQ_BUILD_TESTS=OFF
run ninja -C "$BUILD" -j"$(nproc)" shardquant
OUT=${OUTPUT_DIR:-$BUILD/out/$(basename "$(realpath "$MODEL")")-AWQ-4bit}
# shellcheck disable=SC2086
run "$BUILD/shardquant" --model_path "$MODEL" --output_dir "$OUT" $CALIB_ARGS "$@"

if [ -f "$EVAL_TEXT" ]; then
  ppl() { "$BUILD/shardquant" eval --model "$1" --text "$EVAL_TEXT" --max-windows "$EVAL_WINDOWS" 2>&1 | tail -1; }
  echo "perplexity on $(basename "$EVAL_TEXT") (first $EVAL_WINDOWS windows of 512 tokens):"
  echo "  before: $(ppl "$MODEL")"
  echo "  after:  $(ppl "$OUT")"
else
  echo "run.sh: no evaluation text ($EVAL_TEXT); set EVAL_TEXT=FILE for before/after perplexity"
fi
