#!/usr/bin/env bash
# Container entrypoint: quantize MODEL_PATH, or every model directory under /models (a folder
# with config.json and *.safetensors), then exit. shardquant itself maps the env variables
# MODEL_PATH SEQ_LEN FORCE_CPU MAX_QUALITY OUTPUT_DIR METHOD BITS EXTRA_ARGS onto flags;
# arguments given to the container are passed through and win over them.
#
# shardquant never runs as PID 1 here: PID 1 ignores SIGTERM unless it installs a handler, so
# `docker stop` / `podman stop` would wait out the timeout and SIGKILL. This script forwards
# TERM/INT to the running shardquant, which ends at once and leaves only <out>.partial behind
# (never a finished-looking output directory); the container then exits 128+signal.
set -uo pipefail
MODELS_ROOT=${MODELS_ROOT:-/models}
BIN=${SHARDQUANT:-shardquant}

case "${1:-}" in
  -h|--help|--help-markdown|--version|tokenize|eval|synth) exec "$BIN" "$@" ;;
esac

child=0
stopped=0
on_signal() {
  stopped=$1
  echo "entrypoint: received SIG$2, stopping shardquant" >&2
  [ "$child" -gt 0 ] && kill "-$2" "$child" 2>/dev/null
}
trap 'on_signal 143 TERM' TERM
trap 'on_signal 130 INT' INT

# Runs shardquant in the background and waits for it (wait returns early when a trapped signal
# arrives, so it is repeated until the child has really exited). Sets rc.
run_shardquant() {
  "$BIN" "$@" &
  child=$!
  while :; do
    wait "$child"
    rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  child=0
  if [ "$stopped" -ne 0 ]; then
    echo "entrypoint: stopped by a signal; the unfinished output is left as <output>.partial" >&2
    exit "$stopped"
  fi
}

is_model_dir() {
  [ -f "$1/config.json" ] && compgen -G "$1/*.safetensors" >/dev/null
}

if [ -n "${MODEL_PATH:-}" ]; then
  echo "entrypoint: shardquant (MODEL_PATH=$MODEL_PATH) $*"
  run_shardquant "$@"
  exit $rc
fi

models=()
if is_model_dir "$MODELS_ROOT"; then
  models+=("$MODELS_ROOT")
else
  for d in "$MODELS_ROOT"/*/; do
    d=${d%/}
    case "$(basename "$d")" in AWQ-*|GPTQ-*|*-AWQ|*-GPTQ|*-AWQ-MAX|*-GPTQ-MAX|*.partial) continue ;; esac  # our outputs
    is_model_dir "$d" && models+=("$d")
  done
fi
if [ ${#models[@]} -eq 0 ]; then
  echo "entrypoint: no model directory (config.json + *.safetensors) under $MODELS_ROOT;" \
       "mount one at $MODELS_ROOT or set MODEL_PATH" >&2
  exit 2
fi

status=0
if [ -n "${OUTPUT_DIR:-}" ] && [ ${#models[@]} -gt 1 ]; then
  echo "entrypoint: OUTPUT_DIR is set but ${#models[@]} models were found; set MODEL_PATH too" >&2
  exit 2
fi
for m in "${models[@]}"; do
  echo "entrypoint: shardquant --model_path $m $*"
  run_shardquant --model_path "$m" "$@"
  if [ $rc -ne 0 ]; then
    echo "entrypoint: $m failed with exit code $rc" >&2
    [ $status -eq 0 ] && status=$rc
  fi
done
exit $status
