# Sourced, not run: the set-up and helpers bench/gpu_bench.sh, big_bench.sh and gpu_scaling.sh
# share. The caller has cd'ed to the checkout root.
#
# bench_setup NAME DEFAULT_WORK — the common environment: B (build dir, default build-gpu), OUT
# (results, /tmp/sq-out), WORK (SQ_BENCH_DIR, else DEFAULT_WORK), BUDGET (BENCH_BUDGET_S, 560 s
# for the whole script, counted from T0 = now), SQ (SHARDQUANT, else $B/shardquant),
# SQ_SHARED_DIR and LD_LIBRARY_PATH as scripts/device_run.sh carries them. Creates OUT and WORK;
# exits 1 when SQ is not an executable.
bench_setup() {
  local name=$1
  B=${B:-build-gpu}
  OUT=${OUT:-/tmp/sq-out}
  WORK=${SQ_BENCH_DIR:-$2}
  BUDGET=${BENCH_BUDGET_S:-560}
  export SQ_SHARED_DIR=${SQ_SHARED_DIR:-$PWD/.carry/shared}
  export LD_LIBRARY_PATH=$PWD/.carry/boost/lib:${LD_LIBRARY_PATH:-}
  SQ=${SHARDQUANT:-$PWD/$B/shardquant}
  T0=$(date +%s)
  mkdir -p "$OUT" "$WORK"
  [ -x "$SQ" ] || { echo "$name: $SQ not built (run scripts/device_run.sh build first)"; exit 1; }
}

# Seconds of the budget left.
left() { echo $((BUDGET - ($(date +%s) - T0))); }
# A time stamp for since().
now() { date +%s.%N; }
# Seconds since the stamp $1 of now(), one decimal.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
# MiB → GiB, two decimals.
gib() { awk -v m="$1" 'BEGIN{printf "%.2f", m/1024}'; }
have_smi() { command -v nvidia-smi >/dev/null; }

# start_poll MS … stop_poll: the peak of nvidia-smi's memory.used (MiB), polled every MS
# milliseconds while a command runs (stop_poll prints nothing without nvidia-smi).
POLL_PID=""
start_poll() {
  rm -f "$WORK/smi.txt"
  have_smi || return 0
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms "$1" >"$WORK/smi.txt" 2>/dev/null &
  POLL_PID=$!
}
stop_poll() {
  [ -n "$POLL_PID" ] && kill "$POLL_PID" 2>/dev/null && wait "$POLL_PID" 2>/dev/null
  POLL_PID=""
  sort -n "$WORK/smi.txt" 2>/dev/null | tail -1
}

# run_status RC BUDGET — a run's status for the tables: ok, exit RC, or the timeout's.
run_status() {
  if [ "$1" -eq 124 ]; then
    echo "timeout after ${2}s"
  elif [ "$1" -ne 0 ]; then
    echo "exit $1"
  else
    echo ok
  fi
}

# synth_model SHAPE → $WORK/SHAPE (synthesized once, kept between stages and scripts of one call)
synth_model() {
  local shape=$1 dir=$WORK/$1
  [ -f "$dir/config.json" ] && return 0
  rm -rf "$dir"
  local t=$(now)
  timeout "$(left)" "$SQ" synth --shape "$shape" --out "$dir" --seed 1 || return 1
  echo "synth $shape: $(since "$t") s, $(du -sh "$dir" | cut -f1)"
}
