#!/usr/bin/env bash
# GPU benchmarks of issue 7, run ON THE GPU MACHINE after `bash scripts/device_run.sh build`
# (this script builds nothing; it uses the build in build-gpu/):
#   bash bench/gpu_bench.sh [stage ...]
# Stages (default: all, in this order; each prints its figures as it goes):
#   kernel     the fused GPTQ kernel test against the reference solver (test_solvers)
#   cpu-gpu    house-llama-13m GPTQ w4g128 on the GPU and with --force_cpu: per-layer errors
#   1b-awq     llama-1b (synth), AWQ  w4 g128, 128 x 512   (REFERENCE.md §7: llm-awq 72.6 s, 8.5 GiB)
#   1b-gptq    llama-1b (synth), GPTQ w4 g128, 128 x 2048  (IST gptq 120.1 s, 5.6 GiB)
#   8b-awq     llama-8b (synth), AWQ  w4 g128, 128 x 512   (goal ≤ 90 s end to end)
#   8b-gptq    llama-8b (synth), GPTQ w4 g128, 128 x 2048  (goal ≤ 90 s end to end)
# Every quantization run reports: "quantization only" (the per-block solve incl. calibration
# forwards, timings_s in shardquant_summary.json — the scope the references were timed on),
# block load, write, end-to-end wall time of the process, and the peak GPU memory seen by
# nvidia-smi (polled every 100 ms; includes the CUDA context, ~0.5 GiB, so it overstates ours).
# BENCH_BUDGET_S (default 560) bounds the whole script: a stage that would start after it is
# skipped, a run is cut at the remaining budget. Results: stdout and $OUT/gpu_bench.md.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib_bench.sh
bench_setup gpu_bench /tmp/sq-bench
HOUSE=$SQ_SHARED_DIR/models/house-llama-13m
MD=$OUT/gpu_bench.md
NOTES=$WORK/notes.md
: >"$NOTES"

{
  echo "# GPU benchmarks ($(date -u +%F' '%H:%MZ))"
  echo
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/GPU: /'
  echo
  echo "| run | quantization only s | block load s | write s | end-to-end s | peak GPU GiB (smi / allocator) | reference | status |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$MD"

# quant NAME REFERENCE MODEL_DIR ARGS... — one timed run, figures to stdout and the table.
quant() {
  local name=$1 ref=$2 model=$3
  shift 3
  local out=$WORK/out-$name
  rm -rf "$out" "$out.partial"
  local budget
  budget=$(left)
  if [ "$budget" -lt 20 ]; then
    echo "| $name | | | | | | $ref | skipped (budget) |" >>"$MD"
    return 0
  fi
  start_poll 100
  local t=$(now)
  timeout "$budget" "$SQ" --model_path "$model" --output_dir "$out" "$@" >"$WORK/$name.log" 2>&1
  local rc=$?
  local wall
  wall=$(since "$t")
  local peak
  peak=$(stop_poll)
  tail -25 "$WORK/$name.log"
  local status
  status=$(run_status $rc "$budget")
  local q="" l="" w="" pa=""
  if [ -f "$out/shardquant_summary.json" ]; then
    read -r q l w pa < <(python3 -c '
import json,sys
j=json.load(open(sys.argv[1])); t=j["timings_s"]
print(*["%.2f" % t.get(k, float("nan")) for k in ("quantization only","block load","write")], "%.2f" % j.get("peak_gpu_allocated_gib", float("nan")))' \
      "$out/shardquant_summary.json")
  fi
  echo "RESULT $name: quantization only ${q:-?} s, block load ${l:-?} s, write ${w:-?} s, end-to-end $wall s, peak GPU $(gib "${peak:-0}") GiB (smi), ${pa:-?} GiB (allocator peak), $status"
  echo "| $name | ${q} | ${l} | ${w} | $wall | $(gib "${peak:-0}") / ${pa} | $ref | $status |" >>"$MD"
  # First block vs the rest: block 0 carries the process's one-time GPU start-up (first cuBLAS
  # call, kernel loading, allocator growth), the others are the steady state.
  [ -f "$out/shardquant_summary.json" ] && python3 - "$out/shardquant_summary.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1])).get("blocks", [])
ph = [sum(x.get("phases_s", {}).values()) for x in b]
if len(ph) > 1:
    rest = ph[1:]
    print("  solve phases: block 0 %.2f s, other blocks %.3f s each (min %.3f, max %.3f); "
          "%d blocks at the steady rate = %.2f s" % (ph[0], sum(rest) / len(rest), min(rest),
          max(rest), len(ph), len(ph) * sum(rest) / len(rest)))
PY
  [ -d "$out" ] && cp "$out/shardquant_summary.json" "$OUT/summary-$name.json" 2>/dev/null
  rm -rf "$out" "$out.partial"
}

stage_kernel() {
  local t="$B/tests/test_solvers"
  [ -x "$t" ] || { echo "no $t"; return 0; }
  "$t" --gtest_filter='GptqFused*' 2>&1 | tail -15
  echo "kernel test (GptqFused*): $("$t" --gtest_filter='GptqFused*' 2>&1 | grep -E '^\[  (PASSED|FAILED|SKIPPED)' | tr '\n' ' ')" >>"$NOTES"
}

stage_cpu-gpu() {
  local a=(--gptq --bits 4 --q_group_size 128 --calib_size 32 --seq_len 512)
  for dev in gpu cpu; do
    local extra=()
    [ $dev = cpu ] && extra=(--force_cpu)
    rm -rf "$WORK/house-$dev"
    timeout "$(left)" "$SQ" --model_path "$HOUSE" --output_dir "$WORK/house-$dev" "${a[@]}" "${extra[@]}" \
      >"$WORK/house-$dev.log" 2>&1 || { echo "house $dev run failed"; tail -5 "$WORK/house-$dev.log"; return 0; }
  done
  python3 - "$WORK/house-gpu/shardquant_summary.json" "$WORK/house-cpu/shardquant_summary.json" <<'EOF' | tee -a "$NOTES"
import json, sys
def errs(p):
    out = {}
    for b in json.load(open(p))["blocks"]:
        for l in b["linears"]:
            out[l["name"]] = l["error"]
    return out
g, c = errs(sys.argv[1]), errs(sys.argv[2])
r = sorted(g[k] / c[k] for k in g if c.get(k))
print(f"\nGPU vs --force_cpu (house-llama-13m GPTQ w4g128, 32x512): {len(r)} linears, "
      f"error ratio GPU/CPU min {r[0]:.3f} median {r[len(r)//2]:.3f} max {r[-1]:.3f}\n")
EOF
}

stage_1b-awq() { synth_model llama-1b && quant 1b-awq "llm-awq 72.6 s, 8.5 GiB" "$WORK/llama-1b" --awq --bits 4 --q_group_size 128 --calib_size 128 --seq_len 512; }
stage_1b-gptq() { synth_model llama-1b && quant 1b-gptq "IST gptq 120.1 s, 5.6 GiB" "$WORK/llama-1b" --gptq --bits 4 --q_group_size 128 --calib_size 128 --seq_len 2048; }
stage_8b-awq() { synth_model llama-8b && quant 8b-awq "goal <= 90 s end to end" "$WORK/llama-8b" --awq --bits 4 --q_group_size 128 --calib_size 128 --seq_len 512; }
stage_8b-gptq() { synth_model llama-8b && quant 8b-gptq "goal <= 90 s end to end" "$WORK/llama-8b" --gptq --bits 4 --q_group_size 128 --calib_size 128 --seq_len 2048; }

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(kernel cpu-gpu 1b-awq 1b-gptq 8b-awq 8b-gptq)
for s in "${stages[@]}"; do
  if [ "$(left)" -lt 20 ]; then
    echo "=== $s skipped: budget spent"
    echo "| $s | | | | | | | skipped (budget) |" >>"$MD"
    continue
  fi
  echo "=== gpu_bench $s ($(date +%T), $(left) s left)"
  "stage_$s"
done
{ echo; cat "$NOTES"; } >>"$MD"
echo
cat "$MD"
