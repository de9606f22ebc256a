# Sourced by the shell tests that quantize the house model (tests/golden/golden.sh,
# tests/resume/resume_test.sh): where the fixtures are, how mpirun is called, and the summary's
# non-timing content. Sets nothing else and runs nothing.
#
#   SHARED  SQ_SHARED_DIR, default ../shared beside the repository
#   MODEL   the house model (house-llama-13m), CORPUS the Brown train corpus
#   MPIRUN  mpirun as every test calls it (as root, oversubscribed, shared-memory transport)
#   house_fixtures_missing      prints what is missing and returns 0, or returns 1 when both exist
#   summary_content FILE [DROP] shardquant_summary.json without timings, paths and launch
#                               statistics (tests/golden/summary_content.js), one canonical line;
#                               DROP: a further top-level key to leave out (e.g. resume)
#   json_field FILE A.B DEFAULT  the value at A.B of a JSON file, DEFAULT when absent
# Without node (the GPU machine) both use python3: the same content, but not necessarily the
# same text as node prints, so compare only outputs made on one machine (golden.sh needs node).
_HOUSE_ENV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED=${SQ_SHARED_DIR:-$_HOUSE_ENV_ROOT/../shared}
MODEL=$SHARED/models/house-llama-13m
CORPUS=$SHARED/data/corpus/brown-train.txt
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl self,vader)

house_fixtures_missing() {
  [ -f "$MODEL/config.json" ] || { echo "no house model at $MODEL"; return 0; }
  [ -f "$CORPUS" ] || { echo "no corpus at $CORPUS"; return 0; }
  return 1
}

_summary_content_py() {
  python3 - "$1" <<'PY'
import json, sys
def timing(k):
    return k == "seconds" or k.endswith("_s") or k in ("host_memory", "host_rss")
def clean(v):
    if isinstance(v, list):
        return [clean(x) for x in v]
    if isinstance(v, dict):
        return {k: clean(v[k]) for k in sorted(v) if not timing(k)}
    return v
s = clean(json.load(open(sys.argv[1])))
s.pop("model_path", None)
s.pop("distributed", None)
for src in (s.get("calibration") or {}).get("sources") or []:
    src.pop("name", None)
    src.pop("paths", None)
print(json.dumps(s, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
PY
}

json_field() {
  if command -v node >/dev/null; then
    node -e 'let v=JSON.parse(require("fs").readFileSync(process.argv[1]));
      for (const k of process.argv[2].split(".")) v = v == null ? undefined : v[k];
      process.stdout.write(String(v === undefined ? process.argv[3] : v))' "$1" "$2" "$3"
  else
    python3 -c 'import json,sys
v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
sys.stdout.write(sys.argv[3] if v is None else str(v))' "$1" "$2" "$3"
  fi
}

summary_content() {
  local c
  if command -v node >/dev/null; then
    c=$(node "$_HOUSE_ENV_ROOT/tests/golden/summary_content.js" "$1") || return 1
  else
    c=$(_summary_content_py "$1") || return 1
  fi
  if [ -n "${2:-}" ] && ! command -v node >/dev/null; then
    python3 -c 'import json,sys
s=json.loads(sys.argv[1]); s.pop(sys.argv[2], None)
print(json.dumps(s, sort_keys=True, separators=(",", ":"), ensure_ascii=False))' "$c" "$2"
  elif [ -n "${2:-}" ]; then
    node -e 'const s=JSON.parse(process.argv[1]);delete s[process.argv[2]];
      process.stdout.write(JSON.stringify(s)+"\n")' "$c" "$2"
  else
    printf '%s\n' "$c"
  fi
}
