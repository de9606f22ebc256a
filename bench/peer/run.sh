#!/usr/bin/env bash
# Device run of the independent AWQ (bench/peer/awq_peer.py) on shardquant's own calibration
# windows. Prepare HERE first (ids for each seed and the test files):
#   bash scripts/device_prepare.sh && bash bench/peer/prepare.sh
# then on the device (carry .carry):  bash bench/peer/run.sh [w4|w3|fp32|fp32err ...]
set -uo pipefail
cd "$(dirname "$0")/../.."
P=.carry/peer
M=${SQ_SHARED_DIR:-$PWD/.carry/shared}/models/house-llama-13m
OUT=${OUT:-/tmp/sq-out}
mkdir -p "$OUT"
seeds() { for s in "$@"; do printf '%s ' "$P/calib_s$s.i64"; done; }
peer() { python3 bench/peer/awq_peer.py --model "$M" --test $P/brown-test.json $P/pydoc-test.json "$@"; }
W4_SEEDS=${W4_SEEDS:-42 1 2 3 4 5 6 7 8 9 10 11}
W3_SEEDS=${W3_SEEDS:-42 1 2 3 4 5}
for stage in "${@:-w4}"; do
  case $stage in
    w4) peer --fp --rtn --alphas --calib $(seeds $W4_SEEDS) ;;
    w3) peer --bits 3 --rtn --calib $(seeds $W3_SEEDS) ;;
    fp32) peer --dtype fp32 --alphas --calib $(seeds $W3_SEEDS) ;;
    fp32err) peer --clip_err_fp32 --variant clipfp32 --calib $(seeds $W4_SEEDS) ;;
    gptq4) peer --rounding gptq --variant awq+gptq --calib $(seeds $W4_SEEDS) ;;
    gptq4noclip) peer --rounding gptq --no_clip --variant awq+gptq-noclip --calib $(seeds $W4_SEEDS) ;;
    gptq3) peer --bits 3 --rounding gptq --variant awq+gptq --calib $(seeds $W3_SEEDS) ;;
    gptq3noclip) peer --bits 3 --rounding gptq --no_clip --variant awq+gptq-noclip --calib $(seeds $W3_SEEDS) ;;
    gptq4mse) peer --rounding gptq --gptq_mse 2.4 --variant awq+gptq-mse --calib $(seeds $W4_SEEDS) ;;
    gptq3mse) peer --bits 3 --rounding gptq --gptq_mse 2.4 --variant awq+gptq-mse --calib $(seeds $W3_SEEDS) ;;
    gptq4mseonly) peer --rounding gptq --no_clip --gptq_mse 2.4 --variant awq+gptq-mse-noclip --calib $(seeds $W4_SEEDS) ;;
    *) echo "unknown stage $stage" ;;
  esac
done 2>&1 | tee -a "$OUT/peer.txt"
