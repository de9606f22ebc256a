#!/usr/bin/env bash
# Wall time and per-rank peak memory of a distributed quantization against the number of ranks.
# Usage: bench/scaling.sh BUILD_DIR [MODEL_DIR] [RANKS...]   (defaults: house model, 1 2 3 4)
# Env: METHOD_ARGS (default "--awq --parallel blocks"), CALIB (default "--calib-size 8 --seq_len 128").
# Each rank runs under /usr/bin/time -v (peak RSS); one OpenMP thread per rank. Prints a markdown
# table row per rank count: ranks | wall s | max peak RSS MiB | sum of peak RSS MiB.
set -euo pipefail
build=${1:?usage: bench/scaling.sh BUILD_DIR [MODEL_DIR] [RANKS...]}
here=$(cd "$(dirname "$0")" && pwd)
model=${2:-$here/../../shared/models/house-llama-13m}
shift $(( $# >= 2 ? 2 : $# ))
ranks=("$@")
[ ${#ranks[@]} -eq 0 ] && ranks=(1 2 3 4)
args=${METHOD_ARGS:---awq --parallel blocks}
calib=${CALIB:---calib-size 8 --seq_len 128}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| ranks | wall s | max rank peak RSS MiB | sum peak RSS MiB |"
echo "|---|---|---|---|"
for n in "${ranks[@]}"; do
  rm -rf "$tmp/out" "$tmp"/rss.*
  start=$(date +%s.%N)
  OMP_NUM_THREADS=1 mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl self,vader \
    -n "$n" -x OMP_NUM_THREADS bash -c \
    '/usr/bin/time -f %M -o '"$tmp"'/rss.$OMPI_COMM_WORLD_RANK "$@"' _ \
    "$build/shardquant" --model_path "$model" --output_dir "$tmp/out" $args $calib --quiet \
    --transport mpi
  end=$(date +%s.%N)
  max=0; sum=0
  for f in "$tmp"/rss.*; do
    kb=$(tail -1 "$f"); sum=$((sum + kb)); [ "$kb" -gt "$max" ] && max=$kb
  done
  printf "| %d | %.1f | %.0f | %.0f |\n" "$n" "$(echo "$end - $start" | bc)" \
    "$(echo "$max / 1024" | bc -l)" "$(echo "$sum / 1024" | bc -l)"
done
