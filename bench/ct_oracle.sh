#!/usr/bin/env bash
# Quantizes the checkpoints bench/ct_oracle.py judges, then runs it (how-to and results:
# bench/NOTES.md, "compressed-tensors oracle"). Each case is written twice with the same options,
# as compressed-tensors and in the method's own format (the reference of the same solve; runs on
# the CPU, where a repeated solve is byte-identical).
#   SHARDQUANT  the binary (build/shardquant)     SQ_SHARED_DIR  ../shared
#   CT_SRC      compressed-tensors source tree (when the package is not installed)
#   WORK        scratch directory (/tmp/sq-ct)     OUT  where ct_oracle.json goes (WORK)
#   DEVICE      device of the transformers load check (cuda when available, else cpu)
set -uo pipefail
cd "$(dirname "$0")/.."
SQ=${SHARDQUANT:-build/shardquant}
S=${SQ_SHARED_DIR:-../shared}
W=${WORK:-/tmp/sq-ct}
OUT=${OUT:-$W}
DEVICE=${DEVICE:-$(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')}
rm -rf "$W" && mkdir -p "$W" "$OUT"
head -n 2000 "$S/data/corpus/brown-train.txt" >"$W/calib.txt"
CAL=(--calib-file "$W/calib.txt" --calib-size 8 --seq_len 128 --device cpu --quiet)
pairs=()
failed=0

# case NAME MODEL ARGS...: the reference (method's format) and the compressed-tensors output.
case_() {
  local name=$1 model=$2
  shift 2
  echo "--- $name: $*"
  if "$SQ" --model_path "$model" --output_dir "$W/$name-ref" "${CAL[@]}" "$@" &&
    "$SQ" --model_path "$model" --output_dir "$W/$name-ct" "${CAL[@]}" "$@" --format compressed-tensors; then
    pairs+=("$W/$name-ct=$W/$name-ref")
  else
    echo "$name: shardquant failed"
    failed=1
  fi
}

# A fixture as a model directory: links to its files plus a character-level tokenizer (the
# fixtures have none; tests/fixture_model.h writes the same one).
fixture() {
  local d="$W/fx-$1"
  mkdir -p "$d"
  for f in "$S/fixtures/arch/$1"/*; do
    [ "$(basename "$f")" = reference.safetensors ] || ln -s "$(realpath "$f")" "$d/"
  done
  python3 - "$d" <<'EOF'
import json, sys
vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
vocab.update({chr(c): c - 29 for c in range(32, 127)})
added = [{"id": vocab[t], "content": t, "special": True, "normalized": False} for t in ("<unk>", "<s>", "</s>")]
tok = {"version": "1.0", "added_tokens": added, "normalizer": None,
       "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None, "decoder": None,
       "model": {"type": "BPE", "vocab": vocab, "merges": [], "unk_token": "<unk>", "fuse_unk": True}}
json.dump(tok, open(sys.argv[1] + "/tokenizer.json", "w"))
EOF
  echo "$d"
}

H=$S/models/house-llama-13m
case_ house-awq-w4 "$H" --awq
case_ house-gptq-w4-sym "$H" --gptq --bits 4
case_ house-gptq-w4-asym "$H" --gptq --bits 4 --zero-point
case_ house-gptq-w8-sym "$H" --gptq --bits 8
case_ house-gptq-w4-actorder "$H" --gptq --bits 4 --desc-act
case_ house-gptq-w4-static "$H" --gptq --bits 4 --desc-act --static-groups
case_ house-gptq-w4-kept "$H" --gptq --bits 4 --keep-fp-layers 0,mlp.down_proj
for fx in llama_bias_tied phi3 mixtral qwen2_moe deepseek_v3; do
  d=$(fixture "$fx" | tail -1)
  case_ "$fx-gptq-w4" "$d" --gptq --bits 4 --zero-point --desc-act --q-group-size 8 --keep-fp-layers -1
done

CT=()
[ -n "${CT_SRC:-}" ] && CT=(--ct-src "$CT_SRC")
python3 bench/ct_oracle.py "${CT[@]}" --fp --device "$DEVICE" --text "$S/data/corpus/brown-test.txt" \
  --json "$OUT/ct_oracle.json" "${pairs[@]}" || failed=1
exit $failed
