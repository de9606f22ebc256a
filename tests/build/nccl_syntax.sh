#!/usr/bin/env bash
# The NCCL transport's translation units, compiled (-fsyntax-only) with NCCL and CUDA switched
# on, on a machine that has neither GPU nor NCCL library: only the CUDA toolkit's headers
# (cuda_runtime_api.h, nccl.h). The GPU machine is lent for minutes per session; a compile error
# in code only its build sees (SQ_WITH_NCCL) would cost a device call. Every source under src/
# that tests SQ_WITH_NCCL is compiled with the local build's own command line
# (compile_commands.json) plus -DSQ_WITH_NCCL=1 -DSQ_WITH_CUDA=1 and the toolkit's include dir.
#   tests/build/nccl_syntax.sh BUILD_DIR
# Exit 77 (ctest: skipped) without the toolkit headers or without compile_commands.json.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(realpath "${1:?usage: nccl_syntax.sh BUILD_DIR}")
CUDA_INC=${CUDA_INCLUDE_DIR:-/usr/local/cuda/include}
for h in cuda_runtime_api.h nccl.h; do
  [ -f "$CUDA_INC/$h" ] || { echo "SKIP: $CUDA_INC/$h not found (no CUDA toolkit headers)"; exit 77; }
done
[ -f "$BUILD/compile_commands.json" ] || { echo "SKIP: no $BUILD/compile_commands.json"; exit 77; }
mapfile -t srcs < <(cd "$ROOT" && grep -rl "SQ_WITH_NCCL" src --include=*.cpp | sort)
[ ${#srcs[@]} -gt 0 ] || { echo "FAIL: no source under src/ tests SQ_WITH_NCCL"; exit 1; }
python3 - "$BUILD/compile_commands.json" "$ROOT" "$CUDA_INC" "${srcs[@]}" <<'PY'
import json, shlex, subprocess, sys, time
db, root, cuda_inc, srcs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
entries = {e["file"]: e for e in json.load(open(db))}
failed = 0
for rel in srcs:
    path = f"{root}/{rel}"
    e = entries.get(path)
    if e is None:
        print(f"FAIL: {rel} is not in the build's compile_commands.json"); failed += 1; continue
    args = shlex.split(e["command"]) if "command" in e else list(e["arguments"])
    out, skip = [], False
    for a in args:
        if skip: skip = False; continue
        if a == "-o": skip = True; continue
        if a == "-c" or a == path or a.endswith("ccache"): continue
        out.append(a)
    out += ["-DSQ_WITH_NCCL=1", "-DSQ_WITH_CUDA=1", "-isystem", cuda_inc, "-fsyntax-only", path]
    t = time.time()
    r = subprocess.run(out, cwd=e["directory"], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL: {rel} does not compile with NCCL on:\n{r.stderr[-4000:]}"); failed += 1
    else:
        print(f"ok: {rel} ({time.time() - t:.0f} s)")
sys.exit(1 if failed else 0)
PY
