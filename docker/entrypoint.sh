#!/usr/bin/env bash
# Container entrypoint: quantize MODEL_PATH, or every model directory under /models (a folder
# with config.json and *.safetensors), then exit. shardquant itself maps the env variables
# MODEL_PATH SEQ_LEN FORCE_CPU MAX_QUALITY OUTPUT_DIR METHOD BITS EXTRA_ARGS onto flags;
# arguments given to the container are passed through and win over them.
set -uo pipefail
MODELS_ROOT=${MODELS_ROOT:-/models}
BIN=${SHARDQUANT:-shardquant}

case "${1:-}" in
  -h|--help|--help-markdown|--version|tokenize|eval|synth) exec "$BIN" "$@" ;;
esac

is_model_dir() {
  [ -f "$1/config.json" ] && compgen -G "$1/*.safetensors" >/dev/null
}

if [ -n "${MODEL_PATH:-}" ]; then
  echo "entrypoint: shardquant (MODEL_PATH=$MODEL_PATH) $*"
  exec "$BIN" "$@"
fi

models=()
if is_model_dir "$MODELS_ROOT"; then
  models+=("$MODELS_ROOT")
else
  for d in "$MODELS_ROOT"/*/; do
    d=${d%/}
    case "$(basename "$d")" in AWQ-*|GPTQ-*|*.partial) continue ;; esac  # our own outputs
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
  "$BIN" --model_path "$m" "$@"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "entrypoint: $m failed with exit code $rc" >&2
    [ $status -eq 0 ] && status=$rc
  fi
done
exit $status
