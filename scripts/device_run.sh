#!/usr/bin/env bash
# Run ON THE GPU MACHINE (Ubuntu 24.04, PyTorch 2.x + CUDA 13, NCCL, Open MPI), from the repo
# root, after scripts/device_prepare.sh ran here and .carry/ travelled:
#   bash scripts/device_run.sh build [test] [eval] [bench ...]
# Builds against the machine's LibTorch 2.x with CUDA + NCCL, then runs the named stages.
# Everything printed also goes to $OUT/device.log when $OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export SQ_SHARED_DIR=$PWD/.carry/shared
export LD_LIBRARY_PATH=$PWD/.carry/boost/lib:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/sq-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/device.log") 2>&1
B=build-gpu

# scripts/build.sh --flavor gpu: the build docker/Dockerfile.gpu runs, plus the tests and this
# machine's carried dependencies (see scripts/device_prepare.sh).
stage_build() {
  mkdir -p .carry/pcre2/lib
  ln -sf "$(ldconfig -p | awk '/libpcre2-8.so.0 /{print $NF; exit}')" .carry/pcre2/lib/libpcre2-8.so
  time scripts/build.sh --flavor gpu --build-dir $B --build-type Release --tests --jobs 16 --keep-going -- \
    -DPCRE2_INCLUDE_DIR=$PWD/.carry/pcre2/include -DPCRE2_LIBRARY=$PWD/.carry/pcre2/lib/libpcre2-8.so \
    -DSQ_BOOST_PO_ROOT=$PWD/.carry/boost -DSQ_SPDLOG_ROOT=$PWD/.carry/spdlog -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DSQ_SHARED_DIR=$PWD/.carry/shared
}

stage_test() {
  (cd $B && ctest --output-on-failure -j8 --timeout 600) | tail -60
}

# Architecture fixtures on the GPU, fp32 and bf16 (tolerances in tests/rank/model/test_arch_fixtures.cpp).
stage_fixtures() {
  for dt in fp32 bf16; do
    echo "--- fixtures on cuda, $dt"
    SQ_TEST_DEVICE=cuda SQ_TEST_DTYPE=$dt $B/tests/test_rank --gtest_filter='Fixtures/*' \
      >"$OUT/fixtures-$dt.log" 2>&1
    grep -E "routing check|^\[  FAILED|^\[  PASSED|tests ran" "$OUT/fixtures-$dt.log" | sort -u
  done
}

# The GPU-only unit tests (fast paths against their references), one line each.
stage_gpuunit() {
  $B/tests/test_rank --gtest_filter='AttentionFast*:Fused*:BlockResults*' 2>&1 | grep -E "^\[  |Failure|rel|expected" | head -20
  $B/tests/test_solvers --gtest_filter='Hessian*:GptqFused*:AwqTrial*:AwqClip*:AwqGram*:AwqBatched*' 2>&1 | grep -E "^\[  |Failure|accumulator|expected" | head -20
}

# House-model perplexity on the GPU (REFERENCE.md §7 protocol), fp32 and bf16.
stage_eval() {
  local m=.carry/shared/models/house-llama-13m c=.carry/shared/data/corpus
  for dt in fp32 bf16; do
    for t in brown-test pydoc-test; do
      echo "--- eval $t cuda $dt"
      $B/shardquant eval --model $m --text $c/$t.txt --device cuda --dtype $dt 2>&1 | tail -2
    done
  done
}

# The quality table is written into a copy of bench/NOTES.md under $OUT (bring it back here).
stage_quality() {
  cp bench/NOTES.md "$OUT/NOTES.md"
  SHARDQUANT=$B/shardquant NOTES=$OUT/NOTES.md QUALITY_LABEL="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" \
    bash bench/quality.sh
}
# GPU_BENCH_CASES picks stages of bench/gpu_bench.sh (default all).
stage_gpubench() { SHARDQUANT=$B/shardquant bash bench/gpu_bench.sh ${GPU_BENCH_CASES:-}; }
# Issue 21's big-model slices (bench/big_bench.sh; BIG_CASES picks cases, default all).
stage_big() { SHARDQUANT=$PWD/$B/shardquant bash bench/big_bench.sh ${BIG_CASES:-}; }
# The FP8/MXFP4 source tests (issue 21), a crash's stack resolved to source lines.
stage_fp8() {
  local t
  bash tests/link/check_link_order.sh $B/shardquant $B/tests/test_cli
  for t in Fp8Source.Mixtral'*' Fp8Source.House'*' '*Mxfp4*' MoeUncalibrated'*'; do
    $B/tests/test_cli --gtest_filter="$t" 2>&1 | bash scripts/resolve_stack.sh | grep -vE '^\[ +OK|^\[-|^\[=|^Note' | tail -40
  done
  $B/tests/test_io --gtest_filter='*Fp8*:*Mxfp4*:*SourceFormat*' 2>&1 | bash scripts/resolve_stack.sh | tail -30
}
# GPTQ on one DeepSeek-V3 MoE block (synth slice, 4 layers), replayed vs forward Hessian passes
# (issue 21; tests/rank/tools/gptq_moe_bench.cpp). MOE_BENCH_ARGS: samples seq budget_mib.
stage_moebench() {
  local m=/tmp/sq-bench/deepseek-v3-4
  [ -f $m/config.json ] || timeout 300 $B/shardquant synth --shape deepseek-v3 --layers 4 --out $m --seed 1 || return 1
  timeout 400 $B/tools/sq_gptq_moe_bench $m ${MOE_BENCH_ARGS:-128 512 0} 2>&1 | tail -20
}
# The multi-process tests on this machine (ranks share its GPU(s)), failures in full.
stage_distgpu() {
  (cd $B && ctest -L dist -j4 --timeout 200 --output-on-failure) 2>&1 | grep -vE "^\s+Start|Passed" | tail -120
}
# Resume on the GPU (issue 22): kill points and the recomputed chain, byte-identical to a clean
# GPU run (RESUME_PARTS, default recompute gptq).
stage_resume() {
  for p in ${RESUME_PARTS:-recompute gptq}; do
    echo "--- resume $p on cuda"
    RESUME_DEVICE=cuda bash tests/resume/resume_test.sh $B/shardquant "$p" 2>&1 | grep -v Killed | tail -30
  done
}
# bench/resume_bench.sh: kill + resume at 1b/8b, byte-identical check (RESUME_BENCH_CASES).
stage_resumebench() { SHARDQUANT=$PWD/$B/shardquant bash bench/resume_bench.sh ${RESUME_BENCH_CASES:-8b-gptq}; }
# bench/quality_sweep.sh with this build (DTYPES, SEEDS, CELLS from the environment).
stage_sweep() {
  SHARDQUANT=$B/shardquant bash bench/quality_sweep.sh
  cp "${QUALITY_WORK:-/tmp/sq-quality}-sweep/sweep.txt" "$OUT/sweep.txt" 2>/dev/null || true
}

# The compressed-tensors oracle (bench/ct_oracle.sh, bench/NOTES.md): compressed-tensors' source
# is taken from .carry/compressed-tensors when the machine lacks the package.
stage_ctoracle() {
  local src=$PWD/.carry/compressed-tensors
  SHARDQUANT=$B/shardquant OUT=$OUT CT_SRC=$([ -d "$src" ] && echo "$src") bash bench/ct_oracle.sh
}

# Every named stage runs (device time is scarce: one failing stage must not skip the rest); the
# exit status is non-zero when any failed. A failed build stops everything after it.
failed=0
for s in "$@"; do
  echo "=== stage $s ($(date +%T))"
  if ! "stage_$s"; then
    echo "stage $s FAILED"
    failed=1
    [ "$s" = build ] && exit 1
  fi
done
exit $failed
