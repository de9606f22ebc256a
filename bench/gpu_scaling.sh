#!/usr/bin/env bash
# Issue 8: distributed quantization on several GPUs of one host — wall time, speed-up, scaling
# efficiency, per-GPU allocator peak and per-rank transport payload against the number of ranks
# (one GPU per rank, NCCL), for a synthetic llama-8b (bench/gpu_bench.sh makes the same one).
# Usage (on the device, after scripts/device_run.sh build):
#   bash bench/gpu_scaling.sh [RANKS...]          default: 1 2 4 8, capped at the GPU count
# Env (bench/lib_bench.sh): B (build dir, build-gpu), SHARDQUANT, SQ_BENCH_DIR (/tmp/sq-bench), SHAPE (llama-8b),
#      CASES ("awq-blocks gptq-data awq-data gptq-blocks"), TRANSPORT (nccl), BENCH_BUDGET_S (540).
# Prints a markdown table; the per-rank figures come from shardquant_summary.json's
# distributed.ranks (rank/transport/transport_counting.h for what "payload" counts).
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib_bench.sh
BENCH_BUDGET_S=${BENCH_BUDGET_S:-540}
bench_setup gpu_scaling /tmp/sq-bench
SHAPE=${SHAPE:-llama-8b}
MODEL=$WORK/$SHAPE
TRANSPORT=${TRANSPORT:-nccl}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
[ "$ngpu" -ge 1 ] || { echo "no GPU"; exit 1; }
ranks=()
for n in "${@:-1 2 4 8}"; do for m in $n; do [ "$m" -le "$ngpu" ] && ranks+=("$m"); done; done
if [ ! -f "$MODEL/config.json" ]; then
  timeout "$(left)" "$SQ" synth --shape "$SHAPE" --out "$MODEL" --seed 1 || exit 1
fi

declare -A ARGS=(
  [awq-blocks]="--awq --bits 4 --q_group_size 128 --calib_size 128 --seq_len 512 --parallel blocks"
  [awq-data]="--awq --bits 4 --q_group_size 128 --calib_size 128 --seq_len 512 --parallel data"
  [gptq-data]="--gptq --bits 4 --q_group_size 128 --calib_size 128 --seq_len 2048 --parallel data"
  [gptq-blocks]="--gptq --bits 4 --q_group_size 128 --calib_size 128 --seq_len 2048 --parallel blocks"
)
echo "GPUs: $ngpu × $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); transport $TRANSPORT"
echo
echo "| case | ranks | wall s | speed-up | efficiency | quantize s (max rank) | GPU peak GiB (max rank) | payload out MB (max rank) | status |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in ${CASES:-awq-blocks gptq-data awq-data gptq-blocks}; do
  base=""
  for n in "${ranks[@]}"; do
    if [ "$(left)" -lt 30 ]; then echo "| $c | $n | | | | | | | skipped (budget) |"; continue; fi
    out=$WORK/scale-$c-$n
    rm -rf "$out" "$out.partial"
    s=$(now)
    # shellcheck disable=SC2086
    timeout "$(left)" mpirun --allow-run-as-root --bind-to none -n "$n" \
      -x NCCL_NVLS_ENABLE -x TORCH_SYMM_MEM_DISABLE_MULTICAST -x NVSHMEM_DISABLE_NVLS \
      "$SQ" --model_path "$MODEL" --output_dir "$out" ${ARGS[$c]} --transport "$TRANSPORT" --quiet \
      >"$WORK/scale-$c-$n.log" 2>&1
    rc=$?
    wall=$(since "$s")
    status=$(run_status $rc "$(left)")
    [ $rc -ne 0 ] && status="$status: $(tail -1 "$WORK/scale-$c-$n.log" | cut -c1-80)"
    [ -z "$base" ] && [ $rc -eq 0 ] && base=$wall
    read -r q pk mb < <(python3 - "$out/shardquant_summary.json" <<'PY' 2>/dev/null || echo "- - -"
import json, sys
try:
    r = json.load(open(sys.argv[1])).get("distributed", {}).get("ranks", [])
except OSError:
    r = []
if not r:
    print("- - -")
else:
    print("%.1f %.2f %.0f" % (max(x.get("quantize_s", 0) for x in r),
                              max(x.get("peak_gpu_allocated_gib", 0) for x in r),
                              max(x.get("bytes_out", 0) for x in r) / 1e6))
PY
)
    sp=-; ef=-
    if [ -n "$base" ] && [ $rc -eq 0 ]; then
      sp=$(echo "scale=2; $base / $wall" | bc)
      ef=$(echo "scale=0; 100 * $base / ($wall * $n)" | bc)%
    fi
    printf "| %s | %d | %.1f | %s | %s | %s | %s | %s | %s |\n" "$c" "$n" "$wall" "$sp" "$ef" "$q" "$pk" "$mb" "$status"
    rm -rf "$out"
  done
done
