// The distributed quantization run (issue 6 points 2–6): one process per rank under mpirun.
//
// CONTRACT
//   * distributed_requested(o): true under mpirun with more than one rank (OMPI_COMM_WORLD_SIZE
//     or PMI_SIZE > 1) or when --transport mpi|nccl is given explicitly.
//   * run_distributed(o) runs the whole command on every rank: rank 0 makes and validates the
//     plan and broadcasts the distributed plan; the other ranks rebuild the plan from the same
//     command line and check it against rank 0's digest. --dry-run: rank 0 prints the plan and the
//     distributed plan. Otherwise every rank quantizes its share (--parallel blocks|data|auto,
//     protocol.h), writes a fragment, and rank 0 merges (merge.h) after all ranks succeeded.
//     Every step ends with agreed statuses: a failure on any rank makes every rank throw the
//     failing rank's error (exit non-zero); a rank that stops answering is caught by the
//     --comm-timeout deadline and the job is aborted. Returns 0 on every rank on success.
//   * Unless OMP_NUM_THREADS is set, ranks that share a host share its cores: on a GPU one
//     intra-op thread each, on the CPU an equal share (prepare_host_for), so that they do not
//     oversubscribe them.
#pragma once

#include "coordinator/options.h"

namespace sq::coordinator {

bool distributed_requested(const Options& o);
int run_distributed(const Options& o);

}  // namespace sq::coordinator
