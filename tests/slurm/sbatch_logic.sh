#!/usr/bin/env bash
# slurm/quantize.sbatch's own logic, without Slurm: the script runs under bash with stub `srun`
# and `scontrol` commands first on PATH, and the real shardquant binary.
#   tests/slurm/sbatch_logic.sh BINARY
# Checks: a step that runs passes its exit code through; a step that never launches (srun exits
# 0, no rank reported a status — what Slurm 22.05 does on "task 0 launch failed") is launched
# again, three times at most, then the job exits 3; a rank's code is taken when srun says 0; exit
# 143 requeues the job (scontrol requeue JOBID), SQ_NO_REQUEUE=1 does not.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(realpath "${1:?usage: sbatch_logic.sh BINARY}")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin"
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

# srun stub. STUB_MODE: run (run the command, exit with its code), nolaunch (exit 0 without
# running), nolaunch-once (nolaunch on the first call, then run), zero (run, exit 0 whatever the
# command's code). Every call is counted in $WORK/calls.
cat >"$WORK/bin/srun" <<'STUB'
#!/usr/bin/env bash
echo call >>"$STUB_DIR/calls"
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done  # srun's own options
n=$(wc -l <"$STUB_DIR/calls")
case "$STUB_MODE" in
  nolaunch) echo "srun: error: task 0 launch failed: Unspecified error" >&2; exit 0 ;;
  nolaunch-once) [ "$n" -eq 1 ] && { echo "srun: error: task 0 launch failed" >&2; exit 0; } ;;
esac
"$@"
rc=$?
[ "$STUB_MODE" = zero ] && exit 0
exit $rc
STUB
cat >"$WORK/bin/scontrol" <<'STUB'
#!/usr/bin/env bash
echo "$*" >>"$STUB_DIR/scontrol"
STUB
# A stand-in for shardquant that exits with $CODE after writing its status the way the binary
# does (rank-0.status under SHARDQUANT_STATUS_DIR) — only for the exit codes the real binary
# cannot be asked for here (143).
cat >"$WORK/bin/fake-sq" <<'STUB'
#!/usr/bin/env bash
[ -n "${SHARDQUANT_STATUS_DIR:-}" ] && echo "$CODE" >"$SHARDQUANT_STATUS_DIR/rank-0.status"
exit "$CODE"
STUB
chmod +x "$WORK/bin/"*

# run_case NAME MODE BINARY EXPECTED_RC EXPECTED_CALLS ARGS...
run_case() {
  local name=$1 mode=$2 bin=$3 want_rc=$4 want_calls=$5
  shift 5
  rm -f "$WORK/calls" "$WORK/scontrol"
  PATH="$WORK/bin:$PATH" STUB_DIR=$WORK STUB_MODE=$mode SHARDQUANT=$bin SLURM_JOB_ID=4242 \
    SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=1 TMPDIR=$WORK SQ_RELAUNCH_WAIT=0 \
    bash "$ROOT/slurm/quantize.sbatch" /no/model "$@" >"$WORK/$name.log" 2>&1
  local rc=$? calls
  calls=$(wc -l <"$WORK/calls" 2>/dev/null || echo 0)
  [ "$rc" -eq "$want_rc" ] || { fail "$name: exit $rc, expected $want_rc"; cat "$WORK/$name.log"; }
  [ "$calls" -eq "$want_calls" ] || fail "$name: srun called $calls times, expected $want_calls"
  ls "$WORK"/shardquant-4242.* >/dev/null 2>&1 && fail "$name: the status directory was left behind"
  echo "ok: $name: exit $rc after $calls srun call(s)"
}

run_case ran run "$BIN" 0 1 --version
grep -q "did not start" "$WORK/ran.log" && fail "ran: a relaunch message for a step that ran"
run_case input-error run "$BIN" 2 1  # /no/model: the binary's own exit 2 through srun
run_case relaunched nolaunch-once "$BIN" 0 2 --version
grep -q "did not start .*attempt 1 of 3" "$WORK/relaunched.log" || fail "relaunched: no message"
run_case never-launched nolaunch "$BIN" 3 3 --version
[ "$(grep -c "did not start" "$WORK/never-launched.log")" -eq 3 ] ||
  fail "never-launched: expected 3 messages"
run_case rank-code-when-srun-says-0 zero "$BIN" 2 1
CODE=143 run_case sigterm run "$WORK/bin/fake-sq" 143 1
grep -qx "requeue 4242" "$WORK/scontrol" 2>/dev/null || fail "sigterm: no 'scontrol requeue 4242'"
CODE=143 SQ_NO_REQUEUE=1 run_case sigterm-no-requeue run "$WORK/bin/fake-sq" 143 1
[ -e "$WORK/scontrol" ] && fail "sigterm-no-requeue: scontrol was called"
[ "$FAILS" -eq 0 ] || { echo "$FAILS failure(s)"; exit 1; }
echo "pass"
