#!/usr/bin/env bash
# Transport checks outside ctest.
#   scripts/mpi_test.sh cpu [build_dir] [ranks...]   run the mpi contract probe under mpirun
#                                                    (default build-dist, ranks 2 3 4)
#   scripts/mpi_test.sh nccl                         ON THE GPU MACHINE: build the probe by hand
#                                                    against the machine's PyTorch (no Boost or
#                                                    spdlog needed) and run local/mpi/nccl, world 1
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_NVLS_ENABLE=0
mode=${1:-cpu}
shift || true
if [ "$mode" = cpu ]; then
  B=${1:-build-dist}
  shift || true
  for n in "${@:-2 3 4}"; do
    for k in $n; do
      mpirun --oversubscribe --bind-to none --mca btl self,vader -n "$k" \
        "$B/tools/sq_transport_probe" contract 60 mpi
    done
  done
  exit 0
fi
T=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
ABI=$(python3 -c 'import torch;print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
O=/tmp/sq-probe-obj
mkdir -p $O
F="-std=c++17 -O1 -Wall -Wextra -Wno-unused-parameter -D_GLIBCXX_USE_CXX11_ABI=$ABI -DSQ_WITH_MPI=1
   -DSQ_WITH_CUDA=1 -DSQ_WITH_NCCL=1 -Isrc -Itests -I$T/include
   -I$T/include/torch/csrc/api/include -I/usr/local/cuda/include"
for s in src/common/check.cpp src/common/errors.cpp src/rank/transport/*.cpp \
  tests/dist/tools/transport_probe.cpp; do
  mpicxx $F -c "$s" -o "$O/$(basename "$s").o" &
done
wait
mpicxx -o $O/probe $O/*.o -L"$T/lib" -Wl,-rpath,"$T/lib" -Wl,--no-as-needed -ltorch -ltorch_cuda \
  -ltorch_cpu -lc10_cuda -lc10 -Wl,--as-needed -l:libnccl.so.2 -L/usr/local/cuda/lib64 -lcudart
for k in local mpi nccl; do mpirun -n 1 $O/probe contract 60 $k; done
