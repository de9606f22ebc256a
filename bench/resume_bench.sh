#!/usr/bin/env bash
# Resume at scale (issue 22), run ON THE GPU MACHINE after `bash scripts/device_run.sh build`:
#   bash bench/resume_bench.sh [CASE ...]     CASE: 8b-gptq | 8b-awq | 1b-gptq | 1b-awq
# Per case (llama-1b/-8b synth, the gpu_bench arguments): a clean run; the same run SIGKILLed
# after block K is solved (SQ_TEST_KILL_AT=solve:K, K = half the blocks) with the default
# --checkpoint-every 60; then --resume. Prints the per-block record cost and the activations
# writes (the "checkpoints:" line), the recompute on resume ("recomputed in"), end-to-end times,
# the record's size, and whether every output file equals the clean run's (SHA-256; the summary
# and the log hold timings and are left out). BENCH_BUDGET_S bounds the whole script (560 s).
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib_bench.sh
bench_setup resume_bench /tmp/sq-bench

digest() {  # every output file but the log and the summary (timings), "<name> <sha256>"
  (cd "$1" && for f in $(ls -A | sort); do
    case $f in quantize.log | shardquant_summary.json) ;; *) echo "$f $(sha256sum "$f" | cut -d' ' -f1)" ;; esac
  done)
}

one() {
  local name=$1 shape=$2 kill=$3
  shift 3
  synth_model "$shape" || { echo "$name: synth failed"; return 1; }
  local m=$WORK/$shape clean=$WORK/resume-$name-clean out=$WORK/resume-$name t rc
  rm -rf "$clean" "$clean.partial" "$out" "$out.partial"
  t=$(now)
  timeout "$(left)" "$SQ" --model_path "$m" --output_dir "$clean" "$@" >"$WORK/$name-clean.log" 2>&1
  rc=$?
  echo "$name clean: rc $rc, $(since "$t") s end to end"
  grep -h "checkpoints:" "$WORK/$name-clean.log" | sed 's/^.*\] /  /'
  t=$(now)
  SQ_TEST_KILL_AT=solve:$kill timeout "$(left)" "$SQ" --model_path "$m" --output_dir "$out" "$@" \
    >"$WORK/$name-killed.log" 2>&1
  echo "$name killed at solve:$kill: rc $?, $(since "$t") s; record $(stat -c %s "$out.partial/.checkpoint/rank-0.h5" 2>/dev/null) bytes;" \
    "generations: $(cd "$out.partial/.checkpoint" 2>/dev/null && ls rank-0.x-*.h5 2>/dev/null | tr '\n' ' ')"
  t=$(now)
  timeout "$(left)" "$SQ" --model_path "$m" --output_dir "$out" --resume "$@" >"$WORK/$name-resumed.log" 2>&1
  rc=$?
  echo "$name resumed: rc $rc, $(since "$t") s end to end"
  grep -hE "recomput|resumed:|checkpoints:" "$WORK/$name-resumed.log" | sed 's/^.*\] /  /'
  if [ "$rc" -eq 0 ] && diff <(digest "$clean") <(digest "$out") >/dev/null; then
    echo "$name: resumed output byte-identical to the clean run ($(digest "$out" | wc -l) files)"
  else
    echo "$name: resumed output DIFFERS from the clean run (or a run failed)"
    diff <(digest "$clean") <(digest "$out") | head -5
  fi
  rm -rf "$clean" "$out" "$out.partial"
}

GPTQ=(--gptq --bits 4 --q_group_size 128 --calib_size 128 --seq_len 2048)
AWQ=(--awq --q_group_size 128 --calib_size 128 --seq_len 512)
for c in "${@:-8b-gptq}"; do
  case $c in
    8b-gptq) one "$c" llama-8b 16 "${GPTQ[@]}" ;;
    8b-awq) one "$c" llama-8b 16 "${AWQ[@]}" ;;
    1b-gptq) one "$c" llama-1b 8 "${GPTQ[@]}" ;;
    1b-awq) one "$c" llama-1b 8 "${AWQ[@]}" ;;
    *) echo "unknown case $c" ;;
  esac
done
