#!/usr/bin/env bash
# HERE: writes .carry/peer/ — shardquant's calibration ids (the quality bench's AWQ protocol:
# brown-train + pydoc-train, 128 x 512 random windows, proportional mix) for each seed, and the
# test files' ids — for bench/peer/run.sh on the device. Needs a built ./build.
set -euo pipefail
cd "$(dirname "$0")/../.."
C=../shared/data/corpus M=../shared/models/house-llama-13m P=.carry/peer
mkdir -p $P
for s in ${SEEDS:-42 1 2 3 4 5 6 7 8 9 10 11}; do
  ./build/tools/sq_quality_quant calib 0 $P/s$s -- --model_path $M \
    --calib-file $C/brown-train.txt,$C/pydoc-train.txt --calib-size 128 --seq_len 512 \
    --calib-sampling windows --calib-mix proportional --seed "$s"
  mv $P/s$s/calib_tokens.i64 $P/calib_s$s.i64 && mv $P/s$s/calib_tokens.json $P/calib_s$s.json
  rmdir $P/s$s
done
for t in brown-test pydoc-test; do
  ./build/shardquant tokenize --tokenizer $M --no-special --file $C/$t.txt >$P/$t.json
done
du -sh $P
