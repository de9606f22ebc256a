#!/usr/bin/env bash
# Sensitivity of the quality table (bench/quality.sh) to the compute dtype and the calibration
# seed: runs the given cells once per (dtype, seed) and prints one line per run, so a cell's
# distance from the reference can be read against its seed-to-seed spread.
#   DTYPES="auto fp16 fp32" SEEDS="42 1 2" CELLS="gptq-w4 awq-w3" bash bench/quality_sweep.sh
# Ends with the multi-seed means of the runs (bench/sweep_summary.py); all SWEEP lines of every
# invocation accumulate in $QUALITY_WORK-sweep/sweep.txt.
# SWEEP_LABEL (optional) is appended to each run's tag (e.g. to name an environment toggle).
# Other environment as for bench/quality.sh (SHARDQUANT, DEVICE, ...). NOTES is not touched.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DTYPES=${DTYPES:-auto}
SEEDS=${SEEDS:-42}
BASE=${QUALITY_WORK:-/tmp/sq-quality}-sweep
mkdir -p "$BASE"
# Every SWEEP line also goes to $BASE/sweep.txt; at the end bench/sweep_summary.py prints the
# multi-seed means of this invocation against the REFERENCE.md §7 anchors.
LINES=$BASE/sweep-$$.txt
: > "$LINES"
for dt in $DTYPES; do
  for seed in $SEEDS; do
    tag=$seed-${CALIB_MIX:-proportional}-${CALIB_SAMPLING:-windows}-$(echo "${AWQ_EXTRA---no-duo-scaling}" | tr -d ' -' | cut -c1-24)-$(echo "${GPTQ_EXTRA:-}" | tr -d ' -')${SWEEP_LABEL:+-$SWEEP_LABEL}
    work=$BASE/$dt-$tag
    QUANT_DTYPE=$dt SEED=$seed QUALITY_WORK=$work NOTES=- bash "$ROOT/bench/quality.sh" >/dev/null 2>"$work.err" ||
      echo "sweep: dtype $dt seed $seed failed (see $work.err)"
    python3 - "$work/results.jsonl" "$dt" "$tag" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    b = r.get("brown", {}).get("ppl"); p = r.get("pydoc", {}).get("ppl")
    fmt = lambda v: "%.2f" % v if v else "  -  "
    print(f"SWEEP dtype={sys.argv[2]:<5} run={sys.argv[3]:<52} {r['cell']:<14} brown {fmt(b)} pydoc {fmt(p)}")
PY
  done
done | tee -a "$LINES"
cat "$LINES" >> "$BASE/sweep.txt"
python3 "$ROOT/bench/sweep_summary.py" "$LINES"
