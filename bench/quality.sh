#!/usr/bin/env bash
# Quality bench (issue 5 point 8): perplexity of house-llama-13m quantized by shardquant against
# the reference implementations' numbers (REFERENCE.md §7), written into bench/NOTES.md
# ("## Quality" section, replaced on every run) by bench/quality_table.py.
#
# Protocol (REFERENCE.md §7): calibration = random windows of brown-train + pydoc-train,
# 128x512 for AWQ and 128x2048 for GPTQ; evaluation = `shardquant eval` on brown-test and
# pydoc-test (whole file, no special tokens, non-overlapping 512-token windows, fp16 on CUDA).
#
# Cells: fp16, rtn-w4, rtn-w3, awq-w4, awq-w3, gptq-w4, gptq-w3, gptq-act-w4, gptq-act-w3 (the
# reference algorithms' semantics), then shardquant's opt-in quality knobs against the same
# reference rows: awq-gptq-w4, awq-gptq-w3 (--awq-rounding gptq), gptq-mse-w4, gptq-mse-w3,
# gptq-act-mse-w4, gptq-act-mse-w3 (--mse 2.4).
# awq-w4 and every gptq cell are real packed checkpoints written by `shardquant`, read back by
# `shardquant eval` (dequantize-on-load). rtn-* and awq-w3 (AWQ GEMM stores 4-bit only, and the
# CLI refuses AWQ w3) are fake-quantized checkpoints written by the test tool sq_quality_quant
# (same solver code, float32 dequantized weights).
#
# Environment (all optional):
#   SHARDQUANT      the binary (default: build/shardquant)
#   SQ_QUALITY_TOOL sq_quality_quant (default: <dir of SHARDQUANT>/tools/sq_quality_quant)
#   SQ_SHARED_DIR   the shared folder (default: ../shared beside the repo)
#   CELLS           space-separated subset of the cells above
#   AWQ_N AWQ_T     AWQ calibration samples x tokens (128 x 512)
#   GPTQ_N GPTQ_T   GPTQ calibration samples x tokens (128 x 2048)
#   DEVICE          cpu | cuda | auto (default auto) for quantization and eval
#   QUANT_DTYPE     quantization --compute-dtype (auto|fp32|bf16|fp16; default auto = the
#                   checkpoint's half type on CUDA, fp32 on CPU)
#   CALIB_MIX       --calib-mix of the two training files (default proportional: REFERENCE.md
#                   §7 draws "random windows from brown-train + pydoc-train", i.e. from their
#                   union, so each file contributes in proportion to its size; equal = half each)
#   CALIB_SAMPLING  --calib-sampling (default windows: REFERENCE.md §7 calibrates both methods
#                   on random windows; texts = AutoAWQ's concatenated texts)
#   AWQ_EXTRA       extra flags of the AWQ cells (default --no-duo-scaling: the reference row is
#                   llm-awq, whose search scales by activations only, s = x_mean^α; AutoAWQ's
#                   duo scaling is shardquant's default; AWQ_EXTRA= measures that)
#   GPTQ_EXTRA      extra flags of the GPTQ cells (default none: the reference quantizer's
#                   min/max ranges; e.g. "--mse 2.4" for the range search)
#   SEED            calibration --seed (default: shardquant's default, 42)
#   EVAL_DTYPE      eval --dtype (default: eval's own: fp16 on CUDA, fp32 on CPU)
#   EVAL_MAX_WINDOWS  evaluate only the first N windows per file (reduced runs; default all)
#   QUALITY_WORK    scratch folder (default /tmp/sq-quality); checkpoints are kept there
#   NOTES           the notes file to update (default bench/NOTES.md; "-" = print only)
#   QUALITY_LABEL   free text for the table's header line (machine, etc.)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SQ_SHARED_DIR:-$ROOT/../shared}
SHARDQUANT=${SHARDQUANT:-$ROOT/build/shardquant}
QTOOL=${SQ_QUALITY_TOOL:-$(dirname "$SHARDQUANT")/tools/sq_quality_quant}
WORK=${QUALITY_WORK:-/tmp/sq-quality}
AWQ_N=${AWQ_N:-128}; AWQ_T=${AWQ_T:-512}
GPTQ_N=${GPTQ_N:-128}; GPTQ_T=${GPTQ_T:-2048}
DEVICE=${DEVICE:-auto}
CELLS=${CELLS:-"fp16 rtn-w4 rtn-w3 awq-w4 awq-w3 gptq-w4 gptq-w3 gptq-act-w4 gptq-act-w3 awq-gptq-w4 awq-gptq-w3 gptq-mse-w4 gptq-mse-w3 gptq-act-mse-w4 gptq-act-mse-w3"}
NOTES=${NOTES:-$ROOT/bench/NOTES.md}

MODEL=$SHARED/models/house-llama-13m
CORPUS=$SHARED/data/corpus
CALIB="$CORPUS/brown-train.txt,$CORPUS/pydoc-train.txt"
for f in "$SHARDQUANT" "$MODEL/config.json" "$CORPUS/brown-test.txt" "$CORPUS/pydoc-test.txt"; do
  [[ -e $f ]] || { echo "quality.sh: missing $f" >&2; exit 2; }
done
mkdir -p "$WORK"
RESULTS=$WORK/results.jsonl
: > "$RESULTS"

eval_args=(--seq_len 512 --device "$DEVICE")
[[ -n ${EVAL_DTYPE:-} ]] && eval_args+=(--dtype "$EVAL_DTYPE")
[[ -n ${EVAL_MAX_WINDOWS:-} ]] && eval_args+=(--max-windows "$EVAL_MAX_WINDOWS")

# quantize CELL OUT: writes the cell's checkpoint to OUT (or nothing for fp16); prints the route.
quantize() {
  local cell=$1 out=$2 common
  local qd=(--compute-dtype "${QUANT_DTYPE:-auto}" --calib-mix "${CALIB_MIX:-proportional}" --calib-sampling "${CALIB_SAMPLING:-windows}" ${SEED:+--seed "$SEED"})
  local awq=(--calib-file "$CALIB" --calib-size "$AWQ_N" --seq_len "$AWQ_T" --device "$DEVICE" "${qd[@]}")
  # shellcheck disable=SC2206
  awq+=(${AWQ_EXTRA---no-duo-scaling})
  local gptq=(--calib-file "$CALIB" --calib-size "$GPTQ_N" --seq_len "$GPTQ_T" --device "$DEVICE" "${qd[@]}")
  # shellcheck disable=SC2206
  gptq+=(${GPTQ_EXTRA:-})
  rm -rf "$out" "$out.partial"
  case $cell in
    fp16) return 0 ;;
    rtn-w4 | rtn-w3)
      "$QTOOL" rtn "${cell#rtn-w}" "$out" -- --model_path "$MODEL" --device "$DEVICE" "${qd[@]}" ;;
    awq-w4)
      "$SHARDQUANT" --model_path "$MODEL" --output_dir "$out" --awq --bits 4 "${awq[@]}" ;;
    awq-w3)
      "$QTOOL" awq 3 "$out" -- --model_path "$MODEL" "${awq[@]}" ;;
    awq-gptq-w4)
      "$SHARDQUANT" --model_path "$MODEL" --output_dir "$out" --awq --bits 4 "${awq[@]}" \
        --awq-rounding gptq ;;
    awq-gptq-w3)
      "$QTOOL" awq 3 "$out" -- --model_path "$MODEL" "${awq[@]}" --awq-rounding gptq ;;
    gptq-mse-w4 | gptq-mse-w3)
      "$SHARDQUANT" --model_path "$MODEL" --output_dir "$out" --gptq --bits "${cell#gptq-mse-w}" \
        --zero-point --mse 2.4 "${gptq[@]}" ;;
    gptq-act-mse-w4 | gptq-act-mse-w3)
      "$SHARDQUANT" --model_path "$MODEL" --output_dir "$out" --gptq \
        --bits "${cell#gptq-act-mse-w}" --zero-point --desc-act --mse 2.4 "${gptq[@]}" ;;
    gptq-w4 | gptq-w3)
      "$SHARDQUANT" --model_path "$MODEL" --output_dir "$out" --gptq --bits "${cell#gptq-w}" \
        --zero-point "${gptq[@]}" ;;
    gptq-act-w4 | gptq-act-w3)
      "$SHARDQUANT" --model_path "$MODEL" --output_dir "$out" --gptq --bits "${cell#gptq-act-w}" \
        --zero-point --desc-act "${gptq[@]}" ;;
    *) echo "quality.sh: unknown cell $cell" >&2; return 2 ;;
  esac
}

for cell in $CELLS; do
  out=$WORK/$cell
  model=$out
  [[ $cell == fp16 ]] && model=$MODEL
  echo "== $cell" >&2
  t0=$(date +%s.%N)
  if ! quantize "$cell" "$out" > "$WORK/$cell.quantize.log" 2>&1; then
    echo "quality.sh: $cell failed to quantize (see $WORK/$cell.quantize.log)" >&2
    tail -5 "$WORK/$cell.quantize.log" >&2
    echo "{\"cell\":\"$cell\",\"error\":\"quantization failed\"}" >> "$RESULTS"
    continue
  fi
  t1=$(date +%s.%N)
  line="{\"cell\":\"$cell\",\"quantize_seconds\":$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")"
  for test in brown pydoc; do
    if r=$("$SHARDQUANT" eval --model "$model" --text "$CORPUS/$test-test.txt" "${eval_args[@]}" \
           2> "$WORK/$cell.$test.eval.log" | head -1); then
      line+=",\"$test\":$r"
      echo "   $test: $(echo "$r" | sed 's/.*"ppl":\([0-9.]*\).*/\1/')" >&2
    else
      line+=",\"${test}_error\":\"eval failed\""
    fi
  done
  echo "$line}" >> "$RESULTS"
done

python3 "$ROOT/bench/quality_table.py" "$RESULTS" "$NOTES" \
  "calibration AWQ ${AWQ_N}x${AWQ_T}, GPTQ ${GPTQ_N}x${GPTQ_T}; device $DEVICE, compute dtype ${QUANT_DTYPE:-auto}, calib mix ${CALIB_MIX:-proportional}, sampling ${CALIB_SAMPLING:-windows}, AWQ extra '${AWQ_EXTRA---no-duo-scaling}', GPTQ extra '${GPTQ_EXTRA:-}', seed ${SEED:-42}; eval windows ${EVAL_MAX_WINDOWS:-all}; ${QUALITY_LABEL:-}"
