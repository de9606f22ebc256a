#!/usr/bin/env bash
# slurm/quantize.sbatch run for real on a one-node Slurm (scripts/slurm_local.sh), registered
# with ctest by tests/CMakeLists.txt (label `slurm`). One check per call:
#   tests/slurm/slurm_test.sh CHECK
#     up        bring up munge, slurmctld, slurmd (ctest fixture setup)
#     run       `sbatch --wait --nodes=1 --gpus-per-node=2 slurm/quantize.sbatch MODEL --force_cpu`
#               (2 ranks, MPI transport on the CPU): output byte-identical to one process
#     fault     SHARDQUANT_FAULT kills rank 1's work mid-run: the job ends non-zero within the
#               timeout and no shardquant process is left running
#     defaults  with 8 fake GPUs the script's own #SBATCH lines are accepted as written
#     requeue   preemption (issue 22): `scancel --signal=TERM` reaches both ranks of a running
#               2-rank job during its blocks (as --signal=TERM@600 or a preemption does); they
#               exit 143 with "interrupted after block i of n", the script requeues the job, its
#               second start (restart count 1) resumes from the checkpoints and the final output
#               is byte-identical to one process
#     down      stop the daemons (ctest fixture cleanup)
# Exit 77 (ctest: skipped) when not root (Slurm daemons need it here), or when the house model or
# the binary is missing.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CHECK=${1:?usage: slurm_test.sh CHECK}
WORK=${SQ_SLURM_WORK:-/tmp/sq-slurm-test}
SHARED=${SQ_SHARED_DIR:-$ROOT/../shared}
HOUSE=$SHARED/models/house-llama-13m
BIN=${SQ_BINARY:-$ROOT/build-test/shardquant}
CORPUS=$SHARED/data/corpus/brown-train.txt
ARGS=(--force_cpu --calib-file "$CORPUS" --calib-size 8 --seq_len 128 --parallel blocks)
mkdir -p "$WORK"

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "the local Slurm daemons need root"
case "$CHECK" in up | down) ;; *)
  [ -d "$HOUSE" ] || skip "house model not found at $HOUSE"
  [ -x "$BIN" ] || skip "binary $BIN not built"
  sinfo -h >/dev/null 2>&1 || fail "Slurm is not up (the up check failed?)"
  ;;
esac

# sbatch from $WORK (the job's output file lands there); prints the job's stdout file.
submit() {  # NAME SBATCH-ARGS... -- SCRIPT-ARGS...
  local name=$1
  shift
  local sb=() rest=()
  while (($#)) && [ "$1" != -- ]; do sb+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  rest=("$@")
  (cd "$WORK" && SHARDQUANT="$BIN" timeout -s KILL 600 \
    sbatch --wait --parsable --output="$WORK/$name-%j.out" "${sb[@]}" \
    "$ROOT/slurm/quantize.sbatch" "$HOUSE" "${rest[@]}")
}
files_equal() {  # A B: every output file but the log and the summary, byte for byte
  local a=$1 b=$2 f n=0
  for f in "$a"/*; do
    case "$(basename "$f")" in quantize.log | shardquant_summary.json) continue ;; esac
    cmp -s "$f" "$b/$(basename "$f")" || { echo "differs: $(basename "$f")"; return 1; }
    n=$((n + 1))
  done
  [ "$(ls "$a" | wc -l)" = "$(ls "$b" | wc -l)" ] || { echo "file lists differ"; return 1; }
  echo "$n files identical"
}

case "$CHECK" in
up)
  t0=$(date +%s)
  bash scripts/slurm_local.sh up || fail "scripts/slurm_local.sh up failed"
  pass "Slurm up in $(($(date +%s) - t0)) s"
  ;;
down)
  bash scripts/slurm_local.sh down
  pgrep -x 'slurmd|slurmctld' >/dev/null && fail "Slurm daemons still running"
  pass "Slurm daemons stopped"
  ;;
run)
  rm -rf "$WORK/single" "$WORK/slurm-out"
  OMP_NUM_THREADS=1 "$BIN" --model_path "$HOUSE" --output_dir "$WORK/single" "${ARGS[@]}" \
    >"$WORK/single.log" 2>&1 || { tail "$WORK/single.log"; fail "single-process run failed"; }
  t0=$(date +%s)
  job=$(submit run --nodes=1 --gpus-per-node=2 -- --output_dir "$WORK/slurm-out" "${ARGS[@]}")
  rc=$?
  t1=$(date +%s)
  out="$WORK/run-$job.out"
  [ $rc -eq 0 ] || { tail -30 "$out"; fail "sbatch --wait exited $rc (job $job)"; }
  grep -q "2 rank(s)" "$out" || { cat "$out"; fail "the job did not run 2 ranks"; }
  grep -q "\[r1/2\] .*rank 1: blocks" "$out" || fail "rank 1 of 2 did not quantize a block range"
  r=$(files_equal "$WORK/single" "$WORK/slurm-out") || fail "Slurm output differs from one process: $r"
  pass "sbatch job $job: 2 ranks in $((t1 - t0)) s, $r with the single-process run"
  ;;
fault)
  # A rank that throws (every rank learns it and exits) and a rank that hangs (rank 0's
  # collective times out after --comm-timeout, srun --kill-on-bad-exit ends the hung rank).
  for fault in "rank=1,step=solve_block,code=3" "rank=1,step=solve_block,mode=hang"; do
    rm -rf "$WORK/fault-out" "$WORK"/fault-*.out
    t0=$(date +%s)
    job=$(SHARDQUANT_FAULT="$fault" submit fault --nodes=1 --gpus-per-node=2 -- \
      --output_dir "$WORK/fault-out" --comm-timeout 20 "${ARGS[@]}")
    rc=$?
    t1=$(date +%s)
    out="$WORK/fault-$job.out"
    [ $rc -ne 0 ] || { tail -30 "$out"; fail "$fault: the job exited 0"; }
    # Start-up and the blocks before the fault take ~40 s on a loaded 2-core CI machine.
    ((t1 - t0 < 150)) || fail "$fault: the failing job took $((t1 - t0)) s (comm timeout 20 s)"
    sleep 1
    pgrep -f "$WORK/fault-out" >/dev/null && { pgrep -af "$WORK/fault-out"; fail "$fault: shardquant processes left running"; }
    [ ! -e "$WORK/fault-out" ] || fail "$fault: a finished-looking output exists after the failure"
    grep -q "rank 1" "$out" || { tail -30 "$out"; fail "$fault: the job output does not name rank 1"; }
    state=$(scontrol show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' || true)
    echo "$fault: sbatch exit $rc after $((t1 - t0)) s ($state), no rank left"
  done
  pass "injected rank failures end the job non-zero with no rank left running"
  ;;
defaults)
  # Nothing but the script: --test-only asks the scheduler whether the allocation fits.
  msg=$(cd "$WORK" && sbatch --test-only "$ROOT/slurm/quantize.sbatch" "$HOUSE" 2>&1)
  rc=$?
  [ $rc -eq 0 ] && grep -q "to start at" <<<"$msg" || fail "the #SBATCH defaults are refused: $msg"
  # And that the fake GPUs are what makes them fit: more than the node has is refused.
  msg2=$(cd "$WORK" && sbatch --test-only --gpus-per-node=9 "$ROOT/slurm/quantize.sbatch" "$HOUSE" 2>&1)
  [ $? -ne 0 ] || fail "9 GPUs per node accepted on an 8-GPU node: the check proves nothing"
  pass "#SBATCH defaults accepted on 1 node x 8 GPUs: $msg"
  ;;
requeue)
  rm -rf "$WORK/requeue-single" "$WORK/requeue-out" "$WORK/requeue-out.partial" "$WORK"/requeue-*.out
  OMP_NUM_THREADS=1 "$BIN" --model_path "$HOUSE" --output_dir "$WORK/requeue-single" "${ARGS[@]}" \
    >"$WORK/requeue-single.log" 2>&1 || { tail "$WORK/requeue-single.log"; fail "single-process run failed"; }
  t0=$(date +%s)
  # Not --wait: the job ends once, is requeued and runs again. --verbose: the block lines tell
  # when the first block is done.
  job=$(cd "$WORK" && SHARDQUANT="$BIN" sbatch --parsable --output="$WORK/requeue-%j.out" \
    --nodes=1 --gpus-per-node=2 "$ROOT/slurm/quantize.sbatch" "$HOUSE" \
    --output_dir "$WORK/requeue-out" "${ARGS[@]}" --verbose) || fail "sbatch failed"
  out="$WORK/requeue-$job.out"
  for _ in $(seq 1500); do grep -q "block 1/" "$out" 2>/dev/null && break; sleep 0.2; done
  grep -q "block 1/" "$out" || { scancel "$job"; fail "job $job did not reach its first block"; }
  scancel --signal=TERM "$job" || fail "scancel --signal=TERM $job failed"
  # Slurm holds a requeued job back (BeginTime about two minutes on): once it is pending again
  # after its first run, let it start now.
  state="" released=no
  for _ in $(seq 400); do
    state=$(scontrol show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    restarts=$(scontrol show job "$job" 2>/dev/null | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
    # Not before the first run's slurmstepd processes are gone: released while they were still
    # finishing, the second start met the old step's PMIx socket (srun: "task 0 launch failed",
    # then the script's relaunch) or slurmd's revoked credential ("Killing non-startable batch
    # JobId: Job credential revoked", the job FAILED) — what Slurm's own hold avoids.
    if [ "$state" = PENDING ] && [ "${restarts:-0}" -ge 1 ] && [ $released = no ] &&
      ! pgrep -f "slurmstepd: \[$job\." >/dev/null; then
      sleep 2
      scontrol update JobId="$job" StartTime=now >/dev/null 2>&1 && released=yes
    fi
    case "$state" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | "") break ;; esac
    sleep 1
  done
  t1=$(date +%s)
  [ "$state" = COMPLETED ] || { tail -30 "$out"; scancel "$job"; fail "job $job ended $state"; }
  [ "${restarts:-0}" -eq 1 ] || fail "job $job restarted ${restarts:-0} times, expected 1"
  grep -q "shardquant: restart count 1" "$out" || fail "no second start in $out"
  grep -Eq "\[r0/2\] \[error\] interrupted: .*interrupted after block [0-9] of 6; rerun with --resume" "$out" ||
    { tail -30 "$out"; fail "the first run did not stop with 'interrupted after block i of 6'"; }
  grep -q "interrupted (exit 143); requeueing job $job" "$out" || fail "the script did not requeue on exit 143"
  grep -Eq "rank [01]: resuming after block" "$out" ||
    { cat "$out"; ls -la "$WORK/requeue-out.partial" 2>&1; fail "the second run did not resume a checkpoint"; }
  r=$(files_equal "$WORK/requeue-single" "$WORK/requeue-out") ||
    fail "requeued job's output differs from one process: $r"
  resumed=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1])).resume;
    process.stdout.write(String(r ? r.resumed_blocks : 0))' "$WORK/requeue-out/shardquant_summary.json")
  [ "$resumed" -gt 0 ] || fail "the summary records no resumed blocks"
  relaunch=$(grep -c "the job step did not start" "$out")
  pass "job $job: SIGTERM after the first block, exit 143, requeued, $resumed block(s) resumed" \
    "($relaunch relaunch(es) after a step that did not start); $((t1 - t0)) s in all; $r with the" \
    "single-process run"
  ;;
*)
  echo "unknown check '$CHECK'" >&2
  exit 2
  ;;
esac
