#!/usr/bin/env bash
# Issue 21 point 6: the models users struggle with, as slices on one GPU (ON THE GPU MACHINE,
# after `bash scripts/device_run.sh build`; this script builds nothing):
#   bash bench/big_bench.sh [case ...]
# Cases (default: all, in this order), each AWQ w4 g128 (128 x 512) and GPTQ w4 g128 (128 x 2048):
#   70b        llama-70b,      SLICE_70B blocks (default 4) of 80        goal <= 5 min per method
#   mixtral    mixtral-8x7b,   SLICE_MIXTRAL blocks (default 3) of 32    goal <= 4 min
#   qwen3moe   qwen3-30b-a3b,  SLICE_QWEN3 blocks (default 4) of 48      goal <= 3 min
#   deepseek   deepseek-v3 FP8 source, SLICE_DS blocks (default 4: 3 dense + 1 MoE) of 61
#                                                                        goal <= 1 h, <= 64 GiB host
#   custom     CUSTOM_SHAPE (a config.json), CUSTOM_LAYERS of CUSTOM_TOTAL blocks (not in "all")
# A slice is `shardquant synth --shape NAME --layers N` (random weights of the real shapes). Per
# run: end-to-end wall time, the summary's timings (load, calibration, quantization only, write),
# the per-block solve time of the steady blocks (block 0 carries the process's GPU start-up; in
# deepseek the dense and the MoE blocks are reported apart), peak GPU memory (nvidia-smi polled,
# and the allocator's peak) and peak host RSS (anonymous and file-backed apart). The whole-model
# estimate = the run's non-block time + every block of the model at its kind's steady rate +
# write scaled by the block count. METHODS (default "awq gptq") picks the methods, BENCH_BUDGET_S
# (default 560) bounds the script; results: stdout and $OUT/big_bench.md.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib_bench.sh
bench_setup big_bench /tmp/sq-big
METHODS=${METHODS:-awq gptq}
EXTRA=${BENCH_EXTRA_ARGS:-}  # appended to every run, e.g. "--force-cpu" for a smoke run
ARGS_OVERRIDE=${BENCH_ARGS:-}  # replaces the method's calibration arguments (smoke runs)
MD=$OUT/big_bench.md

{
  echo "# Big-model slices ($(date -u +%F' '%H:%MZ))"
  echo
  have_smi && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | sed 's/^/GPU: /'
  echo
  echo "| case | method | blocks run / model | end-to-end s | steady s/block | peak GPU GiB smi / alloc | peak host GiB (anon / file) | whole model est. | goal | status |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} >"$MD"

# slice SHAPE LAYERS → $WORK/SHAPE-LAYERS (removed after its case: the disk holds one slice)
slice() {
  local dir
  dir=$WORK/$(basename "$1" .json)-$2
  [ -f "$dir/config.json" ] && { echo "$dir"; return 0; }
  rm -rf "$dir"
  local t=$(now)
  timeout "$(left)" "$SQ" synth --shape "$1" --layers "$2" --out "$dir" --seed 1 >&2 || return 1
  echo "synth $1 --layers $2: $(since "$t") s, $(du -sh "$dir" | cut -f1)" >&2
  echo "$dir"
}

# run CASE METHOD MODEL_DIR TOTAL_BLOCKS GOAL ARGS...
run() {
  local case=$1 method=$2 model=$3 total=$4 goal=$5
  shift 5
  local out=$WORK/out-$case-$method
  rm -rf "$out" "$out.partial"
  local budget
  budget=$(left)
  if [ "$budget" -lt 30 ]; then
    echo "| $case | $method | | | | | | | $goal | skipped (budget) |" >>"$MD"
    return 0
  fi
  start_poll 200
  local t=$(now)
  # shellcheck disable=SC2086
  timeout "$budget" "$SQ" --model_path "$model" --output_dir "$out" "$@" $EXTRA >"$WORK/$case-$method.log" 2>&1
  local rc=$?
  local wall
  wall=$(since "$t")
  local smi
  smi=$(stop_poll)
  tail -8 "$WORK/$case-$method.log"
  local status
  status=$(run_status $rc "$budget")
  local row
  row=$(python3 - "$out/shardquant_summary.json" "$wall" "$total" "${smi:-0}" <<'PY'
import json, sys, os
path, wall, total, smi = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if not os.path.exists(path):
    print("| | | %.2f / | | |" % (smi / 1024)); sys.exit()
j = json.load(open(path))
t = j.get("timings_s", {})
blocks = j.get("blocks", [])
secs = [b.get("seconds", sum(b.get("phases_s", {}).values())) for b in blocks]
moe = [any(".experts." in l.get("name", "") for l in b.get("linears", [])) for b in blocks]
n = len(blocks)
# Steady rate per block kind (dense / MoE), block 0 left out when another of its kind exists.
def steady(kind):
    xs = [s for i, (s, m) in enumerate(zip(secs, moe)) if m == kind and (i > 0 or sum(1 for x in moe if x == kind) == 1)]
    return sum(xs) / len(xs) if xs else None
d, m = steady(False), steady(True)
cfg_total = total
blocks_time = t.get("quantize blocks", sum(secs))
other = max(0.0, wall - blocks_time - t.get("write", 0.0))
# Whole model: the same dense/MoE mix as the architecture (deepseek: 3 dense, the rest MoE).
dense_total = sum(1 for x in moe if not x) if m is None else (3 if cfg_total == 61 else 0)
moe_total = 0 if m is None else cfg_total - dense_total
est = other + (d or 0) * (cfg_total if m is None else dense_total) + (m or 0) * moe_total
est += t.get("write", 0.0) * cfg_total / max(n, 1)
hm = j.get("host_memory", {})
rate = ("dense %.2f" % d if d is not None else "") + (" / MoE %.2f" % m if m is not None else "")
print("| %d / %d | %.1f | %s | %.2f / %.2f | %.2f (%.2f / %.2f) | %.0f s (%.1f min) |" % (
    n, cfg_total, wall, rate, smi / 1024, j.get("peak_gpu_allocated_gib", float("nan")),
    hm.get("peak_rss_gib", float("nan")), hm.get("max_rss_anon_gib", float("nan")),
    hm.get("max_rss_file_gib", float("nan")), est, est / 60))
print("  timings: " + ", ".join("%s %.2f" % kv for kv in t.items()), file=sys.stderr)
print("  per block s: " + " ".join("%.2f%s" % (s, "m" if x else "") for s, x in zip(secs, moe)), file=sys.stderr)
PY
)
  echo "RESULT $case $method: $row $status"
  echo "| $case | $method $row $goal | $status |" >>"$MD"
  [ -f "$out/shardquant_summary.json" ] && cp "$out/shardquant_summary.json" "$OUT/summary-big-$case-$method.json"
  rm -rf "$out" "$out.partial"
}

args_for() {
  if [ -n "$ARGS_OVERRIDE" ]; then
    echo "--$1 $ARGS_OVERRIDE"
    return
  fi
  case $1 in
  awq) echo "--awq --bits 4 --q_group_size 128 --calib_size 128 --seq_len 512" ;;
  gptq) echo "--gptq --bits 4 --q_group_size 128 --calib_size 128 --seq_len 2048" ;;
  esac
}

# bench_case CASE SHAPE LAYERS TOTAL GOAL
bench_case() {
  local dir
  dir=$(slice "$2" "$3") || { echo "| $1 | | | | | | | | $5 | synth failed |" >>"$MD"; return 0; }
  for m in $METHODS; do
    # shellcheck disable=SC2046
    run "$1" "$m" "$dir" "$4" "$5" $(args_for "$m")
  done
  rm -rf "$dir"
}

case_70b() { bench_case 70b llama-70b "${SLICE_70B:-4}" 80 "<= 5 min"; }
case_mixtral() { bench_case mixtral mixtral-8x7b "${SLICE_MIXTRAL:-3}" 32 "<= 4 min"; }
case_qwen3moe() { bench_case qwen3moe qwen3-30b-a3b "${SLICE_QWEN3:-4}" 48 "<= 3 min"; }
case_deepseek() { bench_case deepseek deepseek-v3 "${SLICE_DS:-4}" 61 "<= 1 h, <= 64 GiB host"; }
# Any config.json (CUSTOM_SHAPE), e.g. a tiny one for a smoke run of this script on a CPU.
case_custom() { bench_case custom "$CUSTOM_SHAPE" "${CUSTOM_LAYERS:-2}" "${CUSTOM_TOTAL:-2}" "-"; }

cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(70b mixtral qwen3moe deepseek)
for c in "${cases[@]}"; do
  echo "=== big_bench $c ($(date +%T), $(left) s left)"
  "case_$c"
done
echo
cat "$MD"
