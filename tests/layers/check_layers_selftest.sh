#!/usr/bin/env bash
# Self-test of cmake/check_layers.cmake (issue 18 point 7): builds small throw-away trees with
# src/<lib>/ and tests/<folder>/ files and checks that the include check fails exactly on
# includes against DESIGN.md §3's arrows (cmake/Layers.cmake) and passes the allowed ones.
#   tests/layers/check_layers_selftest.sh REPO_ROOT
set -uo pipefail
ROOT=$(cd "${1:?usage: $0 REPO_ROOT}" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0

# A tree where every library has one header and includes only what it may.
base() {
  rm -rf "$TMP/t" && mkdir -p "$TMP/t"
  for l in common io solvers rank coordinator; do mkdir -p "$TMP/t/src/$l"; done
  mkdir -p "$TMP/t/src/io/safetensors" "$TMP/t/src/io/format" "$TMP/t/src/io/hdf5" "$TMP/t/src/coordinator/run"
  mkdir -p "$TMP/t/src/rank/model" "$TMP/t/src/rank/device" "$TMP/t/src/rank/worker"
  echo '#pragma once' >"$TMP/t/src/common/c.h"
  printf '#pragma once\n#include "common/c.h"\n' >"$TMP/t/src/io/safetensors/i.h"
  printf '#pragma once\n#include "common/c.h"\n#include <torch/torch.h>\n' >"$TMP/t/src/solvers/s.h"
  printf '#pragma once\n#include "io/safetensors/i.h"\n#include "solvers/s.h"\n' >"$TMP/t/src/rank/model/r.h"
  # rank's sub-folders (SQ_SUBLAYERS): worker may include model and device.
  echo '#pragma once' >"$TMP/t/src/rank/device/d.h"
  printf '#include "rank/model/r.h"\n#include "rank/device/d.h"\n' >"$TMP/t/src/rank/worker/w.cpp"
  # coordinator reaches io through rank: allowed (transitive arrows).
  printf '#include "rank/model/r.h"\n#include "io/safetensors/i.h"\n#include "x.h"\n' >"$TMP/t/src/coordinator/run/m.cpp"
  mkdir -p "$TMP/t/tests/cli" "$TMP/t/tests/rank" "$TMP/t/tests/golden"
  # A test helper in cli/ that only includes common is fine for rank tests.
  printf '#pragma once\n#include "common/c.h"\n' >"$TMP/t/tests/cli/helper.h"
  printf '#include "cli/helper.h"\n#include "rank/model/r.h"\n' >"$TMP/t/tests/rank/t.cpp"
  echo 'not C++' >"$TMP/t/tests/golden/golden.txt"
}

# expect NAME WANT_RC [TEXT_IN_OUTPUT]
expect() {
  local out rc
  out=$(cmake -DSQ_ROOT="$TMP/t" -P "$ROOT/cmake/check_layers.cmake" 2>&1)
  rc=$?
  if { [ "$2" = 0 ] && [ $rc -ne 0 ]; } || { [ "$2" != 0 ] && [ $rc -eq 0 ]; }; then
    echo "FAIL $1: exit $rc, expected $([ "$2" = 0 ] && echo 0 || echo non-zero)"
    echo "$out"
    fails=$((fails + 1))
  elif [ -n "${3:-}" ] && ! grep -qF -- "$3" <<<"$out"; then
    echo "FAIL $1: output lacks '$3':"
    echo "$out"
    fails=$((fails + 1))
  else
    echo "ok   $1"
  fi
}

base
expect "allowed tree passes" 0 "follow DESIGN.md"

base
printf '#include "common/c.h"\n#include "coordinator/plan.h"\n' >"$TMP/t/src/io/format/bad.cpp"
expect "io -> coordinator (upward) fails" 1 "src/io/format/bad.cpp: #include \"coordinator/plan.h\""

base
echo '#include "io/safetensors/i.h"' >"$TMP/t/src/solvers/bad.cpp"
expect "solvers -> io (sideways) fails" 1 "solvers code may include only: solvers, common, not io"

base
echo '#  include <coordinator/app.h>' >"$TMP/t/src/rank/model/bad.h"
expect "rank -> coordinator (angle brackets, indented) fails" 1 "src/rank/model/bad.h"

base
echo '#include "rank/worker/w.h"' >"$TMP/t/src/rank/device/bad.cpp"
expect "rank/device -> rank/worker (upward sub-folder) fails" 1 \
  "rank/device code may include only rank/{device}, not rank/worker"

base
echo '#include "io/model/m.h"' >"$TMP/t/src/io/safetensors/bad.cpp"
expect "io/safetensors -> io/model (upward sub-folder) fails" 1 \
  "io/safetensors code may include only io/{safetensors}, not io/model"

base
echo '#include "io/safetensors/i.h"' >"$TMP/t/src/io/loose.cpp"
expect "an io source outside its sub-folders fails" 1 "src/io/loose.cpp: not in a sub-folder"

base
echo '#include "io/safetensors/i.h"' >"$TMP/t/src/rank/loose.cpp"
expect "a rank source outside its sub-folders fails" 1 "src/rank/loose.cpp: not in a sub-folder"

base
mkdir -p "$TMP/t/src/rank/misc" && echo '#include "io/safetensors/i.h"' >"$TMP/t/src/rank/misc/m.cpp"
expect "a rank sub-folder without a row fails" 1 "src/rank/misc/ has sources but no row"

base
echo '#include "../../coordinator/run/m.cpp"' >"$TMP/t/src/io/hdf5/rel.cpp"
expect "relative path out of the folder fails" 1 "a relative path out of the folder"

base
printf '#pragma once\n#include "coordinator/app.h"\n' >"$TMP/t/tests/cli/helper.h"
expect "rank test via a cli helper that includes coordinator fails" 1 \
  "tests/rank/t.cpp: #include \"cli/helper.h\""

base
echo '#include "rank/model/r.h"' >"$TMP/t/tests/cli/t.cpp"
mkdir -p "$TMP/t/tests/common" && echo '#include "rank/model/r.h"' >"$TMP/t/tests/common/t.cpp"
expect "common test including rank fails, cli test passes" 1 "1 violation(s)"

base
mkdir -p "$TMP/t/src/extra" && echo '#include "common/c.h"' >"$TMP/t/src/extra/e.cpp"
expect "a src folder without a row fails" 1 "src/extra/ has sources but no row"

base
mkdir -p "$TMP/t/tests/newsuite" && echo '#include "common/c.h"' >"$TMP/t/tests/newsuite/n.cpp"
expect "a test folder without a row fails" 1 "tests/newsuite/ has C++ sources but no row"

base
echo '#include "rank/model/r.h"' >"$TMP/t/tests/top.h"
expect "top-level test header including rank fails" 1 "tests/top.h"

[ $fails -eq 0 ] || { echo "$fails self-test case(s) failed"; exit 1; }
echo "all include-check self-tests passed"
