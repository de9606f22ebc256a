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

summary_content() {
  local c
  c=$(node "$_HOUSE_ENV_ROOT/tests/golden/summary_content.js" "$1") || return 1
  if [ -n "${2:-}" ]; then
    node -e 'const s=JSON.parse(process.argv[1]);delete s[process.argv[2]];
      process.stdout.write(JSON.stringify(s)+"\n")' "$c" "$2"
  else
    printf '%s\n' "$c"
  fi
}
